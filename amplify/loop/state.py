"""What a run fixes before its first round (`Run`), what a round hands the next (`State`), and a
round's labelled questions and their split (`Batch`, `Split`). Every RNG key derives from
`config.seed` by `fold_in` on a phase's tag and the round, so a rerun of the same config gives the
same numbers on the same machine."""
from __future__ import annotations

import dataclasses

import jax
import numpy as np

from amplify.configs import heldout_rows, replay_rows
from amplify.files.metrics import MetricWriter
from amplify.learn.amplifier import Amplifier, Labels
from amplify.learn.distill import Distiller, LabelledSet
from amplify.learn.mz import MzView
from amplify.learn.policy import make_policy
from amplify.learn.type2 import Type2
from amplify.loop import arms as arms_lib
from amplify.types import Inputs, Task

# fold_in tags, one per phase, so no two phases share a key (amplify.tasks.WORLD is 3)
EVAL, D_SAMPLE, BASELINE, ROUND = 1, 2, 10, 100
SAMPLE, LABEL, INIT, DISTILL, WITH_D, TYPE2, FOCUS = 0, 1, 2, 3, 4, 5, 6


def round_key(key: jax.Array, r: int) -> jax.Array:
  return jax.random.fold_in(key, ROUND + r)


def policy_key(key: jax.Array, r: int) -> jax.Array:
  """The key of round r's fresh policy (with warm starts only round 0 draws one)."""
  return jax.random.fold_in(round_key(key, r), INIT)


@dataclasses.dataclass
class Run:
  """What a run fixes before its first round. It holds no ground truth: the referee (the process
  that does) is handed to `evaluate` and the baselines alone."""
  config: object  # the run's ConfigDict (amplify.configs)
  workdir: str
  task: Task
  arm: arms_lib.Arm
  plan: tuple[arms_lib.RoundPlan, ...]
  amplifier: Amplifier
  view: MzView | None  # what pi is shown of a question (None: the question itself)
  z_star_view: MzView | None  # the ceiling's view: the `--config.model.policy` network reading the fitted z*
  metrics: MetricWriter
  key: jax.Array
  eval_inputs: Inputs
  d_sample: tuple[Inputs, jax.Array]  # D rows for the agreement-on-D figures
  z_accuracy: float | None
  start: float
  type2: Type2 | None  # the type-2 evaluator (None: --config.type2.size=0)
  coverage: object | None  # the task's key coverage (`amplify.tasks.base.KeyCoverage`) or None

  @property
  def reads_mz(self) -> bool:
    """pi reads Mz (else it memorises, or the task names no keys)."""
    return self.view is not None

  def new_distiller(self, r: int, schedule_steps: int) -> Distiller:
    """Round r's fresh policy on a schedule of `schedule_steps`."""
    c = self.config
    policy = make_policy(self.task.spec, c.model, policy_key(self.key, r), reads_mz=self.reads_mz)
    # a round trains on at most its train rows + the replay buffer (+ as many rows of D)
    rows = c.label.size - heldout_rows(c)
    capacity = rows * (1 + any(p.with_d for p in self.plan)) + replay_rows(c)
    return Distiller(policy, c.train, schedule_steps, self.task.augment if c.train.augment else None,
                     capacity=capacity, view=self.view)


@dataclasses.dataclass(frozen=True)
class State:
  """What a round hands the next; a checkpoint keeps all of it. Phases return a new State."""
  distiller: Distiller | None = None  # pi_{r-1} (None before round 0's distillation)
  replay: LabelledSet | None = None
  competent: np.ndarray | None = None  # bool[difficulties]: where H may ask pi
  steps_used: int = 0
  seen: np.ndarray | None = None  # bool[z entries]: keys named by a question pi trained on
  size: int | None = None  # the instance size of this round's D* (amplify.loop.curriculum)



@dataclasses.dataclass(frozen=True)
class Batch:
  """A round's questions and H^A's labels."""
  inputs: Inputs
  labels: Labels
  answered: np.ndarray  # bool[B]: rows H^A answered (not IDK)
  seconds: float


@dataclasses.dataclass(frozen=True)
class Split:
  """A round's labels split IID: the first n_heldout rows held out, the rest for training;
  `train_set` is what pi trains on (train rows, replay, capped IDK rows, rows of D)."""
  n_heldout: int
  heldout: LabelledSet
  train: LabelledSet
  train_answered: np.ndarray  # bool[rows of train]
  heldout_answered: np.ndarray  # bool[n_heldout]
  train_set: LabelledSet
