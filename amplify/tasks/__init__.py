"""The tasks, found by name (`--task=NAME`): the built-in ones are entry points of amplify's
pyproject.toml, a plug-in's are its own (`amplify.registry`)."""
from __future__ import annotations

import jax

from amplify import registry
from amplify.types import GroundTruth, Task

WORLD = 3  # fold_in tag of the world's key (amplify.loop lists the other tags)


def make_task(config) -> tuple[Task, GroundTruth]:
  """The task (for everyone) and its ground truth (for the evaluator and named baselines only).
  A latent world, and any data drawn from it, derives from config.seed."""
  plugin = registry.task_plugin(config.task)
  return plugin.make(config.task_config, jax.random.fold_in(jax.random.key(config.seed), WORLD))
