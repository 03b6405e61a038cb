"""The built-in tasks, registered by name (`--task=NAME`; more through `amplify.registry`)."""
from __future__ import annotations

import jax

from amplify import registry
from amplify.tasks.base import GroundTruth, Task
from amplify.tasks.colored_digits import make_colored_digits
from amplify.tasks.lexicon import LexiconSettings, make_lexicon
from amplify.tasks.permutation import PermutationPowering, PermutationSettings, PermutationTruth

registry.register_task("lexicon", make_lexicon, LexiconSettings)
registry.register_task(
    "permutation", lambda s, key: (PermutationPowering(s.num_elements, s.k_bits, s.prosaic_max_k),
                                   PermutationTruth()), PermutationSettings)
registry.register_task("colored_digits", lambda s, key: make_colored_digits(key))

WORLD = 3  # fold_in tag of the world's key (rounds.py lists the other tags)


def make_task(config) -> tuple[Task, GroundTruth]:
  """The task (for everyone) and its ground truth (for the evaluator and named baselines only).
  A latent world, and any data drawn from it, derives from config.seed."""
  plugin = registry.task_plugin(config.task)
  return plugin.make(config.task_config, jax.random.fold_in(jax.random.key(config.seed), WORLD))
