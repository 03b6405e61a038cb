"""The tools H uses while answering a batch: `ask` (the policy pi) and `lookup` (Mz).

Tools enforce a per-question budget and write the transcript as arrays. An oracle holds only a
`handle` on them: an object offering `ask` and `lookup` and nothing else, so no attribute of what it
holds leads to the counts, the transcript, or a way to pi or Mz that leaves no record. Rows that
need fewer steps than others pass `where=False` rather than leaving the batch; such rows, and rows
whose budget is spent, get IDK and cost nothing. Everything here is array code, so H^A jits as one
program.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from amplify.oracles.question import handle  # noqa: F401 (what tools hand an oracle)
from amplify.types import IDK


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

  def restart(self, where: jax.Array) -> None:
    """A fresh budget for the rows `where`; their reads so far stay in the transcript."""
    self._asks_used = jnp.where(where, 0, self._asks_used)
    self._lookups_used = jnp.where(where, 0, self._lookups_used)

  def handle(self, restart: bool = False) -> object:
    """What the oracle is handed: `ask` and `lookup`, nothing else; and `restart` for an oracle
    that hands the rows it gave up on to another H (`hands_back`: the learned H')."""
    tools = {"ask": lambda subquestions, where: self.ask(subquestions, where),
             "lookup": lambda keys, where: self.lookup(keys, where)}
    if restart:
      tools["restart"] = lambda where: self.restart(where)
    return handle(**tools)

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


# -- transcripts row by row (the answer store keeps one per answer) ----------------------------

def encode_rows(transcript: Transcript) -> list[bytes]:
  """One record per row: [S, T, subquestions, subanswers, asked, lookup keys, values, looked
  up, overruns] as int16 where every value fits (half the bytes to write), else int32; built for
  the whole batch at once."""
  t = jax.tree.map(np.asarray, transcript)
  n, s = t.asked.shape
  columns = [np.full((n, 1), s), np.full((n, 1), t.looked_up.shape[1]),
             t.subquestions.reshape(n, -1), t.subanswers.reshape(n, -1), t.asked,
             t.lookup_keys, t.lookup_values, t.looked_up, t.overruns[:, None]]
  matrix = np.concatenate([np.asarray(c, np.int32).reshape(n, -1) for c in columns], axis=1)
  small = matrix.size == 0 or (matrix.min() >= -2**15 and matrix.max() < 2**15)
  matrix = matrix.astype(np.int16 if small else np.int32)
  marker = np.full((n, 1), 16 if small else 32, matrix.dtype)
  return [row.tobytes() for row in np.concatenate([marker, matrix], axis=1)]


def decode_rows(blobs: list[bytes], question_len: int, answer_len: int) -> Transcript:
  """The rows `encode_rows` wrote (all of one shape) as a Transcript of numpy arrays."""
  if len({len(b) for b in blobs}) > 1 or len({b[:2] for b in blobs}) > 1:  # several encodings
    groups: dict = {}
    for i, b in enumerate(blobs):
      groups.setdefault((len(b), b[:2]), []).append(i)
    return place([(np.asarray(rows), decode_rows([blobs[i] for i in rows], question_len,
                                                 answer_len)) for rows in groups.values()],
                 len(blobs))
  dtype = np.int16 if np.frombuffer(blobs[0][:2], np.int16)[0] == 16 else np.int32
  matrix = np.frombuffer(b"".join(blobs), dtype).reshape(len(blobs), -1)[:, 1:].astype(np.int32)
  s, t = int(matrix[0, 0]), int(matrix[0, 1])
  widths = [s * question_len, s * answer_len, s, t, t, t, 1]
  parts = np.split(matrix[:, 2:], np.cumsum(widths)[:-1], axis=1)
  n = len(blobs)
  return Transcript(parts[0].reshape(n, s, question_len), parts[1].reshape(n, s, answer_len),
                    parts[2].astype(bool), parts[3], parts[4], parts[5].astype(bool),
                    parts[6][:, 0])


def place(parts: list[tuple[np.ndarray, Transcript]], n: int) -> Transcript:
  """One Transcript of n rows from parts (row indices, transcript of those rows), each padded to
  the most ask and look-up slots among them."""
  parts = [(rows, jax.tree.map(np.asarray, t)) for rows, t in parts if len(rows)]
  s = max([t.asked.shape[1] for _, t in parts], default=0)
  k = max([t.looked_up.shape[1] for _, t in parts], default=0)
  lq = next((t.subquestions.shape[2] for _, t in parts), 0)
  la = next((t.subanswers.shape[2] for _, t in parts), 0)
  out = Transcript(np.zeros((n, s, lq), np.int32), np.zeros((n, s, la), np.int32),
                   np.zeros((n, s), bool), np.zeros((n, k), np.int32), np.zeros((n, k), np.int32),
                   np.zeros((n, k), bool), np.zeros(n, np.int32))
  for rows, t in parts:
    ts, tk = t.asked.shape[1], t.looked_up.shape[1]
    out.subquestions[rows, :ts], out.subanswers[rows, :ts] = t.subquestions, t.subanswers
    out.asked[rows, :ts] = t.asked
    out.lookup_keys[rows, :tk], out.lookup_values[rows, :tk] = t.lookup_keys, t.lookup_values
    out.looked_up[rows, :tk], out.overruns[rows] = t.looked_up, t.overruns
  return jax.tree.map(jnp.asarray, out)
