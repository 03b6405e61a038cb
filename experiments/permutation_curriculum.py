"""Why amplification stalls on permutation powering: can the policy learn k = 4..7 from right
labels at all, when no larger k is in its data?

  python experiments/permutation_curriculum.py --max_k=8

Trains the permutation preset's policy (same network, steps and batch as every arm) on
ground-truth labels of D* questions, with the rows whose k >= max_k either dropped or labelled IDK
(`--idk`, as H^A's labels are before the policy is competent there), and prints its accuracy by k
on a fresh D* sample. max_k = 16 is the supervised ceiling. A diagnostic: it reads ground truth
by design, like the ceiling.
"""
from __future__ import annotations

import json
import time

import jax
import jax.numpy as jnp
from absl import app, flags

from amplify import config as config_lib
from amplify.distill import Distiller, LabelledSet, predict
from amplify.evaluator import Evaluator
from amplify.policy import make_policy
from amplify.tasks import make_task
from amplify.tasks.base import IDK

_MAX_K = flags.DEFINE_integer("max_k", 8, "Rows with k >= max_k are dropped (or IDK).")
_IDK = flags.DEFINE_bool("idk", False, "Label rows with k >= max_k IDK instead of dropping them.")
_STEPS = flags.DEFINE_integer("steps", None, "Optimiser steps (default: the preset's).")


def main(argv):
  del argv
  overrides = {} if _STEPS.value is None else {"total_steps": _STEPS.value}
  config = config_lib.get_config("permutation", **overrides)
  task, truth = make_task(config)
  key = jax.random.key(config.seed)
  inputs = task.deployment_questions(jax.random.fold_in(key, 0), config.baseline_size)
  labels = truth.answers(inputs)
  hard = task.difficulty(inputs.questions) >= _MAX_K.value
  data = LabelledSet.of(inputs, jnp.where(hard[:, None], IDK, labels))
  if not _IDK.value:
    data = data.take(jnp.nonzero(~hard)[0])
  start = time.time()
  policy = make_policy(task.spec, config, jax.random.fold_in(key, 1))
  distiller = Distiller(policy, config, config.total_steps, task.augment)
  loss = distiller.fit(data, config.total_steps, jax.random.fold_in(key, 2))
  eval_inputs = task.evaluation_questions(jax.random.fold_in(key, 3), config.eval_size)
  by_k = Evaluator(task, truth).accuracy_by_difficulty(eval_inputs, predict(policy, eval_inputs))
  print(json.dumps({"max_k": _MAX_K.value, "idk": _IDK.value, "rows": len(data),
                    "steps": config.total_steps, "loss": loss,
                    "seconds": round(time.time() - start, 1), "accuracy_by_k": by_k}))


if __name__ == "__main__":
  app.run(main)
