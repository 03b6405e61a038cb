"""examples/digit_sum, a task written from docs/plugins.md alone: H with perfect subanswers equals
the truth, a bad subanswer gives IDK, and its preset sets only its size and budgets. (Its runs
are a study, experiments/results/digit_sum/: a run through its script is a minute of CPU.)"""
import pathlib
import sys

import jax
import numpy as np
from hypothesis import given, settings, strategies as st

import helpers
from amplify.learn.mz import ExactIndex
from amplify.oracles.tools import BatchTools
from amplify.types import IDK, PAD

EXAMPLE = pathlib.Path(__file__).parents[1] / "examples" / "digit_sum"
sys.path.append(str(EXAMPLE))
import amplify_digit_sum as example  # noqa: E402  pylint: disable=wrong-import-position

TASK, TRUTH = example.make_digit_sum(example.DigitSumSettings(length=11, digits=5), None)
ROWS = 64


def _tools(inputs, policy):
  asks, lookups = TASK.budget_needed
  return BatchTools(policy, lambda keys: ExactIndex().lookup(keys, inputs.context), ROWS,
                    max_asks=asks, max_lookups=lookups)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_h_with_a_perfect_policy_equals_the_truth_asking_only_shorter_lists(seed):
  inputs = TASK.deployment_questions(jax.random.key(seed), ROWS)
  questions = np.asarray(inputs.questions)
  truth = np.asarray(TRUTH.answers(inputs))
  assert np.array_equal(truth[:, 0] - 2, np.where(questions != PAD, questions - 2, 0).sum(1))
  tools = _tools(inputs, lambda q: TRUTH.answers(inputs._replace(questions=q)))
  assert np.array_equal(TASK.human_answer(inputs.questions, tools), truth)
  t = tools.transcript(inputs.questions, 1)
  asked = np.asarray(t.asked)
  sub_length = (np.asarray(t.subquestions) != PAD).sum(-1)
  length = np.repeat((questions != PAD).sum(1)[:, None], sub_length.shape[1], axis=1)
  assert asked.any() and np.all(sub_length[asked] < length[asked])
  assert not np.any(asked[length[:, 0] <= 2])  # one or two digits: H adds them itself


def test_a_subanswer_out_of_range_gives_idk():
  inputs = TASK.deployment_questions(jax.random.key(1), ROWS)
  too_big = np.full((ROWS, 1), 2 + TASK.max_sum, np.int32)  # more than any half can sum to
  answers = np.asarray(TASK.human_answer(inputs.questions, _tools(inputs, lambda q: too_big)))
  long = (np.asarray(inputs.questions) != PAD).sum(1) > 2
  assert long.any() and np.all(answers[long, 0] == IDK)
  assert np.all(answers[~long, 0] != IDK)


def test_its_depth_and_difficulty_follow_the_lengths():
  """Difficulty is length - 1; ask_depth is the halvings until two digits (8 -> 4 -> 2)."""
  assert [example.make_digit_sum(example.DigitSumSettings(length=n), None)[0].ask_depth
          for n in (2, 3, 4, 5, 8, 9, 11, 16)] == [0, 1, 1, 2, 2, 3, 3, 3]
  inputs = TASK.deployment_questions(jax.random.key(3), ROWS)
  length = (np.asarray(inputs.questions) != PAD).sum(1)
  assert np.array_equal(TASK.difficulty(inputs.questions), length - 1)
  assert set(length) == set(range(1, 12)) and TASK.spec.max_difficulty == 10
  assert TASK.spec.vocab_size == 2 + TASK.max_sum + 1  # every sum is a token


def test_its_preset_sets_only_its_size_and_budgets():
  budgets = {"rounds", "label.size", "label.max_asks", "label.max_lookups", "train.total_steps",
             "train.baseline_size"}
  differs = helpers.engine_fields_set(example.get_config())
  assert differs <= budgets, differs - budgets
