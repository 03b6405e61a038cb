"""The rounds loop, read as the recipe: learn the prior, then a short loop over named phases.

  prior -> for each round of the arm's plan: label -> split -> distil -> IID check -> type-2
  gate -> evaluate -> save -> baselines -> summary

`run(config, workdir)` is the whole experiment; `amplify.main` is a thin absl wrapper around it.
Each phase is a function of the run's fixed parts (`Run`) and what rounds hand on (`State`), so
an arm (`amplify.loop.arms`) is a plan of rounds, not a branch in the loop. Every RNG key derives from
`config.seed` by `fold_in` on (phase, round), so a rerun of the same config gives the same
numbers on the same machine. A workdir whose run has finished is not run again: `run` returns
its summary.
"""
from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
import os
import resource
import time
import weakref
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from amplify.loop import arms as arms_lib
from amplify.files import checkpoint
from amplify.files import events
from amplify.learn import prior
from amplify.views import progress
from amplify.learn.amplifier import Amplifier, Budget, Labels
from amplify.config import Config
from amplify.learn.distill import Distiller, LabelledSet, agrees, predict
from amplify.files.jsonio import read_json, read_jsonl, write_json
from amplify.learn.mz import EmptyMz, ExactIndex, MzView, RawRowsMz, Table, named_keys
from amplify.oracles.make import human_model, make_oracle, make_type2_oracle
from amplify.oracles.make import identity as oracle_identity
from amplify.oracles.per_question import OracleError, Stopped
from amplify.learn.policy import make_policy, reads_mz
from amplify.truth.referee import Referee
from amplify.files.store import AnswerStore
from amplify.tasks import make_task
from amplify.types import EPISODIC, IDK, LATENT, Inputs, Task
from amplify.learn.type2 import Type2, as_deployed, net_score

# fold_in tags, one per phase, so no two phases share a key (amplify.tasks.WORLD is 3)
_EVAL, _D_SAMPLE, _BASELINE, _ROUND = 1, 2, 10, 100
_SAMPLE, _LABEL, _INIT, _DISTILL, _WITH_D, _TYPE2 = 0, 1, 2, 3, 4, 5


def policy_key(key: jax.Array, r: int) -> jax.Array:
  """The key of round r's fresh policy (with warm starts only round 0 draws one)."""
  return jax.random.fold_in(jax.random.fold_in(key, _ROUND + r), _INIT)


class MetricWriter:
  """Appends one JSON object per line to workdir/metrics.jsonl, and writes each line as
  TensorBoard scalars to workdir/tensorboard/ (`amplify.files.events`).

  `keep` selects the lines of an earlier run in the same workdir to keep (resume); the rest are
  dropped, since they will be recomputed. A last line cut short (what a kill in mid-write leaves)
  is dropped with a warning; a damaged line before the last is an error naming it. The event
  files are rebuilt from the kept lines, so TensorBoard shows each point once.
  """

  def __init__(self, path: str, keep=lambda record: False):
    self._path = path
    old = read_jsonl(path) if os.path.exists(path) else []
    self.kept = [r for r in old if keep(r)]
    self.records = list(self.kept)  # every line of this run, kept or written
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
      f.writelines(json.dumps(r) + "\n" for r in self.kept)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
    self._events = events.EventWriter(os.path.join(os.path.dirname(path), events.DIRECTORY),
                                      self.kept)

  def write(self, record: dict) -> None:
    self.records.append(record)
    with open(self._path, "a") as f:
      f.write(json.dumps(record) + "\n")
      f.flush()
      os.fsync(f.fileno())
    self._events.write(record)


def check_workdir(config: Config, workdir: str) -> None:
  """Refuses a workdir that cannot be written, or that holds a run of another config (rather
  than overwrite it). Creates the workdir."""
  try:  # a file written and removed: what the run will do, tried before any work
    os.makedirs(workdir, exist_ok=True)
    probe = os.path.join(workdir, ".write_check")
    with open(probe, "w") as f:
      f.write("ok")
    os.remove(probe)
  except OSError as e:
    raise ValueError(f"workdir {workdir!r} cannot be written ({e.strerror}): choose a writable "
                     "--workdir.") from None
  path = os.path.join(workdir, "config.json")
  if os.path.exists(path):
    old = read_json(path, "the run's config")
    new = dataclasses.asdict(config)
    if old != new:
      changed = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
      raise ValueError(f"workdir {workdir!r} holds a run with a different config (differs in "
                       f"{changed}); use a new --workdir, or the same flags to resume.")


def _mean(values: np.ndarray, where: jax.Array) -> float | None:
  where = np.asarray(where)
  return float(values[where].mean()) if where.any() else None


def _rows(inputs: Inputs, start: int, stop: int | None = None) -> Inputs:
  return jax.tree.map(lambda a: a[start:stop], inputs)


def training_set(train: LabelledSet, answered: jax.Array, replay: LabelledSet | None,
                 idk_share: float) -> LabelledSet:
  """This round's answered rows + the replay buffer + this round's IDK rows, the IDK rows capped
  at `idk_share` of the result. Early rounds label mostly IDK; without the cap those rows, which
  teach only "too hard", take most of a round's steps."""
  known = train.take(jnp.nonzero(answered)[0])
  if replay is not None:
    known = known.concat(replay)
  idk = train.take(jnp.nonzero(~answered)[0])
  if len(known) == 0 or idk_share >= 1:
    return known.concat(idk)
  cap = int(idk_share / (1 - idk_share) * len(known))
  return known.concat(idk.take(jnp.arange(min(cap, len(idk)))))  # IID rows: the first are a sample


MIN_ROWS_FOR_COMPETENCE = 20


