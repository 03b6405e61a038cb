"""The Evaluator: the only code (beside the named baselines) that reads ground truth.

It scores H^A's labels and pi's answers against the task's `GroundTruth`, overall and by
difficulty, and a latent world's fitted z* against the true world.
Nothing it computes flows back into labelling or training.
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from amplify.types import GroundTruth, Inputs, Task


class Evaluator:

  def __init__(self, task: Task, truth: GroundTruth):
    self._task, self._truth = task, truth

  def _correct(self, inputs: Inputs, answers) -> np.ndarray:
    truth = self._truth.answers(inputs)
    return np.asarray(jnp.all(answers == truth, axis=1))

  def accuracy(self, inputs: Inputs, answers) -> float:
    """Fraction of rows whose answer equals the truth (an IDK answer counts as wrong)."""
    return float(self._correct(inputs, answers).mean())

  def accuracy_by_difficulty(self, inputs: Inputs, answers) -> dict[str, float]:
    correct = self._correct(inputs, answers)
    difficulty = np.asarray(self._task.difficulty(inputs.questions))
    return {str(d): round(float(correct[difficulty == d].mean()), 4)
            for d in np.unique(difficulty)}

  def z_accuracy(self, mz) -> float:
    """A latent world: the fraction of z*'s entries (Mz's table, or a z* on disk a chunk at a
    time) equal to the true world's."""
    world = np.asarray(self._truth.world)
    if hasattr(mz, "blocks"):
      return float(sum(np.sum(tokens == world[start:start + len(tokens)])
                       for start, tokens in mz.blocks()) / len(world))
    return float(np.mean(np.asarray(mz.entries) == world))
