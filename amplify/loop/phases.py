"""The phases of a round that teach pi: label (H^A answers the round's questions), split (IID
train / held-out), distil (pi_r imitates H^A), and the IID check (pi_r against H^A's held-out
labels, per difficulty). Each returns what it produces; none reads ground truth."""
from __future__ import annotations

import contextlib
import dataclasses
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from amplify.learn.distill import Distiller, LabelledSet, agrees, predict
from amplify.loop import arms as arms_lib
from amplify.loop import curriculum
from amplify.loop.state import (DISTILL, FOCUS, LABEL, SAMPLE, WITH_D, Batch, Run, Split, State,
                                round_key)
from amplify.types import IDK, Inputs
from amplify.views import progress

MIN_ROWS_FOR_COMPETENCE = 20
# ... and H^A answered at least this share of that difficulty's rows: where it answered fewer,
# the answered rows are the easy ones of the difficulty (a union-find root, a vertex next to its
# target), and pi's agreement on them says nothing of the rest
MIN_ANSWERED_SHARE = 0.5
# the focused draw (`focus`): pi's agreement is measured on this many of the training rows; the
# least weight a difficulty keeps, reached where pi's disagreement there is at most FOCUS_KEPT of
# the bar's (1 at or under the bar)
FOCUS_PROBE_ROWS = 4096
FOCUS_KEPT = 0.1


def _mean(values: np.ndarray, where) -> float | None:
  where = np.asarray(where)
  return float(values[where].mean()) if where.any() else None


def _rows(inputs: Inputs, start: int, stop: int | None = None) -> Inputs:
  return jax.tree.map(lambda a: np.asarray(a)[start:stop], inputs)


def competent_difficulties(difficulty: np.ndarray, answered: np.ndarray, agrees: np.ndarray,
                           max_difficulty: int, threshold: float) -> np.ndarray:
  """bool[max_difficulty + 1]: the difficulties at which pi agrees with H^A's answered held-out
  labels at rate >= threshold, over at least MIN_ROWS_FOR_COMPETENCE rows that are at least
  MIN_ANSWERED_SHARE of the difficulty's rows. This is the IID check, per difficulty; it reads
  no ground truth."""
  competent = np.zeros(max_difficulty + 1, bool)
  for d in range(max_difficulty + 1):
    at = difficulty == d
    rows = answered & at
    competent[d] = (rows.sum() >= MIN_ROWS_FOR_COMPETENCE
                    and rows.sum() >= MIN_ANSWERED_SHARE * at.sum()
                    and agrees[rows].mean() >= threshold)
  return competent


def steps_for_round(config, plan, r: int, used: int) -> int:
  """Round r's step budget: what earlier rounds left of total_steps, split evenly over the
  distilling rounds to come; the last of them gets all of it (a round that does not distil gets
  none). A round stops early once pi passes the IID check at every difficulty H^A answered (see
  `distil`), and the steps it saves go to later rounds."""
  if not plan[r].distil:
    return 0
  left = config.train.total_steps - used
  to_come = sum(p.distil for p in plan[r:])
  return left if to_come == 1 else left // to_come


def training_set(train: LabelledSet, answered: np.ndarray, replay: LabelledSet | None,
                 idk_share: float) -> LabelledSet:
  """This round's answered rows + the replay buffer + this round's IDK rows, the IDK rows capped
  at `idk_share` of the result. Early rounds label mostly IDK; without the cap those rows, which
  teach only "too hard", take most of a round's steps."""
  known = train.take(np.flatnonzero(answered))
  if replay is not None:
    known = known.concat(replay)
  idk = train.take(np.flatnonzero(~answered))
  if len(known) == 0 or idk_share >= 1:
    return known.concat(idk)
  cap = int(idk_share / (1 - idk_share) * len(known))
  return known.concat(idk.take(np.arange(min(cap, len(idk)))))  # IID rows: the first are a sample


