"""What a preset's training costs on this machine: the engine's distillation step, timed at the
preset's network, batch and rows, times the steps its run trains (amplification's, and its two
baselines' beside it).

  python experiments/step_time.py --preset=permutation,wildcard,shortest_path,union_find,assignments
Seeds: --seeds (the figures: 0; the world's, the network's and the minibatches' keys). Machine:
the project's 2-core CPU (results/step_time/README.md).

Each preset's policy trains with the engine's `Distiller` on `label.size` rows of its D*
questions (labels all one token: the time of a step does not depend on them): one untimed call
of `train.steps_per_call` steps compiles it, then `--calls` calls are timed. The run's training
is `train.total_steps` steps of amplification plus as many for prosaic ML, the ceiling and a
task's extra baselines (`--baselines`, the default; prosaic ML and the extras train the
memorising network, timed apart where pi reads Mz): the table gives that time against a
10-minute run, and the most steps a run of 10 minutes could train if it did nothing else.
Labelling, evaluation and type 2 come on top.
"""
from __future__ import annotations

import time

from absl import flags
import jax
import jax.numpy as jnp
import numpy as np

from amplify.learn.distill import Distiller, LabelledSet
from amplify.learn.mz import MzView, TableMz
from amplify.learn.policy import reads_mz
from amplify.tasks import make_task
import common

_CALLS = flags.DEFINE_integer("calls", 2, "Timed calls of train.steps_per_call steps each.",
                              lower_bound=1)
BUDGET_S = 600  # the run of 10 minutes


def _view(task, config, key: jax.Array):
  """Where the preset's policy reads Mz: a random z* of the task's shape (a step's time does not
  depend on its entries); None where it reads none (an episodic task's question holds its
  facts)."""
  spec = task.spec
  if not reads_mz(spec, config.model.policy):
    return None
  entries = jax.random.randint(key, (spec.z_entries,), 0, spec.z_values) + spec.z_first_token
  return MzView.of(TableMz(entries.astype(jnp.int32), spec.z_values, spec.z_first_token), spec)


def _step_s(task, config, data, key: jax.Array, view) -> float:
  """Seconds a distillation step of the preset's network takes (reading Mz through `view`, or
  the memorising network where None), after an untimed call that compiles it."""
  policy = common.make_policy(task.spec, config.model, jax.random.fold_in(key, 2),
                              reads_mz=view is not None)
  train = config.train
  distiller = Distiller(policy, train, train.total_steps,
                        task.augment if train.augment else None, view=view)
  distiller.fit(data, train.steps_per_call, jax.random.fold_in(key, 3))  # compiles
  steps = _CALLS.value * train.steps_per_call
  start = time.perf_counter()
  distiller.fit(data, steps, jax.random.fold_in(key, 4))
  return (time.perf_counter() - start) / steps


def measure(preset: str, seed: int) -> dict:
  config = common.config_for(common.argv_for(preset, seed))
  task, _ = make_task(config)
  key = jax.random.key(seed)
  view = _view(task, config, jax.random.fold_in(key, 0))
  inputs = task.deployment_questions(jax.random.fold_in(key, 1), config.label.size)
  data = LabelledSet.of(inputs, np.zeros((config.label.size, task.spec.answer_len), np.int32))
  step_s = _step_s(task, config, data, key, view)
  # pi and the ceiling read Mz where the task's policy does; prosaic ML and a task's extra
  # baselines train the memorising network, which reads none
  memorising = len(task.extra_baselines) + 1 if config.baselines else 0
  memorising_s = (_step_s(task, config, data, key, None) if view is not None and memorising
                  else step_s)
  train = config.train
  networks = 1 + (1 + memorising if config.baselines else 0)
  trained_s = train.total_steps * ((networks - memorising) * step_s + memorising * memorising_s)
  row = {"preset": common.label(preset), "seed": seed, "batch": train.batch_size,
         "rows": config.label.size, "ms_per_step": round(1e3 * step_s, 1),
         "memorising_ms_per_step": round(1e3 * memorising_s, 1), "networks": networks,
         "total_steps": train.total_steps, "baselines": bool(config.baselines),
         "training_s": round(trained_s), "of_budget": round(trained_s / BUDGET_S, 2),
         "steps_in_budget": int(BUDGET_S * train.total_steps / trained_s)}
  print(f"{row['preset']}, seed {seed}: {row['ms_per_step']} ms a step; the run trains "
        f"{networks} x {train.total_steps} steps: {row['training_s']} s, {row['of_budget']}x "
        "a 10-minute run", flush=True)
  return row


def main(argv):
  del argv
  rows = [measure(preset, seed) for preset in common.presets(["permutation"])
          for seed in common.seeds()]
  table = common.markdown(
      ["preset", "seed", "ms a step (batch)", "steps the run trains", "their time",
       "x 10 minutes", "steps of 10 minutes (each of the run's networks)"],
      [[r["preset"], r["seed"], f"{r['ms_per_step']} ({r['batch']})"
        + (f"; memorising {r['memorising_ms_per_step']}"
           if r["memorising_ms_per_step"] != r["ms_per_step"] else ""),
        f"{r['total_steps']:,} x {r['networks']}", f"{r['training_s']:,} s",
        f"**{r['of_budget']:.2f}x**", f"{r['steps_in_budget']:,}"] for r in rows])
  common.write_results("A preset's training against a run of 10 minutes", table, rows)


if __name__ == "__main__":
  common.main(main)
