"""Mz, the indexed model of z*: `lookup(keys, context) -> entries`, Mz(i) = the i-th entry of z*.

H reads z* only through Mz, a few entries at a time. Mz is only asked for indices it holds, so it
needs no out-of-distribution generalisation. Entries that do not exist come back as IDK.

Two kinds:
- `ExactIndex` (episodic tasks): z* is the example's own facts, read exactly.
- a fitted Mz (latent worlds): `amplify.prior.fit` maximises the human's objective over the
  parameters of a `FittableMz`, reading z through `distribution` (soft, differentiable look-ups),
  then `freeze` gives the `IndexedModel` H uses. `Table` is the one built: a row of logits per
  entry, for any z that fits in memory, sharded by entry across the devices there are. A
  compressed (neural) Mz for larger z implements the same three methods.
"""
from __future__ import annotations

import dataclasses
from typing import Protocol

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from amplify.tasks.base import IDK, Spec


class IndexedModel(Protocol):

  def lookup(self, keys: jax.Array, context: jax.Array) -> jax.Array:
    """keys int32[B], context int32[B, C, Lf] -> entries int32[B] (IDK where none)."""


class FittableMz(Protocol):
  """What `amplify.prior.fit` needs of an Mz it fits."""

  def init(self):
    """The parameters before fitting (a pytree)."""

  def distribution(self, params, keys: jax.Array) -> jax.Array:
    """keys int32[K] -> float32[K, z_values]: the entries' soft values (differentiable)."""

  def freeze(self, params) -> "TableMz":
    """The fitted z* (each entry's most likely value) as the IndexedModel H reads."""

  def size(self, params) -> dict[str, int]:
    """{"mz_parameters", "mz_bytes"}: what z* takes (padding for sharding excluded)."""

  def unpadded(self, params):
    """The parameters without padding: what a checkpoint keeps (restorable on any devices)."""


@dataclasses.dataclass(frozen=True)
class ExactIndex:
  """Episodic tasks: z* is the example's own facts [key, value]; Mz(key) is the value stored
  under key in that row's context."""

  def lookup(self, keys: jax.Array, context: jax.Array) -> jax.Array:
    match = context[:, :, 0] == keys[:, None]
    value = jnp.sum(jnp.where(match, context[:, :, 1], 0), axis=1)
    return jnp.where(jnp.any(match, axis=1), value, IDK).astype(jnp.int32)


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


jax.tree_util.register_dataclass(ExactIndex, data_fields=[], meta_fields=[])
jax.tree_util.register_dataclass(TableMz, data_fields=["entries"],
                                 meta_fields=["z_values", "z_first_token"])


@dataclasses.dataclass(frozen=True)
class Table:
  """Fits z* as a table of logits float32[z_entries, z_values], the rows sharded across all
  devices (padded to a multiple of the device count). Scales to any z that fits in memory
  (10^6 entries x a few values is a few MB)."""
  spec: Spec

  def init(self) -> jax.Array:
    devices = jax.devices()
    rows = -(-self.spec.z_entries // len(devices)) * len(devices)
    sharding = NamedSharding(Mesh(np.array(devices), ("entries",)), PartitionSpec("entries", None))
    # Zeros: every value equally likely before the data speak (and no key to derive).
    return jax.device_put(jnp.zeros((rows, self.spec.z_values), jnp.float32), sharding)

  def distribution(self, params: jax.Array, keys: jax.Array) -> jax.Array:
    return jax.nn.softmax(params[keys], axis=-1)

  def freeze(self, params: jax.Array) -> TableMz:
    """params: the fitted table, padded or not."""
    values = jnp.argmax(params[:self.spec.z_entries], axis=-1)
    entries = jax.device_put(values.astype(jnp.int32) + self.spec.z_first_token, jax.devices()[0])
    return TableMz(entries, self.spec.z_values, self.spec.z_first_token)

  def size(self, params: jax.Array) -> dict[str, int]:
    rows = self.unpadded(params)
    return {"mz_parameters": int(rows.size), "mz_bytes": int(rows.nbytes)}

  def unpadded(self, params: jax.Array) -> jax.Array:
    return params[:self.spec.z_entries]
