"""Union find, the 2018 authors' "equalities" (Christiano, Shlegeris and Amodei 2018), an episodic
task.

Each example carries its own instance: N variables split into classes, each class a random
spanning tree whose first node (its root) is the one member whose label is given. Facts list each
variable's tree neighbours and each root's label, in a random order. A question asks a variable's
label (VALUE), its parent toward the root (PARENT) or its depth (DEPTH), each within a bound k on
the depth: the answer is FAR where the variable lies deeper than k.

Tokens: PAD, IDK, the types VALUE, PARENT, DEPTH and the fact tag LABEL, then the N variables, the
labels, the depths 0..K, and FAR (every answer lies in the variables..FAR range).
Question: [type, x, depth token k]. Answer: [a variable, a label, a depth or FAR].
Facts (4 tokens): [x, n1, n2, n3], x's tree neighbours in name order, PAD-padded; and
[LABEL, root, label, PAD] for each class.

Where it departs from the authors' (../shared/REFERENCES.md), so that H's decomposition is exact,
its budget fixed and a question's difficulty readable from the question: every node of a tree has
at most two children (so at most three neighbours), a fact lists all of a variable's neighbours
rather than one edge, and every question carries the bound k, its difficulty. H reads what the
facts settle (a root's answers; a variable next to a root is at depth 1), asks pi only about
variables that are not roots, at bounds k - 1 >= 1, and finds a value as its neighbours' values
within k - 1 (any that is not FAR), so three asks do for every type.

D* draws the bound k uniformly in 0..K (lowered to the instance's greatest depth where no variable
is so deep), then x uniformly among the variables at depth k or deeper: k never exceeds x's depth.
The IID check judges pi at a difficulty by the rows H^A answered there, so those rows must be
answerable in the same round: with k above the depth, round 0 would answer roots and variables
next to them (looked up) at every bound, pi would pass the check at every bound on those rows
alone, and H would pass pi's guesses about deeper variables on as labels. With k <= depth(x),
bounds 0 and 1 are settled by look-ups and a bound k >= 2 always asks about bound k - 1, whose
questions are again in D* (a neighbour's depth is at least depth(x) - 1).
"""
from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp

from amplify import registry
from amplify.learn.mz import KEY_RADIX, fact_key
from amplify.types import EPISODIC, IDK, PAD, Inputs, Spec, Tools
from amplify.tasks.union_find_text import DEPTH, LABEL, PARENT, VALUE, VAR0, UnionFindText

MAX_CHILDREN = 2


@dataclasses.dataclass(frozen=True)
class UnionFindSettings:
  """`--task.FIELD`: N variables, the labels a class may have, bounds k <= max_depth, and D's
  bounds k <= prosaic_max_depth."""
  num_variables: int = 12
  num_labels: int = 4
  max_depth: int = 3  # 12 variables make classes of 4, none deeper than 3
  prosaic_max_depth: int = 1

  def __post_init__(self):  # the task checks the same, naming its own fields
    UnionFind(self.num_variables, self.num_labels, self.max_depth, self.prosaic_max_depth)


