"""Experiment configuration: one flat dataclass, named presets, and validation.

Every field is an absl flag of the same name (`amplify.main`), so any of them can be overridden
on the command line: `python -m amplify.main --task=permutation --rounds=6 --width=128`.
"""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class Config:
  # what to run
  task: str = "permutation"
  oracle: str = "scripted"
  rounds: int = 6
  seed: int = 0
  # permutation powering
  num_elements: int = 8
  k_bits: int = 4
  prosaic_max_k: int = 4
  # amplification
  label_size: int = 16384  # D* questions H^A labels per round
  heldout_fraction: float = 0.25  # of each round's labels, kept out of training for the IID check
  eval_size: int = 4096  # fresh D* questions for ground-truth accuracy
  max_asks: int = 4  # per-question budget of H's subquestions to pi
  max_lookups: int = 4  # per-question budget of H's look-ups in Mz
  competence: float = 0.95  # H asks pi only at difficulties where pi's held-out agreement >= this
  noise_rate: float = 0.1  # the noisy oracle's slip probability
  idk_share: float = 0.1  # at most this share of a round's training rows are IDK labels (1: all)
  replay_size: int = 32768  # rows of earlier rounds' answered labels replayed (newest kept; 0: none)
  warm_start: bool = True  # pi_r starts from pi_{r-1}
  augment: bool = True  # train on the task's symmetries (Task.augment), in every arm alike
  baselines: bool = True  # also train prosaic ML and the supervised ceiling (false: IDA alone)
  # policy (the same network for amplification, prosaic ML and the ceiling)
  width: int = 64
  depth: int = 4
  heads: int = 4
  # distillation
  total_steps: int = 4000  # amplification spreads these over its rounds; each baseline gets all
  batch_size: int = 256
  learning_rate: float = 2e-3
  warmup_steps: int = 100
  weight_decay: float = 0.01
  steps_per_call: int = 200  # optimiser steps per jitted call
  baseline_size: int = 262144  # labelled examples for prosaic ML (D) and for the ceiling (D*)

  @property
  def heldout_rows(self) -> int:
    return int(round(self.label_size * self.heldout_fraction))

  def validate(self) -> "Config":
    positive = ["rounds", "num_elements", "k_bits", "label_size", "eval_size", "width", "depth",
                "heads", "total_steps", "batch_size", "steps_per_call", "baseline_size"]
    for name in positive:
      if getattr(self, name) < 1:
        raise ValueError(f"--{name}={getattr(self, name)}: must be a positive integer.")
    for name in ["max_asks", "max_lookups", "warmup_steps", "seed", "replay_size"]:
      if getattr(self, name) < 0:
        raise ValueError(f"--{name}={getattr(self, name)}: must be >= 0.")
    if not 1 <= self.heldout_rows <= self.label_size - 1:
      raise ValueError(f"--heldout_fraction={self.heldout_fraction} of --label_size="
                       f"{self.label_size} leaves {self.heldout_rows} held-out rows: both the train "
                       "and the held-out part need rows; choose a fraction strictly between 0 and 1 "
                       "(and a label_size of at least 2).")
    if not 0 <= self.competence <= 1:
      raise ValueError(f"--competence={self.competence}: an agreement rate, must lie in [0, 1].")
    if not 0 <= self.idk_share <= 1:
      raise ValueError(f"--idk_share={self.idk_share}: a share, must lie in [0, 1].")
    if not 0 <= self.noise_rate <= 1:
      raise ValueError(f"--noise_rate={self.noise_rate}: a probability, must lie in [0, 1].")
    if not self.learning_rate > 0:
      raise ValueError(f"--learning_rate={self.learning_rate}: must be > 0.")
    if self.width % self.heads:
      raise ValueError(f"--width={self.width} is not divisible by --heads={self.heads}: "
                       "choose a width that is a multiple of the head count.")
    if self.total_steps < self.rounds:
      raise ValueError(f"--total_steps={self.total_steps} < --rounds={self.rounds}: each round "
                       "needs at least one distillation step.")
    return self


PRESETS = {
    # Runs on 2 CPU cores in a few minutes.
    "default": Config(),
    # The size of Christiano et al. 2018: 64 elements, k < 64. Needs an accelerator.
    "paper": Config(num_elements=64, k_bits=6, prosaic_max_k=4, rounds=7, width=256, depth=8,
                    heads=8, total_steps=20000, batch_size=256, learning_rate=3e-4,
                    label_size=65536, eval_size=8192, baseline_size=262144),
    # Seconds, for tests.
    "tiny": Config(num_elements=4, k_bits=2, prosaic_max_k=2, rounds=3, width=32, depth=2, heads=2,
                   total_steps=600, batch_size=64, label_size=2048, eval_size=512,
                   baseline_size=4096, steps_per_call=100, learning_rate=3e-3),
}


def get_config(preset: str = "default", **overrides) -> Config:
  if preset not in PRESETS:
    raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}.")
  config = dataclasses.replace(PRESETS[preset], **overrides)
  return config.validate()
