"""The Distiller: trains pi on (input, label) pairs with Optax.

A `LabelledSet` is bookkeeping on the host (numpy): rounds select, concatenate and trim their
rows there, where a selection of a new length costs nothing (on the device each new length is a
new compiled gather). `fit` moves the set to the device once; each jitted call then runs
`steps_per_call` optimiser steps in a `lax.scan`, sampling minibatches on the device, so Python
dispatches once per chunk, not per step.
"""
from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from amplify.learn.mesh import keep_params, place_params, replicate, split_rows, whole
from amplify.learn.mz import shown
from amplify.types import Inputs


@dataclasses.dataclass
class LabelledSet:
  """inputs (B rows), labels int32[B, La], weights float32[B] (per-row loss weight), held on
  the host as numpy arrays."""
  inputs: Inputs
  labels: np.ndarray
  weights: np.ndarray

  def __len__(self) -> int:
    return int(self.labels.shape[0])

  @staticmethod
  def of(inputs: Inputs, labels) -> "LabelledSet":
    labels = np.asarray(labels)
    return LabelledSet(jax.tree.map(np.asarray, inputs), labels,
                       np.ones(labels.shape[0], np.float32))

  def concat(self, other: "LabelledSet") -> "LabelledSet":
    return jax.tree.map(lambda a, b: np.concatenate([np.asarray(a), np.asarray(b)]), self, other)

  def take(self, index) -> "LabelledSet":
    index = np.asarray(index)
    return jax.tree.map(lambda a: np.asarray(a)[index], self)


jax.tree_util.register_dataclass(LabelledSet, data_fields=["inputs", "labels", "weights"],
                                 meta_fields=[])


def make_optimizer(train, steps: int) -> optax.GradientTransformation:
  """AdamW with a short warm-up and cosine decay over `steps` (`train`: the config's `train`
  block)."""
  return _optimizer(train.learning_rate, train.warmup_steps, train.weight_decay, steps)


