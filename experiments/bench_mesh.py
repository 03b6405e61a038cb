"""Labelling and distillation throughput against the number of devices and of processes
(amplify.learn.mesh, amplify.processes), as ratios to one device in one process, measured one
after another in one invocation.

  python experiments/bench_mesh.py --preset=lexicon --devices=1,2,4 --processes=1,2
Seeds: --seeds (the figures: 0; the world's, pi's and the minibatches' keys). Machine: the
project's 2-core CPU, where the devices are forced host devices sharing its 2 cores
(results/bench_mesh/README.md); on a GPU machine, pass its device counts.

Each device count runs in a process of its own (XLA fixes the devices at start-up), forced with
`--xla_force_host_platform_device_count` when the machine has fewer; with P processes, in P
processes on localhost of devices / P each, joined by `jax.distributed` (a free port; gloo
between them), process 0's figures reported. Each process labels a batch
of --batch D* questions with H^A (an untrained pi, asked at every difficulty) and runs --steps
distillation steps of the preset's network, batch and optimiser, each once untimed (compiles)
and then timed; it reports questions and steps per second, and the distillation step's FLOPs by
XLA's count over all devices (and the GFLOP/s achieved).
Writes RESULTS/bench_mesh/bench_mesh.{json,md}.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

from absl import flags

import common

_DEVICES = flags.DEFINE_list("devices", ["1", "2", "4"], "Device counts, each in its own process.")
_BATCH = flags.DEFINE_integer("batch", 4096, "D* questions labelled.", lower_bound=1)
_STEPS = flags.DEFINE_integer("steps", 200, "Distillation steps timed.", lower_bound=1)
_PROCESSES = flags.DEFINE_list("processes", ["1"], "Process counts: each device count (a multiple "
                               "of it) split over this many processes on localhost.")
_CHILD = flags.DEFINE_integer("child", 0, "(internal) measure in this process, with N devices.")
_JOIN = flags.DEFINE_string("join", "", "(internal) PORT,PROCESSES,ID: join a multi-process run.")


def measure(preset: str, seed: int) -> dict:
  """In a process with its devices fixed: labelling and distillation, timed after a warm-up."""
  # pylint: disable=g-import-not-at-top (after XLA_FLAGS is set)
  import jax
  import numpy as np
  if _JOIN.value:
    from amplify import processes
    port, count, process_id = map(int, _JOIN.value.split(","))
    processes.start(f"localhost:{port}", count, process_id)
  from amplify.learn import distill
  from amplify.learn.amplifier import Amplifier, Budget
  from amplify.learn.mz import ExactIndex, MzView, TableMz
  from amplify.learn.policy import reads_mz
  from amplify.oracles.make import make_oracle
  from amplify.tasks import make_task
  config = common.config_for(common.argv_for(preset, seed))
  task, _ = make_task(config)
  spec = task.spec
  # Mz's entries do not change the work: a table of the first value for a latent world
  mz = (TableMz(jax.numpy.full(spec.z_entries, spec.z_first_token), spec.z_values,
                spec.z_first_token) if spec.z_entries else ExactIndex())
  view = MzView.of(mz, spec) if reads_mz(spec, config.model.policy) else None
  policy = common.make_policy(spec, config.model, jax.random.key(seed))
  amplifier = Amplifier(make_oracle(config, task), mz, task,
                        Budget(config.label.max_asks, config.label.max_lookups), view=view)
  competent = np.ones(spec.max_difficulty + 1, bool)
  inputs = task.deployment_questions(jax.random.key(seed + 1), _BATCH.value)

  def label():
    jax.block_until_ready(amplifier.label(inputs, policy, competent,
                                          jax.random.key(seed + 2)).answers)
  label()
  start = time.perf_counter()
  label()
  label_s = time.perf_counter() - start
  labels = amplifier.label(inputs, policy, competent, jax.random.key(seed + 2)).answers
  config.train.steps_per_call = _STEPS.value
  distiller = distill.Distiller(policy, config.train, 2 * _STEPS.value, view=view)
  data = distill.LabelledSet.of(inputs, labels)
  calls = []
  train_chunk = distill._train_chunk  # pylint: disable=protected-access (its program's FLOPs)
  distill._train_chunk = lambda *a, **k: calls.append((a, k)) or train_chunk(*a, **k)
  distiller.fit(data, _STEPS.value, jax.random.key(seed + 3))
  distill._train_chunk = train_chunk
  start = time.perf_counter()
  distiller.fit(data, _STEPS.value, jax.random.key(seed + 4))
  distill_s = time.perf_counter() - start
  args, kwargs = calls[-1]
  cost = train_chunk.lower(*args, **kwargs).compile().cost_analysis()
  cost = cost[0] if isinstance(cost, list) else cost
  # XLA counts a scan's body once (one step), and a split program's FLOPs per device
  flops = float(cost.get("flops", 0)) * jax.device_count()
  return {"devices": jax.device_count(), "processes": jax.process_count(),
          "platform": jax.devices()[0].platform,
          "questions_per_s": _BATCH.value / label_s, "steps_per_s": _STEPS.value / distill_s,
          "gflop_per_step": flops / 1e9, "gflop_per_s": flops * _STEPS.value / distill_s / 1e9}


def child_run(preset: str, seed: int, devices: int, count: int) -> dict:
  """Measures in `count` processes of devices / count devices each; process 0's figures."""
  env = dict(os.environ)
  env["XLA_FLAGS"] = (f"{env.get('XLA_FLAGS', '')} "
                      f"--xla_force_host_platform_device_count={devices // count}").strip()
  argv = [sys.executable, __file__, f"--child={devices}", common.preset_flag(preset),
          f"--seeds={seed}", f"--batch={_BATCH.value}", f"--steps={_STEPS.value}",
          *common.run_flags()]  # the run flags given, as each child's config
  with socket.socket() as s:
    s.bind(("localhost", 0))
    port = s.getsockname()[1]
  children = [subprocess.Popen(argv + ([f"--join={port},{count},{i}"] if count > 1 else []),
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for i in range(count)]
  done = [child.communicate() + (child.returncode,) for child in children]
  for out, err, code in done:
    if code:
      sys.exit(f"error: a process of the {devices}-device, {count}-process measurement failed: "
               f"{err.strip()[-2000:]}")
  return json.loads(done[0][0].strip().splitlines()[-1])


def main(argv):
  del argv
  if _CHILD.value:
    preset, seed = common.presets(["lexicon"])[0], common.seeds()[0]
    print(json.dumps(measure(preset, seed)))
    return
  rows = []
  for preset in common.presets(["lexicon"]):
    for seed in common.seeds():
      runs = [child_run(preset, seed, int(d), int(p)) for p in _PROCESSES.value
              for d in _DEVICES.value if int(d) % int(p) == 0]
      for run in runs:
        run.update(preset=common.label(preset), seed=seed,
                   labelling_ratio=run["questions_per_s"] / runs[0]["questions_per_s"],
                   distillation_ratio=run["steps_per_s"] / runs[0]["steps_per_s"])
        print(run, flush=True)
      rows += runs
  table = common.markdown(
      ["preset", "seed", "processes", "devices", "questions / s", "labelling vs first",
       "steps / s", "distillation vs first", "GFLOP a step", "GFLOP/s"],
      [[r["preset"], r["seed"], r["processes"], r["devices"], f"{r['questions_per_s']:.0f}",
        f"{r['labelling_ratio']:.2f}x", f"{r['steps_per_s']:.2f}",
        f"{r['distillation_ratio']:.2f}x",
        f"{r['gflop_per_step']:.2f}", f"{r['gflop_per_s']:.1f}"] for r in rows])
  common.write_results("Throughput against the number of devices and processes", table, rows)


if __name__ == "__main__":
  common.main(main)
