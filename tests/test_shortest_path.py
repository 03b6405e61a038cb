"""Shortest path: the truth, H's decomposition given a perfect policy, the text, and a tiny run."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from amplify.learn.mz import ExactIndex, fact_key
from amplify.oracles.tools import BatchTools
from amplify.tasks.shortest_path import (DIST, STEP, VERTEX0, ShortestPath, ShortestPathSettings,
                                         ShortestPathTruth)
from amplify.types import IDK, PAD, Inputs


# (vertices, max distance) of the instances drawn; 64 rows each: few shapes, few compilations
SHAPES = [(2, 1), (5, 3), (12, 6)]


def _reference(task, context, question):
  """D_k(a, b) or S_k(a, b) as a token, by breadth-first search in plain Python."""
  successors = {int(a): (int(v1), int(v2)) for a, v1, v2 in context if a != PAD}
  a, kind, b, k = (int(t) for t in question)
  k -= task.distance0 - 1

  def distance(x):  # the shortest path of at least one edge from x to b (None: none)
    frontier, seen = set(successors[x]), set()
    for length in range(1, len(successors) + 1):
      if b in frontier:
        return length
      seen |= frontier
      frontier = {y for v in frontier for y in successors[v]} - seen
    return None

  d = distance(a)
  if d is None or d > k:
    return task.far
  if kind == DIST:
    return task.distance0 + d - 1
  return next(c for c in sorted(successors[a]) if (0 if c == b else distance(c)) == d - 1)


def _truth(task, inputs):
  return np.asarray(ShortestPathTruth(task.max_distance).answers(inputs))


def _tools(task, inputs, ask_fn, asks=None, lookups=None):
  needed = task.budget_needed
  return BatchTools(ask_fn, lambda keys: ExactIndex().lookup(keys, inputs.context),
                    inputs.questions.shape[0], max_asks=needed[0] if asks is None else asks,
                    max_lookups=needed[1] if lookups is None else lookups)


def _out_neighbours(inputs):
  """(v1, v2) of each question's a, read from the facts in plain Python."""
  return [{int(row[0]): (int(row[1]), int(row[2])) for row in context}[int(q[0])]
          for context, q in zip(np.asarray(inputs.context), np.asarray(inputs.questions))]


def _asks_needed(task, inputs):
  """int[B]: 0 where k = 1, else the distinct out-neighbours of a that are not b."""
  return np.asarray([0 if q[3] == task.distance0 else len(set(out) - {int(q[2])})
                     for q, out in zip(np.asarray(inputs.questions), _out_neighbours(inputs))])


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), shape=st.sampled_from(SHAPES))
def test_truth_matches_a_breadth_first_search(seed, shape):
  n, k_max = shape
  task = ShortestPath(num_vertices=n, max_distance=k_max, prosaic_max_distance=1)
  inputs = task.deployment_questions(jax.random.key(seed), 64)
  truth = _truth(task, inputs)
  context, questions = np.asarray(inputs.context), np.asarray(inputs.questions)
  for row in range(64):
    assert truth[row, 0] == _reference(task, context[row], questions[row]), row
  assert np.all(task.valid_answers(inputs.questions, truth))
  k = np.asarray(task.difficulty(inputs.questions))
  assert k.min() >= 1 and k.max() <= k_max


def _exact_with_a_perfect_policy(task, inputs):
  """H's answers with a perfect pi equal the truth within the task's budget; returns the
  transcript."""
  perfect = lambda q: ShortestPathTruth(task.max_distance).answers(Inputs(inputs.context, q))
  tools = _tools(task, inputs, perfect)
  answers = np.asarray(task.human_answer(inputs.questions, tools))
  np.testing.assert_array_equal(answers, _truth(task, inputs))
  t = tools.transcript(inputs.questions, 1)
  assert int(t.overruns.sum()) == 0
  return t


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), size=st.sampled_from([2, 5, 8, 12]))
def test_decomposition_is_exact_with_a_perfect_policy_at_every_size(seed, size):
  """The curriculum's sizes (amplify.types.Sized): a graph on the first `size` of 12 vertices,
  two out-edges each inside it, the other facts PAD, the full shapes; H with a perfect pi
  equals the truth, which equals the breadth-first search."""
  task = ShortestPath(num_vertices=12, max_distance=6)
  assert task.full_size == 12
  inputs = task.deployment_questions(jax.random.key(seed), 64, size=size)
  context, questions = np.asarray(inputs.context), np.asarray(inputs.questions)
  assert context.shape == (64, 12, 3) and questions.shape == (64, 4)
  real = context[:, :, 0] != PAD
  assert np.all(real.sum(1) == size) and np.all(context[~real] == PAD)
  inside = lambda t: (t >= VERTEX0) & (t < VERTEX0 + size)
  for row in range(64):
    facts = context[row][real[row]]
    assert np.array_equal(np.sort(facts[:, 0]), VERTEX0 + np.arange(size))
    assert np.all(inside(facts[:, 1:])) and np.all(facts[:, 1] <= facts[:, 2])
  assert np.all(inside(questions[:, [0, 2]])) and set(questions[:, 1]) <= {DIST, STEP}
  truth = _truth(task, inputs)
  assert all(truth[row, 0] == _reference(task, context[row], questions[row]) for row in range(64))
  _exact_with_a_perfect_policy(task, inputs)
  with pytest.raises(ValueError, match="sizes lie in 2..12"):
    task.deployment_questions(jax.random.key(seed), 4, size=13)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), shape=st.sampled_from(SHAPES[1:]))
