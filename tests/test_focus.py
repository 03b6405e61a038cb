"""The focused draw (amplify.loop.phases.focus): each round's training rows, each difficulty's
share of them set by pi's disagreement with H^A there."""
import jax
import numpy as np
import pytest

from amplify.learn.distill import LabelledSet
from amplify.loop.phases import focus
from amplify.types import Inputs


def _rows(difficulty):
  """Row i: question (i, its difficulty), label 7 i, loss weight i."""
  n = len(difficulty)
  questions = np.stack([np.arange(n), difficulty], axis=1).astype(np.int32)
  return LabelledSet(Inputs(np.zeros((n, 1, 2), np.int32), questions),
                     7 * np.arange(n)[:, None], np.arange(n, dtype=np.float32))


def _focus(difficulty, agreement, seed=0):
  """focus() with pi agreeing on a share agreement[d] of difficulty d's rows."""
  difficulty = np.asarray(difficulty)
  agrees = np.zeros(len(difficulty), bool)
  for d, share in enumerate(agreement):
    here = np.flatnonzero(difficulty == d)
    agrees[here[:int(round(share * len(here)))]] = True
  return focus(_rows(difficulty), difficulty, lambda index: agrees[index],
               jax.random.key(seed), probe_rows=len(difficulty))


def test_steps_go_where_pi_disagrees_and_no_difficulty_is_starved():
  difficulty = np.repeat([0, 1, 2, 3], 2000)
  drawn, by_difficulty = _focus(difficulty, [1.0, 0.9, 0.4, 0.2])
  assert by_difficulty == pytest.approx({0: 1.0, 1: 0.9, 2: 0.4, 3: 0.2})
  index = drawn.inputs.questions[:, 0]
  assert abs(len(index) - len(difficulty)) <= 2 and np.all(np.diff(index) >= 0)  # in order
  # weights 1 - agreement, none under a quarter of the largest (0.8): 0.2, 0.2, 0.6, 0.8
  counts = np.bincount(difficulty[index], minlength=4)
  np.testing.assert_array_equal(counts, np.round(8000 * np.array([0.2, 0.2, 0.6, 0.8]) / 1.8))
  # more rows than a difficulty has: every one of them; fewer: a subset, none repeated
  for d in (2, 3):
    assert set(index[difficulty[index] == d]) == set(np.flatnonzero(difficulty == d))
  for d in (0, 1):
    assert len(set(index[difficulty[index] == d])) == counts[d]
  # each row keeps its own label and loss weight
  np.testing.assert_array_equal(drawn.labels[:, 0], 7 * index)
  np.testing.assert_array_equal(drawn.weights, index)


def test_where_every_difficulty_weighs_alike_the_rows_stay_as_they_were():
  for difficulty, agreement in ((np.zeros(1000, int), [0.7]), (np.repeat([0, 1], 500), [1, 1]),
                                (np.repeat([0, 1], 500), [0.5, 0.5])):
    rows = _rows(difficulty)
    drawn, _ = _focus(difficulty, agreement)
    np.testing.assert_array_equal(drawn.inputs.questions, rows.inputs.questions)


def test_the_subset_kept_is_drawn_from_the_key():
  difficulty = np.repeat([0, 1], 4000)
  first, _ = _focus(difficulty, [1.0, 0.5])
  again, _ = _focus(difficulty, [1.0, 0.5])
  other, _ = _focus(difficulty, [1.0, 0.5], seed=1)
  np.testing.assert_array_equal(first.inputs.questions, again.inputs.questions)
  assert not np.array_equal(first.inputs.questions, other.inputs.questions)
