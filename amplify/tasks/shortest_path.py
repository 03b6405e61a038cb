"""Shortest path (Christiano, Shlegeris and Amodei 2018), an episodic task.

Each example carries its own directed graph of N vertices in which every vertex has exactly two
out-edges (2N edges, as the authors' graphs have, targets uniform, self-loops and duplicates
allowed), as N facts [a, v1, v2]: a's two out-neighbours in name order (v1 <= v2), rows in a
random order. A question asks, within a bound k, the distance from a to b or the first step
towards b:

- D_k(a, b): the length of the shortest path from a to b of at least one edge (so D(a, a) is the
  shortest cycle through a) if it is at most k, else FAR;
- S_k(a, b): FAR where D_k(a, b) is FAR, else the first of (v1, v2) in name order whose distance
  to b (0 for b itself) is D_k(a, b) - 1.

Tokens: PAD, IDK, the question types DIST and STEP, then the N vertices, then the distances
1..K, then FAR (an answer is one of vertices..FAR, one contiguous range).
Question: [a, type, b, k], k a distance token; a comes first because the policy packs a
question's first token as it packs a fact's key (E[a], amplify.learn.policy), so the answer token
can point at a's fact: with the type first the supervised policy (12 vertices) answered 0.91 of
the k = 1 questions right after 4,000 steps (always FAR: 0.86), with a first 0.97 after 2,000.
Fact: [a, v1, v2]. Answer: [a vertex (S), a distance (D), or FAR].

Two departures from the authors' code (../shared/REFERENCES.md), both so that H's decomposition
is exact, its budget fixed and a question's difficulty readable from the question alone: every
vertex has exactly two out-edges (the authors' 2N edges have uniform sources too, so a vertex
has any number), and every question carries its bound k (the authors cap every distance at 12),
which is its difficulty. H reads a's out-neighbours from the facts (the authors' edge checks are
look-ups too) and asks pi only the distances D_{k-1} from them.
"""
from __future__ import annotations

import dataclasses
import functools
import re

import jax
import jax.numpy as jnp
import numpy as np

from amplify import registry
from amplify.learn.mz import KEY_RADIX, fact_key, key_tokens
from amplify.tasks.base import letter_name, parse_letter_name
from amplify.types import EPISODIC, FIRST_TOKEN, IDK, PAD, Inputs, Spec, Tools

DIST = FIRST_TOKEN  # the question types
STEP = FIRST_TOKEN + 1
VERTEX0 = FIRST_TOKEN + 2  # the first vertex's token


@dataclasses.dataclass(frozen=True)
class ShortestPathSettings:
  """`--task.FIELD`: N vertices, questions' bounds k in 1..max_distance, D's bounds k <=
  prosaic_max_distance."""
  num_vertices: int = 12
  max_distance: int = 6
  prosaic_max_distance: int = 2

  def __post_init__(self):  # the task checks the same, naming its own fields
    ShortestPath(self.num_vertices, self.max_distance, self.prosaic_max_distance)


