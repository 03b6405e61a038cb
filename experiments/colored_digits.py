"""Colored digits (Colored MNIST on scikit-learn's 8x8 digits) over seeds, as in Arjovsky et al.

  python experiments/colored_digits.py --root=/tmp --seeds=3

Seed i's run lives in ROOT/cd_s{i} (the workdir of `python -m amplify.main --task=colored_digits
--workdir=ROOT/cd_s{i} --seed={i}`): a finished run (summary.json) is read, a missing one is run
here first. A workdir holding a run of another config is refused. Prints method | train env % |
test env %, mean ± standard deviation over seeds (ddof 1):
- train env: agreement with D's observed labels on a sample of D (`agreement_on_d`,
  `policy_agreement_on_d`); test env: accuracy on the D* evaluation pool against its observed
  labels (`accuracy`, `policy_accuracy`). Both environments' labels carry the 25% flips.
- the 75% row is the protocol's bound for any rule that ignores colour.
"""
from __future__ import annotations

import json
import os

import numpy as np
from absl import app, flags

from amplify import config as config_lib
from amplify.views import report
from amplify.loop import run as loop
from amplify.loop.workdir import check_workdir
from amplify.tasks import colored_digits

_ROOT = flags.DEFINE_string("root", None, "Directory of the per-seed workdirs cd_s{seed}.",
                            required=True)
_SEEDS = flags.DEFINE_integer("seeds", 3, "Seeds 0 .. seeds - 1.")
_PRESET = flags.DEFINE_string("preset", "colored_digits", "The config every seed runs.")


def run_or_read(seed: int) -> list[dict]:
  """The seed's metrics lines, running the seed first if its workdir holds no finished run."""
  config = config_lib.get_config(_PRESET.value, seed=seed)
  workdir = os.path.join(_ROOT.value, f"cd_s{seed}")
  check_workdir(config, workdir)  # a finished run of another config is refused
  if not os.path.exists(os.path.join(workdir, "summary.json")):
    print(f"seed {seed}: running into {workdir}", flush=True)
    loop.run(config, workdir)
  return report.read_metrics(workdir)


def rows(records: list[dict]) -> dict[str, tuple[float | None, float | None]]:
  """method -> (train env, test env) for one seed, as fractions."""
  baseline = {r["baseline"]: r for r in records if r["phase"] == "baseline"}
  final = [r for r in records if r["phase"] == "eval"][-1]
  pair = lambda r: (r["agreement_on_d"], r["accuracy"])
  return {
      "ERM on D (prosaic)": pair(baseline["prosaic"]),
      "this recipe (prior + H^A + pi)": (final["policy_agreement_on_d"], final["policy_accuracy"]),
      "H^A's labels of D* (label pool)": (None, final["label_accuracy"]),
      "grayscale oracle": pair(baseline["grayscale"]),
      "supervised ceiling (D* truth)": pair(baseline["ceiling"]),
  }


def cell(values: list[float | None]) -> str:
  if any(v is None for v in values):
    return "-"
  values = 100 * np.asarray(values)
  spread = values.std(ddof=1) if len(values) > 1 else 0.0
  return f"{values.mean():.1f} ± {spread:.1f}"


def main(argv):
  del argv
  per_seed = [run_or_read(seed) for seed in range(_SEEDS.value)]
  tables = [rows(records) for records in per_seed]
  width = max(len(name) for name in tables[0]) + 2
  lines = [f"{'method':<{width}}  {'train env %':>12}  {'test env %':>12}", "-" * (width + 28)]
  for name in tables[0]:
    train, test = zip(*(t[name] for t in tables))
    lines.append(f"{name:<{width}}  {cell(train):>12}  {cell(test):>12}")
  cap = f"{100 * (1 - colored_digits.LABEL_FLIP):.1f}"  # a constant of the protocol
  lines.append(f"{'best colour-blind rule (protocol)':<{width}}  {cap:>12}  {cap:>12}")
  z = [next(r["z_accuracy"] for r in records if r["phase"] == "prior") for records in per_seed]
  lines.append(f"\nz* accuracy: {cell(z)} %  ({_SEEDS.value} seeds, preset {_PRESET.value})")
  walls = []
  for seed in range(_SEEDS.value):
    with open(os.path.join(_ROOT.value, f"cd_s{seed}", "summary.json")) as f:
      walls.append(json.load(f)["wall_seconds"])
  lines.append("wall seconds per run: " + ", ".join(f"{w:.0f}" for w in walls))
  print("\n".join(lines))


if __name__ == "__main__":
  app.run(main)