def competent_difficulties(difficulty: np.ndarray, answered: np.ndarray, agrees: np.ndarray,
                           max_difficulty: int, threshold: float) -> np.ndarray:
  """bool[max_difficulty + 1]: the difficulties at which pi agrees with H^A's answered held-out
  labels at rate >= threshold, over at least MIN_ROWS_FOR_COMPETENCE rows. This is the IID check,
  per difficulty; it reads no ground truth."""
  competent = np.zeros(max_difficulty + 1, bool)
  for d in range(max_difficulty + 1):
    rows = answered & (difficulty == d)
    competent[d] = rows.sum() >= MIN_ROWS_FOR_COMPETENCE and agrees[rows].mean() >= threshold
  return competent


def steps_for_round(config: Config, plan, r: int, used: int) -> int:
  """Round r's step budget: what earlier rounds left of total_steps, split evenly over the
  distilling rounds to come; the last of them gets all of it (a round that does not distil gets
  none). A round stops early once pi passes the IID check at every difficulty H^A answered (see
  `distil`), and the steps it saves go to later rounds."""
  if not plan[r].distil:
    return 0
  left = config.total_steps - used
  to_come = sum(p.distil for p in plan[r:])
  return left if to_come == 1 else left // to_come


class Checked(NamedTuple):
  """What `check` builds: the task, the referee (the process that holds its ground truth, scores
  predictions and runs the named baselines), H, the answer store (None without --oracle_store)
  and type 2's judge (None with --type2_size=0). `close()` ends the referee; `run` does that
  itself."""
  task: Task
  referee: Referee
  oracle: object
  store: AnswerStore | None
  type2_oracle: object | None

  def close(self) -> None:
    self.referee.close()


def _task_and_referee(config: Config) -> tuple[Task, Referee]:
  """The task, and a referee process holding its ground truth: this process keeps none. Raises
  ValueError if anything here still holds the truth once it is handed over (a task that keeps a
  reference to its own truth)."""
  task, truth = make_task(config)
  referee = Referee(task, truth, len(arms_lib.get_arm(config, task).rounds(config)))
  try:
    held = weakref.ref(truth)
  except TypeError:  # a truth of a type that takes no weak reference: nothing to test
    held = lambda: None
  del truth
  gc.collect()
  if held() is not None:
    referee.close()
    raise ValueError(f"task {config.task!r}: its ground truth is still referenced in the run's "
                     "process after it was handed to the referee; the task (or its module) must "
                     "not keep a reference to its GroundTruth.")
  return task, referee


def check(config: Config, workdir: str) -> Checked:
  """Every check of the user's settings, before any work: raises ValueError naming the
  problem. Starts the referee process, which holds the truth from here on."""
  config.validate()
  task, referee = _task_and_referee(config)
  try:
    oracle, store, type2_oracle = _check(config, workdir, task)
  except BaseException:
    referee.close()
    raise
  return Checked(task, referee, oracle, store, type2_oracle)


def _check(config: Config, workdir: str, task: Task):
  """The checks that need the task: returns H, the answer store and type 2's judge."""
  arm = arms_lib.get_arm(config, task)
  oracle = make_oracle(config, task, reads_raw_d=arm.reads == arms_lib.RAW_D)
  default = Config()
  type2_oracle = None
  if config.type2_size:
    type2_oracle = make_type2_oracle(config, task, oracle, reads_raw_d=arm.reads == arms_lib.RAW_D)
    if not isinstance(getattr(task, "ask_depth", None), int):
      raise ValueError(f"task {config.task!r} declares no ask_depth (the longest chain of asks in "
                       "H's decomposition, which type 2 recurses through): add it to the task, "
                       "or pass --type2_size=0.")
  else:
    for flag in ("type2_oracle", "gate", "type2_tolerance"):
      if getattr(config, flag) != getattr(default, flag):
        raise ValueError(f"--{flag} is read only with type 2; --type2_size=0 turns it off: drop "
                         "the flag.")
  if config.policy != default.policy and not task.spec.names_mz_keys:
    raise ValueError(f"--policy is read only by tasks whose questions name Mz keys; --task="
                     f"{config.task} would ignore it: drop the flag.")
  for flag in ("prior_steps", "prior_learning_rate"):
    if getattr(config, flag) != getattr(default, flag) and task.spec.regime != LATENT:
      raise ValueError(f"--{flag} is read only by latent-world tasks; --task={config.task} "
                       "would ignore it: drop the flag.")
  if getattr(oracle, "needs_store", None) and not config.oracle_store:
    raise ValueError(f"--oracle={config.oracle} {oracle.needs_store}: pass --oracle_store=PATH.")
  # refuses a network that can't read the task
  make_policy(task.spec, config, jax.random.key(0), reads_mz=reads_mz(task.spec, config))
  if arm.reads == arms_lib.RAW_D and config.max_lookups > (rows := task.raw_observations()[2]):
    raise ValueError(f"--max_lookups={config.max_lookups}: in the raw_d arm a look-up addresses "
                     f"one of an entity's first {rows} rows of D; use --max_lookups<={rows}.")
  asks, lookups = task.budget_needed
  for flag, needed in (("max_asks", asks), ("max_lookups", lookups)):
    if getattr(config, flag) < needed:
      raise ValueError(f"--{flag}={getattr(config, flag)}: H's decomposition for task "
                       f"{task.name!r} needs up to {needed} per question; use --{flag}>={needed}.")
  for flag, sampler in (("label_size", task.deployment_questions),
                        ("eval_size", task.evaluation_questions)):
    rows = sampler(jax.random.key(0), getattr(config, flag)).questions.shape[0]
    if rows < getattr(config, flag):  # a finite task returns at most its pool's rows
      raise ValueError(f"--{flag}={getattr(config, flag)}: task {task.name!r} has only {rows} "
                       f"such questions; use --{flag}<={rows}.")
  check_workdir(config, workdir)
  store = None
  if config.oracle_store:
    store = AnswerStore(config.oracle_store, {"task": config.task, "settings": dataclasses.asdict(
        config.task_config)})
  return oracle, store, type2_oracle


