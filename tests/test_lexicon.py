"""Lexicon and learning the prior: the decomposition is exact, the human's likelihood ignores the
background, fitting recovers a planted world (sharded or not), and Mz refuses unknown keys."""
import os
import subprocess
import sys
import textwrap

import hypothesis
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import strategies as st

from amplify import configs as config_lib
from amplify.learn import prior
from amplify.truth.evaluator import Evaluator
from amplify.learn.mz import Table, TableMz
from amplify.oracles.make import make_oracle
from amplify.oracles.tools import BatchTools
from amplify.tasks import make_task
from amplify.tasks.base import random_counts
from amplify.types import IDK, Inputs


def _tiny(**overrides):
  return config_lib.get_config("lexicon_tiny", **overrides)


@hypothesis.settings(deadline=None, max_examples=10)
@hypothesis.given(seed=st.integers(0, 10**6), max_set_size=st.integers(1, 9))
def test_decomposition_is_exact_with_a_perfect_policy_and_a_perfect_mz(seed, max_set_size):
  task, truth = make_task(_tiny(seed=seed, max_set_size=max_set_size, num_entities=16))
  inputs = task.deployment_questions(jax.random.key(seed), 256)
  perfect_mz = TableMz(jnp.asarray(truth.world, jnp.int32), task.spec.z_values,
                       task.spec.z_first_token)
  policy = lambda q: truth.answers(Inputs(jnp.zeros((q.shape[0], 0, 1), jnp.int32), q))
  tools = BatchTools(policy, lambda keys: perfect_mz.lookup(keys, None), 256, max_asks=2,
                     max_lookups=2)
  answers = task.human_answer(inputs.questions, tools)
  np.testing.assert_array_equal(answers, truth.answers(inputs))
  size = np.asarray(task.difficulty(inputs.questions))
  asked = np.asarray(tools.transcript(inputs.questions, task.spec.answer_len).asked).sum(1)
  np.testing.assert_array_equal(asked, np.where(size > 2, 2, 0))  # halves go to pi, pairs to Mz


def test_a_subanswer_that_does_not_add_up_is_refused():
  task, truth = make_task(_tiny(max_set_size=4))
  inputs = task.deployment_questions(jax.random.key(0), 256)
  mz = TableMz(jnp.asarray(truth.world, jnp.int32), task.spec.z_values, task.spec.z_first_token)
  wrong = lambda q: jnp.full((q.shape[0], task.spec.answer_len), task.count0, jnp.int32)  # all 0
  tools = BatchTools(wrong, lambda keys: mz.lookup(keys, None), 256, max_asks=2, max_lookups=2)
  answers = task.human_answer(inputs.questions, tools)
  large = np.asarray(task.difficulty(inputs.questions)) > 2
  assert large.any()
  assert np.all(np.asarray(answers)[large] == IDK)


def test_random_counts_share_each_total_out_every_way_equally_often():
  """A noisy H's slip on lexicon: totals 1..3 over 3 classes, each of a total's C(t + 2, 2) ways
  to share it out drawn about equally often (6,667 each for t = 3 in 200,000 draws)."""
  counts = np.asarray(random_counts(jax.random.key(0), 200_000, 3, 3))
  assert counts.min() >= 0
  totals = counts.sum(axis=1)
  assert set(totals.tolist()) == {1, 2, 3}
  for total, ways in ((1, 3), (2, 6), (3, 10)):
    _, seen = np.unique(counts[totals == total], axis=0, return_counts=True)
    assert len(seen) == ways
    assert seen.min() > 0.9 * seen.mean() and seen.max() < 1.1 * seen.mean()


def test_valid_answers_are_the_counts_a_person_could_type():
  task, truth = make_task(_tiny(max_set_size=4))
  q = task.deployment_questions(jax.random.key(0), 64).questions
  right = truth.answers(Inputs(jnp.zeros((64, 0, 1), jnp.int32), q))
  one_more = right.at[:, 0].add(1)  # counts adding up to one more than the set's size
  assert np.all(task.valid_answers(q, right)) and np.all(task.valid_answers(q, right * 0 + IDK))
  assert not np.any(task.valid_answers(q, one_more))
  assert not np.any(task.valid_answers(q, right.at[:, 0].set(IDK)))  # part IDK, part counts
  for row in range(8):  # the same rule as a typed answer's
    np.testing.assert_array_equal(task.parse_answer(task.render_answer(right[row]), q[row]),
                                  right[row])
    text = task.render_answer(one_more[row])
    with pytest.raises(ValueError, match="add up to"):
      task.parse_answer(text, q[row])


