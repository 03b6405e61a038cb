"""The type-2 gate: type 2 (H's whole decomposition tree, `amplify.learn.type2`) scores pi_r and
the deployed policy on a sample of the round's held-out questions, and with `--gate` pi_r is
deployed only if its type-2 score is not worse. Reads no ground truth: the references are H^A's
labels and H's own tree."""
from __future__ import annotations

import dataclasses
import time

import jax
import numpy as np

from amplify.learn.distill import Distiller, predict
from amplify.learn.type2 import as_deployed, net_score
from amplify.loop.state import TYPE2, Run, Split, State, round_key
from amplify.types import IDK, Inputs


@dataclasses.dataclass(frozen=True)
class Deployed:
  """The policy H^A used this round, kept while pi_r trains (the gate may restore it): its
  distiller and that distiller's state, its competence, the keys it trained on, its answers
  as H^A takes them on the type-2 sample (None: no policy yet, round 0), and this round's
  instance size (the curriculum steps on pi_r's agreement: a refused pi_r steps nothing)."""
  distiller: Distiller | None
  state: tuple | None
  steps_run: int
  competent: np.ndarray | None
  seen: np.ndarray | None
  answers: np.ndarray | None
  size: int | None = None


def _type2_sample(run: Run, parts: Split) -> Inputs:
  """The first `config.type2.size` of the round's held-out questions (H^A's answers kept out of
  training; at most all of them)."""
  n = min(run.config.type2.size, parts.n_heldout)
  return jax.tree.map(lambda a: a[:n], parts.heldout.inputs)


def deployed_policy(run: Run, state: State, parts: Split) -> Deployed:
  """What `type2_gate` needs of the policy H^A used, taken before pi_r trains (warm starts train
  it in place). The state is re-wrapped by a tree map: `nnx.state` hands out the policy's own
  Variables, which training updates; their arrays are immutable (`_train_chunk` donates none),
  so the snapshot copies no array."""
  d, copy = state.distiller, lambda a: None if a is None else a.copy()
  answers = None
  if d is not None and run.type2 is not None:
    sample = _type2_sample(run, parts)
    answers = as_deployed(predict(d.policy, sample, run.view),
                          np.asarray(run.task.difficulty(sample.questions)), state.competent)
  return Deployed(d, None if d is None else jax.tree.map(lambda a: a, d.state),
                  0 if d is None else d.steps_run, copy(state.competent), copy(state.seen),
                  answers, state.size)


def _restore(run: Run, r: int, state: State, before: Deployed) -> State:
  """The state with the deployed policy back (its weights, competence and seen keys) and the
  round's instance size; in round 0, where none was deployed, a fresh pi_0 that H^A asks
  nothing."""
  if before.distiller is None:
    return dataclasses.replace(
        state, distiller=run.new_distiller(r, state.distiller.schedule_steps),
        competent=np.zeros_like(state.competent),
        seen=None if state.seen is None else np.zeros_like(state.seen), size=before.size)
  before.distiller.load_state(before.state)
  before.distiller.steps_run = before.steps_run
  return dataclasses.replace(state, distiller=before.distiller, competent=before.competent,
                             seen=before.seen, size=before.size)


def type2_gate(run: Run, state: State, r: int, parts: Split, before: Deployed,
               kept_previous: bool) -> tuple[dict, State]:
  """Type-1 and type-2 scores of pi_r (as H^A would use it) on the type-2 sample, the deployed
  policy's type-2 score, and the gate's decision; returns those fields and the state H^A uses
  next. `promoted` is None where there was nothing to decide: a round that does not distil, or
  a cold round whose IID check kept pi_{r-1}."""
  if run.type2 is None:
    return {}, state
  c, t0 = run.config.type2, time.time()
  sample = _type2_sample(run, parts)
  n = sample.questions.shape[0]
  if n == 0:  # a round over D's questions with no held-out rows
    return {}, state
  difficulty = np.asarray(run.task.difficulty(sample.questions))
  reference, calls = run.type2.answers(sample, jax.random.fold_in(round_key(run.key, r), TYPE2))
  candidate = as_deployed(predict(state.distiller.policy, sample, run.view), difficulty,
                          state.competent)
  type1 = net_score(candidate, np.asarray(parts.heldout.labels[:n]))
  type2 = net_score(candidate, reference)
  deployed = net_score(np.full_like(reference, IDK) if before.answers is None else before.answers,
                       reference)
  promoted = True
  if not run.plan[r].distil or kept_previous:
    promoted = None
    reason = ("no distillation this round" if not run.plan[r].distil else
              "the IID check kept pi_{r-1} (--config.train.warm_start=false)") + ": nothing to decide"
  elif not c.gate:
    reason = "gate off (--nogate): pi_r deployed whatever its type-2 score"
  elif type2 < deployed - c.tolerance:
    promoted = False
    reason = (f"pi_r's type-2 score {type2:.3f} is below the deployed policy's {deployed:.3f} by "
              f"more than --config.type2.tolerance={c.tolerance}: the deployed policy stays")
    state = _restore(run, r, state, before)
  else:
    reason = (f"pi_r's type-2 score {type2:.3f} against the deployed policy's {deployed:.3f} "
              f"(tolerance {c.tolerance}): deployed")
  return {"type1_score": type1, "type2_score": type2, "type1_type2_gap": type1 - type2,
          "type2_score_deployed": deployed, "type2_questions": n, "type2_calls": calls,
          "type2_calls_per_question": calls / n, "type2_oracle": run.type2.name,
          "type2_seconds": round(time.time() - t0, 3), "promoted": promoted, "gate": reason,
          # what H may ask the policy it will use next round about, and at what size
          "competent_difficulties": np.flatnonzero(state.competent).tolist(),
          **({} if state.size is None else {"next_size": state.size})}, state
