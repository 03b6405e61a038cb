"""Before the first round: every check of the user's settings (`check`, which also starts the
referee process that holds the truth), then the run's fixed parts (`begin`: z* fitted or
restored, the evaluation set) and the state a checkpoint holds (`resume`)."""
from __future__ import annotations

import dataclasses
import os
import sys
import time
from typing import NamedTuple

import jax
import numpy as np
from flax import nnx

from amplify import processes
from amplify.configs import base, heldout_rows, settings, to_dict, validate
from amplify.files import checkpoint
from amplify.files.jsonio import WorkdirError, write_json
from amplify.files.metrics import MetricWriter
from amplify.files.store import AnswerStore, StoreError
from amplify.learn import prior
from amplify.learn.amplifier import Amplifier, Budget
from amplify.learn.mz import EmptyMz, ExactIndex, MzView, RawRowsMz, Table
from amplify.learn.policy import make_policy, reads_mz
from amplify.learn.type2 import Type2
from amplify.loop import arms as arms_lib
from amplify.loop import curriculum
from amplify.loop.state import D_SAMPLE, EVAL, Run, State
from amplify.loop.workdir import WORLD, check_workdir, hold, recorded_lines
from amplify.oracles.make import human_model, identity, make_oracle, make_type2_oracle
from amplify.tasks.base import key_coverage
from amplify.truth.referee import Referee
from amplify.types import EPISODIC, LATENT, Task


class Checked(NamedTuple):
  """What `check` builds: the task, the referee (the process that holds its ground truth, scores
  predictions and runs the named baselines), H, the answer store (None without --oracle_store)
  and type 2's judge (None with --config.type2.size=0). `close()` commits what the store was
  handed and ends the referee; `run` does that itself (a Ctrl-C too)."""
  task: Task
  referee: Referee
  oracle: object
  store: AnswerStore | None
  type2_oracle: object | None

  def close(self, failed: bool = False) -> None:
    """`failed`: closed after the run failed, whose error is the one to tell: the store's own
    failure to commit is then a warning."""
    try:
      if self.store is not None:
        try:
          self.store.flush()  # a batch oracle's answers are written in the background
        except StoreError as e:
          if not failed:
            raise
          print(f"warning: {e}", file=sys.stderr, flush=True)
    finally:
      self.referee.close()


def _task_and_referee(config) -> tuple[Task, Referee]:
  """The task, and the referee process that built it from the seed and a secret only it reads,
  and holds its ground truth: this process never holds the truth, nor what rebuilds it. Raises
  ValueError for a task that cannot be built there, or whose truth is reachable from the task."""
  return Referee.start(config, lambda task: (len(arms_lib.get_arm(config, task).rounds(config)),
                                             len(curriculum.eval_sizes(config, task))))


def check(config, workdir: str) -> Checked:
  """Every check of the user's settings, before any work: raises ValueError naming the
  problem. Starts the referee process, which holds the truth from here on."""
  validate(config)
  task, referee = _task_and_referee(config)
  try:
    oracle, store, type2_oracle = _check(config, workdir, task, referee.world_id)
    processes.shared(hold, workdir)  # last: a check that fails leaves the workdir free
  except BaseException:
    referee.close()
    raise
  return Checked(task, referee, oracle, store, type2_oracle)