def test_a_hand_written_question_decodes_and_counts_as_written():
  """A golden question, token by token, so that a bug shared by `decode`'s callers shows."""
  task, truth = make_task(_tiny(max_set_size=4, num_entities=32))
  e, b, c = task.entity0, task.background0, task.count0
  question = jnp.array([[c + 3, 0, e + 5, b + 1, e + 7, b + 0, e + 30, b + 3, 0, 0]], jnp.int32)
  size, entities, backgrounds, valid = task.decode(question)
  assert int(size[0]) == 3 and entities[0, :3].tolist() == [5, 7, 30]
  assert backgrounds[0, :3].tolist() == [1, 0, 3] and valid[0].tolist() == [1, 1, 1, 0]
  classes = np.asarray(truth.world) - task.class0
  expected = np.bincount(classes[[5, 7, 30]], minlength=task.num_classes)
  np.testing.assert_array_equal(truth.answers(Inputs(jnp.zeros((1, 0, 1), jnp.int32), question)),
                                c + expected[None])


def test_human_likelihood_ignores_the_background():
  task, _ = make_task(_tiny())
  oracle = make_oracle(_tiny(), task)
  inputs, labels = task.observations()
  questions = np.asarray(inputs.questions).copy()
  rng = np.random.default_rng(0)
  questions[:, 1] = task.background0 + rng.integers(0, task.num_classes, len(questions))
  moved = Inputs(inputs.context, jnp.asarray(questions))
  assert not np.array_equal(questions, inputs.questions)  # the backgrounds did change
  logits = jax.random.normal(jax.random.key(1), (task.num_entities, task.num_classes))
  lookup = lambda keys: jax.nn.softmax(logits[keys])
  np.testing.assert_array_equal(oracle.log_likelihood(inputs, labels, lookup),
                                oracle.log_likelihood(moved, labels, lookup))
  other_labels = jnp.roll(labels, 1, axis=0)  # the likelihood does read the labels
  assert not np.array_equal(oracle.log_likelihood(inputs, labels, lookup),
                            oracle.log_likelihood(inputs, other_labels, lookup))
  # and z* fitted to D with the backgrounds moved is the same
  fit = lambda x: prior.fit(oracle, Table(task.spec),
                            [prior.Block(0, task.num_entities, x, labels)], steps=50,
                            learning_rate=0.3)[0]
  np.testing.assert_array_equal(fit(inputs).entries, fit(moved).entries)


def _votes(task, inputs, labels) -> np.ndarray:
  """float[N, C]: how often each entity was observed with each class."""
  entity = np.asarray(inputs.questions[:, 0]) - task.entity0
  observed = np.asarray(labels[:, 0]) - task.class0
  votes = np.zeros((task.num_entities, task.num_classes))
  np.add.at(votes, (entity, observed), 1)
  return votes


def test_fitting_recovers_a_planted_world():
  config = _tiny(num_entities=64, observations=10)
  task, truth = make_task(config)
  inputs, labels = task.observations()
  mz, values, report = prior.fit(make_oracle(config, task), Table(task.spec), prior.blocks(task),
                                 steps=config.prior.steps, learning_rate=config.prior.learning_rate)
  # z* maximises the human's objective: under a uniform prior and symmetric noise below
  # (C-1)/C, that is each entity's most often observed class (any of them, where tied) ...
  votes = _votes(task, inputs, labels)
  chosen = votes[np.arange(task.num_entities), np.asarray(mz.entries) - task.class0]
  np.testing.assert_array_equal(chosen, votes.max(axis=1))
  # ... which, with 10 noisy observations per entity, is (nearly) the planted world
  assert Evaluator(task, truth).z_accuracy(mz) >= 0.95
  assert report["mz_parameters"] == 64 * task.num_classes
  assert np.all(np.asarray(mz.lookup(jnp.array([-1, 64, 10**6]), None)) == IDK)


def test_a_table_sharded_across_two_devices_fits_the_same_world(tmp_path):
  script = textwrap.dedent("""
      import jax, numpy as np
      from amplify import configs as config_lib
      from amplify.learn import prior
      from amplify.learn.mz import Table
      from amplify.oracles.make import make_oracle
      from amplify.tasks import make_task
      config = config_lib.get_config("lexicon_tiny", num_entities=33)  # 33: not a multiple of 2
      task, _ = make_task(config)
      table = Table(task.spec)
      params = table.init(task.num_entities)
      mz, _, _ = prior.fit(make_oracle(config, task), table, prior.blocks(task), steps=100,
                           learning_rate=0.3)
      print(len(jax.devices()), len(params.sharding.device_set), params.shape[0])
      print(" ".join(map(str, np.asarray(mz.entries))))
  """)
  def start(devices):
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
    return subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)

  def result(process):
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    return out.splitlines()[:2]
  started = start(2), start(1)  # two processes that share nothing: both at once
  (sharded, entries_2), (single, entries_1) = map(result, started)
  assert sharded == "2 2 34" and single == "1 1 33"  # rows padded to a multiple of the devices
  assert entries_2 == entries_1