def label(run: Run, state: State, r: int) -> Batch:
  """H^A (H + pi_{r-1} + Mz; H alone in round 0) labels the round's questions: D* questions, or
  D's own questions where the arm's plan says so."""
  t0 = time.time()
  key, n = jax.random.fold_in(round_key(run.key, r), SAMPLE), run.config.label.size
  if run.plan[r].questions == arms_lib.TRAINING:
    inputs = run.task.training_data(key, n)[0]  # D's questions; H labels them, D's labels unused
  elif state.size is not None:
    inputs = run.task.deployment_questions(key, n, size=state.size)
  else:
    inputs = run.task.deployment_questions(key, n)
  policy = None if state.distiller is None else state.distiller.policy
  # an oracle that shows its own progress (a person's screen, the web oracle's line) gets no
  # other; anything else a line every few seconds
  with (contextlib.nullcontext(lambda text: None) if run.amplifier.shows_progress
        else progress.heartbeat(f"round {r}, labelling")) as status:
    labels = run.amplifier.label(inputs, policy, state.competent,
                                 jax.random.fold_in(round_key(run.key, r), LABEL),
                                 progress={"round": r, "rounds": len(run.plan),
                                           "workdir": run.workdir}, status=status)
    jax.block_until_ready(labels.answers)
  answered = np.asarray(jnp.all(labels.answers != IDK, axis=1))
  seconds = time.time() - t0
  run.metrics.write({"round": r, "phase": "label", **labels.cost(), "seconds": round(seconds, 3)})
  return Batch(inputs, labels, answered, seconds)


def split(run: Run, state: State, r: int, batch: Batch) -> Split:
  """Held-out rows first (questions are drawn IID, so a split by position is an IID split); the
  training set is the train part's answered rows, the replay buffer, capped IDK rows, and, where
  the plan says so, as many rows of D as the train part has (all of D if it has fewer), with
  their observed labels."""
  # heldout_fraction of the rows: a round on D's own questions may have fewer than label_size
  n = int(round(len(batch.answered) * run.config.label.heldout_fraction))
  answers = batch.labels.answers
  train = LabelledSet.of(_rows(batch.inputs, n), answers[n:])
  train_set = training_set(train, batch.answered[n:], state.replay,
                           run.config.train.idk_share)
  if run.plan[r].with_d:
    d_inputs, d_labels = run.task.training_data(
        jax.random.fold_in(round_key(run.key, r), WITH_D), len(train))
    train_set = train_set.concat(LabelledSet.of(d_inputs, d_labels))
  return Split(n, LabelledSet.of(_rows(batch.inputs, 0, n), answers[:n]), train,
               batch.answered[n:], batch.answered[:n], train_set)


def focus(rows: LabelledSet, difficulty: np.ndarray, agree, mastered: float, key: jax.Array,
          probe_rows: int = FOCUS_PROBE_ROWS
          ) -> tuple[LabelledSet, dict[int, float], np.ndarray | None]:
  """The training rows drawn again, as many, with replacement, each row weighing by pi's
  disagreement with H^A at its difficulty: 1 up to `mastered` agreement (on the up to `probe_rows`
  rows probed there; `agree(index)`: bool per row at `index`), then falling in proportion to the
  disagreement left, to FOCUS_KEPT where pi agrees on (nearly) every row probed. A difficulty
  probed on fewer than MIN_ROWS_FOR_COMPETENCE rows weighs 1.
  Where all weigh alike (one difficulty; pi at or under `mastered` at every one, or at (nearly)
  1), the rows as they were. Returns the rows, pi's agreement by difficulty and the indices
  drawn (None where the rows are as they were). The probe reads
  every training row (replay and capped IDK rows too), where the stop bar reads only this round's
  answered rows; and a draw with replacement leaves some rows out: with half the rows kept at 0.1,
  about 16% of the others (e^-1.8) are not drawn that round (BUILD_NOTES.md, known limits).

  Why: pi learns a difficulty only once H^A's labels at it are right, which needs pi competent
  one difficulty below; drawn alike, most steps go to what pi already imitates. Why falling, not
  a step to FOCUS_KEPT at `mastered`: a difficulty pi has only just passed, kept at a tenth,
  slips, and H^A's labels above it follow (experiments/results/focused_draw/README.md)."""
  n = len(rows)
  k_probe, k_draw = jax.random.split(key)
  probe = np.asarray(jax.random.choice(k_probe, n, (min(probe_rows, n),), replace=False))
  agreed = np.asarray(agree(probe))
  by_difficulty, weight = {}, np.ones(n)
  for d in np.unique(difficulty):
    here = difficulty[probe] == d
    by_difficulty[int(d)] = float(agreed[here].mean()) if here.any() else 0.0
    # a difficulty probed on too few rows to judge (rare rows) counts as one pi is still learning
    if here.sum() >= MIN_ROWS_FOR_COMPETENCE:
      # past the bar, the weight falls with pi's remaining disagreement: 1 at the bar, FOCUS_KEPT
      # from FOCUS_KEPT of the bar's disagreement down (a bar of 1: FOCUS_KEPT at 1, else 1)
      weight[difficulty == d] = np.clip((1 - by_difficulty[int(d)]) / max(1 - mastered, 1e-9),
                                        FOCUS_KEPT, 1.0)
  if np.ptp(weight) <= 1e-9:  # alike (a bar other than 0.975 can leave a hair between them)
    return rows, by_difficulty, None
  drawn = np.asarray(jax.random.choice(k_draw, n, (n,), p=jnp.asarray(weight / weight.sum())))
  return rows.take(drawn), by_difficulty, drawn


