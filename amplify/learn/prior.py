"""Learning the prior: z* = argmax_z log P_H(z) + sum over D of log P_H(y | x, z), with Optax.

`log_prior` and `log_likelihood` are the oracle's model of the human (for a scripted oracle, the
task's `HumanModel`); both read z only through look-ups. While fitting, a look-up returns each
entry's soft value (softmax of the Mz's parameters), so the objective is differentiable; the
fitted z* is each entry's most likely value, frozen into the Mz that H reads during amplification.
Fitting sees D's observed labels only, never the true world.
"""
from __future__ import annotations

import functools
import time

import jax
import jax.numpy as jnp
import optax

from amplify.learn import mz as mz_lib
from amplify.types import Inputs


CHUNK_ROWS = 1 << 18  # rows of D whose likelihood (and its gradient) is computed at once


def chunk(d: tuple[Inputs, jax.Array], i: jax.Array, rows: int):
  """The i-th chunk of `rows` rows of D = (inputs, labels), in traced code, without copying D:
  (inputs, labels, weights), the last chunk ending at D's end, its rows read before weighing 0."""
  n = d[1].shape[0]
  start = jnp.minimum(i * rows, n - rows)
  take = lambda a: jax.lax.dynamic_slice_in_dim(a, start, rows)
  return jax.tree.map(take, d) + ((start + jnp.arange(rows) >= i * rows).astype(jnp.float32),)


def _count(d, rows: int) -> int:
  return -(-d[1].shape[0] // rows)


def objective(human, lookup, d, rows: int = CHUNK_ROWS) -> tuple[jax.Array, jax.Array]:
  """(log P_H(z), sum over D of log P_H(y | x, z)) for the z that `lookup` reads; D = (inputs,
  labels), summed `rows` rows at a time."""
  rows = min(rows, d[1].shape[0])

  def add(total, i):
    inputs, labels, weights = chunk(d, i, rows)
    return total + jnp.sum(human.log_likelihood(inputs, labels, lookup) * weights), None
  return human.log_prior(lookup), jax.lax.scan(add, jnp.float32(0), jnp.arange(_count(d, rows)))[0]


@functools.partial(jax.jit, static_argnames=("human", "fittable", "tx", "steps", "rows"))
def _fit(params, d, *, human, fittable, tx, steps, rows):
  n = d[1].shape[0]
  lookup = lambda p: functools.partial(fittable.distribution, p)

  def step(carry, _):
    p, state = carry
    # the gradient of the whole objective, summed a chunk of D at a time: full-batch Adam
    # whose memory is that of one chunk (a gradient taken through the sum over chunks would keep
    # every chunk's intermediates for the backward pass)
    value, grads = jax.value_and_grad(lambda p: human.log_prior(lookup(p)))(p)

    def add(total, i):
      inputs, labels, weights = chunk(d, i, rows)
      likelihood = lambda p: jnp.sum(human.log_likelihood(inputs, labels, lookup(p)) * weights)
      chunk_value, chunk_grads = jax.value_and_grad(likelihood)(p)
      return jax.tree.map(jnp.add, total, (chunk_value, chunk_grads)), None

    value, grads = jax.lax.scan(add, (value, grads), jnp.arange(_count(d, rows)))[0]
    updates, state = tx.update(jax.tree.map(lambda g: -g / n, grads), state, p)
    return (optax.apply_updates(p, updates), state), -value / n

  (params, _), losses = jax.lax.scan(step, (params, tx.init(params)), None, length=steps)
  return params, losses


def fit(human, fittable: mz_lib.FittableMz, inputs: Inputs, labels: jax.Array, *, steps: int,
        learning_rate: float, chunk_rows: int = CHUNK_ROWS, path: str | None = None
        ) -> tuple[mz_lib.IndexedModel, jax.Array, dict]:
  """Fits z* to D = (inputs, labels) by full-batch Adam on the negated objective (per row of D),
  D's likelihood summed `chunk_rows` rows at a time; `path`: where the Mz writes a z* too large
  to hold in memory (`FittableMz.freeze`).

  Returns (Mz holding z*, its parameters without padding, a report: both objective terms at z*,
  the final loss, Mz's size, steps and seconds)."""
  start = time.time()
  d, rows = (inputs, labels), min(chunk_rows, labels.shape[0])
  params, losses = _fit(fittable.init(), d, human=human, fittable=fittable,
                        tx=_adam(learning_rate), steps=steps, rows=rows)
  fitted = fittable.freeze(params, path)
  log_prior, log_likelihood = _objective(human, fitted, d, rows)
  report = {"d_rows": labels.shape[0], "log_prior": float(log_prior),
            "log_likelihood": float(log_likelihood),
            "loss": float(losses[-1]), **fittable.size(params), "steps": steps,
            "seconds": round(time.time() - start, 3)}
  return fitted, fittable.unpadded(params), report


_objective = jax.jit(lambda human, fitted, d, rows: objective(human, fitted.distribution, d, rows),
                     static_argnums=(0, 3))
_adam = functools.lru_cache(maxsize=None)(optax.adam)  # one object per rate: fits share a compile
