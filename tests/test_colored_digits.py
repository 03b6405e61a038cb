"""Colored digits: the world is built offline, its parts are disjoint and follow the protocol, the
human's prior is what recovers the colour-blind rule, and a tiny run reports it end to end."""
import json
import socket

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import helpers
from amplify import configs as config_lib
from amplify import tasks
from amplify.types import Inputs
from amplify.learn import mz
from amplify.learn import prior
from amplify.truth.evaluator import Evaluator
from amplify.oracles.scripted import ScriptedOracle
from amplify.tasks import colored_digits

TINY = "colored_digits_tiny"


def _task():
  return tasks.make_task(config_lib.get_config(TINY))


def _world(config):
  return colored_digits.draw_world(jax.random.fold_in(jax.random.key(config.seed), tasks.WORLD))


def test_digits_load_without_network(monkeypatch):
  def refuse(*args, **kwargs):
    raise OSError("no network in this test")

  monkeypatch.setattr(socket, "socket", refuse)
  monkeypatch.setattr(socket, "create_connection", refuse)
  task, truth = _task()
  inputs, labels = task.observations()
  assert inputs.questions.shape == (sum(colored_digits.ENV_SIZES), 64)
  assert labels.shape == (sum(colored_digits.ENV_SIZES), 1)
  assert truth.world.shape == (task.spec.z_entries,)


def test_parts_are_disjoint_and_follow_the_protocol():
  config = config_lib.get_config(TINY)
  world = _world(config)
  images = [{row.tobytes() for row in part} for part in world.images]
  assert sum(len(part) for part in images) == 1797  # every image in exactly one part
  assert len(set().union(*images)) == 1797
  flips = np.concatenate([o != (d < 5) for o, d in zip(world.observed[1:], world.digits[1:])])
  assert abs(flips.mean() - colored_digits.LABEL_FLIP) < 0.04
  agreement = [np.mean(c == o) for c, o in zip(world.colours[1:], world.observed[1:])]
  env1, env2, test_env = colored_digits.COLOUR_AGREEMENT
  assert agreement[0] == pytest.approx(env1, abs=0.05)
  assert agreement[1] == pytest.approx(env2, abs=0.06)
  assert np.mean(np.concatenate(world.colours[3:]) == np.concatenate(world.observed[3:])) == (
      pytest.approx(test_env, abs=0.04))

  # the task's D and D* are those parts, encoded; the truth holds their observed labels
  task, truth = tasks.make_task(config)
  inputs, labels = task.observations()
  np.testing.assert_array_equal(task.intensities(inputs.questions) * 16,
                                np.concatenate(world.images[1:3]))
  np.testing.assert_array_equal(task.colour(inputs.questions), np.concatenate(world.colours[1:3]))
  np.testing.assert_array_equal(labels[:, 0], task.class0 + np.concatenate(world.observed[1:3]))
  pool = task.deployment_questions(jax.random.key(0), 10**6)
  assert pool.questions.shape[0] == colored_digits.LABEL_POOL_SIZE
  observed = np.asarray(truth.answers(pool))[:, 0] - task.class0
  assert np.mean(np.asarray(task.colour(pool.questions)) == observed) == pytest.approx(
      test_env, abs=0.05)
  gray = task.grayscale(pool).questions
  assert int(jnp.max(gray)) <= task.blank + 16 and not np.any(np.asarray(task.colour(gray)))
  # D's images are scored against their own observed labels (the imitate_on_d arm labels them)
  np.testing.assert_array_equal(truth.answers(inputs), labels)
  reader = jnp.asarray(_pixel_tokens_of_reader(task, world))
  with pytest.raises(ValueError, match="not images of D or the D\\* pools"):
    truth.answers(Inputs(jnp.zeros((len(reader), 0, 1), jnp.int32), reader))


def _pixel_tokens_of_reader(task, world):
  """The reader set's images, inked red (a pixel's token is the blank's plus its intensity, as
  in a red digit of D): images that are in neither D nor D*."""
  images = world.images[0]
  return np.where(images == 0, task.blank, task.blank + images).astype(np.int32)


def test_the_colour_prior_is_what_recovers_the_true_rule(monkeypatch):
  task, truth = _task()
  fit = lambda t: prior.fit(ScriptedOracle(t), mz.Table(t.spec), prior.blocks(t), steps=100,
                            learning_rate=0.3)[0]
  fitted = fit(task)
  assert Evaluator(task, truth).z_accuracy(fitted) == 1.0

  monkeypatch.setattr(colored_digits.ColoredDigits, "human_log_prior",
                      lambda self, lookup, keys: jnp.float32(0.0))
  task, truth = _task()  # a new task object: the fit's jit retraces
  follows_colour = fit(task)
  entries = np.asarray(follows_colour.entries).reshape(10, 2) - task.class0
  # without the prior every digit's class follows its ink colour, as colour predicts D's labels
  np.testing.assert_array_equal(entries, np.tile([[0, 1]], (10, 1)))
  assert Evaluator(task, truth).z_accuracy(follows_colour) == 0.5


def test_tiny_run_reports_the_rule_and_the_grayscale_baseline(finished_run):
  _, workdir, summary = finished_run(helpers.COLORED_DIGITS)  # the ltp arm's in tests/test_arms.py
  with open(workdir / "metrics.jsonl") as f:
    records = [json.loads(line) for line in f]
  assert [r["z_accuracy"] for r in records if r["phase"] == "prior"] == [1.0]
  baselines = {r["baseline"]: r for r in records if r["phase"] == "baseline"}
  assert set(baselines) == {"prosaic", "ceiling", "grayscale"}
  evals = [r for r in records if r["phase"] == "eval"]
  assert len(evals) == 1 and evals[0]["idk_fraction"] == 0.0
  assert summary["z_accuracy"] == 1.0
