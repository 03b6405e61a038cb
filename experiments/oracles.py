"""Swapping the human: final accuracy and real-H cost per oracle, on the lexicon and permutation
presets (issue 11).

  python experiments/oracles.py --root=DIR [--presets=lexicon,permutation]
      [--variants=noisy:0,noisy:0.01,noisy:0.05,noisy:0.1,learned] [--seed=0] [--extra=FLAGS]

Each variant is one `python -m amplify.main --preset=P --baselines=false` run (a subprocess, one
at a time) in DIR/P/VARIANT; `noisy:0` gives the scripted H's labels exactly (no slip is drawn).
Writes DIR/oracles.json and DIR/oracles.md: per preset and variant, the final policy accuracy,
the questions the real H answered (`real_h_calls`: all of them for a scripted or noisy H, the
share the run kept for the real H under `learned`), and the ratio against `noisy:0`.
Reruns skip finished runs (amplify.main returns a finished workdir's summary).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

from absl import app, flags

_ROOT = flags.DEFINE_string("root", None, "Where the runs and the tables go.", required=True)
_PRESETS = flags.DEFINE_list("presets", ["lexicon", "permutation"], "Presets to run.")
_VARIANTS = flags.DEFINE_list("variants", ["noisy:0", "noisy:0.01", "noisy:0.05", "noisy:0.1",
                                           "learned"], "Oracles: noisy:P, learned, scripted.")
_SEED = flags.DEFINE_integer("seed", 0, "The runs' seed.")
_EXTRA = flags.DEFINE_list("extra", [], "More amplify.main flags for every run, e.g. "
                           "--extra=--competence=0.85 (use another --root).")


def _flags(variant: str) -> list[str]:
  name, _, p = variant.partition(":")
  if name == "noisy":
    return ["--oracle=noisy", f"--oracle.noise_rate={p}"]
  return [f"--oracle={name}"]


def _real_h_calls(workdir: str) -> int:
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    labels = [json.loads(line) for line in f if '"phase": "label"' in line]
  return sum(rec.get("real_h_calls", rec["oracle_calls"]) for rec in labels)


def main(argv):
  del argv
  rows = []
  for preset in _PRESETS.value:
    for variant in _VARIANTS.value:
      workdir = os.path.join(_ROOT.value, preset, variant.replace(":", "_"))
      command = [sys.executable, "-m", "amplify.main", f"--preset={preset}", "--baselines=false",
                 f"--seed={_SEED.value}", f"--workdir={workdir}", *_flags(variant), *_EXTRA.value]
      print(" ".join(command), flush=True)
      subprocess.run(command, check=True)
      with open(os.path.join(workdir, "summary.json")) as f:
        summary = json.load(f)
      rows.append({"preset": preset, "variant": variant,
                   "final_policy_accuracy": summary["final_policy_accuracy"],
                   "real_h_calls": _real_h_calls(workdir),
                   "wall_seconds": summary["wall_seconds"]})
  with open(os.path.join(_ROOT.value, "oracles.json"), "w") as f:
    json.dump(rows, f, indent=2)
  lines = ["| preset | oracle | final accuracy | real-H calls | fewer than noisy:0 | wall s |",
           "| --- | --- | --- | --- | --- | --- |"]
  for row in rows:
    base = next((r for r in rows if r["preset"] == row["preset"] and r["variant"] == "noisy:0"),
                None)
    ratio = f"{base['real_h_calls'] / row['real_h_calls']:.1f}x" if base else "-"
    lines.append(f"| {row['preset']} | {row['variant']} | {row['final_policy_accuracy']:.3f} | "
                 f"{row['real_h_calls']} | {ratio} | {row['wall_seconds']:.0f} |")
  with open(os.path.join(_ROOT.value, "oracles.md"), "w") as f:
    f.write("\n".join(lines) + "\n")
  print("\n".join(lines))


if __name__ == "__main__":
  app.run(main)
