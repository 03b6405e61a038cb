"""Wildcard search (amplify.tasks.wildcard): sums of f over a pattern's matches, decomposed by
splitting the leftmost wildcard.

  python -m amplify.main --config=amplify/configs/wildcard.py  # minutes on 2 CPU cores
  python -m amplify.main --config=amplify/configs/wildcard.py:tiny  # seconds, for tests
  python -m amplify.main --config=amplify/configs/wildcard.py:paper  # needs an accelerator

Variants: "" (the CPU default), "tiny", "paper" (the size of Christiano et al. 2018).
"""
from __future__ import annotations

from amplify import registry
from amplify.configs import base


def _default(config) -> None:
  # Strings of 4 letters, 12 present: patterns of 1..4 wildcards. pi took about two rounds to
  # become competent at each new count of wildcards, so 10 rounds bring all four (0.999, the
  # ceiling 1.000, on 2 CPU cores).
  config.task = base.block("wildcard", registry.task_plugin("wildcard").settings)
  config.rounds = 10
  config.label.size = 16384
  config.label.update(max_asks=2, max_lookups=2)
  config.train.total_steps = 5000


def _paper(config) -> None:
  # Strings of 6 letters, all 64 present (the authors' min(64, d + 8) at full size), answers
  # clipped at +-32: six counts of wildcards at about two rounds each, and slack. Not measured.
  _default(config)
  config.task.update(length=6, num_strings=64, prosaic_max_wildcards=1)
  config.curriculum.on = True  # the authors' size curriculum, from 8 strings
  config.rounds, config.eval_size = 14, 8192
  config.label.size = 65536
  config.train.total_steps = 28000


def _tiny(config) -> None:
  _default(config)
  config.task.update(length=3, num_strings=6)
  base.tiny(config)


VARIANTS = {"": _default, "tiny": _tiny, "paper": _paper}


def get_config(variant: str = ""):
  return base.variant(base.get_config(), VARIANTS, variant, __file__)