# -- the run's fixed parts and what rounds hand on --------------------------------------------

@dataclasses.dataclass
class Run:
  """What a run fixes before its first round. It holds no ground truth: the referee (the process
  that does) is handed to `evaluate` and the baselines alone."""
  config: Config
  workdir: str
  task: Task
  arm: arms_lib.Arm
  plan: tuple[arms_lib.RoundPlan, ...]
  amplifier: Amplifier
  view: MzView | None  # what pi is shown of a question (None: the question itself)
  z_star_view: MzView | None  # the ceiling's view: the `--policy` network reading the fitted z*
  metrics: MetricWriter
  key: jax.Array
  eval_inputs: Inputs
  d_sample: tuple[Inputs, jax.Array]  # D rows for the agreement-on-D figures
  z_accuracy: float | None
  start: float
  type2: Type2 | None  # the type-2 evaluator (None: --type2_size=0)

  @property
  def reads_mz(self) -> bool:
    """pi reads Mz (else it memorises, or the task names no keys)."""
    return self.view is not None

  def new_distiller(self, r: int, schedule_steps: int) -> Distiller:
    """Round r's fresh policy on a schedule of `schedule_steps`."""
    c = self.config
    policy = make_policy(self.task.spec, c, policy_key(self.key, r), reads_mz=self.reads_mz)
    # a round trains on at most its train rows + the replay buffer (+ as many rows of D)
    rows = c.label_size - c.heldout_rows
    capacity = rows * (1 + any(p.with_d for p in self.plan)) + c.replay_size
    return Distiller(policy, c, schedule_steps, self.task.augment if c.augment else None,
                     capacity=capacity, view=self.view)


@dataclasses.dataclass
class State:
  """What a round hands the next; a checkpoint keeps all of it."""
  distiller: Distiller | None = None  # pi_{r-1} (None before round 0's distillation)
  replay: LabelledSet | None = None
  competent: np.ndarray | None = None  # the difficulties H may ask pi about
  steps_used: int = 0
  seen: np.ndarray | None = None  # bool[z entries]: keys named by a question pi trained on


@dataclasses.dataclass
class Batch:
  """A round's questions, H^A's labels, and their split into train / held-out (IID)."""
  inputs: Inputs
  labels: Labels
  answered: np.ndarray  # bool[B]: rows H^A answered (not IDK)
  seconds: float
  n_heldout: int = 0  # the first n_heldout rows are held out
  train: LabelledSet | None = None
  heldout: LabelledSet | None = None
  train_set: LabelledSet | None = None  # what pi trains on: train rows, replay, D rows


def learn_prior(task, oracle, referee: Referee, params, metrics: MetricWriter, workdir: str,
                config: Config):
  """Episodic tasks: Mz is the exact index of each example's facts (z_accuracy None). Latent
  worlds: fits z* to all of D (or restores the fit a checkpoint holds), writes the `prior` line;
  returns (Mz, z* accuracy against the true world)."""
  if task.spec.regime == EPISODIC:
    return ExactIndex(), None
  table = Table(task.spec)
  if params is not None:  # resumed: the fit and its metrics line are already in the workdir
    mz = table.freeze(params)
    return mz, referee.z_accuracy(mz)
  inputs, labels = task.observations()  # all of D
  mz, params, report = prior.fit(human_model(oracle, task), table, inputs, labels, steps=config.prior_steps,
                                 learning_rate=config.prior_learning_rate)
  z_accuracy = referee.z_accuracy(mz)
  metrics.write({"round": None, "phase": "prior", "d_rows": len(labels), **report,
                 "z_accuracy": z_accuracy})
  checkpoint.save_prior(workdir, params)
  print(f"prior: z* accuracy {z_accuracy:.4f} from {len(labels)} rows of D, "
        f"{report['mz_parameters']} parameters, {report['seconds']:.1f}s", flush=True)
  return mz, z_accuracy


def _arm_mz(arm: arms_lib.Arm, task, z_star):
  """What H (and a policy that reads Mz) reads in this arm: z*, nothing, or D's raw rows."""
  if arm.reads == arms_lib.NOTHING:
    return EmptyMz()
  if arm.reads == arms_lib.RAW_D:
    items, values, rows_per_item = task.raw_observations()
    return RawRowsMz.index(items, values, task.spec.z_entries, rows_per_item)
  return z_star


