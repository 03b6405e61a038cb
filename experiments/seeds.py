"""A preset (default permutation) over seeds x variants, several runs at once (on a GPU, all).

  python experiments/seeds.py --seeds=0,1,2,3 --variant= --variant=--config.train.replay_rounds=0
Seeds: --seeds (the figures: 0-7 or 0-3, in results/permutation/README.md). Machine: a lent H100
with --parallel=16 (each process takes at most --mem_fraction of its memory), or the project's
2-core CPU with --parallel=1 or 2.

Each `--variant` (repeatable) is a string of run flags added to the preset's ("" is the preset
itself; write the flags as --config.PATH=V so that they win); every run is amplification alone
(`--config.baselines=false`, which run flags override). Each run is an `amplify` subprocess into
ROOT/seeds/PRESET_vI_sSEED, its output in that workdir's .log beside it; a finished run of the same
flags is read, not run again, and one of other flags refused. Writes RESULTS/seeds/seeds.{json,md}:
per variant the final accuracy over seeds, and per run the final accuracy, the distillation steps,
the baselines if trained, the policy's accuracy per round and the largest difficulty it was
competent at (what H^A may ask it next). A failed run is a row of the table and a non-zero exit.
"""
from __future__ import annotations

from concurrent import futures
import os
import shlex
import subprocess
import sys

from absl import flags

import common

_VARIANT = flags.DEFINE_multi_string("variant", [""], "A string of run flags added to the "
                                     "preset's; repeat for more variants.")
_PARALLEL = flags.DEFINE_integer("parallel", 1, "Runs at once.", lower_bound=1)
_MEM_FRACTION = flags.DEFINE_float("mem_fraction", 0.05, "The share of a GPU's memory each run "
                                   "may take (XLA_PYTHON_CLIENT_MEM_FRACTION).")
DEFAULTS = ["--config.baselines=false"]


def launch(job: dict) -> dict:
  """Runs one job's `amplify` command unless its workdir holds a finished run of its config;
  returns the job with its exit status."""
  if job["finished"]:
    return {**job, "returncode": 0}
  env = {**os.environ, "PYTHONUNBUFFERED": "1", "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
         "XLA_PYTHON_CLIENT_MEM_FRACTION": str(_MEM_FRACTION.value)}
  os.makedirs(os.path.dirname(job["workdir"]), exist_ok=True)
  with open(f"{job['workdir']}.log", "w") as log:
    done = subprocess.run([sys.executable, "-m", "amplify.main", *job["argv"],
                           f"--workdir={job['workdir']}"], stdout=log, stderr=subprocess.STDOUT,
                          env=env)
  print(f"{os.path.basename(job['workdir'])}: exit {done.returncode}", flush=True)
  return {**job, "returncode": done.returncode}


def figures(job: dict) -> dict:
  """What a finished run's metrics say."""
  row = {"variant": job["variant"], "seed": job["seed"], "command": job["command"],
         "returncode": job["returncode"]}
  if job["returncode"]:
    return row
  lines = common.records(job)
  evals = [r for r in lines if r["phase"] == "eval"]
  return {**row, "final": evals[-1]["policy_accuracy"],
          "steps": sum(r["steps"] for r in lines if r["phase"] == "distill"),
          "baselines": {r["baseline"]: r["accuracy"] for r in lines if r["phase"] == "baseline"},
          "accuracy": [round(r["policy_accuracy"], 3) for r in evals],
          "competent_up_to": [max(r["competent_difficulties"], default=0) for r in evals]}


def main(argv):
  del argv
  jobs = []
  for preset in common.presets(["permutation"]):
    for v, variant in enumerate(_VARIANT.value):
      for seed in common.seeds():
        argv = common.argv_for(preset, seed, defaults=DEFAULTS, variant=shlex.split(variant))
        config = common.config_for(argv)  # a bad flag: one line, before any run
        workdir = common.workdir_for(f"{common.label(preset)}_v{v}", seed)
        jobs.append({"variant": f"{common.label(preset)} {variant or '(the preset)'}",
                     "seed": seed, "argv": argv, "workdir": workdir,
                     "finished": common.finished(config, workdir) is not None,
                     "command": shlex.join(["amplify", *argv, f"--workdir={workdir}"])})
  print(f"{len(jobs)} runs, {_PARALLEL.value} at once", flush=True)
  with futures.ThreadPoolExecutor(_PARALLEL.value) as pool:
    rows = [figures(job) for job in pool.map(launch, jobs)]
  summary, detail = [], []
  for variant in dict.fromkeys(r["variant"] for r in rows):
    runs = [r for r in rows if r["variant"] == variant]
    finals = [r.get("final") for r in runs]
    summary.append([variant, " ".join("failed" if f is None else f"{f:.3f}" for f in finals),
                    common.mean_spread([f for f in finals if f is not None])])
    detail += [[variant, r["seed"], f"{r['final']:.3f}", r["steps"],
                ", ".join(f"{k} {v:.3f}" for k, v in r["baselines"].items()) or "-",
                " ".join(map(str, r["accuracy"])), " ".join(map(str, r["competent_up_to"]))]
               if "final" in r else [variant, r["seed"], f"exit {r['returncode']}", *"----"]
               for r in runs]
  table = (common.markdown(["variant", "final accuracy by seed", "mean ± sd"], summary) +
           "\n\n" + common.markdown(["variant", "seed", "final", "steps", "baselines",
                                     "accuracy per round", "competent up to, per round"], detail))
  common.write_results("Seeds x variants", table, rows)
  failed = [r["command"] for r in rows if r["returncode"]]
  if failed:
    sys.exit(f"error: {len(failed)} of {len(rows)} runs failed (each one's output is in its "
             f"workdir's .log), first: {failed[0]}; fix it and run the same command again "
             "(finished runs are read)")


if __name__ == "__main__":
  common.main(main)
