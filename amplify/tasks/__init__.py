"""Task registry: `--task=NAME` picks one."""
from __future__ import annotations

import jax

from amplify.tasks.base import GroundTruth, Task
from amplify.tasks.colored_digits import make_colored_digits
from amplify.tasks.lexicon import make_lexicon
from amplify.tasks.permutation import PermutationPowering, PermutationTruth

TASKS = {
    "colored_digits": make_colored_digits,
    "lexicon": make_lexicon,
    "permutation": lambda c, key: (PermutationPowering(c.num_elements, c.k_bits, c.prosaic_max_k),
                                   PermutationTruth()),
}

WORLD = 3  # fold_in tag of the world's key (rounds.py lists the other tags)


def make_task(config) -> tuple[Task, GroundTruth]:
  """The task (for everyone) and its ground truth (for the evaluator and named baselines only).
  A latent world, and any data drawn from it, derives from config.seed."""
  if config.task not in TASKS:
    raise ValueError(f"unknown task {config.task!r} (--task); choose one of {sorted(TASKS)}.")
  return TASKS[config.task](config, jax.random.fold_in(jax.random.key(config.seed), WORLD))
