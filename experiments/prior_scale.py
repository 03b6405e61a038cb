"""Learning the prior at scale: fit z* alone (no rounds) for a lexicon world of 10^6 entities.

  python experiments/prior_scale.py --task.num_entities=1000000 --task.observations=16
Seeds: --seeds (the figures: 0). Machine: the project's 2-core CPU (results/prior_scale/README.md).

For each preset (default lexicon) and seed: draws the world and its D (the seed's world: this
script is its own evaluator, no run's), fits z* with the config's `prior.steps` full-batch Adam
steps, and scores it against the world. The study's settings, which run flags override:
`--task.num_entities=1000000 --task.observations=16 --task.max_set_size=2` (the set size only
shapes D*'s questions, which are not drawn). Writes RESULTS/prior_scale/prior_scale.{json,md}: the
fit's time, z* accuracy, Mz's size, both objective terms, the devices, the devices the table is
spread over and the process's peak memory (its maximum resident set, the world and the scoring
included; with several presets or seeds, a row's peak is the process's so far, so run one a
process to compare them). With
XLA_FLAGS=--xla_force_host_platform_device_count=2 the table is sharded across two host devices.
"""
from __future__ import annotations

import resource
import time

from absl import flags

import common

DEFAULTS = ["--task.num_entities=1000000", "--task.observations=16", "--task.max_set_size=2"]
_CHUNK_ROWS = flags.DEFINE_integer("chunk_rows", None, "Rows of D the fit sums at a time "
                                   "(default: the engine's, amplify.learn.prior.CHUNK_ROWS).")


def fit(config) -> dict:
  import jax  # pylint: disable=g-import-not-at-top
  from amplify.learn import prior  # pylint: disable=g-import-not-at-top
  from amplify.learn.mz import Table  # pylint: disable=g-import-not-at-top
  from amplify.oracles.make import make_oracle  # pylint: disable=g-import-not-at-top
  from amplify.tasks import make_task  # pylint: disable=g-import-not-at-top
  from amplify.truth.evaluator import Evaluator  # pylint: disable=g-import-not-at-top
  start = time.time()
  task, truth = make_task(config)
  jax.block_until_ready([v for v in vars(task).values() if isinstance(v, jax.Array)])
  world_seconds = time.time() - start
  mz, _, report = prior.fit(make_oracle(config, task), Table(task.spec), prior.blocks(task),
                            steps=config.prior.steps, learning_rate=config.prior.learning_rate,
                            chunk_rows=_CHUNK_ROWS.value or prior.CHUNK_ROWS)
  return {"num_entities": config.task.num_entities,
          "chunk_rows": _CHUNK_ROWS.value or prior.CHUNK_ROWS, "devices": len(jax.devices()),
          # the devices a table's rows are spread over: Table.init's sharding, the same at any
          # size (a table of z's entries here would add 1.6 GB to the fit's memory at 10^8)
          "shards": len(Table(task.spec).init(len(jax.devices())).sharding.device_set),
          "world_and_d_seconds": round(world_seconds, 2),
          "z_accuracy": Evaluator(task, truth).z_accuracy(mz), **report,
          "peak_memory_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def main(argv):
  del argv
  results = []
  for preset in common.presets(["lexicon"]):
    for seed in common.seeds():
      argv = common.argv_for(preset, seed, defaults=DEFAULTS)
      print(f"{common.label(preset)}, seed {seed}: fitting z* ({' '.join(argv)})", flush=True)
      results.append({"preset": common.label(preset), "seed": seed, "flags": argv,
                      **fit(common.config_for(argv))})
  keys = [k for k in results[0] if k not in ("preset", "seed", "flags")]
  rows = [[r["preset"], r["seed"], *(f"{r[k]:.6g}" if isinstance(r[k], float) else r[k]
                                     for k in keys)] for r in results]
  common.write_results("Fitting z* alone", common.markdown(["preset", "seed", *keys], rows),
                       results)


if __name__ == "__main__":
  common.main(main)
