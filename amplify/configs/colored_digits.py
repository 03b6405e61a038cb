"""Colored MNIST (Arjovsky et al. 2019) on scikit-learn's 8x8 digits (amplify.tasks.colored_digits).

  python -m amplify.main --config=amplify/configs/colored_digits.py  # under a minute on 2 CPU cores
  python -m amplify.main --config=amplify/configs/colored_digits.py:tiny  # for tests

One round: H answers every D* question in round 0 by applying z*, so later rounds add nothing.
label.size and eval_size are the D* pools' sizes and train.baseline_size exceeds D (700 rows): the
samplers return whole pools. The engine's network, trained briefly (150 steps): within a few
hundred it memorises D's 25% flipped labels. The tiny variant keeps a one-block network of
width 16, for tests.
"""
from __future__ import annotations

from amplify import registry
from amplify.configs import base


def _default(config) -> None:
  config.task = base.block("colored_digits", registry.task_plugin("colored_digits").settings)
  config.rounds, config.eval_size = 1, 247
  config.label.size = 450
  config.train.update(total_steps=150, baseline_size=65536)
  config.prior.steps = 100


def _tiny(config) -> None:
  _default(config)
  config.model.update(width=16, depth=1, heads=2)
  config.train.update(total_steps=60, warmup_steps=20, steps_per_call=60)


VARIANTS = {"": _default, "tiny": _tiny}


def get_config(variant: str = ""):
  return base.variant(base.get_config(), VARIANTS, variant, __file__)
