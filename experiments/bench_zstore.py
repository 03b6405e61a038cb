"""What reading z* from disk costs: H^A's labelling and pi's distillation steps with z* in memory
(`TableMz`) against z* on disk (`zstore.DiskMz`), side by side in one process, as ratios.

  python experiments/bench_zstore.py --entities=10000,1000000
Seeds: --seeds (the figures: 0; z*'s entries, pi and the questions). Machine: the project's 2-core
CPU (results/bench_zstore/README.md).

For each entity count: a lexicon world of that size (the default preset's network and batch), a
z* of random entries (what it holds does not change the work) in memory and written to disk,
then, for each, H^A labels --batch D* questions (pi untrained, asked at every difficulty, reading
Mz) and the distiller runs --steps steps, each once untimed (compiles) and then timed, alternated
--repeats times. Writes RESULTS/bench_zstore/bench_zstore.{json,md}.
"""
from __future__ import annotations

import tempfile
import time

from absl import flags

import common

_ENTITIES = flags.DEFINE_list("entities", ["10000", "1000000"], "Entity counts (z*'s entries).")
_BATCH = flags.DEFINE_integer("batch", 4096, "D* questions labelled.", lower_bound=1)
_STEPS = flags.DEFINE_integer("steps", 50, "Distillation steps timed.", lower_bound=1)
_REPEATS = flags.DEFINE_integer("repeats", 2, "Timings of each, alternated.", lower_bound=1)


def measure(preset: str, seed: int, entities: int, folder: str) -> dict:
  # pylint: disable=g-import-not-at-top
  import jax
  import numpy as np
  from amplify.learn import distill, zstore
  from amplify.learn.amplifier import Amplifier, Budget
  from amplify.learn.mz import MzView, TableMz
  from amplify.oracles.make import make_oracle
  from amplify.tasks import make_task
  config = common.config_for(common.argv_for(preset, seed, defaults=[
      f"--task.num_entities={entities}", "--task.observations=1"]))
  task, _ = make_task(config)
  spec = task.spec
  values = np.random.default_rng(seed).integers(0, spec.z_values, spec.z_entries)
  kinds = {"memory": TableMz(jax.numpy.asarray(values + spec.z_first_token, jax.numpy.int32),
                             spec.z_values, spec.z_first_token),
           "disk": zstore.write(f"{folder}/zstar_{entities}", [(0, values)], spec.z_entries,
                                spec.z_values, spec.z_first_token)}
  inputs = task.deployment_questions(jax.random.key(seed + 1), _BATCH.value)
  competent = np.ones(spec.max_difficulty + 1, bool)
  config.train.steps_per_call = _STEPS.value
  work = {}
  for kind, mz in kinds.items():
    view = MzView.of(mz, spec)
    policy = common.make_policy(spec, config.model, jax.random.key(seed), reads_mz=True)
    amplifier = Amplifier(make_oracle(config, task), mz, task,
                          Budget(config.label.max_asks, config.label.max_lookups), view=view)
    label = lambda a=amplifier, p=policy: jax.block_until_ready(
        a.label(inputs, p, competent, jax.random.key(seed + 2)).answers)
    data = distill.LabelledSet.of(inputs, label())
    distiller = distill.Distiller(policy, config.train, 10**6, view=view)
    fit = lambda d=distiller, data=data: d.fit(data, _STEPS.value, jax.random.key(seed + 3))
    fit()
    work[kind] = (label, fit)
  seconds = {f"{kind}_{part}": 0.0 for kind in kinds for part in ("label", "fit")}
  for _ in range(_REPEATS.value):
    for kind, (label, fit) in work.items():
      for part, fn in (("label", label), ("fit", fit)):
        start = time.perf_counter()
        fn()
        seconds[f"{kind}_{part}"] += time.perf_counter() - start
  return {"entities": entities, **{k: round(v, 3) for k, v in seconds.items()},
          "labelling_disk_vs_memory": seconds["disk_label"] / seconds["memory_label"],
          "distillation_disk_vs_memory": seconds["disk_fit"] / seconds["memory_fit"]}


def main(argv):
  del argv
  rows = []
  with tempfile.TemporaryDirectory() as folder:
    for preset in common.presets(["lexicon"]):
      for seed in common.seeds():
        for entities in map(int, _ENTITIES.value):
          row = {"preset": common.label(preset), "seed": seed,
                 **measure(preset, seed, entities, folder)}
          print(row, flush=True)
          rows.append(row)
  table = common.markdown(
      ["preset", "seed", "entities", "labelling: disk / memory", "distillation: disk / memory"],
      [[r["preset"], r["seed"], f"{r['entities']:,}", f"{r['labelling_disk_vs_memory']:.2f}x",
        f"{r['distillation_disk_vs_memory']:.2f}x"] for r in rows])
  common.write_results("Reading z* from disk against memory", table, rows)


if __name__ == "__main__":
  common.main(main)
