"""Lexicon, a latent world: N entities, each with one hidden class of C (the true world z).

D: single-entity observations (entity, background) -> class, the class observed with label noise,
and the background agreeing with the entity's true class in `spurious` of D (a spurious feature,
like huskies photographed on snow). D*: questions about sets of up to M distinct entities, each
with a background drawn independently of its class; the answer is the count of each class in the
set. The human's model: every entity has exactly one class, a priori uniform; an observation
reports it with a known noise rate; the background is irrelevant.

H's decomposition: a set of size <= 2 is answered by looking each entity up in Mz (the fitted z*);
a larger set is split into halves asked of pi, and their counts are added. H refuses (IDK) a
subanswer that is not a count vector summing to its half's size.

Tokens: PAD, IDK, the counts 0..M, the C classes, the C backgrounds, the N entities.
Question: [size, PAD, e_1, b_1, ..., e_M, b_M] (entity and background tokens, PAD after `size`
elements), read by the policy as M + 1 pairs, so it sees the set size. Answer: [count of class 0, ..., count of class C-1] as count tokens.
A D row is a set of size 1 whose answer counts its observed class once (`training_data`, what
prosaic ML trains on). D is held as three id arrays (entity, background, observed class), 12
bytes a row, and encoded as questions only for the rows sampled: at 10^6 entities x 16
observations the encoded D would take 2.2 GB. A D of more than MEMORY_ROWS rows is never held:
it is drawn a block of ENTITY_BLOCK entities at a time (every row of a block observes one of its
entities) onto disk (`amplify.tasks.stored`), and read back a block at a time
(`observation_blocks`: z* is fitted a block at a time) or at sampled rows (`training_data`).
"""
from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from amplify import registry
from amplify.learn.prior import Block
from amplify.tasks import stored
from amplify.tasks.base import random_counts
from amplify.tasks.lexicon_text import LexiconText
from amplify.types import FIRST_TOKEN, IDK, LATENT, PAD, Inputs, Spec, Tools

MEMORY_ROWS = 1 << 25  # a D of more rows is drawn onto disk a block at a time
ENTITY_BLOCK = 1 << 20  # the entities a block of such a D observes
RAW_ROWS_PER_ENTITY = 64  # raw_d: the rows of D an entity's look-ups can address (j < 64)


@dataclasses.dataclass(frozen=True)
class LexiconSettings:
  """The world's size and D's sampling (`--task.FIELD`)."""
  num_entities: int = 256
  num_classes: int = 4
  max_set_size: int = 16  # D* asks about sets of 1..max_set_size entities
  label_noise: float = 0.2  # D's observed class is wrong this often (the human knows the rate)
  observations: int = 16  # rows of D per entity, on average
  spurious: float = 0.9  # in D, the background agrees with the true class this often

  def __post_init__(self):
    for name in ("num_entities", "num_classes", "max_set_size", "observations"):
      if getattr(self, name) < 1:
        raise ValueError(f"--task.{name}={getattr(self, name)}: must be a positive integer.")
    for name in ("label_noise", "spurious"):
      if not 0 <= getattr(self, name) <= 1:
        raise ValueError(f"--task.{name}={getattr(self, name)}: a probability, must lie in "
                         "[0, 1].")
    if self.observations * self.num_entities >= 2**31:
      raise ValueError(f"--task.observations x --task.num_entities = "
                       f"{self.observations * self.num_entities} rows of D: at most 2^31 - 1.")
    if self.num_classes < 2 or self.num_entities < self.max_set_size:
      raise ValueError(f"lexicon needs --task.num_classes >= 2 and --task.num_entities >= "
                       f"--task.max_set_size (got {self.num_classes}, {self.num_entities}, "
                       f"{self.max_set_size}).")