def _begin(config: Config, workdir: str, checked: Checked) -> tuple[Run, Referee, int]:
  """Sets the run up (fitting or restoring z*); returns it, the referee and the last round a
  checkpoint holds (-1: none)."""
  start = time.time()
  task, referee, oracle, store, type2_oracle = checked
  arm = arms_lib.get_arm(config, task)
  plan = arm.rounds(config)
  os.makedirs(workdir, exist_ok=True)
  write_json(os.path.join(workdir, "config.json"), dataclasses.asdict(config))
  last = checkpoint.latest_readable_round(workdir)
  done = -1 if last is None else min(last, len(plan) - 1)
  print(f"jax {jax.__version__} on {jax.devices()}; arm {arm.name}"
        + (f" (pi {arm.policy}, whatever --policy says)" if arm.policy else "") + "; "
        f"{f'resuming after round {done}' if done >= 0 else 'starting afresh'}", flush=True)
  prior_params = (checkpoint.restore_prior(workdir, Table(task.spec).shape)
                  if task.spec.regime != EPISODIC else None)
  metrics = MetricWriter(os.path.join(workdir, "metrics.jsonl"),
                         keep=lambda rec: (rec["phase"] == "baseline"
                                           or (rec["phase"] == "prior" and prior_params is not None)
                                           or (rec["phase"] != "prior" and rec["round"] <= done)))
  z_star, z_accuracy = learn_prior(task, oracle, referee, prior_params, metrics, workdir, config)
  mz = _arm_mz(arm, task, z_star)
  arm_config = dataclasses.replace(config, policy=arm.policy or config.policy)
  policy_reads_mz = reads_mz(task.spec, arm_config)
  view = MzView.of(mz, task.spec) if policy_reads_mz else None
  amplifier = Amplifier(oracle, mz, task, Budget(config.max_asks, config.max_lookups),
                        view=view, store=store, identity=oracle_identity(config))
  key = jax.random.key(config.seed)
  type2 = None
  if type2_oracle is not None:
    type2 = Type2(type2_oracle, task, mz)
    print(f"type 2: the {type2.name} H's whole tree on "
          f"{min(config.type2_size, config.heldout_rows)} held-out questions a round; gate "
          f"{'on' if config.gate else 'off'}", flush=True)
  run = Run(config, workdir, task, arm, plan, amplifier, view,
            MzView.of(z_star, task.spec) if reads_mz(task.spec, config) else None,
            metrics, key,
            task.evaluation_questions(jax.random.fold_in(key, _EVAL), config.eval_size),
            task.training_data(jax.random.fold_in(key, _D_SAMPLE), config.eval_size),
            z_accuracy, start, type2)
  return run, referee, done


def _resume(run: Run, done: int) -> State:
  """The state after round `done` (a fresh state when done is -1)."""
  state = State(steps_used=sum(rec["steps"] for rec in run.metrics.kept
                               if rec["phase"] == "distill"),
                seen=np.zeros(run.task.spec.z_entries, bool) if run.task.spec.names_mz_keys
                else None)
  if done < 0:
    return state
  lines = {rec["phase"]: rec for rec in run.metrics.kept if rec["round"] == done}
  if not {"distill", "eval"} <= lines.keys():
    raise ValueError(f"workdir {run.workdir!r} has a checkpoint of round {done} but metrics.jsonl "
                     "lacks that round's distill or eval line; use a new --workdir.")
  # the schedule that round's policy trained on (a cold start's is its round's budget)
  state.distiller = run.new_distiller(done, lines["distill"]["schedule_steps"])
  state.replay, state.competent, seen = checkpoint.restore(run.workdir, done, state.distiller)
  if seen is not None:
    state.seen = seen
  return state


# -- the phases of a round -------------------------------------------------------------------

def _round_key(run: Run, r: int) -> jax.Array:
  return jax.random.fold_in(run.key, _ROUND + r)


def label(run: Run, state: State, r: int) -> Batch:
  """H^A (H + pi_{r-1} + Mz; H alone in round 0) labels the round's questions: D* questions, or
  D's own questions where the arm's plan says so."""
  t0 = time.time()
  key, n = jax.random.fold_in(_round_key(run, r), _SAMPLE), run.config.label_size
  if run.plan[r].questions == arms_lib.TRAINING:
    inputs = run.task.training_data(key, n)[0]  # D's questions; H labels them, D's labels unused
  else:
    inputs = run.task.deployment_questions(key, n)
  policy = None if state.distiller is None else state.distiller.policy
  # a person at the terminal is their own progress; anything else gets a line every few seconds
  with (contextlib.nullcontext(lambda text: None) if run.amplifier.per_question
        else progress.heartbeat(f"round {r}, labelling")) as status:
    labels = run.amplifier.label(inputs, policy, state.competent,
                                 jax.random.fold_in(_round_key(run, r), _LABEL),
                                 progress={"round": r, "rounds": len(run.plan)}, status=status)
    jax.block_until_ready(labels.answers)
  answered = np.asarray(jnp.all(labels.answers != IDK, axis=1))
  seconds = time.time() - t0
  run.metrics.write({"round": r, "phase": "label", **labels.cost(), "seconds": round(seconds, 3)})
  return Batch(inputs, labels, answered, seconds)


def split(run: Run, state: State, r: int, batch: Batch) -> None:
  """Held-out rows first (questions are drawn IID, so a split by position is an IID split); the
  training set is the train part's answered rows, the replay buffer, capped IDK rows, and, where
  the plan says so, as many rows of D as the train part has (all of D if it has fewer), with
  their observed labels."""
  # heldout_fraction of the rows: a round on D's own questions may have fewer than label_size
  n = batch.n_heldout = int(round(len(batch.answered) * run.config.heldout_fraction))
  answers = batch.labels.answers
  batch.heldout = LabelledSet.of(_rows(batch.inputs, 0, n), answers[:n])
  batch.train = LabelledSet.of(_rows(batch.inputs, n), answers[n:])
  batch.train_set = training_set(batch.train, jnp.asarray(batch.answered[n:]), state.replay,
                                 run.config.idk_share)
  if run.plan[r].with_d:
    d_inputs, d_labels = run.task.training_data(
        jax.random.fold_in(_round_key(run, r), _WITH_D), len(batch.train))
    batch.train_set = batch.train_set.concat(LabelledSet.of(d_inputs, d_labels))


