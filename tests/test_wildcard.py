"""Wildcard search: sampling, the truth, H's decomposition with a perfect policy, and the text."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from amplify.learn.mz import ExactIndex, fact_key
from amplify.oracles.tools import BatchTools
from amplify.tasks.wildcard import (LETTER_A, STRING0, WILDCARD, WildcardSearch,
                                    WildcardSettings, WildcardTruth)
from amplify.types import IDK, PAD, Inputs

# (length, strings present at full size): the few shapes the tests compile
SHAPES = [(2, 3), (3, 8), (4, 12)]


def _reference(context, pattern, length):
  """Plain Python: the sum of the values of the facts whose string the pattern matches, clipped
  to +-2**(length - 1)."""
  zero = STRING0 + 2**length + 2**(length - 1)
  total = 0
  for string, value in context:
    if string == PAD:
      continue
    letters = format(int(string) - STRING0, f"0{length}b").replace("0", "a").replace("1", "b")
    if all(p == WILDCARD or "ab"[p - LETTER_A] == c for p, c in zip(pattern, letters)):
      total += int(value) - zero
  return zero + max(-2**(length - 1), min(2**(length - 1), total))


def _tools(inputs, ask_fn, budget=None):
  asks, lookups = budget or WildcardSearch.budget_needed
  return BatchTools(ask_fn, lambda keys: ExactIndex().lookup(keys, inputs.context),
                    inputs.questions.shape[0], max_asks=asks, max_lookups=lookups)


def _perfect(inputs):
  return lambda q: WildcardTruth().answers(Inputs(inputs.context, q))


def _idk(q):
  return jnp.full((q.shape[0], 1), IDK, jnp.int32)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), shape=st.sampled_from(SHAPES), data=st.data())
def test_truth_matches_reference_and_instances_are_well_formed(seed, shape, data):
  """On random instances of several sizes (the curriculum's smaller ones too): s distinct
  strings with values +-1, the other facts PAD, patterns of 1..L wildcards; the truth is the
  plain-Python sum."""
  length, strings = shape
  size = data.draw(st.integers(1, strings))
  task = WildcardSearch(length, strings)
  inputs = task.deployment_questions(jax.random.key(seed), 64, size=size)
  context, questions = np.asarray(inputs.context), np.asarray(inputs.questions)
  assert context.shape == (64, strings, 2) and questions.shape == (64, length)
  real = context[:, :, 0] != PAD
  assert np.all(real.sum(1) == size) and np.all(context[~real] == PAD)
  assert np.all((context[real][:, 0] >= STRING0) & (context[real][:, 0] < STRING0 + 2**length))
  assert np.all(np.isin(context[real][:, 1] - task.zero, [-1, 1]))
  assert all(len(set(row[r, 0])) == size for row, r in zip(context, real))  # distinct strings
  wildcards = np.asarray(task.difficulty(inputs.questions))
  assert wildcards.min() >= 1 and wildcards.max() <= length
  truth = np.asarray(WildcardTruth().answers(inputs))
  for row in range(64):
    assert truth[row, 0] == _reference(context[row], questions[row], length)


def _exact_with_a_perfect_policy(task, inputs):
  """H with a perfect pi and the facts read exactly equals the truth within budget_needed;
  returns the transcript."""
  tools = _tools(inputs, _perfect(inputs))
  answers = task.human_answer(inputs.questions, tools)
  assert np.array_equal(answers, WildcardTruth().answers(inputs))
  t = tools.transcript(inputs.questions, 1)
  assert not np.any(t.overruns)
  return t


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), shape=st.sampled_from(SHAPES), data=st.data())
def test_decomposition_is_exact_with_a_perfect_policy(seed, shape, data):
  length, strings = shape
  size = data.draw(st.integers(1, strings))
  task = WildcardSearch(length, strings)
  assert task.full_size == strings
  _exact_with_a_perfect_policy(task, task.deployment_questions(jax.random.key(seed), 64,
                                                               size=size))


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), shape=st.sampled_from(SHAPES))
def test_strings_are_looked_up_never_asked(seed, shape):
  """Every ask carries a pattern with a wildcard (a string is looked up, as the authors answer
  it from the facts); one-wildcard patterns take two look-ups and no ask, the others two asks
  and no look-up; a question with no wildcard (a string) takes one look-up."""
  length, strings = shape
  task = WildcardSearch(length, strings)
  inputs = task.deployment_questions(jax.random.key(seed), 64)
  t = _exact_with_a_perfect_policy(task, inputs)
  asked, subquestions = np.asarray(t.asked), np.asarray(t.subquestions)
  assert np.all(np.any(subquestions == WILDCARD, axis=2)[asked])
  w = np.asarray(task.difficulty(inputs.questions))
  assert np.array_equal(asked.sum(1), np.where(w >= 2, 2, 0))
  assert np.array_equal(np.asarray(t.looked_up).sum(1), np.where(w == 1, 2, 0))
  strings_asked = Inputs(inputs.context, jnp.where(inputs.questions == WILDCARD, LETTER_A,
                                                   inputs.questions))
  t = _exact_with_a_perfect_policy(task, strings_asked)
  assert not np.any(t.asked) and np.all(np.asarray(t.looked_up).sum(1) == 1)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), shape=st.sampled_from(SHAPES), data=st.data())
def test_augmentation_is_a_symmetry(seed, shape, data):
  """Permuting positions, swapping letters and negating values keeps every label true (PAD
  facts stay PAD, the wildcards' count stays), and does change the rows."""
  length, strings = shape
  task = WildcardSearch(length, strings)
  inputs = task.deployment_questions(jax.random.key(seed), 64,
                                     size=data.draw(st.integers(1, strings)))
  labels = WildcardTruth().answers(inputs)
  moved, moved_labels = task.augment(jax.random.key(seed + 1), inputs, labels)
  assert np.array_equal(WildcardTruth().answers(moved), moved_labels)
  assert np.array_equal(moved.context == PAD, inputs.context == PAD)
  assert np.array_equal(task.difficulty(moved.questions), task.difficulty(inputs.questions))
  assert not np.array_equal(moved.context, inputs.context)
  idk = jnp.full_like(labels, IDK)
  assert np.array_equal(task.augment(jax.random.key(seed), inputs, idk)[1], idk)


def test_unaided_human_answers_exactly_the_questions_that_need_no_ask():
  task = WildcardSearch()
  inputs = task.deployment_questions(jax.random.key(0), 256)
  answers = np.asarray(task.human_answer(inputs.questions, _tools(inputs, _idk)))[:, 0]
  w = np.asarray(task.difficulty(inputs.questions))
  assert np.array_equal(answers != IDK, w == 1)
  truth = np.asarray(WildcardTruth().answers(inputs))[:, 0]
  assert np.array_equal(answers[w == 1], truth[w == 1])


def test_a_subanswer_that_is_no_value_gives_idk():
  """A subanswer that is no value token (here the wildcard's token) is never added: H answers
  IDK, or the truth where the subanswers it used were right; valid_answers accepts the truth's
  answers and IDK and refuses other tokens."""
  task = WildcardSearch()
  inputs = task.deployment_questions(jax.random.key(1), 256)
  perfect = _perfect(inputs)
  malformed = lambda q: jnp.full((q.shape[0], 1), WILDCARD, jnp.int32)
  flaky = lambda q: jnp.where(q[:, -1:] == LETTER_A, perfect(q), STRING0)  # right on ...a
  expected = np.asarray(WildcardTruth().answers(inputs))
  w = np.asarray(task.difficulty(inputs.questions))
  for policy in (malformed, flaky):
    answers = np.asarray(task.human_answer(inputs.questions, _tools(inputs, policy)))
    assert np.all(task.valid_answers(inputs.questions, answers))
    assert np.all((answers == expected) | (answers == IDK))
    assert np.all(answers[w == 1] == expected[w == 1])
    assert ((answers[:, 0] != IDK) & (w > 1)).any() == (policy is flaky)
  assert np.all(task.valid_answers(inputs.questions, expected))
  wrong = jnp.asarray([[IDK], [task.value0 - 1], [STRING0], [task.spec.vocab_size], [PAD]])
  assert np.array_equal(task.valid_answers(inputs.questions[:5], wrong), [1, 0, 0, 0, 0])
  randoms = task.random_answers(jax.random.key(2), 512)
  assert np.all(task.valid_answers(inputs.questions[:1].repeat(512, 0), randoms))


def test_budget_turns_spent_rows_into_idk():
  task = WildcardSearch()
  inputs = task.deployment_questions(jax.random.key(3), 256)
  tools = _tools(inputs, _perfect(inputs), budget=(1, 2))
  answers = np.asarray(task.human_answer(inputs.questions, tools))[:, 0]
  w = np.asarray(task.difficulty(inputs.questions))
  assert np.array_equal(answers == IDK, w >= 2)  # the second ask is over budget


def test_d_has_only_easy_questions_and_exact_labels():
  task = WildcardSearch(4, 12, prosaic_max_wildcards=2)
  inputs, labels = task.training_data(jax.random.key(4), 512)
  w = np.asarray(task.difficulty(inputs.questions))
  assert set(np.unique(w)) == {1, 2}
  assert np.array_equal(labels, WildcardTruth().answers(inputs))
  d_star = np.asarray(task.difficulty(task.evaluation_questions(jax.random.key(5),
                                                                4000).questions))
  assert np.all(np.abs(np.bincount(d_star, minlength=5)[1:] / 4000 - 1 / 4) < 0.03)
  assert task.spec.max_difficulty == 4 and task.ask_depth == 3


def test_text_round_trips():
  task = WildcardSearch()
  inputs = task.deployment_questions(jax.random.key(6), 32)
  truth = np.asarray(WildcardTruth().answers(inputs))
  for q, a in zip(np.asarray(inputs.questions), truth):
    text = task.render_question(q)
    assert text.startswith("sum over ") and text.endswith(" = ?")
    assert np.array_equal(task.parse_question(text, q), q)
    assert np.array_equal(task.parse_question(text[len("sum over "):-4], q), q)
    assert np.array_equal(task.parse_answer(task.render_answer(a), q), a)
  q = np.asarray(inputs.questions[0])
  assert task.render_answer(np.asarray([task.zero + 3])) == "+3"
  assert task.render_answer(np.asarray([task.zero - 2])) == "-2"
  assert task.render_answer(np.asarray([task.zero])) == "0"
  assert task.render_answer(np.asarray([IDK])) == "IDK"
  assert task.parse_answer("3", q)[0] == task.parse_answer("+3", q)[0] == task.zero + 3
  assert task.parse_answer(" -8 ", q)[0] == task.value0
  for string in ("aaaa", "abab", "bbbb", "baab"):
    key = task.parse_key(string, q)
    assert key == task.parse_key(f"f({string})", q)
    assert task.render_lookup(key, task.zero + 1) == f"f({string}) = +1"
    assert task.render_lookup(key, task.zero - 1) == f"f({string}) = -1"
    assert task.render_lookup(key, IDK) == f"f({string}) = 0 (absent)"
  context = jnp.asarray([[[task.parse_key("abab", q), task.zero - 1]]], jnp.int32)
  key = jnp.asarray([fact_key(task.parse_key("abab", q))])
  assert int(ExactIndex().lookup(key, context)[0]) == task.zero - 1


@pytest.mark.parametrize("method,text,message", [
    ("parse_question", "a*b", r"a pattern is 4 characters, each a or b or \*"),
    ("parse_question", "a*c*", r"'c' in 'a\*c\*' is not a or b or \*"),
    ("parse_question", "abab", r"no wildcard: it is a string, so look it up \(f\(abab\)\)"),
    ("parse_answer", "9", "type a whole number from -8 to \\+8"),
    ("parse_answer", "three", "is not a sum"),
    ("parse_key", "ab*b", r"'\*' in 'ab\*b' is not a or b"),
    ("parse_key", "abbab", "a look-up's string is 4 characters"),
])
def test_bad_text_is_refused_with_a_useful_message(method, text, message):
  task = WildcardSearch()
  parent = np.asarray([WILDCARD] * 4, np.int32)
  with pytest.raises(ValueError, match=message):
    getattr(task, method)(text, parent)


def test_bad_settings_and_sizes_are_refused():
  with pytest.raises(ValueError, match="--task.length=0"):
    WildcardSettings(length=0)
  with pytest.raises(ValueError, match="--task.num_strings=17: between 1 and the 16 strings"):
    WildcardSettings(length=4, num_strings=17)
  with pytest.raises(ValueError, match="--task.prosaic_max_wildcards=5"):
    WildcardSettings(length=4, prosaic_max_wildcards=5)
  with pytest.raises(ValueError, match="sizes lie in 1..12"):
    WildcardSearch().deployment_questions(jax.random.key(0), 4, size=13)
