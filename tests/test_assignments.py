"""Sequential assignments: the truth runs the program, H's decomposition is exact given a perfect
policy, look-ups never reach pi, and the text a person reads and types round-trips."""
import jax
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from amplify.learn.mz import ExactIndex
from amplify.oracles.tools import BatchTools
from amplify.tasks.assignments import CONST, AssignmentsTruth, SequentialAssignments
from amplify.types import IDK, PAD, Inputs

TASK = SequentialAssignments(num_variables=12, num_values=5, prosaic_variables=4)
TRUTH = AssignmentsTruth(12, 5)
ROWS = 64  # every test draws this many rows: one compiled shape


def _reference(context, x):
  """Plain Python: follow the definitions down to the constants, f's entries from the facts."""
  facts = [tuple(int(t) for t in fact) for fact in context if fact[0] != PAD]
  program = {f[0]: f[1:] for f in facts if TASK.var0 <= f[0] < TASK.value0}
  table = {f[:2]: f[2] for f in facts if f[0] >= TASK.value0}

  def value(v):
    a, b = program[v]
    return b if a == CONST else table[(value(a), value(b))]
  return value(int(x))


def _tools(inputs, policy):
  asks, lookups = TASK.budget_needed
  return BatchTools(policy, lambda keys: ExactIndex().lookup(keys, inputs.context), ROWS,
                    max_asks=asks, max_lookups=lookups)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), size=st.integers(2, 12))
def test_truth_runs_the_program_and_h_with_a_perfect_policy_equals_it(seed, size):
  """Random programs of every curriculum size: the truth equals a plain-Python evaluation, and H
  with perfect subanswers equals the truth within its budget, asking pi only about variables
  before the question's."""
  inputs = TASK.deployment_questions(jax.random.key(seed), ROWS, size=size)
  truth = np.asarray(TRUTH.answers(inputs))
  context = np.asarray(inputs.context)
  assert np.all(context[:, :, 0][np.isin(context[:, :, 0], TASK.var0 + np.arange(12))]
                < TASK.var0 + size)  # only the first `size` variables exist
  for row in range(ROWS):
    assert truth[row, 0] == _reference(context[row], inputs.questions[row, 0])
  asked = []

  def perfect(q):
    asked.append(np.asarray(q))
    return TRUTH.answers(Inputs(inputs.context, q))

  tools = _tools(inputs, perfect)
  assert np.array_equal(TASK.human_answer(inputs.questions, tools), truth)
  t = tools.transcript(inputs.questions, 1)
  assert not np.any(np.asarray(t.overruns))
  subquestions, where = np.asarray(t.subquestions)[..., 0], np.asarray(t.asked)
  assert np.all(subquestions[where] < np.repeat(np.asarray(inputs.questions), 2, axis=1)[where])


def test_h_alone_answers_the_constants_and_a_look_up_never_reaches_pi():
  """With pi answering IDK, H answers exactly the constants (read from their facts); pi is asked
  only for variables (a value of f is looked up, never asked)."""
  inputs = TASK.deployment_questions(jax.random.key(1), ROWS)
  tools = _tools(inputs, lambda q: np.full((ROWS, 1), IDK, np.int32))
  answers = np.asarray(TASK.human_answer(inputs.questions, tools))
  constant = np.asarray(TASK.difficulty(inputs.questions)) < 3  # isqrt(12) constants
  assert np.all(answers[constant, 0] == np.asarray(TRUTH.answers(inputs))[constant, 0])
  assert np.all(answers[~constant, 0] == IDK)
  t = tools.transcript(inputs.questions, 1)
  asked = np.asarray(t.subquestions)[..., 0][np.asarray(t.asked)]
  assert len(asked) and np.all((asked >= TASK.var0) & (asked < TASK.value0))


def test_a_subanswer_that_is_no_value_gives_idk():
  inputs = TASK.deployment_questions(jax.random.key(2), ROWS)
  answers = np.asarray(TASK.human_answer(inputs.questions, _tools(
      inputs, lambda q: np.full((ROWS, 1), TASK.var0, np.int32))))  # a variable, not a value
  constant = np.asarray(TASK.difficulty(inputs.questions)) < 3
  assert np.all(answers[~constant, 0] == IDK) and np.all(answers[constant, 0] != IDK)
  assert np.all(TASK.valid_answers(inputs.questions, TRUTH.answers(inputs)))
  assert not np.any(TASK.valid_answers(inputs.questions, np.full((ROWS, 1), TASK.var0)))
  assert np.all(TASK.valid_answers(inputs.questions, np.full((ROWS, 1), IDK)))