def distil(run: Run, state: State, r: int, batch: Batch) -> Distiller | None:
  """Trains pi_r on the training set within the round's step budget, stopping once pi imitates
  H^A at every difficulty it answered (judged on up to n_heldout of the round's own training
  rows, so the held-out rows stay an unbiased check). Returns a cold round's rival, pi_{r-1}
  (None in a warm round, and in a round that does not distil)."""
  c, t1 = run.config, time.time()
  budget = steps_for_round(c, run.plan, r, state.steps_used)
  if not run.plan[r].distil:
    run.metrics.write({"round": r, "phase": "distill", "steps": 0, "step_budget": 0,
                       "schedule_steps": state.distiller.schedule_steps, "train_rows": 0,
                       "loss": None, "seconds": 0.0})
    return None
  previous = None if c.warm_start else state.distiller  # a cold round's rival
  if state.distiller is None or not c.warm_start:
    # warm start: one policy and one schedule of total_steps across all rounds
    state.distiller = run.new_distiller(r, c.total_steps if c.warm_start else budget)
  distiller, n = state.distiller, batch.n_heldout
  probe = _rows(batch.train.inputs, 0, n)
  probe_labels = batch.train.labels[:n]
  probe_answered = batch.answered[n:][:n]
  probe_difficulty = np.asarray(run.task.difficulty(probe.questions))
  spec = run.task.spec
  # the difficulties at which a perfect imitator would pass: those with enough answered rows
  answered_enough = competent_difficulties(probe_difficulty, probe_answered,
                                           np.ones_like(probe_answered), spec.max_difficulty,
                                           c.competence)

  def imitates_h_a() -> bool:
    agree = agrees(predict(distiller.policy, probe, run.view), probe_labels)
    return bool(np.all(answered_enough <= competent_difficulties(
        probe_difficulty, probe_answered, agree, spec.max_difficulty, c.competence)))

  before = distiller.steps_run
  with progress.heartbeat(f"round {r}, distillation") as status:
    loss = distiller.fit(batch.train_set, budget, jax.random.fold_in(_round_key(run, r),
                                                                     _DISTILL),
                         until=imitates_h_a, status=status)
  steps = distiller.steps_run - before
  state.steps_used += steps
  run.metrics.write({"round": r, "phase": "distill", "steps": steps, "step_budget": budget,
                     "schedule_steps": distiller.schedule_steps,
                     "train_rows": len(batch.train_set), "loss": loss,
                     "seconds": round(time.time() - t1, 3)})
  return previous


def _mark_seen(run: Run, state: State, batch: Batch, fresh: bool) -> None:
  """Records the keys named by the questions the policy now in use trained on: this round's
  training set, added to earlier rounds' (a warm policy) or alone (a cold round's new one)."""
  if state.seen is None:
    return
  spec = run.task.spec
  keys, named = named_keys(spec.mz_key_positions, spec.mz_key_token,
                           batch.train_set.inputs.questions)
  if fresh:
    state.seen[:] = False
  state.seen[np.asarray(keys)[np.asarray(named)]] = True


def iid_check(run: Run, state: State, r: int, batch: Batch, rival: Distiller | None) -> dict:
  """pi's agreement with H^A on the train and held-out rows H^A answered (an IDK label is no
  answer to imitate), their gap, and the difficulties pi is competent at next round. A cold
  round keeps pi_{r-1} if that agrees better on the held-out rows (no ground truth read): one
  failed draw then costs a round, not every label after it. In such a round the agreement
  reported is the larger of two estimates, a bias of the order of their noise (1/sqrt(rows))."""
  n = batch.n_heldout
  held = batch.answered[:n]
  heldout_agrees = agrees(predict(state.distiller.policy, batch.heldout.inputs, run.view),
                          batch.heldout.labels)
  kept_previous = False
  if rival is not None:
    rival_agrees = agrees(predict(rival.policy, batch.heldout.inputs, run.view),
                          batch.heldout.labels)
    if (_mean(rival_agrees, held) or 0.0) > (_mean(heldout_agrees, held) or 0.0):
      state.distiller, heldout_agrees, kept_previous = rival, rival_agrees, True
  if run.plan[r].distil and not kept_previous:
    _mark_seen(run, state, batch, fresh=not run.config.warm_start)
  train_agreement = None  # a round that trains nothing has no training rows to agree on
  if run.plan[r].distil:
    train_agrees = agrees(predict(state.distiller.policy, batch.train.inputs, run.view),
                          batch.train.labels)
    train_agreement = _mean(train_agrees, batch.answered[n:])
  heldout_agreement = _mean(heldout_agrees, held)
  state.competent = competent_difficulties(
      np.asarray(run.task.difficulty(batch.heldout.inputs.questions)), held, heldout_agrees,
      run.task.spec.max_difficulty, run.config.competence)
  return {"train_agreement": train_agreement, "heldout_agreement": heldout_agreement,
          "iid_gap": (None if train_agreement is None or heldout_agreement is None
                      else train_agreement - heldout_agreement),
          "competent_difficulties": np.flatnonzero(state.competent).tolist(),
          "kept_previous_policy": kept_previous}


@dataclasses.dataclass
class Deployed:
  """The policy H^A used this round, kept while pi_r trains (the gate may restore it): its
  distiller and that distiller's state, its competence, the keys it trained on, and its answers
  as H^A takes them on the type-2 sample (None: no policy yet, round 0)."""
  distiller: Distiller | None
  state: tuple | None
  steps_run: int
  competent: np.ndarray | None
  seen: np.ndarray | None
  answers: np.ndarray | None


def _type2_sample(run: Run, batch: Batch) -> Inputs:
  """The first `--type2_size` of the round's held-out questions (H^A's answers kept out of
  training; at most all of them)."""
  return _rows(batch.heldout.inputs, 0, min(run.config.type2_size, batch.n_heldout))