def _check(config, workdir: str, task: Task, world: str | None):
  """The checks that need the task: returns H, the answer store and type 2's judge."""
  arm = arms_lib.get_arm(config, task)
  oracle = make_oracle(config, task, reads_raw_d=arm.reads == arms_lib.RAW_D)
  default = base.get_config()
  type2_oracle = None
  if config.type2.size:
    type2_oracle = make_type2_oracle(config, task, oracle, reads_raw_d=arm.reads == arms_lib.RAW_D)
    if not isinstance(getattr(task, "ask_depth", None), int):
      raise ValueError(f"task {task.name!r} declares no ask_depth (the longest chain of asks in "
                       "H's decomposition, which type 2 recurses through): add it to the task, "
                       "or pass --config.type2.size=0.")
  else:
    for field in ("oracle", "gate", "tolerance"):
      if config.type2[field] != default.type2[field]:
        raise ValueError(f"{base.flag('type2.' + field)} is read only with type 2; "
                         "--config.type2.size=0 turns it off: drop the flag.")
  if config.curriculum.on and not hasattr(task, "full_size"):
    raise ValueError(f"--config.curriculum.on is read only by tasks with an instance size; "
                     f"--task={task.name} has none: drop the flag.")
  if not config.curriculum.on and config.curriculum.threshold != default.curriculum.threshold:
    raise ValueError("--config.curriculum.threshold is read only with the curriculum on "
                     "(--config.curriculum.on=true): drop the flag, or turn it on.")
  if config.model.policy != default.model.policy and not task.spec.names_mz_keys:
    raise ValueError(f"--config.model.policy is read only by tasks whose questions name Mz keys; "
                     f"--task={task.name} would ignore it: drop the flag.")
  for field in ("steps", "learning_rate"):
    if config.prior[field] != default.prior[field] and task.spec.regime != LATENT:
      raise ValueError(f"--config.prior.{field} is read only by latent-world tasks; "
                       f"--task={task.name} would ignore it: drop the flag.")
  if processes.several() and (config.oracle_store or not getattr(oracle, "jittable", False)):
    raise ValueError(
        f"--oracle={config.oracle.name}"
        + (" with --oracle_store" if config.oracle_store else "")
        + ": a run of several processes shares out a compiled oracle's batches (scripted, noisy, "
        "sloppy) and keeps no answer store; run this oracle, or the store, in one process "
        "(drop --num_processes and the other process flags).")
  if getattr(oracle, "needs_store", None) and not config.oracle_store:
    raise ValueError(f"--oracle={config.oracle.name} {oracle.needs_store}: pass "
                     "--oracle_store=PATH.")
  # refuses a network that can't read the task (its shapes only: nothing is drawn or compiled)
  nnx.eval_shape(lambda: make_policy(task.spec, config.model, jax.random.key(0),
                                     reads_mz=reads_mz(task.spec, config.model.policy)))
  lookups = config.label.max_lookups
  if arm.reads == arms_lib.RAW_D and lookups > (rows := task.raw_observations()[2]):
    raise ValueError(f"--config.label.max_lookups={lookups}: in the raw_d arm a look-up addresses "
                     f"one of an entity's first {rows} rows of D; use at most {rows}.")
  for field, needed in zip(("max_asks", "max_lookups"), task.budget_needed):
    if config.label[field] < needed:
      raise ValueError(f"--config.label.{field}={config.label[field]}: H's decomposition for "
                       f"task {task.name!r} needs up to {needed} per question; use at least "
                       f"{needed}.")
  for flag, rows_asked, sampler in (
      ("--config.label.size", config.label.size, task.deployment_questions),
      ("--config.eval_size", config.eval_size, task.evaluation_questions)):
    rows = jax.eval_shape(lambda key: sampler(key, rows_asked), jax.random.key(0)).questions.shape[0]
    if rows < rows_asked:  # a finite task returns at most its pool's rows
      raise ValueError(f"{flag}={rows_asked}: task {task.name!r} has only {rows} such questions; "
                       f"use at most {rows}.")
  processes.shared(check_workdir, config, workdir, world)
  store = None
  if config.oracle_store:
    store = AnswerStore(config.oracle_store, {"task": task.name, "settings": dataclasses.asdict(
        settings(config.task, "task"))})
  return oracle, store, type2_oracle


