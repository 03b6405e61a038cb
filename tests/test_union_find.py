"""Union find: the truth searches the facts, and H's decomposition is exact given a perfect
policy."""
import collections
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from amplify.learn.mz import ExactIndex, fact_key
from amplify.learn.type2 import tree_answers
from amplify.oracles.tools import BatchTools
from amplify.tasks.union_find import (DEPTH, LABEL, PARENT, VALUE, VAR0, UnionFind,
                                      UnionFindSettings, UnionFindTruth)
from amplify.types import IDK, PAD, Inputs

ROWS = 64  # every test draws this many rows: a shape one of them compiled is not compiled again
SHAPES = [(6, 2, 2), (12, 4, 3)]  # (variables, labels, max depth): the tiny and default sizes


def _task(shape) -> UnionFind:
  return UnionFind(*shape)


def _truth(task: UnionFind) -> UnionFindTruth:
  return UnionFindTruth(task.num_variables, task.num_labels, task.max_depth)


def _search(context: np.ndarray) -> tuple[dict, dict, dict]:
  """Plain Python: a breadth-first search from the labelled roots through the facts' edges;
  every variable's depth, parent and label."""
  edges, labels = collections.defaultdict(set), {}
  for fact in context:
    if fact[0] == LABEL:
      labels[int(fact[1])] = int(fact[2])
    elif fact[0] != PAD:
      for y in fact[1:]:
        if y != PAD:
          edges[int(fact[0])].add(int(y))
          edges[int(y)].add(int(fact[0]))
  depth, parent, label = {}, {}, {}
  frontier = sorted(labels)
  for root in frontier:
    depth[root], parent[root], label[root] = 0, root, labels[root]
  while frontier:
    nxt = []
    for v in frontier:
      for y in sorted(edges[v]):
        if y not in depth:
          depth[y], parent[y], label[y] = depth[v] + 1, v, label[v]
          nxt.append(y)
    frontier = nxt
  return depth, parent, label


def _reference(task: UnionFind, context: np.ndarray, question: np.ndarray) -> int:
  depth, parent, label = _search(context)
  kind, x, k = int(question[0]), int(question[1]), int(question[2]) - task.depth0
  if depth[x] > k:
    return task.far
  return {VALUE: label[x], PARENT: parent[x], DEPTH: task.depth0 + depth[x]}[kind]


def _tools(task, inputs, policy, asks=None, lookups=None):
  budget = task.budget_needed
  return BatchTools(policy, lambda keys: ExactIndex().lookup(keys, inputs.context),
                    inputs.questions.shape[0], max_asks=asks or budget[0],
                    max_lookups=lookups or budget[1])


def _perfect(task, inputs):
  return lambda q: _truth(task).answers(Inputs(inputs.context, q))


def _idk(q):
  return jnp.full((q.shape[0], 1), IDK, jnp.int32)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), shape=st.sampled_from(SHAPES), data=st.data())
