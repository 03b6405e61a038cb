"""The rounds loop: label D* with H^A, split, distil pi_r, check IID generalisation, evaluate.

`run(config, workdir)` is the whole experiment; `amplify.main` is a thin absl wrapper around it.
Every RNG key derives from `config.seed` by `fold_in` on (phase, round), so a rerun of the same
config gives the same numbers on the same machine.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from amplify import baselines, checkpoint, prior
from amplify.amplifier import Amplifier, Budget
from amplify.config import Config
from amplify.distill import Distiller, LabelledSet, agrees, predict
from amplify.evaluator import Evaluator
from amplify.mz import ExactIndex, Table
from amplify.oracles import make_oracle
from amplify.policy import make_policy
from amplify.tasks import make_task
from amplify.tasks.base import EPISODIC, IDK, Inputs

# fold_in tags, one per phase, so no two phases share a key (amplify.tasks.WORLD is 3)
_EVAL, _D_SAMPLE, _BASELINE, _ROUND = 1, 2, 10, 100
_SAMPLE, _LABEL, _INIT, _DISTILL = 0, 1, 2, 3


def policy_key(key: jax.Array, r: int) -> jax.Array:
  """The key of round r's fresh policy (with warm starts only round 0 draws one)."""
  return jax.random.fold_in(jax.random.fold_in(key, _ROUND + r), _INIT)


class MetricWriter:
  """Appends one JSON object per line to workdir/metrics.jsonl.

  `keep` selects the lines of an earlier run in the same workdir to keep (resume); the rest are
  dropped, since they will be recomputed.
  """

  def __init__(self, path: str, keep=lambda record: False):
    self._path = path
    old = []
    if os.path.exists(path):
      with open(path) as f:
        old = [json.loads(line) for line in f if line.strip()]
    self.kept = [r for r in old if keep(r)]
    with open(path, "w") as f:
      f.writelines(json.dumps(r) + "\n" for r in self.kept)

  def write(self, record: dict) -> None:
    with open(self._path, "a") as f:
      f.write(json.dumps(record) + "\n")


def check_workdir(config: Config, workdir: str) -> None:
  """Refuses a workdir that holds a run of another config, rather than overwrite it."""
  path = os.path.join(workdir, "config.json")
  if os.path.exists(path):
    with open(path) as f:
      old = json.load(f)
    if old != dataclasses.asdict(config):
      changed = sorted(k for k in old.keys() | dataclasses.asdict(config).keys()
                       if old.get(k) != getattr(config, k, None))
      raise ValueError(f"workdir {workdir!r} holds a run with a different config (differs in "
                       f"{changed}); use a new --workdir, or the same flags to resume.")


def _start(config: Config, workdir: str) -> int:
  """Writes config.json; returns the last round a checkpoint holds (-1: start afresh)."""
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, "config.json"), "w") as f:
    json.dump(dataclasses.asdict(config), f, indent=2)
  last = checkpoint.latest_round(workdir)
  return -1 if last is None else min(last, config.rounds - 1)


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


def steps_for_round(config: Config, r: int, used: int) -> int:
  """Round r's step budget: what earlier rounds left of total_steps, split evenly over the rounds
  to come; the last round gets all of it. A round stops early once pi passes the IID check at
  every difficulty H^A answered (see `run`), and the steps it saves go to later rounds."""
  left = config.total_steps - used
  return left if r == config.rounds - 1 else left // (config.rounds - r)


def check(config: Config, workdir: str):
  """Every check of the user's settings, before any work: raises ValueError naming the problem.
  Returns (task, ground truth, oracle)."""
  config.validate()
  task, truth = make_task(config)  # truth goes to the evaluator and named baselines only
  oracle = make_oracle(config, task)
  make_policy(task.spec, config, jax.random.key(0))  # refuses a network that can't read the task
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
  return task, truth, oracle