def test_look_ups_never_reach_pi(seed, shape):
  """a's out-neighbours are looked up, never asked (as the authors' edge checks); pi is asked
  only distances D_{k-1}(c, b), k >= 2, from each distinct out-neighbour c that is not b."""
  task = ShortestPath(num_vertices=shape[0], max_distance=shape[1])
  inputs = task.deployment_questions(jax.random.key(seed), 64)
  t = _exact_with_a_perfect_policy(task, inputs)
  asked, sub = np.asarray(t.asked), np.asarray(t.subquestions)
  questions = np.asarray(inputs.questions)
  np.testing.assert_array_equal(asked.sum(1), _asks_needed(task, inputs))
  for row, slot in zip(*np.nonzero(asked)):
    c, kind, b, k = sub[row, slot]
    assert kind == DIST and b == questions[row, 2] and c != b
    assert k == questions[row, 3] - 1 and k >= task.distance0
    looked = np.asarray(t.lookup_values)[row][np.asarray(t.looked_up)[row]]
    assert c in looked
  assert np.all(np.asarray(t.looked_up).sum(1) == 2)


def test_h_alone_answers_exactly_the_questions_that_need_no_ask():
  task = ShortestPath(num_vertices=12, max_distance=6)
  inputs = task.deployment_questions(jax.random.key(0), 64)
  idk = lambda q: jnp.full((q.shape[0], 1), IDK, jnp.int32)
  answers = np.asarray(task.human_answer(inputs.questions, _tools(task, inputs, idk)))[:, 0]
  easy = _asks_needed(task, inputs) == 0
  assert easy.any() and not easy.all()
  np.testing.assert_array_equal(answers != IDK, easy)
  np.testing.assert_array_equal(answers[easy], _truth(task, inputs)[easy, 0])


def test_a_subanswer_of_the_wrong_kind_gives_idk():
  """A subanswer that is neither FAR nor a distance within its bound (a vertex, or a distance
  above it) is never passed on: H answers IDK, or the truth where the subanswers were right."""
  task = ShortestPath(num_vertices=12, max_distance=6)
  inputs = task.deployment_questions(jax.random.key(1), 64)
  expected = _truth(task, inputs)
  truth = lambda q: ShortestPathTruth(task.max_distance).answers(Inputs(inputs.context, q))
  vertex = lambda q: q[:, :1]
  too_far = lambda q: q[:, 3:4] + 1  # the distance k for a question within k - 1
  flaky = lambda q: jnp.where(q[:, :1] % 2 == 0, truth(q), q[:, :1])
  easy = _asks_needed(task, inputs) == 0
  for policy in (vertex, too_far, flaky):
    answers = np.asarray(task.human_answer(inputs.questions, _tools(task, inputs, policy)))
    assert np.all(task.valid_answers(inputs.questions, answers))
    assert np.all((answers == expected) | (answers == IDK))
    assert (answers[~easy, 0] != IDK).any() == (policy is flaky)


def test_budget_turns_spent_rows_into_idk():
  task = ShortestPath(num_vertices=12, max_distance=6)
  inputs = task.deployment_questions(jax.random.key(2), 64)
  perfect = lambda q: ShortestPathTruth(task.max_distance).answers(Inputs(inputs.context, q))
  tools = _tools(task, inputs, perfect, asks=1)
  answers = np.asarray(task.human_answer(inputs.questions, tools))[:, 0]
  two = _asks_needed(task, inputs) == 2
  assert two.any()
  np.testing.assert_array_equal(answers == IDK, two)  # the second ask is over budget