def learn_prior(task, oracle, referee: Referee, values, metrics: MetricWriter, workdir: str,
                config):
  """Episodic tasks: Mz is the exact index of each example's facts (z_accuracy None). Latent
  worlds: fits z* to all of D (or restores the fit a checkpoint holds), writes the `prior` line;
  returns (Mz, z* accuracy against the true world)."""
  if task.spec.regime == EPISODIC:
    return ExactIndex(), None
  table = Table(task.spec)
  on_disk = os.path.join(workdir, "checkpoints", "zstar")  # where a z* too large to hold goes
  if values is not None:  # resumed: the fit and its metrics line are already in the workdir
    mz = table.freeze(values, on_disk)
    return mz, referee.z_accuracy(mz)
  mz, values, report = prior.fit(human_model(oracle, task), table, prior.blocks(task),  # all of D
                                 steps=config.prior.steps,
                                 learning_rate=config.prior.learning_rate, path=on_disk)
  z_accuracy = referee.z_accuracy(mz)
  metrics.write({"round": None, "phase": "prior", **report, "z_accuracy": z_accuracy})
  checkpoint.save_prior(workdir, values)
  print(f"prior: z* accuracy {z_accuracy:.4f} from {report['d_rows']} rows of D, "
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


def begin(config, workdir: str, checked: Checked) -> tuple[Run, int]:
  """Sets the run up (fitting or restoring z*); returns it and the last round a checkpoint holds
  (-1: none)."""
  start = time.time()
  task, referee, oracle, store, type2_oracle = checked
  arm = arms_lib.get_arm(config, task)
  plan = arm.rounds(config)
  if processes.writes():
    os.makedirs(workdir, exist_ok=True)
    write_json(os.path.join(workdir, "config.json"), to_dict(config))
    if referee.world_id is not None:
      write_json(os.path.join(workdir, WORLD), {"world_id": referee.world_id})
  last = checkpoint.latest_readable_round(workdir)
  done = -1 if last is None else min(last, len(plan) - 1)
  recorded, prior_line = processes.shared(_recorded, workdir, done)
  if recorded < done:  # a kill cut the newest round's line short: that round runs again
    checkpoint.set_aside_after(workdir, recorded, "metrics.jsonl lacks its round's lines")
    done = recorded
  print(f"jax {jax.__version__} on {jax.devices()}; arm {arm.name}"
        + (f" (pi {arm.policy}, whatever --config.model.policy says)" if arm.policy else "") + "; "
        f"{f'resuming after round {done}' if done >= 0 else 'starting afresh'}", flush=True)
  prior_values = (checkpoint.restore_prior(workdir, (task.spec.z_entries,))
                  if task.spec.regime != EPISODIC and prior_line else None)
  metrics = MetricWriter(os.path.join(workdir, "metrics.jsonl"),
                         keep=lambda rec: (rec["phase"] == "baseline"
                                           or (rec["phase"] == "prior" and prior_values is not None)
                                           or (rec["phase"] != "prior" and rec["round"] <= done)))
  start -= kept_seconds(metrics.kept, done)  # a resumed run's wall time goes on from its rounds'
  z_star, z_accuracy = learn_prior(task, oracle, referee, prior_values, metrics, workdir, config)
  mz = _arm_mz(arm, task, z_star)
  policy_reads_mz = reads_mz(task.spec, arm.policy or config.model.policy)
  view = MzView.of(mz, task.spec) if policy_reads_mz else None
  amplifier = Amplifier(oracle, mz, task, Budget(config.label.max_asks, config.label.max_lookups),
                        view=view, store=store, identity=identity(config))
  key = jax.random.key(config.seed)
  type2 = None
  if type2_oracle is not None:
    type2 = Type2(type2_oracle, task, mz)
    print(f"type 2: the {type2.name} H's whole tree on "
          f"{min(config.type2.size, heldout_rows(config))} held-out questions a round; gate "
          f"{'on' if config.type2.gate else 'off'}", flush=True)
  run = Run(config, workdir, task, arm, plan, amplifier, view,
            MzView.of(z_star, task.spec) if reads_mz(task.spec, config.model.policy) else None,
            metrics, key,
            task.evaluation_questions(jax.random.fold_in(key, EVAL), config.eval_size),
            task.training_data(jax.random.fold_in(key, D_SAMPLE), config.eval_size),
            z_accuracy, start, type2, key_coverage(task))
  return run, done


def _recorded(workdir: str, done: int) -> tuple[int, bool]:
  """(the last round up to `done` whose distill and eval lines metrics.jsonl holds, or -1; whether
  it holds the prior's line). Without metrics.jsonl: (done, False), which `resume` refuses where a
  round's checkpoint needs its lines."""
  if not os.path.exists(os.path.join(workdir, "metrics.jsonl")):
    return done, False
  lines = recorded_lines(workdir)
  rounds = [{r for kind, r in lines if kind == phase} for phase in ("distill", "eval")]
  return max((r for r in rounds[0] & rounds[1] if r <= done), default=-1), ("prior", None) in lines


def kept_seconds(kept: list[dict], done: int) -> float:
  """The wall seconds that the kept rounds (up to `done`) took in the processes before this one:
  round done's eval line's `run_seconds`, or, in a line written before that field, the sum of the
  rounds' own seconds (which leaves out each process's start). Not counted: the time lost to a
  kill, and what came after the last kept eval line in an earlier process (that round's
  checkpoint, a wait for the baselines)."""
  evals = [rec for rec in kept if rec["phase"] == "eval" and rec["round"] <= done]
  last = [rec for rec in evals if rec["round"] == done]
  if last and "run_seconds" in last[-1]:
    return last[-1]["run_seconds"]
  return sum(rec["seconds"] for rec in evals)


def resume(run: Run, done: int) -> State:
  """The state after round `done` (a fresh state when done is -1)."""
  steps_used = sum(rec["steps"] for rec in run.metrics.kept if rec["phase"] == "distill")
  seen = None if run.coverage is None else np.zeros(run.task.spec.z_entries, bool)
  if done < 0:
    return State(steps_used=steps_used, seen=seen, size=curriculum.first_size(run.config, run.task))
  lines = {rec["phase"]: rec for rec in run.metrics.kept if rec["round"] == done}
  if not {"distill", "eval"} <= lines.keys():
    raise WorkdirError(f"workdir {run.workdir!r} has a checkpoint of round {done} but "
                       "metrics.jsonl lacks that round's distill or eval line; use a new "
                       "--workdir.")
  # the schedule that round's policy trained on (a cold start's is its round's budget)
  distiller = run.new_distiller(done, lines["distill"]["schedule_steps"])
  replay, competent, saved_seen = checkpoint.restore(run.workdir, done, distiller)
  return State(distiller, replay, competent, steps_used,
               saved_seen if saved_seen is not None else seen, lines["eval"].get("next_size"))