@dataclasses.dataclass(frozen=True, eq=False)  # eq=False: hashed by identity (it holds arrays)
class Lexicon(LexiconText):
  num_entities: int
  num_classes: int
  max_set_size: int
  label_noise: float
  # D, one row per observation: ids int32[R] of its entity, background and observed (noisy) class
  # (None: D is on disk, `d_stored`, in blocks of `observations` x `d_block` rows)
  d_entity: jax.Array | None
  d_background: jax.Array | None
  d_observed: jax.Array | None
  name: str = "lexicon"
  d_stored: stored.StoredRows | None = None
  d_block: int = 0  # the entities each block of a D on disk observes
  budget_needed = (2, 2)  # two halves asked of pi, or two entities looked up
  extra_baselines = ()

  @property
  def ask_depth(self) -> int:
    """Halving a set until it has at most 2 entities (which H looks up)."""
    return max(0, math.ceil(math.log2(self.max_set_size)) - 1)

  # -- tokens --------------------------------------------------------------------------------
  @property
  def count0(self) -> int:
    return FIRST_TOKEN

  @property
  def class0(self) -> int:
    return self.count0 + self.max_set_size + 1

  @property
  def background0(self) -> int:
    return self.class0 + self.num_classes

  @property
  def entity0(self) -> int:
    return self.background0 + self.num_classes

  @property
  def spec(self) -> Spec:
    return Spec(vocab_size=self.entity0 + self.num_entities, question_len=2 + 2 * self.max_set_size,
                question_group=2, answer_len=self.num_classes, fact_len=1, context_size=0, regime=LATENT,
                max_difficulty=self.max_set_size, z_entries=self.num_entities,
                z_values=self.num_classes, z_first_token=self.class0,
                mz_key_positions=tuple(range(2, 2 + 2 * self.max_set_size, 2)),
                mz_key_token=self.entity0,
                answer_tokens=(self.count0, self.count0 + self.max_set_size + 1))

  def encode(self, size: jax.Array, entities: jax.Array, backgrounds: jax.Array) -> jax.Array:
    """size int32[B], entities and backgrounds int32[B, M] (ids; slots >= size ignored)."""
    valid = jnp.arange(self.max_set_size) < size[:, None]
    pairs = jnp.stack([jnp.where(valid, self.entity0 + entities, PAD),
                       jnp.where(valid, self.background0 + backgrounds, PAD)], axis=-1)
    head = jnp.stack([self.count0 + size, jnp.full_like(size, PAD)], axis=1)
    return jnp.concatenate([head, pairs.reshape(size.shape[0], -1)], axis=1).astype(jnp.int32)

  def decode(self, questions: jax.Array):
    """-> (size int32[B], entity ids int32[B, M], background ids int32[B, M], valid bool[B, M])."""
    size = questions[:, 0] - self.count0
    valid = jnp.arange(self.max_set_size) < size[:, None]
    entities = jnp.where(valid, questions[:, 2::2] - self.entity0, 0)
    backgrounds = jnp.where(valid, questions[:, 3::2] - self.background0, 0)
    return size, entities, backgrounds, valid

  def _counts_answer(self, counts: jax.Array) -> jax.Array:
    return (self.count0 + counts).astype(jnp.int32)

  # -- sampling ------------------------------------------------------------------------------
  def training_data(self, key: jax.Array, n: int) -> tuple[Inputs, jax.Array]:
    """D is a fixed sample of the world: n of its rows (all of them if n exceeds it), as size-1
    questions labelled with the count of their observed class. From a D on disk, each block's
    share of the n rows is a run of its consecutive rows at a random place: a block's rows are
    drawn independently, so such a run is as random as any rows of it, and it reads a chunk or
    two of the disk, not all of D."""
    if self.d_stored is None:
      rows = jax.random.permutation(key, self.d_entity.shape[0])[:n]
      entity, background, observed = (self.d_entity[rows], self.d_background[rows],
                                       self.d_observed[rows])
    else:
      entity, background, observed = self._runs(key, min(n, self.d_stored.rows))
    pad = jnp.zeros((entity.shape[0], self.max_set_size - 1), jnp.int32)
    questions = self.encode(jnp.ones(entity.shape[0], jnp.int32),
                            jnp.concatenate([entity[:, None], pad], 1),
                            jnp.concatenate([background[:, None], pad], 1))
    labels = self._counts_answer(jax.nn.one_hot(observed, self.num_classes, dtype=jnp.int32))
    return Inputs(jnp.zeros((entity.shape[0], 0, 1), jnp.int32), questions), labels

  def _runs(self, key: jax.Array, n: int) -> tuple[jax.Array, ...]:
    """n rows of a D on disk, as (entity, background, observed) ids int32[n] (`training_data`)."""
    blocks = _disk_blocks(self.num_entities, self.d_block, self.d_stored.rows // self.num_entities)
    first, ends = (np.array([b[i] for b in blocks], np.int64) for i in (2, 3))
    share = np.diff(np.floor(n * ends / self.d_stored.rows).astype(np.int64), prepend=0)
    where = np.asarray(jax.random.uniform(key, (len(first),)))
    starts = first + np.floor(where * (ends - first - share + 1)).astype(np.int64)
    runs = [self.d_stored.read(s, s + k) for s, k in zip(starts, share) if k]
    return tuple(jnp.asarray(np.concatenate([r[c] for r in runs]), jnp.int32)
                 for c in self.d_stored.columns)

  def observations(self) -> tuple[Inputs, jax.Array]:
    """All of D, a row per observation as H's model reads it: questions [entity token,
    background token], labels [observed class token]."""
    if self.d_stored is not None:
      raise ValueError(f"lexicon's D of {self.d_stored.rows} rows is on disk, never whole in "
                       "memory: read it a block at a time (observation_blocks).")
    return self._observations(self.d_entity, self.d_background, self.d_observed)

  def _observations(self, entity, background, observed) -> tuple[Inputs, jax.Array]:
    questions = jnp.stack([self.entity0 + jnp.asarray(entity, jnp.int32),
                           self.background0 + jnp.asarray(background, jnp.int32)], 1)
    return (Inputs(jnp.zeros((questions.shape[0], 0, 1), jnp.int32), questions),
            (self.class0 + jnp.asarray(observed, jnp.int32)[:, None]).astype(jnp.int32))

  def observation_blocks(self):
    """D as blocks of the entities they observe (`amplify.learn.prior.Block`): all of D in one
    block, or, from disk, a block of `d_block` entities at a time."""
    if self.d_stored is None:
      yield Block(0, self.num_entities, *self.observations())
      return
    for first, entities, start, stop in _disk_blocks(
        self.num_entities, self.d_block, self.d_stored.rows // self.num_entities):
      block = self.d_stored.read(start, stop)
      yield Block(first, entities,
                  *self._observations(block["entity"], block["background"], block["observed"]))

  def deployment_questions(self, key: jax.Array, n: int) -> Inputs:
    """D*: set sizes uniform in 1..M, distinct entities, backgrounds independent of class."""
    k_size, k_entities, k_order, k_background = jax.random.split(key, 4)
    m = self.max_set_size
    size = jax.random.randint(k_size, (n,), 1, m + 1, jnp.int32)
    # M distinct entities per row: sorted draws from N - M + 1 values plus offsets 0..M-1,
    # in a random order (near-uniform over subsets when N >> M; O(M) per row at any N).
    draws = jnp.sort(jax.random.randint(k_entities, (n, m), 0, self.num_entities - m + 1), axis=1)
    distinct = draws + jnp.arange(m)
    order = jnp.argsort(jax.random.uniform(k_order, (n, m)), axis=1)
    entities = jnp.take_along_axis(distinct, order, axis=1)
    backgrounds = jax.random.randint(k_background, (n, m), 0, self.num_classes)
    return Inputs(jnp.zeros((n, 0, 1), jnp.int32), self.encode(size, entities, backgrounds))

  evaluation_questions = deployment_questions

  def difficulty(self, questions: jax.Array) -> jax.Array:
    return questions[:, 0] - self.count0

  def augment(self, key: jax.Array, inputs: Inputs, labels: jax.Array) -> tuple[Inputs, jax.Array]:
    """The task's symmetry: a set's order does not matter; shuffle each row's elements."""
    size, entities, backgrounds, valid = self.decode(inputs.questions)
    order = jnp.argsort(jax.random.uniform(key, valid.shape) + ~valid, axis=1)  # PAD stays last
    shuffle = lambda a: jnp.take_along_axis(a, order, axis=1)
    return Inputs(inputs.context, self.encode(size, shuffle(entities), shuffle(backgrounds))), labels

  def random_answers(self, key: jax.Array, n: int) -> jax.Array:
    """Counts of a set of random size (1..max_set_size): one draw in max_set_size is of the
    question's size (the noisy H draws again)."""
    return self._counts_answer(random_counts(key, n, self.max_set_size, self.num_classes))

  def valid_answers(self, questions: jax.Array, answers: jax.Array) -> jax.Array:
    return jnp.all(answers == IDK, axis=1) | self._read_counts(answers, questions[:, 0]
                                                                - self.count0)[1]

  # -- the human's model (learning the prior) ------------------------------------------------
  def human_log_prior(self, lookup, keys: jax.Array) -> jax.Array:
    """Classes a priori uniform, independently: E_z[log P(z)] = -K log C for any z's K entries."""
    q = lookup(keys)
    return jnp.sum(q) * -math.log(self.num_classes)

  def human_log_likelihood(self, inputs: Inputs, labels: jax.Array, lookup) -> jax.Array:
    """An observation reports the entity's class with probability 1 - noise, else one of the
    other classes uniformly; the background is not read."""
    entity = inputs.questions[:, 0] - self.entity0
    observed = labels[:, 0] - self.class0
    q = jnp.take_along_axis(lookup(entity), observed[:, None], axis=1)[:, 0]
    slip = self.label_noise / (self.num_classes - 1)
    return jnp.log(q * (1 - self.label_noise) + (1 - q) * slip)

  # -- H's decomposition ---------------------------------------------------------------------
  def _subset(self, questions: jax.Array, start: jax.Array, length: jax.Array) -> jax.Array:
    """The question about elements start .. start + length - 1 of each row's set."""
    _, entities, backgrounds, _ = self.decode(questions)
    index = jnp.clip(start[:, None] + jnp.arange(self.max_set_size), 0, self.max_set_size - 1)
    pick = lambda a: jnp.take_along_axis(a, index, axis=1)
    return self.encode(length, pick(entities), pick(backgrounds))

  def _read_counts(self, answers: jax.Array, size: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(counts int32[B, C], ok bool[B]): ok where every token is a count and they sum to size."""
    counts = answers - self.count0
    ok = jnp.all((counts >= 0) & (counts <= self.max_set_size), axis=1)
    return counts, ok & (jnp.sum(counts, axis=1) == size)

  def human_answer(self, questions: jax.Array, tools: Tools) -> jax.Array:
    """Sets of size <= 2: each entity's class read in Mz (the fitted z*)."""
    return self._answer(questions, tools, lambda entity, where: tools.lookup(entity, where=where))

  def _answer(self, questions: jax.Array, tools: Tools, read_class) -> jax.Array:
    """H's decomposition, given how H reads one entity's class: read_class(entity int32[B],
    where bool[B]) -> class token int32[B], IDK where it can't tell."""
    size, entities, _, _ = self.decode(questions)
    small = size <= 2
    # size 1 or 2: read each entity's class
    first = read_class(entities[:, 0], small)
    second = read_class(entities[:, 1], small & (size == 2))
    is_class = lambda c: (c >= self.class0) & (c < self.class0 + self.num_classes)
    one_hot = lambda c: jax.nn.one_hot(c - self.class0, self.num_classes, dtype=jnp.int32)
    small_counts = one_hot(first) + jnp.where((size == 2)[:, None], one_hot(second), 0)
    small_ok = is_class(first) & ((size == 1) | is_class(second))
    # larger: halves asked of pi, counts added
    half = (size + 1) // 2
    left = tools.ask(self._subset(questions, jnp.zeros_like(size), half), where=~small)
    left_counts, left_ok = self._read_counts(left, half)
    right = tools.ask(self._subset(questions, half, size - half), where=~small & left_ok)
    right_counts, right_ok = self._read_counts(right, size - half)
    counts = jnp.where(small[:, None], small_counts, left_counts + right_counts)
    ok = jnp.where(small, small_ok, left_ok & right_ok)
    return jnp.where(ok[:, None], self._counts_answer(counts), IDK)

  # -- H reading D itself (the raw_d arm) ----------------------------------------------------
  def raw_observations(self) -> tuple[jax.Array, jax.Array, int]:
    """D's rows as (entity int32[R], observed class token int32[R], rows addressable per
    entity): what the raw_d arm indexes (`amplify.learn.mz.RawRowsMz`, key entity * RAW_ROWS_PER_ENTITY
    + j)."""
    if self.d_stored is not None:
      raise ValueError(f"the raw_d arm indexes all of D in memory, and lexicon's D of "
                       f"{self.d_stored.rows} rows is on disk: use at most {MEMORY_ROWS} rows "
                       "(--task.num_entities x --task.observations).")
    return (self.d_entity, (self.class0 + self.d_observed).astype(jnp.int32),
            RAW_ROWS_PER_ENTITY)

  def human_answer_from_d(self, questions: jax.Array, tools: Tools,
                          max_lookups: int) -> jax.Array:
    """H's decomposition with D's raw rows in place of z*: an entity's class is the majority of
    the observations of it that H reads (the MAP under H's uniform prior and symmetric noise),
    IDK on a tie or with none read. A set of size s <= 2 spreads the budget evenly: max_lookups
    // s reads of each entity. Larger sets go to pi as in `human_answer`."""
    size = self.difficulty(questions)

    def majority(entity, where):
      reads = max_lookups // jnp.maximum(size, 1)
      votes = jnp.zeros((entity.shape[0], self.num_classes), jnp.int32)
      for j in range(max_lookups):
        seen = tools.lookup(entity * RAW_ROWS_PER_ENTITY + j, where=where & (j < reads))
        known = (seen >= self.class0) & (seen < self.class0 + self.num_classes)
        votes += jnp.where(known[:, None], jax.nn.one_hot(seen - self.class0, self.num_classes,
                                                           dtype=jnp.int32), 0)
      top = jnp.max(votes, axis=1)
      decided = (top > 0) & (jnp.sum(votes == top[:, None], axis=1) == 1)
      return jnp.where(decided, self.class0 + jnp.argmax(votes, axis=1), IDK)

    return self._answer(questions, tools, majority)


class LexiconTruth:
  """The true world z (the classes of the N entities) and the true counts it implies."""
  world: jax.Array

  def __init__(self, task: Lexicon, classes: jax.Array):
    # a byte an entity where the tokens fit one (the referee's memory at 10^8 entities)
    small = jnp.uint8 if task.class0 + task.num_classes <= 256 else jnp.int32
    self._task, self._classes = task, classes.astype(small)
    self.world = (task.class0 + self._classes).astype(small)  # z as tokens, for z accuracy

  def answers(self, inputs: Inputs) -> jax.Array:
    return _true_counts(self._task, self._classes, inputs.questions)


def _true_counts(task: Lexicon, classes: jax.Array, questions: jax.Array) -> jax.Array:
  _, entities, _, valid = task.decode(questions)
  members = jax.nn.one_hot(classes[entities], task.num_classes, dtype=jnp.int32)
  return (task.count0 + jnp.sum(members * valid[..., None], axis=1)).astype(jnp.int32)


def make_lexicon(config: LexiconSettings, key: jax.Array, *, memory_rows: int = MEMORY_ROWS,
                 block: int = ENTITY_BLOCK) -> tuple[Lexicon, LexiconTruth]:
  """Draws the world z from `key`, then D from it: observations per entity on average, entities
  uniform (within each block of a D on disk), labels noisy, backgrounds agreeing with the true
  class in config.spurious of D. A D of more than `memory_rows` rows is drawn onto disk, a
  `block` of entities at a time."""
  n, observations = config.num_entities, config.observations
  k_world, *d_keys = jax.random.split(key, 6)
  classes = _draw_classes(config, k_world)
  args = (config.num_entities, config.num_classes, config.max_set_size, config.label_noise)
  if n * observations <= memory_rows:
    task = Lexicon(*args, *_draw_d(config, n, classes, d_keys))
    return task, LexiconTruth(task, classes)

  def blocks():
    for first, size, start, _ in _disk_blocks(n, block, observations):
      keys = [jax.random.fold_in(k, first // block) for k in d_keys]
      entity, background, observed = _draw_d(config, size, classes[first:first + size], keys)
      yield start, {"entity": first + entity, "background": background, "observed": observed}
  d = stored.store(stored.path_for(f"lexicon_{block}", config, key),
                   {"entity": np.int32, "background": np.uint8, "observed": np.uint8},
                   n * observations, blocks())
  task = Lexicon(*args, None, None, None, d_stored=d, d_block=block)
  return task, LexiconTruth(task, classes)


def _disk_blocks(entities: int, block: int, per_entity: int) -> list[tuple[int, int, int, int]]:
  """A D on disk's blocks, each (first entity, its entities, first row, end row)."""
  return [(first, min(block, entities - first), first * per_entity,
           min(first + block, entities) * per_entity) for first in range(0, entities, block)]


# jitted on the settings (numbers); a jitted method of the Lexicon itself would keep each task,
# and its D, alive in JAX's cache of compiled programs
@functools.partial(jax.jit, static_argnums=0)
def _draw_classes(config: LexiconSettings, key: jax.Array) -> jax.Array:
  return jax.random.randint(key, (config.num_entities,), 0, config.num_classes)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _draw_d(config: LexiconSettings, n: int, classes: jax.Array, keys) -> tuple[jax.Array, ...]:
  """D's rows about n entities of these classes (int32[n]): ids int32[observations x n] of
  their entity (0 .. n - 1), background and observed class."""
  c = config.num_classes
  k_entity, k_noise, k_slip, k_agree, k_background = keys
  rows = config.observations * n
  entity = jax.random.randint(k_entity, (rows,), 0, n)
  true = classes[entity]
  other = lambda k: (true + jax.random.randint(k, (rows,), 1, c)) % c  # a class other than true
  observed = jnp.where(jax.random.bernoulli(k_noise, config.label_noise, (rows,)), other(k_slip),
                       true)
  background = jnp.where(jax.random.bernoulli(k_agree, config.spurious, (rows,)), true,
                         other(k_background))
  return entity.astype(jnp.int32), background.astype(jnp.int32), observed.astype(jnp.int32)


PLUGIN = registry.TaskPlugin(make_lexicon, LexiconSettings)