def learn_prior(task, oracle, evaluator: Evaluator, params, metrics: MetricWriter, workdir: str,
                config: Config):
  """Episodic tasks: Mz is the exact index of each example's facts (z_accuracy None). Latent
  worlds: fits z* to all of D (or restores the fit a checkpoint holds), writes the `prior` line;
  returns (Mz, z* accuracy against the true world)."""
  if task.spec.regime == EPISODIC:
    return ExactIndex(), None
  table = Table(task.spec)
  if params is not None:  # resumed: the fit and its metrics line are already in the workdir
    mz = table.freeze(params)
    return mz, evaluator.z_accuracy(mz)
  inputs, labels = task.observations()  # all of D
  mz, params, report = prior.fit(oracle, table, inputs, labels, steps=config.prior_steps,
                                 learning_rate=config.prior_learning_rate)
  z_accuracy = evaluator.z_accuracy(mz)
  metrics.write({"round": None, "phase": "prior", "d_rows": len(labels), **report,
                 "z_accuracy": z_accuracy})
  checkpoint.save_prior(workdir, params)
  print(f"prior: z* accuracy {z_accuracy:.4f} from {len(labels)} rows of D, "
        f"{report['mz_parameters']} parameters, {report['seconds']:.1f}s", flush=True)
  return mz, z_accuracy