def deployed_policy(run: Run, state: State, batch: Batch) -> Deployed:
  """What `type2_gate` needs of the policy H^A used, taken before pi_r trains (warm starts train
  it in place). The state is re-wrapped by a tree map: `nnx.state` hands out the policy's own
  Variables, which training updates; their arrays are immutable (`_train_chunk` donates none),
  so the snapshot copies no array."""
  d, copy = state.distiller, lambda a: None if a is None else a.copy()
  answers = None
  if d is not None and run.type2 is not None:
    sample = _type2_sample(run, batch)
    answers = as_deployed(predict(d.policy, sample, run.view),
                          np.asarray(run.task.difficulty(sample.questions)), state.competent)
  return Deployed(d, None if d is None else jax.tree.map(lambda a: a, d.state),
                  0 if d is None else d.steps_run, copy(state.competent), copy(state.seen),
                  answers)


def type2_gate(run: Run, state: State, r: int, batch: Batch, before: Deployed,
               kept_previous: bool) -> dict:
  """Type-1 and type-2 scores of pi_r (as H^A would use it) on the type-2 sample, the deployed
  policy's type-2 score, and the gate: with `--gate`, pi_r is deployed only if its type-2 score
  is not below the deployed policy's by more than `--type2_tolerance`; otherwise `state` gets the
  deployed policy back (its weights, competence and seen keys; in round 0, where none was
  deployed, a fresh pi_0 that H^A asks nothing). `promoted` is None where there was nothing to
  decide: a round that does not distil, or a cold round whose IID check kept pi_{r-1}. Reads no
  ground truth: the references are H^A's labels and H's own tree."""
  if run.type2 is None:
    return {}
  c, t0 = run.config, time.time()
  sample = _type2_sample(run, batch)
  n = sample.questions.shape[0]
  if n == 0:  # a round over D's questions with no held-out rows
    return {}
  difficulty = np.asarray(run.task.difficulty(sample.questions))
  reference, calls = run.type2.answers(sample, jax.random.fold_in(_round_key(run, r), _TYPE2))
  candidate = as_deployed(predict(state.distiller.policy, sample, run.view), difficulty,
                          state.competent)
  type1 = net_score(candidate, np.asarray(batch.heldout.labels[:n]))
  type2 = net_score(candidate, reference)
  deployed = net_score(np.full_like(reference, IDK) if before.answers is None else before.answers,
                       reference)
  promoted = True
  if not run.plan[r].distil or kept_previous:
    promoted = None
    reason = ("no distillation this round" if not run.plan[r].distil else
              "the IID check kept pi_{r-1} (--warm_start=false)") + ": nothing to decide"
  elif not c.gate:
    reason = "gate off (--gate=false): pi_r deployed whatever its type-2 score"
  elif type2 < deployed - c.type2_tolerance:
    promoted = False
    reason = (f"pi_r's type-2 score {type2:.3f} is below the deployed policy's {deployed:.3f} by "
              f"more than --type2_tolerance={c.type2_tolerance}: the deployed policy stays")
    if before.distiller is None:  # no policy was deployed: pi_0 as it was before training
      state.distiller = run.new_distiller(r, state.distiller.schedule_steps)
      state.competent = np.zeros_like(state.competent)
      if state.seen is not None:
        state.seen[:] = False
    else:
      state.distiller = before.distiller
      state.distiller.load_state(before.state)
      state.distiller.steps_run = before.steps_run
      state.competent, state.seen = before.competent, before.seen
  else:
    reason = (f"pi_r's type-2 score {type2:.3f} against the deployed policy's {deployed:.3f} "
              f"(tolerance {c.type2_tolerance}): deployed")
  return {"type1_score": type1, "type2_score": type2, "type1_type2_gap": type1 - type2,
          "type2_score_deployed": deployed, "type2_questions": n, "type2_calls": calls,
          "type2_calls_per_question": calls / n, "type2_oracle": run.type2.name,
          "type2_seconds": round(time.time() - t0, 3), "promoted": promoted, "gate": reason,
          # what H may ask the policy it will use next round about
          "competent_difficulties": np.flatnonzero(state.competent).tolist()}


def _unseen(run: Run, state: State, referee: Referee) -> dict:
  """The share of the evaluation's distinct keys that no question pi trained on named, and pi's
  accuracy on the evaluation questions all of whose keys are such (None where there are none)."""
  if state.seen is None:
    return {"unseen_entity_fraction": None, "policy_accuracy_unseen": None}
  spec = run.task.spec
  keys, named = (np.asarray(a) for a in named_keys(spec.mz_key_positions, spec.mz_key_token,
                                                     run.eval_inputs.questions))
  distinct = np.unique(keys[named])
  rows = np.flatnonzero(np.all(~named | ~state.seen[keys], axis=1) & named.any(axis=1))
  accuracy = None
  if len(rows):
    inputs = jax.tree.map(lambda a: a[rows], run.eval_inputs)
    accuracy = referee.accuracy(inputs, predict(state.distiller.policy, inputs, run.view))
  return {"unseen_entity_fraction": float(np.mean(~state.seen[distinct])),
          "policy_accuracy_unseen": accuracy, "unseen_rows": int(len(rows))}