def test_truth_matches_a_breadth_first_search(seed, shape, data):
  """Random instances of several sizes: the truth equals a plain-Python search of the facts, and
  each instance is a forest of floor(sqrt(size)) trees of at most two children a node over the
  first `size` variables, each tree with one labelled root, the rest of the facts PAD."""
  task = _task(shape)
  size = data.draw(st.sampled_from([2, task.num_variables // 2 + 1, task.num_variables]))
  inputs = task.deployment_questions(jax.random.key(seed), ROWS, size=size)
  context, questions = np.asarray(inputs.context), np.asarray(inputs.questions)
  assert context.shape == (ROWS, task.spec.context_size, 4)  # the full size's shapes
  truth = np.asarray(_truth(task).answers(inputs))
  for row in range(ROWS):
    assert truth[row, 0] == _reference(task, context[row], questions[row])
    facts = context[row][context[row, :, 0] != PAD]
    variables = facts[facts[:, 0] != LABEL]
    assert np.array_equal(np.sort(variables[:, 0]), VAR0 + np.arange(size))
    assert int(np.sum(facts[:, 0] == LABEL)) == math.isqrt(size)
    degree = np.sum(variables[:, 1:] != PAD, axis=1)
    assert np.all(degree <= 3) and np.sum(degree) == 2 * (size - math.isqrt(size))
    listed = variables[:, 1:]
    assert all(list(n[n != PAD]) == sorted(n[n != PAD]) for n in listed)  # name order
  assert np.all((questions[:, 1] >= VAR0) & (questions[:, 1] < VAR0 + size))
  k = np.asarray(task.difficulty(inputs.questions))
  depth = np.asarray([_search(c)[0][x] for c, x in zip(context, questions[:, 1])])
  assert np.all(k <= depth) and k.max() <= task.max_depth  # a bound never exceeds the depth
  assert np.all(task.valid_answers(inputs.questions, truth))


def _exact_with_a_perfect_policy(task, inputs):
  """H's answers with a perfect pi equal the truth within the task's budget; returns the
  transcript and the subquestions of each ask slot."""
  asked = []
  perfect = _perfect(task, inputs)

  def policy(q):
    asked.append(np.asarray(q))
    return perfect(q)

  tools = _tools(task, inputs, policy)
  answers = task.human_answer(inputs.questions, tools)
  assert np.array_equal(answers, _truth(task).answers(inputs))
  t = tools.transcript(inputs.questions, 1)
  assert int(t.overruns.sum()) == 0
  return t, asked


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), shape=st.sampled_from(SHAPES), data=st.data())
def test_scripted_decomposition_is_exact_with_a_perfect_policy(seed, shape, data):
  """Instances of the full size and of smaller curriculum sizes."""
  task = _task(shape)
  size = data.draw(st.sampled_from([2, task.num_variables // 2, task.num_variables]))
  inputs = task.deployment_questions(jax.random.key(seed), ROWS, size=size)
  t, asked = _exact_with_a_perfect_policy(task, inputs)
  k = np.asarray(task.difficulty(inputs.questions))
  where = np.asarray(t.asked)
  for i, q in enumerate(asked):  # every ask lowers the bound by one
    assert np.all(q[where[:, i], 2] - task.depth0 == k[where[:, i]] - 1)


def test_look_ups_never_reach_the_policy_and_h_alone_answers_bounds_0_and_1():
  """What the facts settle is looked up: a root's answers, a variable next to a root (depth 1),
  any other at bound 0 or 1 (FAR); so H with an IDK policy answers exactly the questions of
  bound 0 and 1 (rightly), the rest IDK. Every ask is about a variable that is no root, at a
  bound of at least 1 and at most its depth: a question D* itself asks."""
  task = _task(SHAPES[1])
  inputs = task.deployment_questions(jax.random.key(0), 256)
  context = np.asarray(inputs.context)
  truth = np.asarray(_truth(task).answers(inputs))[:, 0]
  k = np.asarray(task.difficulty(inputs.questions))
  assert 0 < np.mean(k <= 1) < 1
  t, asked = _exact_with_a_perfect_policy(task, inputs)
  where = np.asarray(t.asked)
  assert not where[k <= 1].any() and where[k > 1].any(axis=1).all()
  for i, q in enumerate(asked):
    rows = np.flatnonzero(where[:, i])
    bound = q[rows, 2] - task.depth0
    depth = np.asarray([_search(context[r])[0][q[r, 1]] for r in rows])
    assert np.all((bound >= 1) & (bound <= depth))
  answers = np.asarray(task.human_answer(inputs.questions, _tools(task, inputs, _idk)))[:, 0]
  assert np.array_equal(answers != IDK, k <= 1)
  assert np.array_equal(answers[k <= 1], truth[k <= 1])


def test_ask_depth_is_the_longest_chain_of_asks():
  """H's whole tree (type 2), asks answered by H itself down to `ask_depth` levels, equals the
  truth; one level fewer leaves some questions IDK."""
  task = _task(SHAPES[0])
  inputs = task.deployment_questions(jax.random.key(9), ROWS)
  truth = np.asarray(_truth(task).answers(inputs))

  class H:
    def answer(self, questions, tools, key):
      return task.human_answer(questions, tools)

  tree = lambda depth: np.asarray(tree_answers(H(), depth, 1, ExactIndex(), inputs,
                                               jax.random.key(0))[0])
  assert np.array_equal(tree(task.ask_depth), truth)
  assert np.any(tree(task.ask_depth - 1) == IDK)


def test_a_subanswer_of_the_wrong_kind_gives_idk():
  """A depth within k - 1 (or FAR) where a depth is asked, a label (or FAR) where a value is,
  and values that agree: else IDK. A flaky policy (a variable for every odd variable's
  subquestion) lets H answer some questions, all rightly."""
  task = _task(SHAPES[1])
  inputs = task.deployment_questions(jax.random.key(1), 256)
  perfect, expected = _perfect(task, inputs), np.asarray(_truth(task).answers(inputs))
  kind, k = np.asarray(inputs.questions[:, 0]), np.asarray(task.difficulty(inputs.questions))
  value = lambda q: q[:, :1] == VALUE
  wrong = {  # a policy, and the questions whose every answer it turns into IDK
      "a variable": (lambda q: jnp.full((q.shape[0], 1), VAR0, jnp.int32), k > 1),
      "too deep": (lambda q: jnp.where(value(q), perfect(q), q[:, 2:] + 1), (k > 1) & (kind !=
                                                                                   VALUE)),
      "a depth for a value": (lambda q: jnp.where(value(q), task.depth0, perfect(q)),
                              (k > 1) & (kind == VALUE)),
  }
  for name, (policy, affected) in wrong.items():
    answers = np.asarray(task.human_answer(inputs.questions, _tools(task, inputs, policy)))
    assert np.all(task.valid_answers(inputs.questions, answers)), name
    assert affected.any() and np.all(answers[affected, 0] == IDK), name
    assert np.array_equal(answers[~affected], expected[~affected]), name
  by_parity = lambda q: task.label0 + q[:, 1:2] % 2  # neighbours of both parities disagree
  tools = _tools(task, inputs, by_parity)
  answers = np.asarray(task.human_answer(inputs.questions, tools))[:, 0]
  t = tools.transcript(inputs.questions, 1)
  given = np.where(np.asarray(t.asked), np.asarray(t.subanswers)[:, :, 0], -1)
  disagree = (given == task.label0).any(1) & (given == task.label0 + 1).any(1)
  assert disagree.any() and np.all(answers[disagree] == IDK)
  flaky = lambda q: jnp.where(q[:, 1:2] % 2 == 0, perfect(q), VAR0)
  answers = np.asarray(task.human_answer(inputs.questions, _tools(task, inputs, flaky)))
  assert np.all((answers == expected) | (answers == IDK))
  assert np.any((answers[:, 0] != IDK) & (k > 1))


def test_budget_turns_spent_rows_into_idk():
  """With one ask fewer than needed, every question that needs all three or four asks is IDK."""
  task = _task(SHAPES[1])
  inputs = task.deployment_questions(jax.random.key(2), 256)
  tools = _tools(task, inputs, _perfect(task, inputs), asks=1)
  answers = np.asarray(task.human_answer(inputs.questions, tools))[:, 0]
  t = tools.transcript(inputs.questions, 1)
  over = np.asarray(t.overruns) > 0
  assert over.any() and np.all(answers[over] == IDK)
  assert int(np.asarray(t.asked).sum(1).max()) == 1


def test_valid_answers_accept_the_truth_and_idk_and_refuse_other_kinds():
  task = _task(SHAPES[1])
  inputs = task.deployment_questions(jax.random.key(3), ROWS)
  q, truth = inputs.questions, _truth(task).answers(inputs)
  assert np.all(task.valid_answers(q, truth))
  assert np.all(task.valid_answers(q, jnp.full_like(truth, IDK)))
  assert np.all(task.valid_answers(q, jnp.full_like(truth, task.far)))
  kind, k = np.asarray(q[:, 0]), np.asarray(task.difficulty(q))
  for token, accepted in [(VAR0, kind == PARENT), (task.label0, kind == VALUE),
                          (task.depth0, kind == DEPTH), (PAD, kind < 0), (LABEL, kind < 0)]:
    assert np.array_equal(task.valid_answers(q, jnp.full_like(truth, token)), accepted)
  deeper = jnp.asarray(q[:, 2:] + 1)  # a depth past the bound (FAR past the last bound)
  assert not np.any(task.valid_answers(q, deeper)[(kind == DEPTH) & (k < task.max_depth)])
  randoms = np.asarray(task.random_answers(jax.random.key(4), 1000))
  lo, hi = task.spec.answer_range
  assert randoms.min() >= lo and randoms.max() < hi and len(np.unique(randoms)) == hi - lo
  d = np.asarray(task.difficulty(task.deployment_questions(jax.random.key(5), 4096).questions))
  assert d.min() == 0 and d.max() == task.spec.max_difficulty == task.max_depth
  d = np.asarray(task.difficulty(task.training_data(jax.random.key(6), ROWS)[0].questions))
  assert d.max() <= task.prosaic_max_depth


def test_training_data_is_labelled_by_the_truth():
  task = _task(SHAPES[1])
  inputs, labels = task.training_data(jax.random.key(7), ROWS)
  assert np.array_equal(labels, _truth(task).answers(inputs))


def test_rendering_round_trips_and_bad_input_is_refused():
  task = _task(SHAPES[1])
  inputs = task.deployment_questions(jax.random.key(8), ROWS)
  truth = np.asarray(_truth(task).answers(inputs))
  for question, answer in zip(np.asarray(inputs.questions), truth):
    text = task.render_question(question)
    assert np.array_equal(task.parse_question(text, question), question), text
    assert np.array_equal(task.parse_answer(task.render_answer(answer), question), answer)
  q = task.parse_question("value(c) within 3 = ?", None)
  assert task.render_question(q) == "value(c) within 3 = ?"
  assert np.array_equal(task.parse_question("depth c 2", q), [DEPTH, VAR0 + 2, task.depth0 + 2])
  assert task.render_answer(np.asarray([task.label0 + 2])) == "L2"
  assert task.render_answer(np.asarray([task.far])) == "far"
  assert task.render_answer(np.asarray([IDK])) == "IDK"
  assert task.parse_key("label c", q) == fact_key(LABEL, VAR0 + 2)
  assert task.parse_key("c a f", q) == fact_key(VAR0 + 2, VAR0, VAR0 + 5)
  assert task.render_lookup(fact_key(LABEL, VAR0 + 2), task.label0 + 2) == "label(c) = L2"
  assert task.render_lookup(fact_key(LABEL, VAR0 + 2), IDK) == "label(c) = not found"
  assert task.render_lookup(VAR0 + 2, VAR0) == "c -- a"
  assert task.render_lookup(fact_key(VAR0 + 2, VAR0), VAR0 + 5) == "c -- f (after a)"
  for text in ["label c", "c", "c a", "c a f"]:  # a key reads back as typed
    key = task.parse_key(text, q)
    assert task.render_lookup(key, VAR0).startswith(
        "label(c)" if text.startswith("label") else "c -- ")
  bad = [(task.parse_question, "value(q) within 3", "'q' is not a variable; the variables are a "
                                                   "to l"),
         (task.parse_question, "size(c) within 3", "not a question type"),
         (task.parse_question, "depth(c) within 9", r"must lie in 0..3"),
         (task.parse_question, "what is c", "TYPE\\(X\\) within K"),
         (task.parse_key, "c a f g", "type a key as"),
         (task.parse_key, "label z", "'z' is not a variable")]
  for parse, text, message in bad:
    with pytest.raises(ValueError, match=message):
      parse(text, q)
  value, depth, parent = (task.parse_question(f"{t}(c) within 2", q)
                          for t in ("value", "depth", "parent"))
  assert task.parse_answer("far", depth)[0] == task.far
  for question, text, message in [(value, "L9", "L0 to L3"), (value, "e", "not a label"),
                                  (depth, "3", "not a depth within 2"),
                                  (parent, "L1", "not a variable")]:
    with pytest.raises(ValueError, match=message):
      task.parse_answer(text, question)


def test_bad_settings_are_refused():
  for fields, flag in [({"num_variables": 1}, "--task.num_variables"),
                       ({"num_labels": 1}, "--task.num_labels"),
                       ({"max_depth": 0}, "--task.max_depth"),
                       ({"prosaic_max_depth": 5}, "--task.prosaic_max_depth"),
                       ({"num_variables": 1020}, "a fact key reads tokens below")]:
    with pytest.raises(ValueError, match=flag):
      UnionFindSettings(**fields)
  with pytest.raises(ValueError, match="sizes lie in 2..12"):
    _task(SHAPES[1]).deployment_questions(jax.random.key(0), 4, size=13)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), shape=st.sampled_from(SHAPES))
def test_augmentation_is_a_symmetry(seed, shape):
  """Renaming the variables and the labels keeps every label true and every fact's neighbours in
  name order, and does rename them (a small instance's variables take any of the N names)."""
  task = _task(shape)
  inputs = task.deployment_questions(jax.random.key(seed), ROWS, size=task.num_variables // 2 + 1)
  labels = _truth(task).answers(inputs)
  renamed, renamed_labels = task.augment(jax.random.key(seed + 1), inputs, labels)
  assert np.array_equal(_truth(task).answers(renamed), renamed_labels)
  assert np.array_equal(task.difficulty(renamed.questions), task.difficulty(inputs.questions))
  assert np.array_equal(renamed.questions[:, 0], inputs.questions[:, 0])
  context = np.asarray(renamed.context)
  for fact in context.reshape(-1, 4):
    if VAR0 <= fact[0] < task.label0:
      listed = fact[1:][fact[1:] != PAD]
      assert list(listed) == sorted(listed) and np.all(fact[1 + len(listed):] == PAD)
  assert not np.array_equal(context, inputs.context)
  assert int(context[:, :, 0].max()) >= VAR0 + task.num_variables // 2 + 1  # names past the size
