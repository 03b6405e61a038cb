"""Learning the prior: z* = argmax_z log P_H(z) + sum over D of log P_H(y | x, z), with Optax.

`log_prior` and `log_likelihood` are the oracle's model of the human (for a scripted oracle, the
task's `HumanModel`); both read z only through look-ups. While fitting, a look-up returns each
entry's soft value (softmax of the Mz's parameters), so the objective is differentiable; the
fitted z* is each entry's most likely value, frozen into the Mz that H reads during amplification.
Fitting sees D's observed labels only, never the true world.

D comes in blocks (`blocks`): a task whose D is too large to hold (lexicon's past
`lexicon.MEMORY_ROWS` rows) gives it a block at a time, each block's rows reading only its own
range of z's entries, and its human model a sum over those ranges. The fit is then one fit per
block, each with its own table of logits and Adam state: with Adam's element-wise steps, the same
fit as one over the whole table, whose memory is that of one block. Most tasks give one block.
"""
from __future__ import annotations

import functools
import time
from typing import Iterable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from amplify.learn import mz as mz_lib
from amplify.learn.mesh import to_host
from amplify.types import Inputs


CHUNK_ROWS = 1 << 18  # rows of D whose likelihood (and its gradient) is computed at once


class Block(NamedTuple):
  """Rows of D that read only z's entries first .. first + entries - 1."""
  first: int
  entries: int
  inputs: Inputs
  labels: jax.Array


def blocks(task) -> Iterable[Block]:
  """The task's D in blocks (`observation_blocks`), or all of D as one block."""
  if hasattr(task, "observation_blocks"):
    return task.observation_blocks()
  return [Block(0, task.spec.z_entries, *task.observations())]


def chunk(d: tuple[Inputs, jax.Array], i: jax.Array, rows: int):
  """The i-th chunk of `rows` rows of D = (inputs, labels), in traced code, without copying D:
  (inputs, labels, weights), the last chunk ending at D's end, its rows read before weighing 0."""
  n = d[1].shape[0]
  start = jnp.minimum(i * rows, n - rows)
  take = lambda a: jax.lax.dynamic_slice_in_dim(a, start, rows)
  return jax.tree.map(take, d) + ((start + jnp.arange(rows) >= i * rows).astype(jnp.float32),)


def _count(d, rows: int) -> int:
  return -(-d[1].shape[0] // rows)


def objective(human, lookup, keys, d, rows: int = CHUNK_ROWS) -> tuple[jax.Array, jax.Array]:
  """(log P_H of z's entries `keys`, sum over D of log P_H(y | x, z)) for the z that `lookup`
  reads; D = (inputs, labels), summed `rows` rows at a time."""
  rows = min(rows, d[1].shape[0])

  def add(total, i):
    inputs, labels, weights = chunk(d, i, rows)
    return total + jnp.sum(human.log_likelihood(inputs, labels, lookup) * weights), None
  return (human.log_prior(lookup, keys),
          jax.lax.scan(add, jnp.float32(0), jnp.arange(_count(d, rows)))[0])


@functools.partial(jax.jit, static_argnames=("human", "fittable", "tx", "steps", "rows"))
def _fit(params, keys, d, *, human, fittable, tx, steps, rows):
  """Adam on one block: its entries `keys` (int32[E], consecutive), its rows d."""
  n = d[1].shape[0]
  lookup = lambda p: lambda k: fittable.distribution(p, k - keys[0])

  def step(carry, _):
    p, state = carry
    # the gradient of the whole objective, summed a chunk of D at a time: full-batch Adam
    # whose memory is that of one chunk (a gradient taken through the sum over chunks would keep
    # every chunk's intermediates for the backward pass)
    value, grads = jax.value_and_grad(lambda p: human.log_prior(lookup(p), keys))(p)

    def add(total, i):
      inputs, labels, weights = chunk(d, i, rows)
      likelihood = lambda p: jnp.sum(human.log_likelihood(inputs, labels, lookup(p)) * weights)
      chunk_value, chunk_grads = jax.value_and_grad(likelihood)(p)
      return jax.tree.map(jnp.add, total, (chunk_value, chunk_grads)), None

    value, grads = jax.lax.scan(add, (value, grads), jnp.arange(_count(d, rows)))[0]
    updates, state = tx.update(jax.tree.map(lambda g: -g / n, grads), state, p)
    return (optax.apply_updates(p, updates), state), -value / n

  (params, _), losses = jax.lax.scan(step, (params, tx.init(params)), None, length=steps)
  values = jnp.argmax(params[:keys.shape[0]], axis=-1)  # one byte an entry where that holds it
  values = values.astype(jnp.uint8 if params.shape[-1] <= 256 else jnp.int32)
  at_z = objective(human, lambda k: jax.nn.one_hot(values[k - keys[0]], params.shape[-1]), keys,
                   d, rows)
  return values, losses[-1], at_z


def fit(human, fittable: mz_lib.FittableMz, d: Iterable[Block], *, steps: int,
        learning_rate: float, chunk_rows: int = CHUNK_ROWS, path: str | None = None
        ) -> tuple[mz_lib.IndexedModel, np.ndarray, dict]:
  """Fits z* to D (`Block`s; `blocks(task)`) by full-batch Adam on the negated objective (per
  row of the block), a block at a time, its likelihood summed `chunk_rows` rows at a time;
  `path`: where the Mz writes a z* too large to hold in memory (`FittableMz.freeze`).

  Returns (Mz holding z*, z*'s value indices int[z_entries] (what a checkpoint keeps), a report:
  both objective terms at z*, the final loss, Mz's size, D's rows and blocks, steps, seconds)."""
  start = time.time()
  values, covered, sums = [], 0, np.zeros(4)  # rows, loss x rows, log prior, log likelihood
  for block in d:
    if block.first != covered:
      raise ValueError(f"D's blocks must cover z's entries in order: a block starts at entry "
                       f"{block.first}, not {covered}.")
    n = block.labels.shape[0]
    keys = jnp.arange(block.first, block.first + block.entries, dtype=jnp.int32)
    found, block_loss, (block_prior, block_likelihood) = _fit(
        fittable.init(block.entries), keys, (block.inputs, block.labels), human=human,
        fittable=fittable, tx=_adam(learning_rate), steps=steps, rows=min(chunk_rows, n))
    values.append(to_host(found))
    covered += block.entries
    sums += [n, float(block_loss) * n, float(block_prior), float(block_likelihood)]
  rows, loss, log_prior, log_likelihood = sums
  report = {"d_rows": int(rows), "d_blocks": len(values), "log_prior": float(log_prior),
            "log_likelihood": float(log_likelihood), "loss": float(loss / rows),
            **fittable.size(), "steps": steps, "seconds": round(time.time() - start, 3)}
  values = np.concatenate(values)
  return fittable.freeze(values, path), values, report


_adam = functools.lru_cache(maxsize=None)(optax.adam)  # one object per rate: fits share a compile
