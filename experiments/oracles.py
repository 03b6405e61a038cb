"""Swapping the human: final accuracy and real-H cost per oracle (issue 11).

  python experiments/oracles.py --preset=lexicon,permutation --seeds=0
Seeds: --seeds (the figures: 0). Machine: the project's 2-core CPU (results/oracles/README.md).

Variants (`--variants`, default noisy:0,noisy:0.01,noisy:0.05,noisy:0.1,learned): each is one
run of each preset without the baselines, in ROOT/oracles/PRESET_VARIANT_sSEED (common.py):
`noisy:P` is `--oracle=noisy --oracle.noise_rate=P` (`noisy:0` gives the scripted H's labels
exactly: no slip is drawn), any other name `--oracle=NAME` (`learned`, `scripted`). Writes
RESULTS/oracles/oracles.{json,md}: per preset and variant, the final policy accuracy, the
real H's answers (`real_h_calls`: labelling's questions, all of them for a scripted or noisy
H, the share the run kept for the real H under `learned`, and the type-2 gate's, which the real H
gives in every run), their ratio to `noisy:0`'s and the wall seconds, each the mean over seeds.
"""
from __future__ import annotations

from absl import flags
import numpy as np

import common

_VARIANTS = flags.DEFINE_list("variants", ["noisy:0", "noisy:0.01", "noisy:0.05", "noisy:0.1",
                                           "learned"], "Oracles: noisy:P, learned, scripted, ...")


def oracle_flags(variant: str) -> list[str]:
  name, _, p = variant.partition(":")
  return ["--oracle=noisy", f"--oracle.noise_rate={p}"] if name == "noisy" else [f"--oracle={name}"]


def table(rows: list[dict]) -> str:
  mean = lambda preset, variant, key: np.mean(
      [r[key] for r in rows if r["preset"] == preset and r["variant"] == variant])
  out = []
  for preset, variant in dict.fromkeys((r["preset"], r["variant"]) for r in rows):
    calls = mean(preset, variant, "real_h_calls")
    has_base = any(r["preset"] == preset and r["variant"] == "noisy:0" for r in rows)
    ratio = f"{mean(preset, 'noisy:0', 'real_h_calls') / calls:.2f}x" if has_base else "-"
    out.append([preset, variant, f"{mean(preset, variant, 'final_policy_accuracy'):.4f}",
                f"{calls:.0f}", ratio, f"{mean(preset, variant, 'wall_seconds'):.0f}"])
  return common.markdown(["preset", "oracle", "final accuracy", "real-H calls",
                          "fewer than noisy:0", "wall s"], out)


def main(argv):
  del argv
  rows, runs = [], []
  for preset in common.presets(["lexicon", "permutation"]):
    for variant in _VARIANTS.value:
      for seed in common.seeds():
        run = common.run(f"{common.label(preset)}_{variant.replace(':', '_')}", preset, seed,
                         defaults=["--config.baselines=false"], variant=oracle_flags(variant))
        runs.append(run)
        rows.append({"preset": common.label(preset), "variant": variant, "seed": seed,
                     "final_policy_accuracy": run["summary"]["final_policy_accuracy"],
                     "real_h_calls": common.real_h_calls(common.records(run)),
                     "wall_seconds": run["summary"]["wall_seconds"]})
  seeds = ",".join(map(str, common.seeds()))
  common.write_results(f"Final accuracy and real-H calls per oracle, seeds {seeds} (means)",
                       table(rows), runs, per_seed=rows)


if __name__ == "__main__":
  common.main(main)
