"""The named baselines every run reports beside amplification; they may read ground truth.

- prosaic ML: the policy network trained on D (its observed labels) and run on D*;
- supervised ceiling: the same network trained on ground-truth D* labels.
Both use the same network and the same total step budget as amplification.
"""
from __future__ import annotations

import time

import jax

from amplify.distill import Distiller, LabelledSet, predict
from amplify.evaluator import Evaluator
from amplify.policy import make_policy
from amplify.tasks.base import GroundTruth, Inputs, Task


def _train_and_score(name: str, data: LabelledSet, task: Task, evaluator: Evaluator,
                     eval_inputs: Inputs, key: jax.Array, config) -> dict:
  start = time.time()
  policy = make_policy(task.spec, config, jax.random.fold_in(key, 0))
  distiller = Distiller(policy, config, config.total_steps,
                        augment=task.augment if config.augment else None)
  loss = distiller.fit(data, config.total_steps, jax.random.fold_in(key, 1))
  answers = predict(policy, eval_inputs)
  return {"phase": "baseline", "baseline": name, "steps": config.total_steps, "loss": loss,
          "accuracy": evaluator.accuracy(eval_inputs, answers),
          "accuracy_by_difficulty": evaluator.accuracy_by_difficulty(eval_inputs, answers),
          "seconds": round(time.time() - start, 2)}


def prosaic_ml(task: Task, truth: GroundTruth, evaluator: Evaluator, eval_inputs: Inputs,
               key: jax.Array, config) -> dict:
  """Train on D (its observed labels; `truth` is unused), run on D*: trusts out-of-distribution
  generalisation."""
  del truth
  inputs, labels = task.training_data(jax.random.fold_in(key, 2), config.baseline_size)
  return _train_and_score("prosaic", LabelledSet.of(inputs, labels), task, evaluator,
                          eval_inputs, key, config)


def supervised_ceiling(task: Task, truth: GroundTruth, evaluator: Evaluator, eval_inputs: Inputs,
                       key: jax.Array, config) -> dict:
  """Train on ground-truth D* labels: what the network can learn given perfect supervision."""
  inputs = task.deployment_questions(jax.random.fold_in(key, 2), config.baseline_size)
  return _train_and_score("ceiling", LabelledSet.of(inputs, truth.answers(inputs)), task,
                          evaluator, eval_inputs, key, config)
