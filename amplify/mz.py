"""Mz, the indexed model of z*: `lookup(keys, context) -> entries`, Mz(i) = the i-th entry of z*.

H reads z* only through Mz, a few entries at a time. Mz is only asked for indices it holds, so it
needs no out-of-distribution generalisation. Entries that do not exist come back as IDK.
"""
from __future__ import annotations

from typing import Protocol

import jax
import jax.numpy as jnp

from amplify.tasks.base import IDK


class IndexedModel(Protocol):

  def lookup(self, keys: jax.Array, context: jax.Array) -> jax.Array:
    """keys int32[B], context int32[B, C, Lf] -> entries int32[B] (IDK where none)."""


class ExactIndex:
  """Episodic tasks: z* is the example's own facts [key, value]; Mz(key) is the value stored
  under key in that row's context."""

  def lookup(self, keys: jax.Array, context: jax.Array) -> jax.Array:
    match = context[:, :, 0] == keys[:, None]
    value = jnp.sum(jnp.where(match, context[:, :, 1], 0), axis=1)
    return jnp.where(jnp.any(match, axis=1), value, IDK).astype(jnp.int32)
