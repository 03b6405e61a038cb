"""Task registry: `--task=NAME` picks one."""
from __future__ import annotations

from amplify.tasks.base import GroundTruth, Task
from amplify.tasks.permutation import PermutationPowering, PermutationTruth

TASKS = {
    "permutation": lambda c: (PermutationPowering(c.num_elements, c.k_bits, c.prosaic_max_k),
                              PermutationTruth()),
}


def make_task(config) -> tuple[Task, GroundTruth]:
  """The task (for everyone) and its ground truth (for the evaluator and named baselines only)."""
  if config.task not in TASKS:
    raise ValueError(f"unknown task {config.task!r} (--task); choose one of {sorted(TASKS)}.")
  return TASKS[config.task](config)
