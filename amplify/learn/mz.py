"""Mz, the indexed model of z*: `lookup(keys, context) -> entries`, Mz(i) = the i-th entry of z*.

H reads z* only through Mz, a few entries at a time. Mz is only asked for indices it holds, so it
needs no out-of-distribution generalisation. Entries that do not exist come back as IDK.

Kinds:
- `ExactIndex` (episodic tasks): z* is the example's own facts, read exactly.
- a fitted Mz (latent worlds): `amplify.learn.prior.fit` maximises the human's objective over the
  parameters of a `FittableMz`, reading z through `distribution` (soft, differentiable look-ups),
  then `freeze` gives the `IndexedModel` H uses. `Table` is the one built: a row of logits per
  entry, for any z that fits in memory, sharded by entry across the devices there are. A
  compressed (neural) Mz for larger z implements the same three methods.
- `EmptyMz` (the `no_prior` arm): no z*, every look-up returns IDK.
- `RawRowsMz` (the `raw_d` arm): no z*, an index over D's raw rows instead ("observation j of
  entity i"), which H combines by its own model.

`MzView` is how the policy reads Mz: a question's keys replaced by Mz's entries at them.
"""
from __future__ import annotations

import dataclasses
from typing import Protocol

import jax
import jax.numpy as jnp
import numpy as np

from amplify import processes
from amplify.learn import zstore
from amplify.learn.mesh import replicate, rows_sharding
from amplify.types import IDK, PAD, Inputs, Spec


class IndexedModel(Protocol):

  def lookup(self, keys: jax.Array, context: jax.Array) -> jax.Array:
    """keys int32[B], context int32[B, C, Lf] -> entries int32[B] (IDK where none)."""


class FittableMz(Protocol):
  """What `amplify.learn.prior.fit` needs of an Mz it fits."""

  def init(self, entries: int):
    """The parameters of `entries` entries (all of z's, or a block's) before fitting (a pytree
    whose leaves have a row per entry, maybe padded)."""

  def distribution(self, params, keys: jax.Array) -> jax.Array:
    """keys int32[K] (rows of params) -> float32[K, z_values]: their soft values
    (differentiable)."""

  def freeze(self, values, path: str | None = None) -> IndexedModel:
    """The fitted z* (values: each entry's most likely value index, int[z_entries]) as the
    IndexedModel H reads; `path`: where one too large to hold in memory is written, to be read
    from disk."""

  def size(self) -> dict[str, int]:
    """{"mz_parameters", "mz_bytes"}: what the fitted parameters of all of z take."""


KEY_RADIX = 1024  # an episodic task's tokens lie below this (a fact's key is a number in base it)
MAX_KEY_TOKENS = 3  # so a key fits an int32: 1024**3 = 2**30


def fact_key(*tokens):
  """The Mz key of a fact's first tokens (t_0, ..., t_{m-1}), m <= MAX_KEY_TOKENS: the number
  t_0 + t_1 R + t_2 R^2 (R = KEY_RADIX). Tokens are ints or int32[B] arrays; a one-token key is
  the token itself."""
  if not 1 <= len(tokens) <= MAX_KEY_TOKENS:
    raise ValueError(f"a fact key has 1..{MAX_KEY_TOKENS} tokens, not {len(tokens)}.")
  key = 0
  for j, token in enumerate(tokens):
    key = key + token * KEY_RADIX**j
  return key


def key_tokens(key: int) -> tuple[int, ...]:
  """The tokens `fact_key` made `key` of (for showing a look-up to a person)."""
  tokens = []
  while key:
    key, token = divmod(int(key), KEY_RADIX)
    tokens.append(token)
  return tuple(tokens)