class Distilled(NamedTuple):
  distiller: Distiller  # pi_r (pi_{r-1} itself in a round that does not distil)
  rival: Distiller | None  # a cold round's rival, pi_{r-1} (None in a warm round)
  steps: int
  rows: LabelledSet | None = None  # the rows pi_r trained on (the focused draw's, where drawn)
  drawn: np.ndarray | None = None  # the focused draw's indices into the round's training set


def stop_bar(competence: float) -> float:
  """The agreement at which a round stops early: halfway from `competence` to 1. The stop is
  judged on training rows, where pi agrees more than on the held-out rows that then judge its
  competence, and near the bar by chance: stopping at the bar itself, union find's round 2
  stopped at 200 of 800 steps and pi then fell short on the held-out rows (0.948 at k = 1), a
  round lost (BUILD_NOTES.md, "Paced rounds")."""
  return (1 + competence) / 2


def distil(run: Run, state: State, r: int, parts: Split) -> Distilled:
  """Trains pi_r on the training set within the round's step budget, stopping once pi imitates
  H^A at every difficulty it answered at `stop_bar` (judged on up to n_heldout of the round's
  own training rows, so the held-out rows stay an unbiased check)."""
  c, t1 = run.config, time.time()
  budget = steps_for_round(c, run.plan, r, state.steps_used)
  if not run.plan[r].distil:
    run.metrics.write({"round": r, "phase": "distill", "steps": 0, "step_budget": 0,
                       "schedule_steps": state.distiller.schedule_steps, "train_rows": 0,
                       "loss": None, "seconds": 0.0})
    return Distilled(state.distiller, None, 0)
  rival = None if c.train.warm_start else state.distiller
  distiller = state.distiller
  if distiller is None or not c.train.warm_start:
    # warm start: one policy and one schedule of total_steps across all rounds
    distiller = run.new_distiller(r, c.train.total_steps if c.train.warm_start else budget)
  n = parts.n_heldout
  probe, probe_labels = _rows(parts.train.inputs, 0, n), parts.train.labels[:n]
  probe_answered = parts.train_answered[:n]
  probe_difficulty = np.asarray(run.task.difficulty(probe.questions))
  spec = run.task.spec
  # the difficulties at which a perfect imitator would pass: those with enough answered rows
  answered_enough = competent_difficulties(probe_difficulty, probe_answered,
                                           np.ones_like(probe_answered), spec.max_difficulty,
                                           c.label.competence)

  def imitates_h_a() -> bool:
    agree = agrees(predict(distiller.policy, probe, run.view), probe_labels)
    return bool(np.all(answered_enough <= competent_difficulties(
        probe_difficulty, probe_answered, agree, spec.max_difficulty,
        stop_bar(c.label.competence))))

  train_set, agreement, drawn = parts.train_set, None, None
  if c.train.focus and state.distiller is not None:  # round 0 has no pi to measure
    rows = parts.train_set
    train_set, agreement, drawn = focus(
        rows, np.asarray(run.task.difficulty(rows.inputs.questions)),
        lambda index: agrees(predict(state.distiller.policy, rows.take(index).inputs, run.view),
                             rows.labels[index]),
        stop_bar(c.label.competence), jax.random.fold_in(round_key(run.key, r), FOCUS))
  before = distiller.steps_run
  with progress.heartbeat(f"round {r}, distillation") as status:
    loss = distiller.fit(train_set, budget,
                         jax.random.fold_in(round_key(run.key, r), DISTILL),
                         until=imitates_h_a, status=status)
  steps = distiller.steps_run - before
  run.metrics.write({"round": r, "phase": "distill", "steps": steps, "step_budget": budget,
                     "schedule_steps": distiller.schedule_steps,
                     "train_rows": len(train_set), "loss": loss, "focus_agreement": agreement,
                     "seconds": round(time.time() - t1, 3)})
  return Distilled(distiller, rival, steps, train_set, drawn)