@dataclasses.dataclass(frozen=True)
class ShortestPath:
  """Questions D_k(a, b) and S_k(a, b) with k <= max_distance, each type half the time; D (for
  prosaic ML) has k <= prosaic_max_distance."""
  num_vertices: int = 12
  max_distance: int = 6
  prosaic_max_distance: int = 2
  name: str = "shortest_path"
  extra_baselines = ()
  examples = {"answer": "3, far or (for S) e", "ask": "D(c, f) within 4", "lookup": "c or c a"}

  @property
  def budget_needed(self) -> tuple[int, int]:
    """(asks, look-ups): a's two out-neighbours looked up, a distance asked from each."""
    return (2, 2)

  @property
  def ask_depth(self) -> int:
    """Each ask lowers the bound by one, down to k = 1, which look-ups settle."""
    return self.max_distance - 1

  def __post_init__(self):
    if self.num_vertices < 2:
      raise ValueError(f"--task.num_vertices={self.num_vertices}: a graph needs at least 2 "
                       "vertices.")
    if self.max_distance < 1:
      raise ValueError(f"--task.max_distance={self.max_distance}: the bound on distances must be "
                       "at least 1.")
    if self.far >= KEY_RADIX:
      raise ValueError(f"--task.num_vertices={self.num_vertices} with --task.max_distance="
                       f"{self.max_distance}: {self.far + 1} tokens, and a fact's key needs "
                       f"fewer than {KEY_RADIX}; lower either.")
    if not 1 <= self.prosaic_max_distance <= self.max_distance:
      raise ValueError(f"--task.prosaic_max_distance={self.prosaic_max_distance}: D's bounds are "
                       f"1 <= k <= prosaic_max_distance, so it must lie in [1, "
                       f"{self.max_distance}] for max_distance={self.max_distance}.")

  @property
  def distance0(self) -> int:
    """The token of distance 1 (distance d is distance0 + d - 1)."""
    return VERTEX0 + self.num_vertices

  @property
  def far(self) -> int:
    return self.distance0 + self.max_distance

  @property
  def full_size(self) -> int:
    """The instance size the curriculum grows (amplify.types.Sized): the vertices."""
    return self.num_vertices

  @property
  def spec(self) -> Spec:
    return Spec(vocab_size=self.far + 1, question_len=4, answer_len=1, fact_len=3,
                context_size=self.num_vertices, regime=EPISODIC,
                max_difficulty=self.max_distance, packed_question=True,
                answer_tokens=(VERTEX0, self.far + 1))

  # -- encoding ------------------------------------------------------------------------------
  def encode(self, kind: jax.Array, a: jax.Array, b: jax.Array, k: jax.Array) -> jax.Array:
    """kind (DIST or STEP), a, b (vertex tokens), k (a bound): int32[B] -> questions
    int32[B, 4], [a, kind, b, k]."""
    return jnp.stack([a, kind, b, self.distance0 + k - 1], axis=1).astype(jnp.int32)

  def bound(self, questions: jax.Array) -> jax.Array:
    """k of each question: int32[B]."""
    return (questions[:, 3] - self.distance0 + 1).astype(jnp.int32)

  # -- sampling ------------------------------------------------------------------------------
  @functools.partial(jax.jit, static_argnums=(0, 2, 3, 4))
  def _sample(self, key: jax.Array, n: int, max_k: int | None = None,
              size: int | None = None) -> Inputs:
    """n questions, one graph each: bounds 1 <= k <= max_k (None: max_distance). `size` < N: a
    graph on the first `size` vertices, the other N - size facts PAD."""
    size = self.num_vertices if size is None else size
    if not 2 <= size <= self.num_vertices:
      raise ValueError(f"a graph of {size} vertices: sizes lie in 2..{self.num_vertices} "
                       "(--task.num_vertices).")
    max_k = self.max_distance if max_k is None else max_k
    k_edges, k_order, k_kind, k_ends, k_k = jax.random.split(key, 5)
    n_vertices = self.num_vertices
    targets = VERTEX0 + jax.random.randint(k_edges, (n, n_vertices, 2), 0, size, jnp.int32)
    sources = jnp.broadcast_to(VERTEX0 + jnp.arange(n_vertices, dtype=jnp.int32), (n, n_vertices))
    facts = jnp.stack([sources, targets.min(-1), targets.max(-1)], axis=-1)  # [n, N, 3]
    facts = jnp.where((jnp.arange(n_vertices) < size)[None, :, None], facts, PAD)
    order = jnp.argsort(jax.random.uniform(k_order, (n, n_vertices)), axis=1)
    context = jnp.take_along_axis(facts, order[:, :, None], axis=1)
    kind = DIST + jax.random.randint(k_kind, (n,), 0, 2, jnp.int32)
    ends = VERTEX0 + jax.random.randint(k_ends, (n, 2), 0, size, jnp.int32)
    k = jax.random.randint(k_k, (n,), 1, max_k + 1, jnp.int32)
    return Inputs(context=context.astype(jnp.int32),
                  questions=self.encode(kind, ends[:, 0], ends[:, 1], k))

  def training_data(self, key: jax.Array, n: int) -> tuple[Inputs, jax.Array]:
    """D: bounds k <= prosaic_max_distance, labelled by searching the example's own graph (in an
    episodic task the facts are the data, so D's labels are exact)."""
    inputs = self._sample(key, n, self.prosaic_max_distance)
    return inputs, _shortest_paths(inputs, self.max_distance)

  def deployment_questions(self, key: jax.Array, n: int, size: int | None = None) -> Inputs:
    """D*: bounds k uniform in 1..max_distance, graphs of `size` vertices (None: N)."""
    return self._sample(key, n, size=size)

  def evaluation_questions(self, key: jax.Array, n: int) -> Inputs:
    return self._sample(key, n)

  def difficulty(self, questions: jax.Array) -> jax.Array:
    """The bound k: the longest path H's decomposition may follow."""
    return jnp.clip(self.bound(questions), 0, self.max_distance)

  def augment(self, key: jax.Array, inputs: Inputs, labels: jax.Array) -> tuple[Inputs, jax.Array]:
    """None: the name order decides S's answer among equally near neighbours (and v1 <= v2 in a
    fact), so renaming the vertices is not a symmetry of the task."""
    return inputs, labels

  def random_answers(self, key: jax.Array, n: int) -> jax.Array:
    """Any answer token: a vertex, a distance or FAR (without the question, of either kind)."""
    return jax.random.randint(key, (n, 1), VERTEX0, self.far + 1, jnp.int32)

  def valid_answers(self, questions: jax.Array, answers: jax.Array) -> jax.Array:
    """IDK; FAR; for D_k a distance 1..k; for S_k a vertex."""
    answer = answers[:, 0]
    distance = (answer >= self.distance0) & (answer <= self.distance0 + self.bound(questions) - 1)
    vertex = (answer >= VERTEX0) & (answer < self.distance0)
    kind = questions[:, 1]
    return (jnp.all(answers == IDK, axis=1) | (answer == self.far)
            | ((kind == DIST) & distance) | ((kind == STEP) & vertex))

  # -- text for a person ----------------------------------------------------------------------
  # Vertices are letters a, b, c, ... (x0, x1, ... beyond 26); a question reads
  # "D(c, f) within 4 = ?", an answer "3", "far" or "e".
  def vertex_name(self, token: int) -> str:
    return letter_name(int(token) - VERTEX0, self.num_vertices)

  def _vertex(self, text: str) -> int:
    return parse_letter_name(text, VERTEX0, self.num_vertices, "vertex", "vertices")

  def render_question(self, question: np.ndarray) -> str:
    q = np.asarray(question)
    letter = "D" if int(q[1]) == DIST else "S"
    return (f"{letter}({self.vertex_name(q[0])}, {self.vertex_name(q[2])}) within "
            f"{int(q[3]) - self.distance0 + 1} = ?")

  def render_answer(self, answer: np.ndarray) -> str:
    token = int(answer[0])
    if token == IDK:
      return "IDK"
    if token == self.far:
      return "far"
    if token >= self.distance0:
      return str(token - self.distance0 + 1)
    return self.vertex_name(token)

  def parse_answer(self, text: str, question: np.ndarray) -> np.ndarray:
    """"far", or for D a distance within the question's bound ("3"), for S a vertex ("e")."""
    text, q = text.strip(), np.asarray(question)
    if text.lower() == "far":
      return np.asarray([self.far], np.int32)
    k = int(q[3]) - self.distance0 + 1
    if int(q[1]) == STEP:
      return np.asarray([self._vertex(text)], np.int32)
    if not text.isdigit() or not 1 <= int(text) <= k:
      raise ValueError(f"{text!r}: {self.render_question(q)} is answered by a distance 1 to {k}, "
                       "or far.")
    return np.asarray([self.distance0 + int(text) - 1], np.int32)

  def parse_question(self, text: str, parent: np.ndarray) -> np.ndarray:
    """"D(c, f) within 4" or "S(c, f) within 4" (an "= ?" after it is allowed)."""
    match = re.fullmatch(r"\s*([DSds])\s*\(\s*(\w+)\s*,\s*(\w+)\s*\)\s*within\s+(\d+)\s*"
                         r"(=\s*\??)?\s*", text)
    if match is None:
      raise ValueError(f"{text!r}: type a subquestion as D(X, Y) within K or S(X, Y) within K, "
                       "e.g. D(c, f) within 4.")
    kind, a, b, k = match[1].upper(), match[2], match[3], int(match[4])
    if not 1 <= k <= self.max_distance:
      raise ValueError(f"within {k}: the bound must lie in 1..{self.max_distance}.")
    return np.asarray([self._vertex(a), DIST if kind == "D" else STEP, self._vertex(b),
                       self.distance0 + k - 1], np.int32)

  def parse_key(self, text: str, parent: np.ndarray) -> int:
    """"c": c's first out-neighbour; "c a": c's out-neighbour after a (its second)."""
    names = text.replace(",", " ").split()
    if not 1 <= len(names) <= 2:
      raise ValueError(f"{text!r}: type a look-up as a vertex (its first out-neighbour), e.g. "
                       "c, or a vertex and its first out-neighbour (the second), e.g. c a.")
    return int(fact_key(*[self._vertex(name) for name in names]))

  def render_lookup(self, key: int, value: int) -> str:
    shown = "not found" if value == IDK else self.vertex_name(value)
    return " -> ".join([self.vertex_name(key_tokens(key)[0]),
                        ", ".join([self.vertex_name(t) for t in key_tokens(key)[1:]] + [shown])])

  # -- H's decomposition ---------------------------------------------------------------------
  def human_answer(self, questions: jax.Array, tools: Tools) -> jax.Array:
    """Look up a's out-neighbours v1 and v2. For each c of them: d_c = 0 where c is b; else FAR
    for k = 1; else pi's D_{k-1}(c, b) (asked once where v1 and v2 are one vertex). m, the nearer
    (FAR farthest); D: m + 1, S: v1 if d_v1 is m, else v2 (FAR where m is FAR). At most 2 asks
    and 2 look-ups; any IDK along the way gives IDK, and so does a subanswer that is neither FAR
    nor a distance within its bound (H checks each). H asks about c even where the other
    neighbour is b and settles the answer, so H alone answers k = 1 and, at k >= 2, only where
    both edges go to b. Answering every question whose b is adjacent, it labelled at k >= 2 just
    those, where a policy that always answers 1 passes the IID check; with that shortcut the
    type-2 gate refused pi in every round of a run (net scores -0.43 to -0.48)."""
    a, kind, b, k = questions[:, 0], questions[:, 1], questions[:, 2], self.bound(questions)
    v1 = tools.lookup(fact_key(a), where=jnp.ones_like(a, bool))
    v2 = tools.lookup(fact_key(a, v1), where=v1 != IDK)
    known = (v1 != IDK) & (v2 != IDK)
    unbounded = self.max_distance + 1  # FAR, as a number larger than any distance

    def distance(c, where):
      """d_c (FAR: unbounded) and whether it is well formed; pi is asked D_{k-1}(c, b) where
      `where` and c is not b."""
      asked = where & (c != b) & (k > 1)
      answer = tools.ask(self.encode(jnp.full_like(c, DIST), c, b, k - 1), where=asked)[:, 0]
      d = answer - self.distance0 + 1
      well_formed = (answer == self.far) | ((d >= 1) & (d <= k - 1))
      d = jnp.where(asked, jnp.where(answer == self.far, unbounded, d), unbounded)
      return jnp.where(c == b, 0, d), ~asked | well_formed

    d1, ok1 = distance(v1, known)
    d2, ok2 = distance(v2, known & ok1 & (v2 != v1))
    d2, ok2 = jnp.where(v2 == v1, d1, d2), jnp.where(v2 == v1, ok1, ok2)
    m = jnp.minimum(d1, d2)
    reached = m < unbounded
    answer = jnp.where(kind == DIST, jnp.where(reached, self.distance0 + m, self.far),
                       jnp.where(reached, jnp.where(d1 == m, v1, v2), self.far))
    return jnp.where(known & ok1 & ok2, answer, IDK).astype(jnp.int32)[:, None]