@dataclasses.dataclass(frozen=True)
class UnionFind(UnionFindText):
  """Questions VALUE_k(x), PARENT_k(x), DEPTH_k(x) with k <= min(depth(x), max_depth); D (for
  prosaic ML) has k <= prosaic_max_depth."""
  num_variables: int = 12
  num_labels: int = 4
  max_depth: int = 3
  prosaic_max_depth: int = 1
  name: str = "union_find"
  extra_baselines = ()

  @property
  def budget_needed(self) -> tuple[int, int]:
    """(asks, look-ups): x's label, its three neighbours and theirs looked up; DEPTH_{k-1} (or
    VALUE_{k-1}) asked of each neighbour."""
    return (MAX_CHILDREN + 1, 2 * MAX_CHILDREN + 3)

  @property
  def ask_depth(self) -> int:
    """Each ask lowers the bound by one, and a bound-1 question asks nothing."""
    return self.max_depth - 1

  def __post_init__(self):
    if self.num_variables < 2:
      raise ValueError(f"--task.num_variables={self.num_variables}: an instance needs at least 2 "
                       "variables.")
    if self.num_labels < 2:
      raise ValueError(f"--task.num_labels={self.num_labels}: with fewer than 2 labels every "
                       "value is known; use at least 2.")
    if self.max_depth < 1:
      raise ValueError(f"--task.max_depth={self.max_depth}: the depth bound needs at least 1.")
    if not 0 <= self.prosaic_max_depth <= self.max_depth:
      raise ValueError(f"--task.prosaic_max_depth={self.prosaic_max_depth}: D's bounds lie in "
                       f"0..prosaic_max_depth, so it must lie in [0, {self.max_depth}] for "
                       f"max_depth={self.max_depth}.")
    if self.far >= KEY_RADIX:
      raise ValueError(f"--task.num_variables={self.num_variables}, --task.num_labels="
                       f"{self.num_labels}, --task.max_depth={self.max_depth}: {self.far + 1} "
                       f"tokens, but a fact key reads tokens below {KEY_RADIX}; use fewer.")

  # -- vocabulary ----------------------------------------------------------------------------
  @property
  def label0(self) -> int:
    return VAR0 + self.num_variables

  @property
  def depth0(self) -> int:
    return self.label0 + self.num_labels

  @property
  def far(self) -> int:
    return self.depth0 + self.max_depth + 1

  @property
  def num_classes(self) -> int:
    """Classes of the full size: floor(sqrt(N)), one label fact each."""
    return math.isqrt(self.num_variables)

  @property
  def full_size(self) -> int:
    """The instance size the curriculum grows (amplify.types.Sized): the variables."""
    return self.num_variables

  @property
  def spec(self) -> Spec:
    return Spec(vocab_size=self.far + 1, question_len=3, answer_len=1, fact_len=2 + MAX_CHILDREN,
                context_size=self.num_variables + self.num_classes, regime=EPISODIC,
                max_difficulty=self.max_depth, packed_question=True,
                answer_tokens=(VAR0, self.far + 1))

  # -- encoding ------------------------------------------------------------------------------
  def encode(self, kind: jax.Array, x: jax.Array, k: jax.Array) -> jax.Array:
    """kind: int32[B] type tokens, x: int32[B] variable tokens, k: int32[B] bounds ->
    questions int32[B, 3]."""
    kind, x, k = (jnp.broadcast_to(a, jnp.shape(x)) for a in (kind, x, k))
    return jnp.stack([kind, x, self.depth0 + k], axis=1).astype(jnp.int32)

  # -- sampling ------------------------------------------------------------------------------
  @functools.partial(jax.jit, static_argnums=(0, 2, 3, 4))
  def _sample(self, key: jax.Array, n: int, max_k: int | None = None,
              size: int | None = None) -> Inputs:
    """n questions, one per instance: a bound k uniform in 0..max_k (None: max_depth), lowered to
    the instance's greatest depth where no variable is so deep, then x uniform among the
    variables at depth k or deeper. `size` < N: an instance of the first `size` variables, the
    other facts PAD."""
    size = self.num_variables if size is None else size
    if not 2 <= size <= self.num_variables:
      raise ValueError(f"a union-find instance of {size} variables: sizes lie in 2.."
                       f"{self.num_variables} (--task.num_variables).")
    max_k = self.max_depth if max_k is None else max_k
    n_vars, classes = self.num_variables, math.isqrt(size)
    k_perm, k_tree, k_label, k_order, k_type, k_x, k_k = jax.random.split(key, 7)
    # position p holds variable perm[p]: the first `size` positions a random order of the first
    # `size` variables; position p is in class p % classes, and the first of a class is its root
    inside = jnp.arange(n_vars) < size
    draw = jnp.where(inside, jax.random.uniform(k_perm, (n, n_vars)), 2.)
    perm = jnp.argsort(draw, axis=1).astype(jnp.int32)
    positions = jnp.arange(n_vars)
    rows = jnp.arange(n)

    def attach(p, carry):  # position p joins a random earlier node of its class with room
      parent, children, count, depth = carry
      room = (positions < p) & (positions % classes == p % classes) & (count < MAX_CHILDREN)
      score = jnp.where(room, jax.random.uniform(jax.random.fold_in(k_tree, p), (n, n_vars)), -1.)
      chosen = jnp.argmax(score, axis=1)
      parent = parent.at[:, p].set(chosen)
      children = children.at[rows, chosen, count[rows, chosen]].set(p)
      depth = depth.at[:, p].set(depth[rows, chosen] + 1)
      return parent, children, count.at[rows, chosen].add(1), depth

    zeros = jnp.zeros((n, n_vars), jnp.int32)
    parent, children, _, depth = jax.lax.fori_loop(
        classes, size, attach,
        (zeros - 1, jnp.full((n, n_vars, MAX_CHILDREN), -1, jnp.int32), zeros, zeros))
    near = jnp.concatenate([parent[:, :, None], children], axis=2)  # [n, N, 3] positions or -1
    names = jnp.take_along_axis(perm, jnp.maximum(near, 0).reshape(n, -1), axis=1).reshape(
        near.shape)
    names = jnp.sort(jnp.where(near >= 0, names, n_vars), axis=2)  # name order, none last
    neighbours = jnp.where(names < n_vars, VAR0 + names, PAD)
    variable_facts = jnp.where(inside[None, :, None],
                               jnp.concatenate([(VAR0 + perm)[:, :, None], neighbours], axis=2),
                               PAD)
    labels = jax.random.randint(k_label, (n, self.num_classes), 0, self.num_labels, jnp.int32)
    roots = jnp.arange(self.num_classes) < classes
    class_facts = jnp.stack([jnp.full((n, self.num_classes), LABEL, jnp.int32),
                             VAR0 + perm[:, :self.num_classes], self.label0 + labels,
                             jnp.full((n, self.num_classes), PAD, jnp.int32)], axis=2)
    class_facts = jnp.where(roots[None, :, None], class_facts, PAD)
    facts = jnp.concatenate([variable_facts, class_facts], axis=1).astype(jnp.int32)
    order = jnp.argsort(jax.random.uniform(k_order, facts.shape[:2]), axis=1)
    context = jnp.take_along_axis(facts, order[:, :, None], axis=1)
    kind = jax.random.randint(k_type, (n,), VALUE, DEPTH + 1, jnp.int32)
    deepest = jnp.max(jnp.where(inside, depth, 0), axis=1)
    k = jnp.minimum(jax.random.randint(k_k, (n,), 0, max_k + 1, jnp.int32), deepest)
    eligible = inside & (depth >= k[:, None])
    position = jnp.argmax(jnp.where(eligible, jax.random.uniform(k_x, (n, n_vars)), -1.), axis=1)
    x = VAR0 + jnp.take_along_axis(perm, position[:, None], axis=1)[:, 0]
    return Inputs(context=context, questions=self.encode(kind, x, k))

  def training_data(self, key: jax.Array, n: int) -> tuple[Inputs, jax.Array]:
    """D: bounds k <= prosaic_max_depth, labelled by searching the example's facts (in an
    episodic task the facts are the data, so D's labels are exact)."""
    inputs = self._sample(key, n, self.prosaic_max_depth)
    return inputs, _resolve(inputs, self.num_variables, self.num_labels, self.max_depth)

  def deployment_questions(self, key: jax.Array, n: int, size: int | None = None) -> Inputs:
    """D*: bounds k uniform in 0..max_depth (at most the instance's greatest depth), x uniform
    among the variables at least that deep, about instances of `size` variables (None: N)."""
    return self._sample(key, n, size=size)

  def evaluation_questions(self, key: jax.Array, n: int) -> Inputs:
    return self._sample(key, n)

  def difficulty(self, questions: jax.Array) -> jax.Array:
    """The bound k: H's tree is at most k - 1 asks deep."""
    return (questions[:, 2] - self.depth0).astype(jnp.int32)

  def augment(self, key: jax.Array, inputs: Inputs, labels: jax.Array) -> tuple[Inputs, jax.Array]:
    """The task's symmetries: rename the variables of each row by a random bijection of all N
    names (so a curriculum's small instances train every name) and the labels by another, then
    list each variable's neighbours in name order again. The same forest, relabelled."""
    n = labels.shape[0]
    k_names, k_labels = jax.random.split(key)
    shuffled = lambda k, m: jnp.argsort(jax.random.uniform(k, (n, m)), axis=1).astype(jnp.int32)
    table = jnp.concatenate([jnp.broadcast_to(jnp.arange(VAR0), (n, VAR0)),
                             VAR0 + shuffled(k_names, self.num_variables),
                             self.label0 + shuffled(k_labels, self.num_labels),
                             jnp.broadcast_to(jnp.arange(self.depth0, self.far + 1),
                                              (n, self.far + 1 - self.depth0))], axis=1)
    rename = lambda t: jnp.take_along_axis(table, t.reshape(n, -1), axis=1).reshape(t.shape)
    context = rename(inputs.context)
    variable = (context[:, :, :1] >= VAR0) & (context[:, :, :1] < self.label0)
    listed = jnp.sort(jnp.where(context[:, :, 1:] == PAD, self.far + 1, context[:, :, 1:]), axis=2)
    listed = jnp.where(listed == self.far + 1, PAD, listed)
    context = jnp.where(variable, jnp.concatenate([context[:, :, :1], listed], axis=2), context)
    return Inputs(context, rename(inputs.questions)), rename(labels)

  def random_answers(self, key: jax.Array, n: int) -> jax.Array:
    """Any answer token (a variable, a label, a depth or FAR), whatever the question."""
    return jax.random.randint(key, (n, 1), VAR0, self.far + 1, jnp.int32)

  def valid_answers(self, questions: jax.Array, answers: jax.Array) -> jax.Array:
    """IDK, FAR, or an answer of the question's kind: a label to VALUE, a variable to PARENT, a
    depth no more than the bound to DEPTH."""
    a, kind = answers[:, 0], questions[:, 0]
    right = jnp.select(
        [kind == VALUE, kind == PARENT, kind == DEPTH],
        [(a >= self.label0) & (a < self.depth0), (a >= VAR0) & (a < self.label0),
         (a >= self.depth0) & (a <= questions[:, 2])], False)
    return (a == IDK) | (a == self.far) | right

  # -- H's decomposition ---------------------------------------------------------------------
  def human_answer(self, questions: jax.Array, tools: Tools) -> jax.Array:
    """x's label looked up: a root answers at once (its label, depth 0, itself). Else FAR for
    k = 0; else x's neighbours looked up, and their labels: a root among them is x's parent (depth
    1, its label). Else FAR for k = 1; else each neighbour's DEPTH_{k-1} asked of pi (VALUE_{k-1}
    for a value). Depth: m + 1 for m their least, FAR if every one is FAR; parent: the first
    neighbour at m; value: the one label they give, FAR if every one is FAR. At most 3 asks and
    7 look-ups, and pi is asked only about variables that are not roots. Any IDK along the way
    gives IDK, and so does a subanswer of the wrong kind (no depth within k - 1, no label) or
    values that disagree."""
    kind, x, k = questions[:, 0], questions[:, 1], questions[:, 2] - self.depth0
    label = tools.lookup(fact_key(LABEL, x), where=jnp.ones(x.shape, bool))
    root = label != IDK
    go = ~root & (k > 0)
    neighbours, present = [], go
    for _ in range(MAX_CHILDREN + 1):
      present = present & (neighbours[-1] != IDK) if neighbours else present
      neighbours.append(tools.lookup(fact_key(x, *neighbours), where=present))
    has = [n != IDK for n in neighbours]
    given = [tools.lookup(fact_key(LABEL, n), where=go & h) for n, h in zip(neighbours, has)]
    top, top_label = IDK, IDK  # the first neighbour that is a root, and its label
    for n, g in reversed(list(zip(neighbours, given))):
      top, top_label = jnp.where(g != IDK, n, top), jnp.where(g != IDK, g, top_label)
    next_to_root = go & (top != IDK)
    deeper = go & has[0] & (top == IDK)
    asking = deeper & (k > 1)
    value = kind == VALUE
    subanswers = [tools.ask(self.encode(jnp.where(value, VALUE, DEPTH), n, k - 1),
                            where=asking & h)[:, 0] for n, h in zip(neighbours, has)]
    is_label = lambda a: (a >= self.label0) & (a < self.depth0)
    is_depth = lambda a: (a >= self.depth0) & (a < self.depth0 + k)
    ok = asking
    for a, h in zip(subanswers, has):
      ok = ok & (~h | (a == self.far) | jnp.where(value, is_label(a), is_depth(a)))
    least = jnp.full(x.shape, self.far + 1, jnp.int32)  # FAR sorts above every depth and label
    for a, h in zip(subanswers, has):
      least = jnp.minimum(least, jnp.where(h, a, self.far + 1))
    for a, h in zip(subanswers, has):  # every label given is the least one
      ok = ok & ~(value & h & (a != self.far) & (a != least))
    far = least == self.far
    parent = IDK
    for n, a, h in reversed(list(zip(neighbours, subanswers, has))):
      parent = jnp.where(h & (a == least), n, parent)
    by_kind = lambda v, p, d: jnp.select([value, kind == PARENT], [v, p], d)
    answer = jnp.where(ok, jnp.where(far, self.far, by_kind(least, parent, least + 1)), IDK)
    answer = jnp.where(deeper & (k == 1), self.far, answer)
    answer = jnp.where(next_to_root, by_kind(top_label, top, self.depth0 + 1), answer)
    answer = jnp.where(~root & (k == 0), self.far, answer)
    return jnp.where(root, by_kind(label, x, self.depth0), answer).astype(jnp.int32)[:, None]


