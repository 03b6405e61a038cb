"""Run by tests/test_mesh.py in a process of its own, with XLA_FLAGS giving it N CPU devices:
labels, a short distillation and type 2 on two tiny tasks; prints one JSON line of what it
computed and over how many devices it was split."""
import hashlib
import json
import sys

import jax
import numpy as np

import helpers
from amplify.learn import distill
from amplify.learn.amplifier import Amplifier, Budget
from amplify.learn.mz import MzView
from amplify.learn.type2 import Type2
from amplify.oracles.make import make_oracle


def digest(array) -> str:
  return hashlib.sha256(np.asarray(array).tobytes()).hexdigest()[:16]


def probe(name: str, shard_params: bool = False) -> dict:
  config, task, mz, policy, competent = helpers.setup_task(
      name, **{"train.shard_params": shard_params})
  view = MzView.of(mz, task.spec) if task.spec.names_mz_keys else None
  amplifier = Amplifier(make_oracle(config, task), mz, task, Budget(4, 4), view=view)
  inputs = task.deployment_questions(jax.random.key(5), 512)
  first = amplifier.label(inputs, None, None, jax.random.key(2)).answers
  config.train.steps_per_call = 10
  calls = []  # the training step's arguments, to read its compiled program below
  train_chunk = distill._train_chunk
  distill._train_chunk = lambda *a, **k: calls.append((a, k)) or train_chunk(*a, **k)
  distiller = distill.Distiller(policy, config.train, 40, augment=task.augment, view=view)
  losses = [distiller.fit(distill.LabelledSet.of(inputs, first), 10, jax.random.key(3 + k))
            for k in range(4)]
  distill._train_chunk = train_chunk
  args, kwargs = calls[-1]
  program = train_chunk.lower(*args, **kwargs).compile().as_text()
  labels = amplifier.label(inputs, policy, competent, jax.random.key(4)).answers
  type2, _ = Type2(make_oracle(config, task), task, mz).answers(
      jax.tree.map(lambda a: a[:64], inputs), jax.random.key(6))
  return {"losses": losses, "labels": digest(labels), "round_0": digest(first),
          "predictions": digest(distill.predict(policy, inputs, view)), "type2": digest(type2),
          "devices": len(jax.devices()), "labels_on": len(labels.sharding.device_set),
          "labels_split": not labels.sharding.is_fully_replicated,
          "gradient_summed": "all-reduce" in program,
          "params_on": len(jax.tree.leaves(distiller.state[0])[0].sharding.device_set),
          "params_split": sum(not leaf.sharding.is_fully_replicated
                              for leaf in jax.tree.leaves(distiller.state))}


if __name__ == "__main__":
  runs = {name: probe(name) for name in sys.argv[1:]}
  if len(jax.devices()) > 1:  # and the parameters split over the devices, not copied
    runs["lexicon_shard_params"] = probe("lexicon", shard_params=True)
  print(json.dumps(runs))