@functools.lru_cache(maxsize=None)  # one object per setting: arms with equal settings and data
def _optimizer(learning_rate: float, warmup_steps: int, weight_decay: float,  # shapes share a
               steps: int) -> optax.GradientTransformation:  # compiled `_train_chunk`
  schedule = optax.warmup_cosine_decay_schedule(
      0.0, learning_rate, warmup_steps=min(warmup_steps, steps // 2), decay_steps=steps,
      end_value=0.1 * learning_rate)
  return optax.chain(optax.clip_by_global_norm(1.0),
                     optax.adamw(schedule, weight_decay=weight_decay))


def _loss(model, data: LabelledSet, view) -> jax.Array:
  inputs = shown(view, data.inputs)
  logits = model(inputs.context, inputs.questions)
  per_token = optax.softmax_cross_entropy_with_integer_labels(logits, data.labels)
  return jnp.sum(per_token.mean(axis=1) * data.weights) / jnp.maximum(data.weights.sum(), 1e-6)


@functools.partial(jax.jit,
                   static_argnames=("graphdef", "tx", "steps", "batch_size", "augment",
                                    "shard_params"))
def _train_chunk(graphdef, params, opt_state, data, n, key, active, view, *, tx, steps, batch_size,
                 augment, shard_params=False):
  """The first `active` (<= steps) of `steps` optimiser steps on minibatches drawn from the first
  n rows of `data`, which `augment` (if given) first transforms by one random symmetry per row for
  this chunk; the policy is shown each row through `view` (None: as it is). `active` is traced,
  so a round's last, shorter chunk runs the same compiled program (the steps past it are skipped,
  not computed); step i's key is the same for any `steps` (JAX's partitionable threefry). Each
  minibatch is split over the devices; the parameters and optimiser state stay where
  `amplify.learn.mesh.param_shardings` puts them (`shard_params`)."""
  key, k_augment = jax.random.split(key)
  if augment is not None:
    inputs, labels = augment(k_augment, data.inputs, data.labels)
    data = LabelledSet(inputs, labels, data.weights)

  def train(carry, step_key):
    params, opt_state = carry
    rows = jax.random.randint(step_key, (batch_size,), 0, n)
    batch = split_rows(jax.tree.map(lambda a: a[rows], data))  # each device its share of rows
    loss, grads = jax.value_and_grad(lambda p: _loss(nnx.merge(graphdef, p), batch, view))(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return keep_params((optax.apply_updates(params, updates), opt_state), shard_params), loss

  def step(carry, xs):
    i, step_key = xs
    return jax.lax.cond(i < active, train, lambda carry, _: (carry, jnp.zeros((), jnp.float32)),
                        carry, step_key)

  (params, opt_state), losses = jax.lax.scan(
      step, keep_params((params, opt_state), shard_params),
      (jnp.arange(steps), jax.random.split(key, steps)))
  return params, opt_state, losses.sum() / active


class Distiller:
  """Trains one policy on a schedule of `total_steps`, over one or several `fit` calls.

  The optimiser state and step count carry over between calls, so warm-started rounds are one
  continuous optimisation on the same schedule that a single fit of `total_steps` gets.
  `augment(key, inputs, labels)`, if given, renames every row afresh for each chunk of steps;
  `view` (an `amplify.learn.mz.MzView`), if given, is what the policy is shown of each row.
  `train` is the config's `train` block (optimiser, batch size, steps per jitted call).
  """

  def __init__(self, policy: nnx.Module, train, total_steps: int, augment=None,
               capacity: int = 0, view=None):
    self.policy, self._config, self._augment, self.view = policy, train, augment, view
    self._capacity = capacity  # rows the data are padded to, if they are fewer (see fit)
    self.schedule_steps = total_steps  # the optimiser's schedule (a resume rebuilds it)
    self._tx = make_optimizer(train, total_steps)
    self._graphdef, params = nnx.split(policy, nnx.Param)
    params = place_params(params, train.shard_params)  # on every device, whole or split
    nnx.update(policy, params)
    # one program, not an eager op per leaf; the state placed as the parameters are
    self._opt_state = place_params(jax.jit(self._tx.init)(params), train.shard_params)
    self.steps_run = 0

  def fit(self, data: LabelledSet, steps: int, key: jax.Array, until=None,
          status=lambda text: None) -> float:
    """Up to `steps` optimiser steps on `data` (the policy is updated in place), stopping early
    when `until()`, asked after each chunk of steps, returns True; returns the mean loss of the
    last chunk. `self.steps_run` counts the steps of every call; `status(text)` hears the steps
    done after each chunk (`amplify.views.progress`)."""
    params = nnx.state(self.policy, nnx.Param)
    n = len(data)
    # Pad to `capacity` (or the next power of two above n) so that rounds with growing data reuse
    # one compiled program; padding rows are never drawn (minibatches index the first n rows).
    rows = 1 << (max(n, self._capacity) - 1).bit_length()
    padded = replicate(data.take(np.minimum(np.arange(rows), n - 1)))
    loss, done = float("nan"), 0
    while done < steps:
      chunk = min(self._config.steps_per_call, steps - done)
      new_params, opt_state, loss = _train_chunk(
          self._graphdef, params, self._opt_state, padded, n, jax.random.fold_in(key, done),
          chunk, self.view, tx=self._tx, steps=self._config.steps_per_call,
          batch_size=self._config.batch_size, augment=self._augment,
          shard_params=self._config.shard_params)
      if not math.isfinite(float(loss)):  # the policy and optimiser keep the last good state
        nnx.update(self.policy, params)
        raise FloatingPointError(
            f"the distillation loss became {float(loss)} within steps {self.steps_run}.."
            f"{self.steps_run + chunk} (learning rate {self._config.learning_rate}): start "
            "again in a new --workdir with a lower --config.train.learning_rate (a workdir "
            "resumes only its own config), or check the labels and weights")
      params, self._opt_state = new_params, opt_state
      done += chunk
      self.steps_run += chunk
      status(f"{done}/{steps} steps, loss {float(loss):.4f}")
      if until is not None and done < steps:
        nnx.update(self.policy, params)
        if until():
          break
    nnx.update(self.policy, params)
    return float(loss)

  @property
  def state(self):
    """(parameters, optimiser state): what a checkpoint must hold to continue exactly."""
    return nnx.state(self.policy, nnx.Param), self._opt_state

  def load_state(self, state) -> None:
    params, self._opt_state = state
    nnx.update(self.policy, params)


@functools.partial(jax.jit, static_argnames=("graphdef",))
def _predict(graphdef, params, inputs: Inputs, view) -> jax.Array:
  inputs = shown(view, split_rows(inputs))
  return whole(jnp.argmax(nnx.merge(graphdef, params)(inputs.context, inputs.questions),
                          -1).astype(jnp.int32))


def agrees(predictions: jax.Array, labels: jax.Array) -> np.ndarray:
  """bool[B]: rows whose every answer token equals the label's."""
  return np.all(np.asarray(predictions) == np.asarray(labels), axis=1)


def predict(policy: nnx.Module, inputs: Inputs, view=None, batch_size: int = 4096) -> np.ndarray:
  """pi's answers int32[B, La] (argmax tokens); `view`: what the policy is shown of the inputs
  (an `amplify.learn.mz.MzView` for a policy that reads Mz). Chunks of `batch_size` rows, each
  padded (with copies of its last row) to a power of two: a few compiled shapes per policy,
  whatever the number of rows asked."""
  graphdef, params = nnx.split(policy, nnx.Param)
  inputs = jax.tree.map(np.asarray, inputs)
  n = inputs.questions.shape[0]
  if n == 0:
    return np.asarray(_predict(graphdef, params, inputs, view))
  out = []
  for start in range(0, n, batch_size):
    rows = min(batch_size, n - start)
    index = np.minimum(np.arange(1 << (rows - 1).bit_length()), rows - 1) + start
    chunk = jax.tree.map(lambda a: a[index], inputs)
    out.append(np.asarray(_predict(graphdef, params, chunk, view))[:rows])
  return np.concatenate(out)
