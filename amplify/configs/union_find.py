"""Union find (amplify.tasks.union_find): a variable's label, parent or depth within a bound k,
by asking its neighbours' depths (or values) within k - 1.

  python -m amplify.main --config=amplify/configs/union_find.py  # minutes on 2 CPU cores
  python -m amplify.main --config=amplify/configs/union_find.py:tiny  # seconds, for tests
  python -m amplify.main --config=amplify/configs/union_find.py:paper  # needs an accelerator

Variants: "" (12 variables, 4 labels, bounds up to 3: classes of 4 are no deeper), "tiny",
"paper" (64 variables, 8 labels, bounds up to 8: the size of Christiano et al. 2018). A config
sets the task's size and budgets; the policy's depth is about the longest chain of hops it must
follow (the bound K, plus one). Round r's labels reach bound r + 1, so a run needs K rounds and
some to spare.
"""
from __future__ import annotations

from amplify import registry
from amplify.configs import base


def _default(config) -> None:
  config.task = base.block("union_find", registry.task_plugin("union_find").settings)
  # 12 variables, bounds k <= 3 (0.910, ceiling 0.969; seed 0, CPU, results/engine_defaults/).
  config.rounds = 6
  config.label.update(size=16384, max_asks=3, max_lookups=7)
  config.train.update(total_steps=4000, baseline_size=65536)


def _paper(config) -> None:
  _default(config)
  config.task.update(num_variables=64, num_labels=8, max_depth=8)
  config.rounds, config.eval_size = 12, 8192
  config.model.update(width=128, depth=9)
  config.train.total_steps = 20000


def _tiny(config) -> None:
  _default(config)
  config.task.update(num_variables=6, num_labels=2, max_depth=2)
  base.tiny(config)


VARIANTS = {"": _default, "tiny": _tiny, "paper": _paper}


def get_config(variant: str = ""):
  return base.variant(base.get_config(), VARIANTS, variant, __file__)