class UnionFindTruth:
  """Ground truth of union find: every variable's depth, label and parent, found by a search
  from the labelled roots through the example's own facts."""
  world = None  # episodic: no latent world

  def __init__(self, num_variables: int, num_labels: int, max_depth: int):
    self.num_variables, self.num_labels, self.max_depth = num_variables, num_labels, max_depth

  def answers(self, inputs: Inputs) -> jax.Array:
    return _resolve(inputs, self.num_variables, self.num_labels, self.max_depth)


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _resolve(inputs: Inputs, num_variables: int, num_labels: int, max_depth: int) -> jax.Array:
  """The answers int32[B, 1], by relaxing depths from the roots through the facts' edges
  max_depth times (deeper variables stay FAR, which is all a bound k <= max_depth needs)."""
  context, questions = inputs
  n_vars, batch = num_variables, context.shape[0]
  label0 = VAR0 + n_vars
  depth0 = label0 + num_labels
  far = depth0 + max_depth + 1
  head = context[:, :, 0]
  is_variable = lambda t: (t >= VAR0) & (t < label0)
  index = lambda t: jnp.where(is_variable(t), t - VAR0, n_vars)  # n_vars: none (dropped)
  scatter = lambda at, values, fill: jax.vmap(
      lambda i, v: jnp.full((n_vars,) + v.shape[1:], fill, jnp.int32).at[i].set(v, mode="drop"))(
          at, values)
  # neighbours[b, v] = v's neighbours' indices (n_vars: none); given[b, v] = the label of root v
  neighbours = scatter(index(head), index(context[:, :, 1:]), n_vars)
  given = scatter(jnp.where(head == LABEL, index(context[:, :, 1]), n_vars), context[:, :, 2], PAD)
  unknown = max_depth + 1
  depth = jnp.where(given != PAD, 0, unknown)
  label = given
  padded = lambda a, fill: jnp.concatenate([a, jnp.full((batch, 1), fill, a.dtype)], axis=1)
  gather = lambda a, fill: jnp.take_along_axis(padded(a, fill), neighbours.reshape(batch, -1),
                                               axis=1).reshape(neighbours.shape)
  for _ in range(max_depth):
    near = gather(depth, unknown)
    best = jnp.argmin(near, axis=2)
    closer = jnp.take_along_axis(near, best[:, :, None], axis=2)[:, :, 0] + 1 < depth
    depth = jnp.where(closer, jnp.min(near, axis=2) + 1, depth)
    label = jnp.where(closer, jnp.take_along_axis(gather(label, PAD), best[:, :, None],
                                                  axis=2)[:, :, 0], label)
  toward = gather(depth, unknown) == depth[:, :, None] - 1
  parent = jnp.where(depth == 0, jnp.arange(n_vars),
                     jnp.take_along_axis(neighbours, jnp.argmax(toward, axis=2)[:, :, None],
                                         axis=2)[:, :, 0])
  kind, x, k = questions[:, 0], questions[:, 1] - VAR0, questions[:, 2] - depth0
  at = lambda a: jnp.take_along_axis(a, x[:, None], axis=1)[:, 0]
  d = at(depth)
  answer = jnp.select([kind == VALUE, kind == PARENT], [at(label), VAR0 + at(parent)], depth0 + d)
  return jnp.where(d <= k, answer, far).astype(jnp.int32)[:, None]


def make_union_find(settings: UnionFindSettings, key: jax.Array):
  """The task and its (stateless) truth; every example draws its own instance."""
  task = UnionFind(settings.num_variables, settings.num_labels, settings.max_depth,
                   settings.prosaic_max_depth)
  return task, UnionFindTruth(settings.num_variables, settings.num_labels, settings.max_depth)


PLUGIN = registry.TaskPlugin(make_union_find, UnionFindSettings)
