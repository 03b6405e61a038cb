"""The size curriculum (Christiano, Shlegeris and Amodei 2018): a task with an instance size
(`amplify.types.Sized`) has its D* questions drawn small at first, and one size larger after each
round whose policy imitates H^A at the size it trained on, up to the task's full size.

The step-up rule is the authors': pi's answers on the round's held-out rows equal H^A's labels on
more than `--config.curriculum.threshold` of them (an IDK label counts as a disagreement: pi has
nothing to imitate there). The authors judge it over at least 50 batches; here over the round's
held-out rows, so a round steps up by one at most. It reads no ground truth. Evaluation, D and the
baselines stay at the full size. `--config.curriculum.on=false` turns it off (the authors'
ablation); a task without a size ignores it.
"""
from __future__ import annotations

import numpy as np


def first_size(config, task) -> int | None:
  """Round 0's instance size, `--config.curriculum.start`; None (questions drawn as the task
  draws them) for a task without a size, one whose full size is no larger, or with the
  curriculum off."""
  if not config.curriculum.on or not hasattr(task, "full_size"):
    return None
  return config.curriculum.start if config.curriculum.start < task.full_size else None


def agreement(answered: np.ndarray, agrees: np.ndarray) -> float:
  """The share of held-out rows whose label H^A answered and pi's answer equals."""
  return float(np.mean(answered & agrees)) if len(answered) else 0.0


def next_size(config, task, size: int | None, share: float) -> int | None:
  """The next round's size: one larger once `share` (`agreement`) exceeds the threshold."""
  if size is None or size >= task.full_size or share <= config.curriculum.threshold:
    return size
  return size + 1
