"""The world from a secret only the referee holds (`amplify.truth.referee`): an oracle that reads
the run's config and calls the task's factory with the seed builds another world; the same secret
builds the same world again; the secret file is made once, private, and a bad one is one line."""
import json
import os
import stat
import subprocess
import sys

import jax
import numpy as np
import pytest

from amplify import configs as config_lib
from amplify import registry
from amplify.tasks import WORLD, make_task
from amplify.truth import referee as referee_lib
from amplify.truth.referee import Referee


@pytest.fixture(autouse=True)
def secret_file(tmp_path, monkeypatch):
  """A secret of this test's own (the referee process inherits the environment)."""
  path = tmp_path / "config" / "referee_secret"
  monkeypatch.setenv("AMPLIFY_SECRET_FILE", str(path))
  return path


def _d(task) -> np.ndarray:
  inputs, labels = task.observations()
  return np.concatenate([np.asarray(inputs.questions), np.asarray(labels)], 1)


def test_an_oracle_that_rebuilds_the_world_from_the_run_config_gets_another(tmp_path,
                                                                            monkeypatch):
  """The oracle reads config.json (and holds the run's config object, as the stack would give it)
  and calls the task plug-in's factory with the seed, as `make_task` did before: its truth
  disagrees with the referee's, and its D is not the run's."""
  config = config_lib.get_config("lexicon_tiny")
  read_secret = referee_lib.read_secret  # the run's process never reads it: only the referee's
  monkeypatch.setattr(referee_lib, "read_secret", lambda *a: pytest.fail("read in the run"))
  task, referee = Referee.start(config, 1)
  try:
    (tmp_path / "config.json").write_text(config_lib.to_json(config))
    read = json.loads((tmp_path / "config.json").read_text())
    plugin = registry.task_plugin(read["task"]["name"])
    settings = plugin.settings(**{k: v for k, v in read["task"].items() if k != "name"})
    world = jax.random.fold_in(jax.random.key(read["seed"]), WORLD)
    _, from_file = plugin.make(settings, world)
    _, from_stack = make_task(config)
    questions = task.evaluation_questions(jax.random.key(0), 256)
    for guess in (from_file, from_stack):
      assert referee.accuracy(questions, guess.answers(questions)) < 0.5
    assert not np.array_equal(_d(make_task(config)[0]), _d(task))
    # the evaluator's side (it may read the secret): the referee's world, answer for answer
    _, truth = make_task(config, secret=read_secret())
    assert referee.accuracy(questions, truth.answers(questions)) == 1.0
  finally:
    referee.close()


@pytest.mark.parametrize("name", ["lexicon_tiny", "colored_digits_tiny"])
def test_the_same_secret_builds_the_same_world_and_another_builds_another(name, tmp_path,
                                                                          monkeypatch):
  """The task crosses from the referee process pickled (colored_digits with its trained reader)."""
  config = config_lib.get_config(name)
  tasks = []
  for secret in ("a", "a", "b"):
    monkeypatch.setenv("AMPLIFY_SECRET_FILE", str(tmp_path / secret))
    task, referee = Referee.start(config, 1)
    referee.close()
    tasks.append(task)
  assert np.array_equal(_d(tasks[0]), _d(tasks[1]))
  assert not np.array_equal(_d(tasks[0]), _d(tasks[2]))
  same = make_task(config, secret=referee_lib.read_secret())[0]  # "b", built here
  assert np.array_equal(_d(same), _d(tasks[2]))


def test_the_secret_file_is_made_once_private_and_checked(secret_file):
  assert not secret_file.exists()
  secret = referee_lib.read_secret()
  assert len(secret) == 32 and secret_file.read_bytes() == secret
  assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
  assert referee_lib.read_secret() == secret  # made once
  assert os.listdir(secret_file.parent) == ["referee_secret"]  # no temporary file left
  secret_file.chmod(0o644)
  with pytest.raises(ValueError, match=r"is readable by others \(mode 644\): chmod 600"):
    referee_lib.read_secret()
  secret_file.chmod(0o600)
  secret_file.write_bytes(b"short")
  with pytest.raises(ValueError, match=r"holds 5 bytes, not 32: move it away"):
    referee_lib.read_secret()


def test_processes_that_make_the_secret_at_once_share_one(secret_file):
  code = "from amplify.truth import referee; print(referee.read_secret().hex())"
  runs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
          for _ in range(4)]
  assert {r.communicate(timeout=60)[0].strip() for r in runs} == {secret_file.read_bytes().hex()}


def test_a_secret_that_cannot_be_made_is_one_line(tmp_path, monkeypatch):
  (tmp_path / "file").write_text("")
  monkeypatch.setenv("AMPLIFY_SECRET_FILE", str(tmp_path / "file" / "secret"))
  with pytest.raises(ValueError, match=r"cannot create the referee's secret .*: set "
                                       r"\$AMPLIFY_SECRET_FILE to a path you can write"):
    Referee.start(config_lib.get_config("permutation_tiny"), 1)


class Leaky:
  """A task that keeps its truth (or only the true world): the pickle to the run's process would
  carry it."""

  def __init__(self, truth):
    self.truth = truth


def make_leaky(settings, key):
  task, truth = registry.task_plugin("lexicon").make(settings, key)
  return Leaky(truth), truth


def make_world_leaky(settings, key):
  task, truth = registry.task_plugin("lexicon").make(settings, key)
  return Leaky(truth.world), truth


def _lexicon_as(name: str):
  """lexicon_tiny's config, its task renamed (a plug-in with lexicon's settings)."""
  config = config_lib.get_config("lexicon_tiny")
  config.task.name = name
  return config


@pytest.mark.parametrize("name, make", [("leaky", make_leaky),
                                        ("world_leaky", make_world_leaky)])
def test_a_task_that_keeps_its_truth_or_the_true_world_is_refused(name, make):
  registry.register_task(name, make, registry.task_plugin("lexicon").settings)
  config = _lexicon_as(name)
  with pytest.raises(ValueError, match=rf"task '{name}': its ground truth is reachable from the "
                                       r"task, which the run's process receives"):
    Referee.start(config, 1)


def test_a_task_registered_here_with_a_lambda_factory_is_one_line():
  registry.register_task("unpicklable", lambda settings, key: make_leaky(settings, key),
                         registry.task_plugin("lexicon").settings)
  config = _lexicon_as("unpicklable")
  with pytest.raises(ValueError, match=r"task 'unpicklable' cannot reach the referee process: it "
                                       r"is registered in the run's process only"):
    Referee.start(config, 1)
