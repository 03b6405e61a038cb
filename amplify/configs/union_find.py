"""Union find (amplify.tasks.union_find): a variable's label, parent or depth within a bound k,
by asking its neighbours' depths (or values) within k - 1.

  python -m amplify.main --config=amplify/configs/union_find.py  # minutes on 2 CPU cores
  python -m amplify.main --config=amplify/configs/union_find.py:tiny  # seconds, for tests
  python -m amplify.main --config=amplify/configs/union_find.py:paper  # needs an accelerator

Variants: "" (12 variables, 4 labels, bounds up to 3: classes of 4 are no deeper), "tiny",
"paper" (64 variables, 8 labels, bounds up to 7: the size of Christiano et al. 2018, whose
classes of 8 are no deeper; the authors' size curriculum on). A config sets the task's size and
budgets; the policy's depth is about the longest chain of hops it must follow (the bound K, plus
one). Round r's labels reach bound r + 1 at the soonest; on the CPU pi took 2-3 rounds to pass
each bound, so a run needs about 3K rounds (the paper variant's 12 for K = 7 are not measured).
"""
from __future__ import annotations

from amplify import registry
from amplify.configs import base


def _default(config) -> None:
  config.task = base.block("union_find", registry.task_plugin("union_find").settings)
  # 12 variables, bounds k <= 3. pi passes a bound in 2-3 rounds of ~700 steps: 6 rounds of
  # 4,000 steps reached k = 2 (0.902-0.910, ceiling 0.969); 10 of 8,000 reach k = 3 by round 6
  # (0.99, ceiling 0.998; seed 0, CPU, results/reproduce_2018/).
  config.rounds = 10
  config.label.update(size=16384, max_asks=3, max_lookups=7)
  config.train.update(total_steps=8000, baseline_size=65536)


def _paper(config) -> None:
  _default(config)
  config.task.update(num_variables=64, num_labels=8, max_depth=7)
  config.curriculum.on = True  # the authors' size curriculum, from 8 names
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
