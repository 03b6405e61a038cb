"""Learning the prior at scale: fit z* for a lexicon world of 10^6 entities on CPU.

  python experiments/prior_scale.py --num_entities=1000000 --observations=16

Prints the fit's time, z* accuracy against the true world (scored by the evaluator), Mz's size
and both objective terms. With XLA_FLAGS=--xla_force_host_platform_device_count=2 the table is
sharded across two (host) devices.
"""
from __future__ import annotations

import json
import time

import jax
from absl import app, flags

from amplify import config as config_lib
from amplify.learn import prior
from amplify.truth.evaluator import Evaluator
from amplify.learn.mz import Table
from amplify.oracles.make import make_oracle
from amplify.tasks import make_task

_ENTITIES = flags.DEFINE_integer("num_entities", 1_000_000, "Entities in the world (z's size).")
_OBSERVATIONS = flags.DEFINE_integer("observations", 16, "Rows of D per entity, on average.")
_STEPS = flags.DEFINE_integer("steps", 300, "Full-batch Adam steps.")
_SEED = flags.DEFINE_integer("seed", 0, "World and D derive from it.")


def main(argv):
  del argv
  # max_set_size only shapes D*'s questions, which this experiment does not draw.
  config = config_lib.get_config("lexicon", num_entities=_ENTITIES.value, max_set_size=2,
                                 observations=_OBSERVATIONS.value, prior_steps=_STEPS.value,
                                 seed=_SEED.value)
  start = time.time()
  task, truth = make_task(config)
  inputs, labels = jax.block_until_ready(task.observations())
  world_seconds = time.time() - start
  mz, _, report = prior.fit(make_oracle(config, task), Table(task.spec), inputs, labels,
                                 steps=config.prior_steps,
                                 learning_rate=config.prior_learning_rate)
  result = {"num_entities": config.task_config.num_entities, "d_rows": int(labels.shape[0]),
            "devices": len(jax.devices()),
            "shards": len(Table(task.spec).init().sharding.device_set),  # how the fit held it
            "world_and_d_seconds": round(world_seconds, 2),
            "z_accuracy": Evaluator(task, truth).z_accuracy(mz), **report}
  print(json.dumps(result, indent=2))


if __name__ == "__main__":
  app.run(main)
