"""The named baselines every run reports beside amplification; they may read ground truth.

- prosaic ML: the policy network trained on D (its observed labels) and run on D*;
- supervised ceiling: the same network trained on ground-truth D* labels;
- a task's extra baselines (`Task.extra_baselines`, looked up in `EXTRA`), e.g. colored digits'
  grayscale oracle: prosaic ML with the spurious feature removed from every input.
All use the same network and the same total step budget as amplification. Each is scored on D*
(`accuracy`, against ground truth) and on a sample of D (`agreement_on_d`, against D's observed
labels: the "train environment" column of a distribution-shift table).
"""
from __future__ import annotations

import threading
import time

import jax

from amplify.learn.distill import Distiller, LabelledSet, agrees, predict
from amplify.truth.evaluator import Evaluator
from amplify.learn.policy import make_policy
from amplify.types import GroundTruth, Inputs, Task


def _train_and_score(name: str, data: LabelledSet, task: Task, evaluator: Evaluator,
                     eval_inputs: Inputs, d_sample, key: jax.Array, config,
                     view=None, remove=lambda inputs: inputs) -> dict:
  """Trains the policy on `data`, then scores what it answers on D* and on D. `view`: an
  `amplify.learn.mz.MzView` for a network that reads Mz (None: the memorising network, which reads no
  z*); `remove`: what every input loses before the network sees it (the truth is looked up for
  the input itself)."""
  start = time.time()
  train = config.train
  policy = make_policy(task.spec, config.model, jax.random.fold_in(key, 0),
                       reads_mz=view is not None)
  distiller = Distiller(policy, train, train.total_steps,
                        augment=task.augment if train.augment else None, view=view)
  loss = distiller.fit(data, train.total_steps, jax.random.fold_in(key, 1))
  answers = predict(policy, remove(eval_inputs), view)
  d_inputs, d_labels = d_sample
  on_d = agrees(predict(policy, remove(d_inputs), view), d_labels).mean()
  return {"round": None, "phase": "baseline", "baseline": name, "steps": train.total_steps,
          "loss": loss, "accuracy": evaluator.accuracy(eval_inputs, answers),
          "accuracy_by_difficulty": evaluator.accuracy_by_difficulty(eval_inputs, answers),
          "agreement_on_d": float(on_d),
          "seconds": round(time.time() - start, 2)}


def prosaic_ml(task: Task, truth: GroundTruth, evaluator: Evaluator, eval_inputs: Inputs, d_sample,
               key: jax.Array, config, view=None) -> dict:
  """Train on D (its observed labels; `truth` is unused), run on D*: trusts out-of-distribution
  generalisation. It never reads z* (it is the baseline without the prior): the memorising
  network, whatever `view` the run's policy has."""
  del truth, view
  inputs, labels = task.training_data(jax.random.fold_in(key, 2), config.train.baseline_size)
  return _train_and_score("prosaic", LabelledSet.of(inputs, labels), task, evaluator,
                          eval_inputs, d_sample, key, config)


def supervised_ceiling(task: Task, truth: GroundTruth, evaluator: Evaluator, eval_inputs: Inputs,
                       d_sample, key: jax.Array, config, view=None) -> dict:
  """Train on ground-truth D* labels: what the network can learn given perfect supervision.
  It is the `--config.model.policy` network: reading Mz, it reads the fitted z* (`view`)."""
  inputs = task.deployment_questions(jax.random.fold_in(key, 2), config.train.baseline_size)
  return _train_and_score("ceiling", LabelledSet.of(inputs, truth.answers(inputs)), task,
                          evaluator, eval_inputs, d_sample, key, config, view=view)


def grayscale_oracle(task: Task, truth: GroundTruth, evaluator: Evaluator, eval_inputs: Inputs,
                     d_sample, key: jax.Array, config, view=None) -> dict:
  """Prosaic ML with the right prior hard-coded (Arjovsky et al.'s "grayscale" row): train on D
  with its colour removed (`task.grayscale`), score on grayscale D* and D. Needs a task with a
  `grayscale(inputs)` method; `truth` is unused."""
  del truth, view  # colored digits' questions name no Mz keys
  inputs, labels = task.training_data(jax.random.fold_in(key, 2), config.train.baseline_size)
  return _train_and_score("grayscale", LabelledSet.of(task.grayscale(inputs), labels), task,
                          evaluator, eval_inputs, d_sample, key, config, remove=task.grayscale)


# The extra baselines a task may name in its `extra_baselines` (the loop runs them after the two
# above, each with its own key).
EXTRA = {"grayscale": grayscale_oracle}


class Training:
  """The named baselines, each trained in a thread of its own in the referee process, beside
  one another and the run's rounds (they read nothing the rounds produce but z*, fitted before
  round 0). One training leaves part of the cores idle, so side by side they end sooner than one
  after the other (1.2x on lexicon, 1.26x on wildcard, 2 CPU cores: experiments/results/
  bench_baselines), with the same results."""

  def __init__(self, task, truth, evaluator, named_keys, eval_inputs, d_sample, config, view):
    self.records, self.errors = [None] * len(named_keys), [None] * len(named_keys)
    self.finished = [threading.Event() for _ in named_keys]
    for i, named_key in enumerate(named_keys):
      threading.Thread(target=self._train, args=(i, task, truth, evaluator, named_key,
                                                 eval_inputs, d_sample, config, view),
                       daemon=True).start()

  def _train(self, i, task, truth, evaluator, named_key, eval_inputs, d_sample, config, view):
    named = {"prosaic": prosaic_ml, "ceiling": supervised_ceiling, **EXTRA}
    name, key_data = named_key
    try:
      self.records[i] = named[name](task, truth, evaluator, eval_inputs, d_sample,
                                    jax.random.wrap_key_data(key_data), config, view=view)
    except Exception as e:  # handed to the run with its request for this baseline's result
      self.errors[i] = f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0]}"
    finally:
      self.finished[i].set()

  def record(self, i: int) -> dict:
    """The metrics line of the i-th baseline started, once it has finished."""
    self.finished[i].wait()
    if self.records[i] is None:
      raise RuntimeError(f"a baseline failed: {self.errors[i]}")
    return self.records[i]