@dataclasses.dataclass(frozen=True)
class ExactIndex:
  """Episodic tasks: z* is the example's own facts. Mz(key) reads the fact whose first m tokens
  make `key` (`fact_key`, non-PAD tokens) and gives its next token: a fact (x, sigma(x)) answers
  key x with sigma(x); a fact (a, b, f) answers fact_key(a, b) with f. The first such fact in
  the row's order; IDK where none is, or where the next token is PAD."""

  def lookup(self, keys: jax.Array, context: jax.Array) -> jax.Array:
    length = context.shape[2]
    if not 2 <= length <= MAX_KEY_TOKENS + 1:
      raise ValueError(f"facts of {length} tokens: ExactIndex reads facts of 2.."
                       f"{MAX_KEY_TOKENS + 1} tokens.")
    code, found, value = jnp.zeros(context.shape[:2], jnp.int32), None, None
    for m in range(1, length):  # the prefix of m tokens, and the token after it
      code = code + context[:, :, m - 1] * KEY_RADIX**(m - 1)
      match = (code == keys[:, None]) & (context[:, :, m - 1] != PAD)
      first = jnp.argmax(match, axis=1)
      here = jnp.take_along_axis(context[:, :, m], first[:, None], axis=1)[:, 0]
      hit = jnp.any(match, axis=1)
      found = hit if found is None else found | hit
      value = jnp.where(hit, here, IDK if value is None else value)
    return jnp.where(found & (value != PAD), value, IDK).astype(jnp.int32)


@dataclasses.dataclass(frozen=True)
class TableMz:
  """A fitted z*: entries int32[z_entries] tokens. Mz(i) = entries[i]; a key outside the table
  gets IDK."""
  entries: jax.Array
  z_values: int
  z_first_token: int

  def lookup(self, keys: jax.Array, context: jax.Array) -> jax.Array:
    del context  # a latent world's z* is the same for every example
    inside = (keys >= 0) & (keys < self.entries.shape[0])
    return jnp.where(inside, self.entries[jnp.clip(keys, 0, self.entries.shape[0] - 1)], IDK)

  def distribution(self, keys: jax.Array) -> jax.Array:
    """One-hot float32[K, z_values]: z* itself, for scoring the objective at z*."""
    return jax.nn.one_hot(self.entries[keys] - self.z_first_token, self.z_values)


@dataclasses.dataclass(frozen=True)
class EmptyMz:
  """No z* at all (the `no_prior` arm): every look-up returns IDK, so H answers only what its own
  prior decides."""

  def lookup(self, keys: jax.Array, context: jax.Array) -> jax.Array:
    del context
    return jnp.full(keys.shape, IDK, jnp.int32)


@dataclasses.dataclass(frozen=True)
class RawRowsMz:
  """D itself instead of z* (the `raw_d` arm): key item * rows_per_item + j reads the value
  observed in item's j-th row of D (IDK past its last row, or past rows_per_item).

  values: int32[R] the observed value tokens, grouped by item; offsets, counts: int32[items].
  """
  values: jax.Array
  offsets: jax.Array
  counts: jax.Array
  rows_per_item: int

  @staticmethod
  def index(items: np.ndarray, values: np.ndarray, num_items: int,
            rows_per_item: int) -> "RawRowsMz":
    """Builds the index from D's rows: items int[R] (which item a row observes), values int[R]."""
    items, values = np.asarray(items), np.asarray(values)
    order = np.argsort(items, kind="stable")  # keeps D's own order within an item
    counts = np.bincount(items, minlength=num_items)
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return RawRowsMz(jnp.asarray(values[order], jnp.int32), jnp.asarray(offsets, jnp.int32),
                     jnp.asarray(counts, jnp.int32), rows_per_item)

  def lookup(self, keys: jax.Array, context: jax.Array) -> jax.Array:
    del context
    item, j = keys // self.rows_per_item, keys % self.rows_per_item
    inside = (keys >= 0) & (item < self.counts.shape[0])
    item = jnp.clip(item, 0, self.counts.shape[0] - 1)
    found = inside & (j < self.counts[item])
    row = jnp.clip(self.offsets[item] + j, 0, self.values.shape[0] - 1)
    return jnp.where(found, self.values[row], IDK)