@dataclasses.dataclass(frozen=True)
class ShortestPathTruth:
  """Ground truth of shortest path: D_k and S_k, by searching the example's own graph."""
  max_distance: int
  world = None  # episodic: no latent world

  def answers(self, inputs: Inputs) -> jax.Array:
    return _shortest_paths(inputs, self.max_distance)


@functools.partial(jax.jit, static_argnums=1)
def _shortest_paths(inputs: Inputs, max_distance: int) -> jax.Array:
  """D_k(a, b) or S_k(a, b) from the graph's adjacency matrix and its powers: int32[B, 1]."""
  context, questions = inputs
  n = context.shape[1]
  distance0 = VERTEX0 + n
  far = distance0 + max_distance
  sources = jnp.where(context[:, :, 0] == PAD, n, context[:, :, 0] - VERTEX0)  # PAD: no row
  one_hot = lambda t: jax.nn.one_hot(t, n, dtype=jnp.float32)  # n (out of range): zeros
  edges = one_hot(context[:, :, 1] - VERTEX0) + one_hot(context[:, :, 2] - VERTEX0)
  adjacency = jnp.einsum("brs,brt->bst", one_hot(sources), edges) > 0  # [B, N, N]
  unreached = max_distance + 1
  dist = jnp.where(adjacency, 1, unreached)  # paths of >= 1 edge, up to max_distance
  walk = adjacency
  for length in range(2, max_distance + 1):
    walk = jnp.einsum("bst,btu->bsu", walk.astype(jnp.float32), adjacency.astype(jnp.float32)) > 0
    dist = jnp.where(walk & (dist == unreached), length, dist)
  rows = jnp.arange(questions.shape[0])
  a, kind, b = questions[:, 0] - VERTEX0, questions[:, 1], questions[:, 2] - VERTEX0
  k = questions[:, 3] - distance0 + 1
  d = dist[rows, a, b]
  within = d <= k
  out = adjacency[rows, a]  # [B, N]: a's out-neighbours
  first = jnp.argmax(out, axis=1)
  last = n - 1 - jnp.argmax(out[:, ::-1], axis=1)
  from_first = jnp.where(first == b, 0, dist[rows, first, b])
  step = jnp.where(from_first == d - 1, first, last)
  answer = jnp.where(kind == DIST, distance0 + d - 1, VERTEX0 + step)
  return jnp.where(within, answer, far).astype(jnp.int32)[:, None]


def make_shortest_path(settings: ShortestPathSettings, key: jax.Array):
  """The task and its (stateless) truth; every example draws its own graph."""
  return (ShortestPath(settings.num_vertices, settings.max_distance,
                       settings.prosaic_max_distance),
          ShortestPathTruth(settings.max_distance))


PLUGIN = registry.TaskPlugin(make_shortest_path, ShortestPathSettings)
