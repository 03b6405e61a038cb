"""The tools H uses while answering a batch: `ask` (the policy pi) and `lookup` (Mz).

Tools enforce a per-question budget and write the transcript as arrays. Rows that need fewer steps
than others pass `where=False` rather than leaving the batch; such rows, and rows whose budget is
spent, get IDK and cost nothing. Everything here is array code, so H^A jits as one program.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp

from amplify.tasks.base import IDK


@dataclasses.dataclass
class Transcript:
  """What H did for each row of a batch; S = ask slots, T = look-up slots used by the decomposition.

  subquestions: int32[B, S, Lq], subanswers: int32[B, S, La], asked: bool[B, S],
  lookup_keys: int32[B, T], lookup_values: int32[B, T], looked_up: bool[B, T],
  overruns: int32[B], the asks and look-ups H tried past the row's budget (answered IDK).
  """
  subquestions: jax.Array
  subanswers: jax.Array
  asked: jax.Array
  lookup_keys: jax.Array
  lookup_values: jax.Array
  looked_up: jax.Array
  overruns: jax.Array


jax.tree_util.register_dataclass(
    Transcript, data_fields=[f.name for f in dataclasses.fields(Transcript)], meta_fields=[])


class BatchTools:
  """`ask` and `lookup` for a whole batch, with a budget per row and an array transcript.

  ask_fn: int32[B, Lq] -> int32[B, La], the policy's answers (or IDK in round 0).
  lookup_fn: int32[B] -> int32[B], Mz's entries (IDK where there is none).
  """

  def __init__(self, ask_fn: Callable[[jax.Array], jax.Array],
               lookup_fn: Callable[[jax.Array], jax.Array], batch_size: int, *, max_asks: int,
               max_lookups: int):
    self._ask_fn, self._lookup_fn = ask_fn, lookup_fn
    self._max_asks, self._max_lookups = max_asks, max_lookups
    self._asks_used = jnp.zeros(batch_size, jnp.int32)
    self._lookups_used = jnp.zeros(batch_size, jnp.int32)
    self._overruns = jnp.zeros(batch_size, jnp.int32)
    self._ask_log: list[tuple[jax.Array, jax.Array, jax.Array]] = []
    self._lookup_log: list[tuple[jax.Array, jax.Array, jax.Array]] = []

  def ask(self, subquestions: jax.Array, where: jax.Array) -> jax.Array:
    """One batched policy call for this subquestion slot: int32[B, Lq] -> int32[B, La]."""
    self._overruns += where & (self._asks_used >= self._max_asks)
    where = where & (self._asks_used < self._max_asks)
    answers = jnp.where(where[:, None], self._ask_fn(subquestions), IDK)
    self._asks_used += where
    self._ask_log.append((subquestions, answers, where))
    return answers

  def lookup(self, keys: jax.Array, where: jax.Array) -> jax.Array:
    """One batched Mz look-up for this slot: int32[B] -> int32[B]."""
    self._overruns += where & (self._lookups_used >= self._max_lookups)
    where = where & (self._lookups_used < self._max_lookups)
    values = jnp.where(where, self._lookup_fn(keys), IDK)
    self._lookups_used += where
    self._lookup_log.append((keys, values, where))
    return values

  def transcript(self, questions: jax.Array, answer_len: int) -> Transcript:
    batch = questions.shape[0]

    def stack(log, empty_shapes):
      if not log:
        return tuple(jnp.zeros((batch, 0) + s, d) for s, d in empty_shapes)
      return tuple(jnp.stack(column, axis=1) for column in zip(*log))

    sq, sa, asked = stack(self._ask_log, [((questions.shape[1],), jnp.int32),
                                          ((answer_len,), jnp.int32), ((), bool)])
    lk, lv, looked = stack(self._lookup_log, [((), jnp.int32), ((), jnp.int32), ((), bool)])
    return Transcript(sq, sa, asked, lk, lv, looked, self._overruns)
