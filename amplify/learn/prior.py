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
import optax

from amplify.learn import mz as mz_lib
from amplify.types import Inputs


def objective(human, lookup, inputs: Inputs, labels: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(log P_H(z), sum over D of log P_H(y | x, z)) for the z that `lookup` reads."""
  return human.log_prior(lookup), human.log_likelihood(inputs, labels, lookup).sum()


@functools.partial(jax.jit, static_argnames=("human", "fittable", "tx", "steps"))
def _fit(params, inputs, labels, *, human, fittable, tx, steps):
  n = labels.shape[0]

  def loss(p):
    log_prior, log_likelihood = objective(human, functools.partial(fittable.distribution, p),
                                          inputs, labels)
    return -(log_prior + log_likelihood) / n

  def step(carry, _):
    p, state = carry
    value, grads = jax.value_and_grad(loss)(p)
    updates, state = tx.update(grads, state, p)
    return (optax.apply_updates(p, updates), state), value

  (params, _), losses = jax.lax.scan(step, (params, tx.init(params)), None, length=steps)
  return params, losses


def fit(human, fittable: mz_lib.FittableMz, inputs: Inputs, labels: jax.Array, *, steps: int,
        learning_rate: float) -> tuple[mz_lib.TableMz, jax.Array, dict]:
  """Fits z* to D = (inputs, labels) by full-batch Adam on the negated objective (per row of D).

  Returns (Mz holding z*, its parameters without padding, a report: both objective terms at z*,
  the final loss, Mz's size, steps and seconds)."""
  start = time.time()
  params, losses = _fit(fittable.init(), inputs, labels, human=human, fittable=fittable,
                        tx=_adam(learning_rate), steps=steps)
  fitted = fittable.freeze(params)
  log_prior, log_likelihood = objective(human, fitted.distribution, inputs, labels)
  report = {"log_prior": float(log_prior), "log_likelihood": float(log_likelihood),
            "loss": float(losses[-1]), **fittable.size(params), "steps": steps,
            "seconds": round(time.time() - start, 3)}
  return fitted, fittable.unpadded(params), report


_adam = functools.lru_cache(maxsize=None)(optax.adam)  # one object per rate: fits share a compile
