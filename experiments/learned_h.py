"""H''s learning curve on one batch (a diagnostic for `--oracle=learned`, issue 11).

  python experiments/learned_h.py PRESET COMPETENT_UPTO FRACTION STEPS FITS

The real H (the task's scripted H) answers FRACTION of one batch of the preset's D* questions
(`label_size` of them): two thirds train H', one third is held out. H' is fitted FITS times, STEPS
steps each, and after each fit prints its held-out agreement with H per difficulty, then the
accuracy of each of its next steps (kind, payload) at the small difficulties, and for each
confidence threshold the run may trust H' down to, the share of held-out rows H' is that sure of
and its agreement on them, per difficulty. pi is replaced by a
stand-in that answers subquestions of difficulty <= COMPETENT_UPTO exactly (from Mz for lexicon,
from the example's facts for permutation) and IDK above: the later rounds' situation, without
training policies. The stand-in is a diagnostic device; runs never use it.
"""
from __future__ import annotations

import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from amplify import config as config_lib
from amplify.learn import prior
from amplify.learn.mz import Table
from amplify.oracles.make import human_model, make_oracle
from amplify.oracles.learned import ANSWER, ASK, LOOKUP, THRESHOLDS, _act, _Recorder
from amplify.oracles.tools import BatchTools
from amplify.tasks import make_task
from amplify.types import IDK, Inputs
from amplify.tasks.permutation import _follow


def main(preset: str, upto: int, fraction: float, steps: int, fits: int) -> None:
  config = config_lib.get_config(preset, oracle="learned", **{"oracle.steps": steps})
  task, _ = make_task(config)
  oracle = make_oracle(config, task)
  key = jax.random.key(1)
  inputs = task.deployment_questions(key, config.label_size)
  if task.name == "lexicon":
    mz = prior.fit(human_model(oracle, task), Table(task.spec), *task.observations(), steps=100,
                   learning_rate=0.3)[0]

    def ask(q):
      size, entities, _, valid = task.decode(q)
      classes = mz.lookup(entities.reshape(-1), None).reshape(entities.shape)
      one_hot = jax.nn.one_hot(classes - task.class0, task.num_classes, dtype=jnp.int32)
      counts = jnp.sum(jnp.where(valid[..., None], one_hot, 0), axis=1)
      return jnp.where((size <= upto)[:, None], task.count0 + counts, IDK).astype(jnp.int32)

    lookup = lambda k: mz.lookup(k, None)
  elif task.name == "permutation":
    context = inputs.context

    def ask(q):
      answer = _follow(Inputs(context, q))
      return jnp.where((task.decode(q)[1] <= upto)[:, None], answer, IDK).astype(jnp.int32)

    def lookup(k):
      match = context[:, :, 0] == k[:, None]
      value = jnp.sum(jnp.where(match, context[:, :, 1], 0), axis=1)
      return jnp.where(jnp.any(match, axis=1), value, IDK).astype(jnp.int32)
  else:
    raise SystemExit(f"{preset}: a lexicon or permutation preset.")

  q = inputs.questions
  n = q.shape[0]
  tools = lambda: BatchTools(ask, lookup, n, max_asks=config.max_asks,
                             max_lookups=config.max_lookups)
  rows = np.random.RandomState(0).permutation(n)[:int(fraction * n)]
  heldout = np.zeros(n, bool)
  heldout[rows[:len(rows) // 3]] = True
  labelled = _Recorder(tools().handle(), jnp.ones(n, bool))  # the real H's steps, as a run keeps
  h = np.asarray(oracle.human.answer(q, labelled, key))
  oracle.data.append(oracle._examples(q, h, labelled.log, rows[len(rows) // 3:])[:3])
  print(f"{len(oracle.data[0][0])} training steps from {len(rows) - heldout.sum()} rows; "
        f"{heldout.sum()} rows held out")
  difficulty = np.asarray(task.difficulty(q))
  for fit in range(fits):
    t0 = time.time()
    oracle._fit(jax.random.fold_in(key, fit))
    jax.block_until_ready(oracle.params)
    seconds = time.time() - t0
    imitated, _ = oracle._imitate(q, tools(), jnp.asarray(heldout), np.zeros(n))
    agrees = np.all(np.asarray(imitated) == h, axis=1)
    steps_agree, confidence = oracle._agrees(oracle._examples(q, h, labelled.log,
                                                              np.flatnonzero(heldout)),
                                             int(heldout.sum()))  # the run's check
    per = " ".join(f"{d}:{agrees[heldout & (difficulty == d)].mean():.2f}"
                   for d in np.unique(difficulty))
    print(f"after {(fit + 1) * steps} steps ({seconds:.0f}s): held out {agrees[heldout].mean():.3f}"
          f" (every step as H's: {steps_agree.mean():.3f})"
          f" | by difficulty {per}", flush=True)
  # the rows H' is at least tau sure of (the run's per-row check): their share and agreement
  held_difficulty = difficulty[heldout]
  for tau in THRESHOLDS:
    sure = confidence >= tau
    per = " ".join(f"{d}:{sure[held_difficulty == d].mean():.2f}/"
                   f"{steps_agree[sure & (held_difficulty == d)].mean():.3f}"
                   for d in np.unique(difficulty) if (sure & (held_difficulty == d)).any())
    print(f"sure >= {tau}: share/agreement by difficulty {per}")
  # each next step of the held-out rows, teacher-forced
  states, kinds, payloads, _ = oracle._examples(q, h, labelled.log, np.flatnonzero(heldout))
  kind, payload, _ = (np.asarray(a) for a in _act(oracle.graphdef, oracle._widths, oracle.params,
                                                 oracle.rest, jnp.asarray(states)))
  width = {ASK: task.spec.question_len, LOOKUP: 1, ANSWER: task.spec.answer_len}
  step_difficulty = np.asarray(task.difficulty(jnp.asarray(states[:, :task.spec.question_len])))
  for k, name in ((ASK, "ask"), (LOOKUP, "look-up"), (ANSWER, "answer")):
    for d in range(1, 6):
      at = (kinds == k) & (step_difficulty == d)
      if at.any():
        same = np.all(payload[at, :width[k]] == payloads[at, :width[k]], axis=1).mean()
        print(f"{name} at difficulty {d}: {at.sum()} steps, kind {np.mean(kind[at] == k):.2f}, "
              f"payload {same:.2f}")


if __name__ == "__main__":
  if len(sys.argv) != 6:
    raise SystemExit(__doc__)
  main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