def test_valid_answers_and_difficulty():
  task = ShortestPath(num_vertices=12, max_distance=6)
  inputs = task.deployment_questions(jax.random.key(3), 64)
  q, k = inputs.questions, np.asarray(task.difficulty(inputs.questions))
  assert task.spec.max_difficulty == 6 and k.min() >= 1 and k.max() <= 6
  assert np.all(task.valid_answers(q, _truth(task, inputs)))
  full = lambda token: jnp.full((64, 1), token, jnp.int32)
  assert np.all(task.valid_answers(q, full(IDK))) and np.all(task.valid_answers(q, full(task.far)))
  dist = np.asarray(q[:, 1]) == DIST
  np.testing.assert_array_equal(task.valid_answers(q, full(VERTEX0 + 3)), ~dist)
  np.testing.assert_array_equal(task.valid_answers(q, full(task.distance0)), dist)
  np.testing.assert_array_equal(task.valid_answers(q, full(task.distance0 + 2)), dist & (k >= 3))
  assert not np.any(task.valid_answers(q, full(DIST)))
  randoms = np.asarray(task.random_answers(jax.random.key(4), 512))
  assert randoms.min() >= VERTEX0 and randoms.max() == task.far
  assert task.spec.answer_range == (VERTEX0, task.far + 1)
  d_inputs, labels = task.training_data(jax.random.key(5), 64)
  assert int(task.difficulty(d_inputs.questions).max()) <= task.prosaic_max_distance
  np.testing.assert_array_equal(labels, _truth(task, d_inputs))
  np.testing.assert_array_equal(task.augment(jax.random.key(6), d_inputs, labels)[1], labels)


def test_bad_settings_are_refused():
  with pytest.raises(ValueError, match="--task.num_vertices=1"):
    ShortestPathSettings(num_vertices=1)
  with pytest.raises(ValueError, match="--task.max_distance=0"):
    ShortestPathSettings(max_distance=0)
  with pytest.raises(ValueError, match="--task.prosaic_max_distance=7: .* lie in \\[1, 6\\]"):
    ShortestPathSettings(prosaic_max_distance=7)
  with pytest.raises(ValueError, match="lower either"):
    ShortestPathSettings(num_vertices=1000, max_distance=30)


def test_text_round_trips_and_bad_input_is_refused():
  task = ShortestPath(num_vertices=12, max_distance=6)
  inputs = task.deployment_questions(jax.random.key(7), 64)
  truth = _truth(task, inputs)
  for question, answer in zip(np.asarray(inputs.questions), truth):
    text = task.render_question(question)
    assert text.endswith(" = ?") and text[0] in "DS"
    np.testing.assert_array_equal(task.parse_question(text, question), question)
    np.testing.assert_array_equal(task.parse_answer(task.render_answer(answer), question), answer)
  question = task.parse_question("D(c,f) within 4", None)
  np.testing.assert_array_equal(question, [VERTEX0 + 2, DIST, VERTEX0 + 5, task.distance0 + 3])
  assert task.render_question(question) == "D(c, f) within 4 = ?"
  step = task.parse_question(" S( c , f ) within 4 = ?", None)
  assert task.render_question(step) == "S(c, f) within 4 = ?"
  assert [task.render_answer(np.asarray([t])) for t in (task.distance0 + 2, task.far, VERTEX0 + 4,
                                                         IDK)] == ["3", "far", "e", "IDK"]
  assert task.parse_answer("far", question)[0] == task.far == task.parse_answer("FAR", step)[0]
  assert task.parse_key("c", question) == VERTEX0 + 2 == fact_key(VERTEX0 + 2)
  assert task.parse_key("c a", question) == fact_key(VERTEX0 + 2, VERTEX0)
  assert task.render_lookup(task.parse_key("c", question), VERTEX0) == "c -> a"
  assert task.render_lookup(task.parse_key("c a", question), VERTEX0 + 5) == "c -> a, f"
  assert task.render_lookup(VERTEX0 + 2, IDK) == "c -> not found"
  bad = [(lambda: task.parse_question("D(q, a) within 2", None),
          "'q' is not a vertex; the vertices are a to l."),
         (lambda: task.parse_question("D(c, a) within 7", None), "must lie in 1..6"),
         (lambda: task.parse_question("dist c a", None), "e.g. D\\(c, f\\) within 4"),
         (lambda: task.parse_answer("5", question), "distance 1 to 4, or far"),
         (lambda: task.parse_answer("e", question), "distance 1 to 4, or far"),
         (lambda: task.parse_answer("3", step), "'3' is not a vertex"),
         (lambda: task.parse_key("c a b", question), "type a look-up as a vertex"),
         (lambda: task.parse_key("z", question), "'z' is not a vertex")]
  for call, message in bad:
    with pytest.raises(ValueError, match=message):
      call()
  wide = ShortestPath(num_vertices=30, max_distance=6)
  question = wide.parse_question("S(x3, x29) within 2", None)
  assert wide.render_question(question) == "S(x3, x29) within 2 = ?"
  assert wide.render_answer(np.asarray([VERTEX0 + 17])) == "x17"