def iid_check(run: Run, state: State, r: int, parts: Split,
              trained: Distilled) -> tuple[dict, State]:
  """pi's agreement with H^A on the train and held-out rows H^A answered (an IDK label is no
  answer to imitate), their gap, and the difficulties pi is competent at next round; returns
  those fields and the state with them. A cold round keeps pi_{r-1} if that agrees better on the
  held-out rows (no ground truth read): one failed draw then costs a round, not every label
  after it. In such a round the agreement reported is the larger of two estimates, a bias of the
  order of their noise (1/sqrt(rows))."""
  held, distiller, rival = parts.heldout_answered, state.distiller, trained.rival
  heldout = parts.heldout
  heldout_agrees = agrees(predict(distiller.policy, heldout.inputs, run.view), heldout.labels)
  kept_previous = False
  if rival is not None:
    rival_agrees = agrees(predict(rival.policy, heldout.inputs, run.view), heldout.labels)
    if (_mean(rival_agrees, held) or 0.0) > (_mean(heldout_agrees, held) or 0.0):
      distiller, heldout_agrees, kept_previous = rival, rival_agrees, True
  seen = state.seen
  if run.plan[r].distil and not kept_previous and run.coverage is not None:
    seen = run.coverage.mark(seen, trained.rows.inputs.questions,
                             fresh=not run.config.train.warm_start)
  # on this round's answered training rows that pi_r trained on: none in a round that trains
  # nothing or keeps pi_{r-1}; the focused draw's rows alone where it drew (a row it left out is
  # a held-out row, and counted as trained on it halved the gap: permutation_tiny, 0.022
  # against 0.066)
  train_agreement = None
  if run.plan[r].distil and not kept_previous:
    trained_on = parts.train_answered
    if trained.drawn is not None:  # the training set's first rows are the round's answered ones
      answered = np.flatnonzero(parts.train_answered)
      trained_on = np.zeros_like(parts.train_answered)
      trained_on[answered[trained.drawn[trained.drawn < len(answered)]]] = True
    train_agrees = agrees(predict(distiller.policy, parts.train.inputs, run.view),
                          parts.train.labels)
    train_agreement = _mean(train_agrees, trained_on)
  heldout_agreement = _mean(heldout_agrees, held)
  competent = competent_difficulties(
      np.asarray(run.task.difficulty(heldout.inputs.questions)), held, heldout_agrees,
      run.task.spec.max_difficulty, run.config.label.competence)
  record = {"train_agreement": train_agreement, "heldout_agreement": heldout_agreement,
            "iid_gap": (None if train_agreement is None or heldout_agreement is None
                        else train_agreement - heldout_agreement),
            "competent_difficulties": np.flatnonzero(competent).tolist(),
            "kept_previous_policy": kept_previous}
  size = state.size
  if size is not None:  # the curriculum: this round's size, and the next round's
    share = curriculum.agreement(held, heldout_agrees, MIN_ANSWERED_SHARE)
    size = curriculum.next_size(run.config, run.task, state.size, share)
    record |= {"size": state.size, "size_agreement": share, "next_size": size}
  return record, dataclasses.replace(state, distiller=distiller, competent=competent, seen=seen,
                                     size=size)
