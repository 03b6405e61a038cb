"""What the referee scores (the only phases that reach ground truth, through the referee
process): a round's evaluation, and the baselines (prosaic ML, the supervised ceiling, the task's
extras). Nothing they compute flows back into labelling or training. Also the round's save."""
from __future__ import annotations

import dataclasses
import os
import time

import jax
import numpy as np

from amplify import processes
from amplify.configs import replay_rows
from amplify.files import checkpoint
from amplify.learn.distill import agrees, predict
from amplify.loop import curriculum
from amplify.loop.state import BASELINE, EVAL, Batch, Run, Split, State
from amplify.truth.referee import Referee
from amplify.views import progress


def evaluate(run: Run, state: State, r: int, batch: Batch, checks: dict, referee: Referee,
             t0: float, distilled: float) -> dict:
  """The referee scores H^A's labels and the deployed policy (pi_r unless the gate refused it)
  on a fresh D* sample against ground truth. `checks`: the IID check's and the type-2 gate's
  fields. Writes and returns the round's eval line, with the round's seconds from `t0` and by
  phase: labelling, distillation (`distilled`), the checks (the split, the IID check, type 2 and
  the gate) and this evaluation."""
  t2 = time.time()
  ev, policy = referee, state.distiller.policy
  answers = predict(policy, run.eval_inputs, run.view)
  d_inputs, d_labels = run.d_sample
  coverage = ({"unseen_entity_fraction": None, "policy_accuracy_unseen": None}
              if run.coverage is None else run.coverage.metrics(
      state.seen, run.eval_inputs,
      lambda rows: ev.accuracy(rows, predict(policy, rows, run.view))))
  record = {
      "round": r, "phase": "eval",
      "label_accuracy": ev.accuracy(batch.inputs, batch.labels.answers),
      "label_accuracy_by_difficulty": ev.accuracy_by_difficulty(batch.inputs,
                                                                batch.labels.answers),
      "idk_fraction": float(1 - batch.answered.mean()),
      **checks,
      "policy_accuracy": ev.accuracy(run.eval_inputs, answers),
      "policy_accuracy_by_difficulty": ev.accuracy_by_difficulty(run.eval_inputs, answers),
      **coverage,
      "policy_agreement_on_d": float(agrees(predict(policy, d_inputs, run.view), d_labels).mean()),
      **batch.labels.cost(),
  }
  def at_size(size: int) -> float:  # pi on fresh D* questions of instances of `size`
    rows = run.task.deployment_questions(
        jax.random.fold_in(jax.random.fold_in(run.key, EVAL), size), run.config.eval_size,
        size=size)
    return ev.accuracy(rows, predict(policy, rows, run.view))

  by_size = {str(size): at_size(size) for size in curriculum.eval_sizes(run.config, run.task)}
  if by_size:
    record["policy_accuracy_by_size"] = by_size | {str(run.task.full_size):
                                                   record["policy_accuracy"]}
  if checks.get("size") is not None:  # the curriculum: pi at this round's size
    record["policy_accuracy_at_size"] = record["policy_accuracy_by_size"][str(checks["size"])]
  record |= {"seconds": round(time.time() - t0, 3),
             "run_seconds": round(time.time() - run.start, 3),  # the run's so far, across resumes
             "seconds_by_phase": {"label": round(batch.seconds, 3),
                                  "distill": round(distilled, 3),
                                  "checks": round(t2 - t0 - batch.seconds - distilled, 3),
                                  "eval": round(time.time() - t2, 3)}}
  run.metrics.write(record)
  unseen = record.get("unseen_entity_fraction")
  print(f"round {r}: label accuracy {record['label_accuracy']:.3f} (IDK "
        f"{record['idk_fraction']:.3f}), policy accuracy {record['policy_accuracy']:.3f}"
        + ("" if unseen is None else f", unseen entities {unseen:.3f}")
        + ("" if "type2_score" not in record else
           f", type 1 {record['type1_score']:.3f} / type 2 {record['type2_score']:.3f} "
           f"({'refused: the deployed policy stays' if record['promoted'] is False else 'deployed'})")
        + f", {record['seconds']:.0f}s", flush=True)
  return record


def save(run: Run, state: State, r: int, batch: Batch, parts: Split) -> State:
  """Updates the replay buffer, writes the round's transcripts, then its checkpoint (last: a
  checkpoint marks the round done); returns the state with the new replay buffer."""
  replay = state.replay
  # a FIFO of the newest rows H^A could answer (an IDK teaches little)
  if run.config.train.replay_rounds:
    kept = parts.train.take(np.flatnonzero(parts.train_answered))
    replay = kept if replay is None else replay.concat(kept)
    replay = replay.take(np.arange(max(0, len(replay) - replay_rows(run.config)), len(replay)))
    replay = replay if len(replay) else None  # none answered yet (no_prior: ever)
  if processes.writes():
    transcript = jax.tree.map(np.asarray, dataclasses.asdict(batch.labels.transcript))
    os.makedirs(os.path.join(run.workdir, "transcripts"), exist_ok=True)
    path = os.path.join(run.workdir, "transcripts", f"round_{r}.npz")
    with open(f"{path}.tmp", "wb") as f:  # whole or not at all, as every workdir file
      np.savez_compressed(f, questions=np.asarray(batch.inputs.questions),
                          answers=np.asarray(batch.labels.answers), **transcript)
      f.flush()
      os.fsync(f.fileno())
    os.replace(f"{path}.tmp", path)
  checkpoint.save(run.workdir, r, state.distiller, replay, state.competent, state.seen)
  return dataclasses.replace(state, replay=replay)


def start_baselines(run: Run, referee: Referee) -> list[str]:
  """Prosaic ML, the supervised ceiling and the task's extra baselines that the workdir lacks
  (a finished one's line is kept across resumes) start training in the referee process (the
  ceiling trains on ground truth), beside the rounds: they read nothing the rounds produce but
  z*, fitted before round 0. Returns their names."""
  if not run.config.baselines:
    return []
  done = {rec["baseline"] for rec in run.metrics.kept if rec["phase"] == "baseline"}
  named = [(name, jax.random.fold_in(run.key, BASELINE + i))  # one key per baseline
           for i, name in enumerate(("prosaic", "ceiling", *run.task.extra_baselines))
           if name not in done]
  if named:
    print(f"baselines {', '.join(name for name, _ in named)}: training in the referee process, "
          "beside the rounds", flush=True)
    referee.start_baselines(named, run.eval_inputs, run.d_sample, run.config, run.z_star_view)
  return [name for name, _ in named]


def finish_baselines(run: Run, referee: Referee, started: list[str]) -> dict[str, dict]:
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