def evaluate(run: Run, state: State, r: int, batch: Batch, iid: dict, referee: Referee,
             t0: float) -> dict:
  """The referee scores H^A's labels and the deployed policy (pi_r unless the gate refused it)
  on a fresh D* sample against ground truth; nothing it computes flows back into labelling or
  training. `iid`: the IID check's and the type-2 gate's fields."""
  t2 = time.time()
  ev, policy = referee, state.distiller.policy
  answers = predict(policy, run.eval_inputs, run.view)
  d_inputs, d_labels = run.d_sample
  record = {
      "round": r, "phase": "eval",
      "label_accuracy": ev.accuracy(batch.inputs, batch.labels.answers),
      "label_accuracy_by_difficulty": ev.accuracy_by_difficulty(batch.inputs,
                                                                batch.labels.answers),
      "idk_fraction": float(1 - batch.answered.mean()),
      **iid,
      "policy_accuracy": ev.accuracy(run.eval_inputs, answers),
      "policy_accuracy_by_difficulty": ev.accuracy_by_difficulty(run.eval_inputs, answers),
      **_unseen(run, state, referee),
      "policy_agreement_on_d": float(agrees(predict(policy, d_inputs, run.view), d_labels).mean()),
      **batch.labels.cost(),
      "seconds": round(time.time() - t0, 3),
      "seconds_by_phase": {"label": round(batch.seconds, 3),
                           "distill": round(t2 - t0 - batch.seconds, 3),
                           "eval": round(time.time() - t2, 3)},
  }
  run.metrics.write(record)
  unseen = record["unseen_entity_fraction"]
  print(f"round {r}: label accuracy {record['label_accuracy']:.3f} (IDK "
        f"{record['idk_fraction']:.3f}), policy accuracy {record['policy_accuracy']:.3f}"
        + ("" if unseen is None else f", unseen entities {unseen:.3f}")
        + ("" if "type2_score" not in record else
           f", type 1 {record['type1_score']:.3f} / type 2 {record['type2_score']:.3f} "
           f"({'refused: the deployed policy stays' if record['promoted'] is False else 'deployed'})")
        + f", {record['seconds']:.0f}s", flush=True)
  return record


def save(run: Run, state: State, r: int, batch: Batch) -> None:
  """Updates the replay buffer, writes the round's transcripts, then its checkpoint (last: a
  checkpoint marks the round done)."""
  n = batch.n_heldout
  if run.config.replay_size:  # a FIFO of the newest rows H^A could answer (an IDK teaches little)
    kept = batch.train.take(jnp.nonzero(jnp.asarray(batch.answered[n:]))[0])
    replay = kept if state.replay is None else state.replay.concat(kept)
    replay = replay.take(jnp.arange(max(0, len(replay) - run.config.replay_size), len(replay)))
    state.replay = replay if len(replay) else None  # none answered yet (no_prior: ever)
  transcript = jax.tree.map(np.asarray, dataclasses.asdict(batch.labels.transcript))
  os.makedirs(os.path.join(run.workdir, "transcripts"), exist_ok=True)
  np.savez_compressed(os.path.join(run.workdir, "transcripts", f"round_{r}.npz"),
                      questions=np.asarray(batch.inputs.questions),
                      answers=np.asarray(batch.labels.answers), **transcript)
  checkpoint.save(run.workdir, r, state.distiller, state.replay, state.competent, state.seen)


def _baselines_to_run(run: Run) -> list[tuple[str, jax.Array]]:
  """The baselines this run still lacks (a finished one's line is kept across resumes), each
  with its key (_BASELINE + i: one per baseline)."""
  if not run.config.baselines:
    return []
  done = {rec["baseline"] for rec in run.metrics.kept if rec["phase"] == "baseline"}
  return [(name, jax.random.fold_in(run.key, _BASELINE + i))
          for i, name in enumerate(("prosaic", "ceiling", *run.task.extra_baselines))
          if name not in done]


def start_baselines(run: Run, referee: Referee) -> list[str]:
  """Prosaic ML, the supervised ceiling and the task's extra baselines that the workdir lacks
  start training in the referee process (the ceiling trains on ground truth), beside the rounds:
  they read nothing the rounds produce but z*, fitted before round 0. Returns their names."""
  named = _baselines_to_run(run)
  if named:
    print(f"baselines {', '.join(name for name, _ in named)}: training in the referee process, "
          "beside the rounds", flush=True)
    referee.start_baselines(named, run.eval_inputs, run.d_sample, run.config, run.z_star_view)
  return [name for name, _ in named]


def run_baselines(run: Run, referee: Referee, started: list[str]) -> dict[str, dict]:
  """Every baseline's metrics line: those kept from an earlier run of the workdir, then each one
  `start_baselines` started, in order, written as soon as it has finished (a kill loses only the
  baselines still training)."""
  finished = {rec["baseline"]: rec for rec in run.metrics.kept if rec["phase"] == "baseline"}
  with progress.heartbeat("baselines") as status:
    for i, name in enumerate(started):
      status(f"waiting for {name} ({i + 1} of {len(started)}), training in the referee process")
      finished[name] = referee.baseline(i)
      run.metrics.write(finished[name])
  return finished


def gap_recovered(final: float, prosaic: float | None, ceiling: float | None) -> dict:
  """The share of the gap between prosaic ML and the supervised ceiling that the final policy
  closes; null, with the reason, where there is no gap (the ceiling does not exceed prosaic ML) or
  no baselines ran."""
  if prosaic is None or ceiling is None:
    return {"gap_recovered": None, "gap_recovered_reason": "no baselines (--baselines=false)"}
  if ceiling <= prosaic:
    return {"gap_recovered": None,
            "gap_recovered_reason": f"the ceiling ({ceiling:.3f}) does not exceed prosaic ML "
                                    f"({prosaic:.3f}): no gap to recover"}
  return {"gap_recovered": (final - prosaic) / (ceiling - prosaic), "gap_recovered_reason": None}


