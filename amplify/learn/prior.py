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


def chunks(inputs: Inputs, labels: jax.Array, rows: int = CHUNK_ROWS):
  """D as (inputs, labels, weights) of shape [chunks, rows, ...]: the last chunk padded with
  copies of row 0 that weigh 0, so the objective's memory is that of `rows` rows, not of D."""
  n = labels.shape[0]
  rows = min(rows, n)
  count = -(-n // rows)
  pad = lambda a: jnp.concatenate([a, jnp.broadcast_to(a[:1], (count * rows - n,) + a.shape[1:])
                                   ]).reshape((count, rows) + a.shape[1:])
  weights = (jnp.arange(count * rows) < n).astype(jnp.float32).reshape(count, rows)
  return jax.tree.map(pad, (inputs, labels)) + (weights,)


def objective(human, lookup, d) -> tuple[jax.Array, jax.Array]:
  """(log P_H(z), sum over D of log P_H(y | x, z)) for the z that `lookup` reads; d: D as
  `chunks` gives it, summed a chunk at a time."""
  def add(total, chunk):
    inputs, labels, weights = chunk
    return total + jnp.sum(human.log_likelihood(inputs, labels, lookup) * weights), None
  return human.log_prior(lookup), jax.lax.scan(add, jnp.float32(0), d)[0]


@functools.partial(jax.jit, static_argnames=("human", "fittable", "tx", "steps"))
def _fit(params, d, *, human, fittable, tx, steps):
  n = jnp.sum(d[2])
  lookup = lambda p: functools.partial(fittable.distribution, p)

  def step(carry, _):
    p, state = carry
    # the gradient of the whole objective, summed a chunk of D at a time: full-batch Adam
    # whose memory is that of one chunk (a gradient taken through the sum over chunks would keep
    # every chunk's intermediates for the backward pass)
    value, grads = jax.value_and_grad(lambda p: human.log_prior(lookup(p)))(p)

    def add(total, chunk):
      inputs, labels, weights = chunk
      likelihood = lambda p: jnp.sum(human.log_likelihood(inputs, labels, lookup(p)) * weights)
      chunk_value, chunk_grads = jax.value_and_grad(likelihood)(p)
      return jax.tree.map(jnp.add, total, (chunk_value, chunk_grads)), None

    value, grads = jax.lax.scan(add, (value, grads), d)[0]
    updates, state = tx.update(jax.tree.map(lambda g: -g / n, grads), state, p)
    return (optax.apply_updates(p, updates), state), -value / n

  (params, _), losses = jax.lax.scan(step, (params, tx.init(params)), None, length=steps)
  return params, losses


def fit(human, fittable: mz_lib.FittableMz, inputs: Inputs, labels: jax.Array, *, steps: int,
        learning_rate: float, chunk_rows: int = CHUNK_ROWS
        ) -> tuple[mz_lib.TableMz, jax.Array, dict]:
  """Fits z* to D = (inputs, labels) by full-batch Adam on the negated objective (per row of D),
  D's likelihood summed `chunk_rows` rows at a time.

  Returns (Mz holding z*, its parameters without padding, a report: both objective terms at z*,
  the final loss, Mz's size, steps and seconds)."""
  start = time.time()
  d = chunks(inputs, labels, chunk_rows)
  del inputs, labels  # D is held once, as chunks
  params, losses = _fit(fittable.init(), d, human=human, fittable=fittable,
                        tx=_adam(learning_rate), steps=steps)
  fitted = fittable.freeze(params)
  log_prior, log_likelihood = _objective(human, fitted, d)
  report = {"d_rows": int(jnp.sum(d[2])), "log_prior": float(log_prior),
            "log_likelihood": float(log_likelihood),
            "loss": float(losses[-1]), **fittable.size(params), "steps": steps,
            "seconds": round(time.time() - start, 3)}
  return fitted, fittable.unpadded(params), report


_objective = jax.jit(lambda human, fitted, d: objective(human, fitted.distribution, d),
                     static_argnums=0)
_adam = functools.lru_cache(maxsize=None)(optax.adam)  # one object per rate: fits share a compile
