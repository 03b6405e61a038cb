"""The arms: the comparisons the recipe's authors argue about, each a composition of the same
phases (`amplify.loop.run`: label, split, distil, IID check, evaluate, save). `--arm=NAME` picks one.

An arm states three things: what H (and a policy that reads Mz) reads in place of z*, which
policy it forces if any, and its plan of rounds (where each round's questions come from, whether
it distils, whether D's own rows join the training set). The loop in `rounds.run` is the same for
every arm; prosaic ML and the supervised ceiling are the run's baselines whatever the arm.

- `ltp`: the recipe. IDA from scratch on D*, H reading z* through Mz.
- `no_prior`: IDA on D* with no z*: H's look-ups return IDK, so H answers only what its own prior
  decides (what learning the prior buys).
- `raw_d`: IDA on D* with H reading D's raw rows ("observation j of entity i") instead of z*,
  within `--config.label.max_lookups`, combined by H's own model; with no z* to read, pi memorises (what
  compressing D into z* buys: accuracy and look-ups per question against `ltp`).
- `imitate_on_d`: pi distilled from H (with z*) on D's own questions only, then H^A's policy on D*
  for one labelling round with no training there, and scored on D* (the failure the recipe
  avoids: it trusts generalisation from D's question shapes to D*'s).
- `joint`: `ltp` with D's observed rows added to every round's training set: one network trained
  on D's labels and H^A's D* labels together.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

from amplify.types import LATENT

DEPLOYMENT, TRAINING = "deployment", "training"  # where a round's questions come from: D* or D
Z_STAR, NOTHING, RAW_D = "z*", "nothing", "raw_d"  # what H reads through Mz


@dataclasses.dataclass(frozen=True)
class RoundPlan:
  questions: str = DEPLOYMENT
  distil: bool = True  # False: the round labels and is evaluated, pi stays as it was
  with_d: bool = False  # D's observed rows join the round's training set


@dataclasses.dataclass(frozen=True)
class Arm:
  name: str
  reads: str  # Z_STAR, NOTHING or RAW_D
  plan: Callable[[int], tuple[RoundPlan, ...]]  # --rounds -> the rounds this arm runs
  policy: str | None = None  # forces --config.model.policy (None: the flag decides)

  def rounds(self, config) -> tuple[RoundPlan, ...]:
    return self.plan(config.rounds)


_ida = lambda n: (RoundPlan(),) * n

ARMS = {
    "ltp": Arm("ltp", Z_STAR, _ida),
    "no_prior": Arm("no_prior", NOTHING, _ida),
    "raw_d": Arm("raw_d", RAW_D, _ida, policy="memorises"),
    "imitate_on_d": Arm("imitate_on_d", Z_STAR,
                        lambda n: (RoundPlan(TRAINING), RoundPlan(DEPLOYMENT, distil=False))),
    "joint": Arm("joint", Z_STAR, lambda n: (RoundPlan(with_d=True),) * n),
}


def arms_for(task) -> list[str]:
  """The arms that apply to a task. An episodic task has no z* to leave out or replace: only the
  recipe. `raw_d` needs the task to index D's raw rows and an H that reads them
  (`raw_observations`, `human_answer_from_d`)."""
  if task.spec.regime != LATENT:
    return ["ltp"]
  return [name for name in ARMS
          if name != "raw_d" or hasattr(task, "human_answer_from_d")]


def get_arm(config, task) -> Arm:
  if config.arm not in ARMS:
    raise ValueError(f"unknown arm {config.arm!r} (--arm); choose one of {sorted(ARMS)}.")
  if config.arm not in arms_for(task):
    raise ValueError(f"--arm={config.arm} does not apply to task {task.name!r}; its arms are "
                     f"{arms_for(task)}.")
  return ARMS[config.arm]