def run(config: Config, workdir: str, checked=None) -> dict:
  """Runs the experiment `config` into `workdir`; returns the summary. `checked`: what
  `check(config, workdir)` returned, if the caller has run it already."""
  start = time.time()
  task, truth, oracle = checked or check(config, workdir)
  done = _start(config, workdir)
  print(f"jax {jax.__version__} on {jax.devices()}; "
        f"{f'resuming after round {done}' if done >= 0 else 'starting afresh'}", flush=True)
  prior_params = checkpoint.restore_prior(workdir) if task.spec.regime != EPISODIC else None
  metrics = MetricWriter(os.path.join(workdir, "metrics.jsonl"),
                         keep=lambda rec: (rec["phase"] == "baseline"
                                           or (rec["phase"] == "prior" and prior_params is not None)
                                           or (rec["phase"] != "prior" and rec["round"] <= done)))

  evaluator = Evaluator(task, truth)
  mz, z_accuracy = learn_prior(task, oracle, evaluator, prior_params, metrics, workdir, config)
  amplifier = Amplifier(oracle, mz, task.spec, Budget(config.max_asks, config.max_lookups),
                        task.difficulty)
  key = jax.random.key(config.seed)
  eval_inputs = task.evaluation_questions(jax.random.fold_in(key, _EVAL), config.eval_size)
  d_inputs, d_labels = task.training_data(jax.random.fold_in(key, _D_SAMPLE), config.eval_size)
  n_heldout = config.heldout_rows

  augment = task.augment if config.augment else None

  def new_distiller(r: int, budget: int) -> Distiller:
    """Warm start: one policy and one schedule of total_steps across all rounds. Cold start: a
    fresh policy each round, with a schedule of that round's `budget` of steps."""
    policy = make_policy(task.spec, config, policy_key(key, r))
    steps = config.total_steps if config.warm_start else budget
    # a round trains on at most its train rows + the replay buffer
    return Distiller(policy, config, steps, augment,
                     capacity=config.label_size - n_heldout + config.replay_size)

  distiller, replay, competent = None, None, None
  used = sum(rec["steps"] for rec in metrics.kept if rec["phase"] == "distill")  # resumed rounds'
  if done >= 0:
    lines = {rec["phase"]: rec for rec in metrics.kept if rec["round"] == done}
    if not {"distill", "eval"} <= lines.keys():
      raise ValueError(f"workdir {workdir!r} has a checkpoint of round {done} but metrics.jsonl "
                       "lacks that round's distill or eval line; use a new --workdir.")
    # the schedule that round trained on (a cold start's is that round's budget)
    distiller = new_distiller(done, lines["distill"]["step_budget"])
    replay, competent = checkpoint.restore(workdir, done, distiller)
  for r in range(done + 1, config.rounds):
    round_key = jax.random.fold_in(key, _ROUND + r)
    t0 = time.time()
    inputs = task.deployment_questions(jax.random.fold_in(round_key, _SAMPLE), config.label_size)
    previous_policy = None if distiller is None else distiller.policy  # none in round 0
    labels = amplifier.label(inputs, previous_policy, competent,
                             jax.random.fold_in(round_key, _LABEL))
    answers = jax.block_until_ready(labels.answers)
    label_seconds = time.time() - t0
    metrics.write({"round": r, "phase": "label", **labels.cost(),
                   "seconds": round(label_seconds, 3)})

    # D* rows are drawn IID, so a split by position is an IID split.
    heldout = LabelledSet.of(_rows(inputs, 0, n_heldout), answers[:n_heldout])
    train = LabelledSet.of(_rows(inputs, n_heldout), answers[n_heldout:])
    answered = jnp.all(answers != IDK, axis=1)
    train_set = training_set(train, answered[n_heldout:], replay, config.idk_share)

    t1 = time.time()
    budget = steps_for_round(config, r, used)
    previous = None if config.warm_start else distiller  # a cold round's rival (see below)
    if distiller is None or not config.warm_start:
      distiller = new_distiller(r, budget)
    # The round stops once pi imitates H^A's answers at every difficulty it answered, judged on
    # (up to n_heldout of) this round's training rows, so the held-out rows stay an unbiased check.
    probe = _rows(train.inputs, 0, n_heldout)
    probe_labels = train.labels[:n_heldout]
    probe_answered = np.asarray(answered[n_heldout:])[:n_heldout]
    probe_difficulty = np.asarray(task.difficulty(probe.questions))
    # the difficulties at which a perfect imitator would pass: those with enough answered rows
    answered_enough = competent_difficulties(probe_difficulty, probe_answered,
                                             np.ones_like(probe_answered), task.spec.max_difficulty,
                                             config.competence)

    def imitates_h_a() -> bool:
      return bool(np.all(answered_enough <= competent_difficulties(
          probe_difficulty, probe_answered, agrees(predict(distiller.policy, probe), probe_labels),
          task.spec.max_difficulty, config.competence)))

    before = distiller.steps_run
    loss = distiller.fit(train_set, budget, jax.random.fold_in(round_key, _DISTILL),
                         until=imitates_h_a)
    steps = distiller.steps_run - before
    used += steps
    distill_seconds = time.time() - t1
    metrics.write({"round": r, "phase": "distill", "steps": steps, "step_budget": budget,
                   "train_rows": len(train_set), "loss": loss,
                   "seconds": round(distill_seconds, 3)})

    t2 = time.time()
    # Agreement with H^A on the rows it answered (an IDK label is no answer to imitate).
    heldout_agrees = agrees(predict(distiller.policy, heldout.inputs), heldout.labels)
    # A cold round's fresh network does not always learn in its share of the steps; the round
    # then keeps pi_{r-1} if that agrees better with H^A on this round's held-out answered rows
    # (the IID check, no ground truth), so that one failed draw costs a round, not every label
    # after it. The same rows then report the kept policy's agreement: in such a round it is the
    # larger of two estimates, a bias of the order of their noise (1/sqrt(rows)), and the distill
    # line describes the discarded network. A warm round continues pi_{r-1}'s own optimisation:
    # it has no rival.
    kept_previous = False
    if previous is not None:
      previous_agrees = agrees(predict(previous.policy, heldout.inputs), heldout.labels)
      held = answered[:n_heldout]
      if (_mean(previous_agrees, held) or 0.0) > (_mean(heldout_agrees, held) or 0.0):
        distiller, heldout_agrees, kept_previous = previous, previous_agrees, True
    policy = distiller.policy
    train_agrees = agrees(predict(policy, train.inputs), train.labels)
    train_agreement = _mean(train_agrees, answered[n_heldout:])
    heldout_agreement = _mean(heldout_agrees, answered[:n_heldout])
    competent = competent_difficulties(
        np.asarray(task.difficulty(heldout.inputs.questions)), np.asarray(answered[:n_heldout]),
        heldout_agrees, task.spec.max_difficulty, config.competence)
    policy_answers = predict(policy, eval_inputs)
    record = {
        "round": r, "phase": "eval",
        "label_accuracy": evaluator.accuracy(inputs, answers),
        "label_accuracy_by_difficulty": evaluator.accuracy_by_difficulty(inputs, answers),
        "idk_fraction": float(1 - answered.mean()),
        "train_agreement": train_agreement,
        "heldout_agreement": heldout_agreement,
        "iid_gap": (None if train_agreement is None or heldout_agreement is None
                    else train_agreement - heldout_agreement),
        "competent_difficulties": np.flatnonzero(competent).tolist(),
        "kept_previous_policy": kept_previous,
        "policy_accuracy": evaluator.accuracy(eval_inputs, policy_answers),
        "policy_accuracy_by_difficulty": evaluator.accuracy_by_difficulty(eval_inputs,
                                                                          policy_answers),
        "policy_agreement_on_d": float(agrees(predict(policy, d_inputs), d_labels).mean()),
        **labels.cost(),
        "seconds": round(time.time() - t0, 3),
        "seconds_by_phase": {"label": round(label_seconds, 3),
                             "distill": round(distill_seconds, 3),
                             "eval": round(time.time() - t2, 3)},
    }
    metrics.write(record)
    print(f"round {r}: label accuracy {record['label_accuracy']:.3f} (IDK "
          f"{record['idk_fraction']:.3f}), policy accuracy {record['policy_accuracy']:.3f}, "
          f"{record['seconds']:.0f}s", flush=True)

    if config.replay_size:  # a FIFO of the newest rows H^A could answer (an IDK teaches little)
      kept = train.take(jnp.nonzero(answered[n_heldout:])[0])
      replay = kept if replay is None else replay.concat(kept)
      replay = replay.take(jnp.arange(max(0, len(replay) - config.replay_size), len(replay)))
    transcript = jax.tree.map(np.asarray, dataclasses.asdict(labels.transcript))
    os.makedirs(os.path.join(workdir, "transcripts"), exist_ok=True)
    np.savez_compressed(os.path.join(workdir, "transcripts", f"round_{r}.npz"),
                        questions=np.asarray(inputs.questions), answers=np.asarray(answers),
                        **transcript)
    checkpoint.save(workdir, r, distiller, replay, competent)  # last: it marks the round done

  finished = {rec["baseline"]: rec for rec in metrics.kept if rec["phase"] == "baseline"}
  if config.baselines:
    named = [("prosaic", baselines.prosaic_ml), ("ceiling", baselines.supervised_ceiling)]
    named += [(name, baselines.EXTRA[name]) for name in getattr(task, "extra_baselines", ())]
    for i, (name, train_and_score) in enumerate(named):  # key _BASELINE + i: one per baseline
      if name not in finished:
        finished[name] = train_and_score(task, truth, evaluator, eval_inputs, (d_inputs, d_labels),
                                         jax.random.fold_in(key, _BASELINE + i), config)
        metrics.write(finished[name])
  accuracy = lambda name: finished[name]["accuracy"] if name in finished else None
  final, prosaic, ceiling = record["policy_accuracy"], accuracy("prosaic"), accuracy("ceiling")
  span = None if prosaic is None or ceiling is None else ceiling - prosaic
  summary = {
      "final_policy_accuracy": final,
      "prosaic_accuracy": prosaic,
      "ceiling_accuracy": ceiling,
      "gap_recovered": (final - prosaic) / span if span else None,
      "z_accuracy": z_accuracy,
      "rounds": config.rounds,
      "wall_seconds": round(time.time() - start, 2),
      "seed": config.seed,
  }
  with open(os.path.join(workdir, "summary.json"), "w") as f:
    json.dump(summary, f, indent=2)
  return summary
