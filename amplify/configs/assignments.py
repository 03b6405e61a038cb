"""Sequential assignments (amplify.tasks.assignments): a variable's value, by evaluating its
arguments.

  python -m amplify.main --config=amplify/configs/assignments.py  # minutes on 2 CPU cores
  python -m amplify.main --config=amplify/configs/assignments.py:tiny  # seconds, for tests
  python -m amplify.main --config=amplify/configs/assignments.py:paper  # needs an accelerator

Variants: "" (5 variables over 4 values), "tiny", "paper" (64 variables over 8 values, the size of
Christiano et al. 2018).
A config sets the task's size and budgets. As we read the network, a chain of c definitions takes
about 2c + 1 iterations of its block (fetch the arguments' values, find f's entry; then the
question reads the answer), so the engine's depth 6 covers chains of two, and the paper variant's
depth 10 chains of four. At 8 variables over 8 values the ceiling ends at 0.60 in 4,000 steps; at
5 over 4 at 0.955, over the 90% a CPU preset needs (experiments/results/ceiling_curve/).
"""
from __future__ import annotations

from amplify import registry
from amplify.configs import base


def _default(config) -> None:
  config.task = base.block("assignments", registry.task_plugin("assignments").settings)
  config.task.update(num_variables=5, num_values=4, prosaic_variables=3)
  config.rounds = 8
  config.label.update(size=16384, max_asks=2, max_lookups=3)
  config.train.update(total_steps=4000, baseline_size=65536)


def _paper(config) -> None:
  _default(config)
  config.curriculum.on = True  # the authors' size curriculum, from 8 names
  config.task.update(num_variables=64, num_values=8, prosaic_variables=16)
  config.rounds, config.eval_size = 14, 8192
  config.model.update(width=128, depth=10)
  config.train.total_steps = 20000


def _tiny(config) -> None:
  _default(config)
  config.task.update(num_variables=6, num_values=4, prosaic_variables=3)
  base.tiny(config)


VARIANTS = {"": _default, "tiny": _tiny, "paper": _paper}


def get_config(variant: str = ""):
  return base.variant(base.get_config(), VARIANTS, variant, __file__)