def summarise(run: Run, finished: dict[str, dict]) -> dict:
  records = run.metrics.records
  evals = [rec for rec in records if rec["phase"] == "eval"]
  labels = [rec for rec in records if rec["phase"] == "label"]
  final = evals[-1]
  accuracy = lambda name: finished[name]["accuracy"] if name in finished else None
  prosaic, ceiling = accuracy("prosaic"), accuracy("ceiling")
  deployment = [rec for rec, p in zip(labels, run.plan) if p.questions == arms_lib.DEPLOYMENT]
  summary = {
      "arm": run.arm.name,
      "policy": "reads_mz" if run.reads_mz else "memorises" if run.task.spec.names_mz_keys
                else "question",
      "final_policy_accuracy": final["policy_accuracy"],
      "final_policy_accuracy_by_difficulty": final["policy_accuracy_by_difficulty"],
      "prosaic_accuracy": prosaic,
      "ceiling_accuracy": ceiling,
      **gap_recovered(final["policy_accuracy"], prosaic, ceiling),
      "z_accuracy": run.z_accuracy,
      "unseen_entity_fraction": final.get("unseen_entity_fraction"),
      "policy_accuracy_unseen": final.get("policy_accuracy_unseen"),
      **{k: sum(rec[k] for rec in labels) for k in ("oracle_calls", "asks", "lookups")},
      "lookups_per_deployment_question": (  # per question H answered (none: all reused)
          sum(rec["lookups"] for rec in deployment) / asked
          if (asked := sum(rec["oracle_calls"] for rec in deployment)) else None),
      "distillation_steps": sum(rec["steps"] for rec in records if rec["phase"] == "distill"),
      **_type2_summary(evals, sum(rec["oracle_calls"] for rec in labels)),
      "rounds": len(run.plan),
      "peak_memory_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
      "wall_seconds": round(time.time() - run.start, 2),
      "seed": run.config.seed,
  }
  write_json(os.path.join(run.workdir, "summary.json"), summary)
  return summary


def deployed_type2_score(record: dict) -> float:
  """The type-2 score of the policy H^A uses after a round's gate (an eval line with type 2):
  the deployed policy's where the gate refused pi_r, else pi_r's."""
  return (record["type2_score_deployed"] if record["promoted"] is False
          else record["type2_score"])


def _type2_summary(evals: list[dict], h_calls: int) -> dict:
  """The rounds whose pi_r was deployed, those the gate refused, the largest type-1 - type-2 gap
  (a run without type 2: none), the final deployed policy's type-2 score, and type 2's H calls,
  also as a share of labelling's (`h_calls`)."""
  gated = [rec for rec in evals if "type2_score" in rec]
  if not gated:
    return {"promotions": None, "refused_rounds": [], "largest_type1_type2_gap": None,
            "final_type2_score": None, "type2_calls": 0, "type2_share_of_h_calls": None}
  type2_calls = sum(rec["type2_calls"] for rec in gated)
  largest = max(gated, key=lambda rec: rec["type1_type2_gap"])
  last = gated[-1]
  return {"promotions": sum(rec["promoted"] is True for rec in gated),
          "refused_rounds": [rec["round"] for rec in gated if rec["promoted"] is False],
          "largest_type1_type2_gap": {"round": largest["round"],
                                      "gap": largest["type1_type2_gap"]},
          "final_type2_score": deployed_type2_score(last),
          "type2_calls": type2_calls,
          "type2_share_of_h_calls": type2_calls / h_calls if h_calls else None}


def finished_summary(config: Config, workdir: str) -> dict | None:
  """The summary of a finished run of `config` in `workdir` (its last round checkpointed and its
  summary written), or None."""
  path = os.path.join(workdir, "summary.json")
  if not os.path.exists(path) or checkpoint.latest_round(workdir) is None:
    return None
  summary = read_json(path, "the run's summary")
  return summary if checkpoint.latest_round(workdir) == summary["rounds"] - 1 else None


def run(config: Config, workdir: str, checked=None) -> dict:
  """Runs the experiment `config` into `workdir`; returns the summary. `checked`: what
  `check(config, workdir)` returned, if the caller has run it already. A finished run in the
  workdir is returned as it is."""
  checked = checked or check(config, workdir)
  try:
    return _run(config, workdir, checked)
  finally:
    checked.close()


def _run(config: Config, workdir: str, checked: Checked) -> dict:
  with _phase("reading the workdir"):
    if (summary := finished_summary(config, workdir)) is not None:
      print(f"workdir {workdir!r} holds a finished run of this config: nothing to do", flush=True)
      return summary
  with _phase("starting the run (prior, evaluation set, resume)"):
    run_, referee, done = _begin(config, workdir, checked)
    state = _resume(run_, done)
  with _phase("starting the baselines"):
    started = start_baselines(run_, referee)
  for r in range(done + 1, len(run_.plan)):
    t0 = time.time()
    with _phase(f"round {r}, labelling"):
      batch = label(run_, state, r)
      split(run_, state, r, batch)
    with _phase(f"round {r}, distillation"):
      before = deployed_policy(run_, state, batch)
      rival = distil(run_, state, r, batch)
    with _phase(f"round {r}, evaluation"):
      iid = iid_check(run_, state, r, batch, rival)
      with _phase(f"round {r}, type-2 evaluation"):
        iid |= type2_gate(run_, state, r, batch, before, iid["kept_previous_policy"])
      evaluate(run_, state, r, batch, iid, referee, t0)
    with _phase(f"round {r}, checkpoint"):
      save(run_, state, r, batch)
  with _phase("baselines"):
    finished = run_baselines(run_, referee, started)
  with _phase("summary"):
    return summarise(run_, finished)


class RunError(RuntimeError):
  """A failure after the run started, as one line naming the phase and the cause (amplify.main
  prints it; the traceback is chained, shown with --debug)."""


@contextlib.contextmanager
def _phase(name: str):
  try:
    yield
  except (RunError, OracleError, Stopped):
    raise
  except Exception as e:  # KeyboardInterrupt is not an Exception: it stops the run as it is
    first_line = (str(e).strip().splitlines() or [""])[0]
    raise RunError(f"{name}: {type(e).__name__}: {first_line}") from e