@dataclasses.dataclass(frozen=True)
class MzView:
  """What a policy that reads Mz is shown of an input: the question with every key it names
  (`Spec.mz_key_positions`) replaced by Mz's entry at that key, IDK where Mz has none. The policy
  so reads z*'s entries exactly as H does, never embeds a key, and has as many parameters at
  10^6 entries as at 10^3. A pytree: Mz is an argument of the compiled programs that use it."""
  mz: IndexedModel
  positions: tuple[int, ...]
  first_key: int

  @staticmethod
  def of(mz: IndexedModel, spec: Spec) -> "MzView":
    return MzView(mz, spec.mz_key_positions, spec.mz_key_token)

  def __call__(self, inputs: Inputs) -> Inputs:
    keys, named = named_keys(self.positions, self.first_key, inputs.questions)
    entries = jax.vmap(lambda k: self.mz.lookup(k, inputs.context), in_axes=1, out_axes=1)(keys)
    shown = jnp.where(named, entries, inputs.questions[:, list(self.positions)])
    return Inputs(inputs.context, inputs.questions.at[:, list(self.positions)].set(shown))


def shown(view, inputs: Inputs) -> Inputs:
  """What a policy is shown of `inputs`: through `view` (an `MzView`, for a policy that reads
  Mz), or the inputs themselves (None)."""
  return inputs if view is None else view(inputs)


def named_keys(positions: tuple[int, ...], first_key: int,
               questions: jax.Array) -> tuple[jax.Array, jax.Array]:
  """The Mz keys each question names: (keys int32[B, K], named bool[B, K]) over the K question
  `positions` that may hold one (`Spec.mz_key_positions`); a position holding PAD names none."""
  tokens = questions[:, list(positions)]
  named = tokens >= first_key
  return jnp.where(named, tokens - first_key, 0).astype(jnp.int32), named


jax.tree_util.register_dataclass(ExactIndex, data_fields=[], meta_fields=[])
jax.tree_util.register_dataclass(TableMz, data_fields=["entries"],
                                 meta_fields=["z_values", "z_first_token"])
jax.tree_util.register_dataclass(EmptyMz, data_fields=[], meta_fields=[])
jax.tree_util.register_dataclass(RawRowsMz, data_fields=["values", "offsets", "counts"],
                                 meta_fields=["rows_per_item"])
jax.tree_util.register_dataclass(MzView, data_fields=["mz"], meta_fields=["positions", "first_key"])


@dataclasses.dataclass(frozen=True)
class Table:
  """Fits z* as a table of logits float32[entries, z_values], the rows sharded across all
  devices (padded to a multiple of the device count). One block of 2^20 entries x a few values
  is a few MB; a z* fitted in blocks (`amplify.learn.prior`) never holds the whole table."""
  spec: Spec

  def init(self, entries: int) -> jax.Array:
    devices = len(jax.devices())
    # Zeros: every value equally likely before the data speak (and no key to derive).
    return jax.device_put(jnp.zeros((-(-entries // devices) * devices, self.spec.z_values),
                                    jnp.float32), rows_sharding(None))

  def distribution(self, params: jax.Array, keys: jax.Array) -> jax.Array:
    return jax.nn.softmax(params[keys], axis=-1)

  def freeze(self, values, path: str | None = None):
    """values: int[z_entries]. With `path`, a z* of more than `zstore.MEMORY_ENTRIES` entries is
    written there and read from disk (a `zstore.DiskMz`); else it is a `TableMz` in memory."""
    spec = self.spec
    if path is None or spec.z_entries <= zstore.MEMORY_ENTRIES:
      return TableMz(replicate(jnp.asarray(values, jnp.int32) + spec.z_first_token),
                     spec.z_values, spec.z_first_token)
    values = np.asarray(values)  # the same on every process; process 0 writes, the others wait
    return processes.shared(lambda: zstore.write(
        path, ((start, values[start:start + zstore.CHUNK])
               for start in range(0, spec.z_entries, zstore.CHUNK)),
        spec.z_entries, spec.z_values, spec.z_first_token))

  def size(self) -> dict[str, int]:
    parameters = self.spec.z_entries * self.spec.z_values
    return {"mz_parameters": parameters, "mz_bytes": 4 * parameters}
