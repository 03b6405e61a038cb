"""The size curriculum (Christiano, Shlegeris and Amodei 2018): a task with an instance size
(`amplify.types.Sized`) has its D* questions drawn small at first, and one size larger after each
round whose policy imitates H^A at the size it trained on and is deployed (a policy the type-2
gate refuses steps nothing: `amplify.loop.gate`), up to the task's full size.

The step-up rule is the authors', read where H^A may answer IDK: pi's answers on the round's
held-out rows H^A answered equal its labels on more than `--config.curriculum.threshold` of them.
An IDK label is no target (the authors' H always answered), so it neither counts for nor against;
but pi is judged only where H^A answered at least as large a share of the rows as competence
needs (`amplify.loop.phases.MIN_ANSWERED_SHARE`), since imitating its few easy answers says
little. The authors judge it over at least 50 batches; here over the round's held-out rows, so a
round steps up by one at most. It reads no ground truth. Evaluation, D and the baselines stay at
the full size; the referee also scores pi at each size from the start up (`eval_sizes`), with
the curriculum on or off. It is off by default (`--config.curriculum.on=true` turns it on):
amplify's rounds already trust pi difficulty by difficulty, and competence judged at one size
was used at the next, where pi answered worse (experiments/results/curriculum/). A task without
a size ignores it.
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


def eval_sizes(config, task) -> list[int]:
  """The smaller instance sizes pi is also scored at each round, beside the full size: from
  `--config.curriculum.start` up, for a task with a size (whether the curriculum is on or not)."""
  return list(range(config.curriculum.start, task.full_size)) if hasattr(task, "full_size") else []


def agreement(answered: np.ndarray, agrees: np.ndarray, min_share: float) -> float | None:
  """pi's agreement with H^A on the held-out rows H^A answered; None where it answered fewer than
  `min_share` of the rows (too few to judge pi by)."""
  if not answered.any() or answered.mean() < min_share:
    return None
  return float(np.mean(agrees[answered]))


def next_size(config, task, size: int | None, share: float | None) -> int | None:
  """The next round's size: one larger once `share` (`agreement`) exceeds the threshold."""
  if size is None or size >= task.full_size or share is None:
    return size
  return size + 1 if share > config.curriculum.threshold else size