def test_text_round_trips_and_bad_input_says_what_to_type():
  inputs = TASK.deployment_questions(jax.random.key(3), ROWS)
  truth = np.asarray(TRUTH.answers(inputs))
  for q, a in zip(np.asarray(inputs.questions)[:8], truth[:8]):
    assert np.array_equal(TASK.parse_question(TASK.render_question(q), q), q)
    assert np.array_equal(TASK.parse_answer(TASK.render_answer(a), q), a)
  assert TASK.render_question(np.asarray([TASK.var0 + 7])) == "x7 = ?"
  assert TASK.render_answer(np.asarray([IDK])) == "IDK"
  key = TASK.parse_key("x7 x3", None)
  assert TASK.render_lookup(key, TASK.var0 + 5) == "x7 := f(x3, x5)"
  assert TASK.render_lookup(TASK.parse_key("x7", None), CONST) == "x7: a constant"
  assert TASK.render_lookup(TASK.parse_key("x2 const", None), TASK.value0 + 3) == "x2 = 4"
  assert TASK.render_lookup(TASK.parse_key("f(3, 5)", None), IDK) == "f(3, 5) = not found"
  row = 0  # a look-up a person types reads what H's look-up reads
  x = int(inputs.questions[row, 0])
  name = TASK.render_question(np.asarray([x])).split()[0]
  read = ExactIndex().lookup(np.asarray([TASK.parse_key(name, None)]), inputs.context[:1])
  assert int(read[0]) != IDK
  for bad, says in [("x12", "the variables are x0 to x11"), ("7", "not a variable")]:
    with pytest.raises(ValueError, match=says):
      TASK.parse_question(bad, None)
  with pytest.raises(ValueError, match="the values are 1 to 5"):
    TASK.parse_answer("6", None)
  with pytest.raises(ValueError, match="look up a definition as x7"):
    TASK.parse_key("x1 x2 x3", None)


def test_bad_settings_and_sizes_are_refused():
  with pytest.raises(ValueError, match="--task.num_variables=1"):
    SequentialAssignments(num_variables=1)
  with pytest.raises(ValueError, match="--task.prosaic_variables=13"):
    SequentialAssignments(num_variables=12, prosaic_variables=13)
  with pytest.raises(ValueError, match="sizes lie in 2..12"):
    TASK.deployment_questions(jax.random.key(0), 4, size=13)
  difficulty = np.asarray(TASK.difficulty(TASK.evaluation_questions(jax.random.key(0), ROWS).questions))
  assert difficulty.min() >= 0 and difficulty.max() <= TASK.spec.max_difficulty


def test_augmentation_renames_values_consistently():
  inputs = TASK.deployment_questions(jax.random.key(4), ROWS)
  renamed, labels = TASK.augment(jax.random.key(5), inputs, TRUTH.answers(inputs))
  assert np.array_equal(TRUTH.answers(renamed), labels)
  assert not np.array_equal(labels, TRUTH.answers(inputs))


def test_learned_h_writes_a_look_up_as_the_fact_tokens_it_names():
  """H' (amplify.oracles.learned) predicts a look-up's key token by token: a key of two fact
  tokens is two payload tokens of the task's vocabulary, read back as the same key."""
  from amplify.learn.mz import fact_key  # pylint: disable=g-import-not-at-top
  from amplify.oracles.imitator import Transcripts  # pylint: disable=g-import-not-at-top
  layout = Transcripts.of(TASK)
  keys = np.asarray([TASK.var0 + 3, fact_key(TASK.var0 + 3, CONST),
                     fact_key(TASK.value0, TASK.value0 + 1)])
  payload = layout.key_payload(keys)
  assert payload.shape == (3, 2) and np.all(payload < TASK.spec.vocab_size)
  assert np.array_equal(layout.key(payload), keys)
