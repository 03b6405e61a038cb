"""The tasks, found by name (`--task=NAME`): the built-in ones are entry points of amplify's
pyproject.toml, a plug-in's are its own (`amplify.registry`)."""
from __future__ import annotations

import hashlib

import jax
import numpy as np

from amplify import registry
from amplify.types import GroundTruth, Task

WORLD = 3  # fold_in tag of the world's key (amplify.loop lists the other tags)


def world_key(seed: int, secret: bytes | None = None) -> jax.Array:
  """The latent world's RNG key. A run's world folds in the referee's secret (`amplify.truth.
  referee`), which the run's process never holds, so its config and seed alone do not rebuild
  the world; without a secret it is the seed's world alone, the one a test or an experiment that
  acts as the evaluator builds for itself."""
  words = [WORLD]
  if secret is not None:  # all 256 bits of a hash of it, 32 at a time (fold_in takes a uint32)
    digest = hashlib.sha256(b"amplify world\0" + secret).digest()
    words += [int.from_bytes(digest[i:i + 4], "little") for i in range(0, len(digest), 4)]
  return _fold_in_each(jax.random.key(seed), np.asarray(words, np.uint32))


@jax.jit
def _fold_in_each(key: jax.Array, words: jax.Array) -> jax.Array:
  for i in range(words.shape[0]):
    key = jax.random.fold_in(key, words[i])
  return key


def make_task(config, secret: bytes | None = None) -> tuple[Task, GroundTruth]:
  """The task (for everyone) and its ground truth (for the evaluator and named baselines only),
  from config.task (its name and settings) and config.seed. secret: the referee's (a run's world,
  `world_key`); None: the seed's world alone, not a run's."""
  from amplify.configs import settings  # pylint: disable=g-import-not-at-top (configs load tasks)
  plugin = registry.task_plugin(config.task.name)
  return plugin.make(settings(config.task, "task"), world_key(config.seed, secret))
