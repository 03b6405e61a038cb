"""Goodhart: does type 1 keep tracking type 2, and does the type-2 gate help when it doesn't?
(issue 13)

  python experiments/goodhart.py --root=DIR [--presets=lexicon,permutation] [--seeds=0,1,2]
      [--gates=on,off] [--extra=FLAGS]

H is the `sloppy` oracle: the scripted H slipping systematically on the upper half of the
difficulties (it answers with its first subanswer, the first half of its decomposition). A policy
can imitate the slip, so type 1 (its net score against H^A's labels) rewards it; type 2 is the exact scripted H's whole tree
(`--type2_oracle=scripted`), which does not slip. Each preset runs with the gate and without it
(`--gate=false`: every pi_r deployed), over the seeds, into DIR/PRESET/gate_{on,off}/seed_S
(reruns skip finished runs). Writes DIR/goodhart.json, DIR/goodhart.md (the table: final type-2
score of the deployed policy, its ground-truth accuracy, refusals, largest gap) and
DIR/goodhart.png (type 1, type 2 and their gap per round, one panel per preset and gate).
"""
from __future__ import annotations

import json
import os

from absl import app, flags, logging

from amplify import config as config_lib
from amplify.loop import run as loop
from amplify.loop.summary import deployed_type2_score
from amplify.files.jsonio import read_jsonl

_ROOT = flags.DEFINE_string("root", None, "Where the runs, the table and the plot go.",
                            required=True)
_PRESETS = flags.DEFINE_list("presets", ["lexicon", "permutation"], "Presets to run.")
_SEEDS = flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds.")
_GATES = flags.DEFINE_list("gates", ["on", "off"], "With the gate, without it, or both.")
_EXTRA = flags.DEFINE_list("extra", [], "Config overrides for every run, NAME=JSON (e.g. "
                           "rounds=3); use another --root.")


def _run(preset: str, gate: bool, seed: int) -> dict:
  workdir = os.path.join(_ROOT.value, preset, f"gate_{'on' if gate else 'off'}", f"seed_{seed}")
  overrides = {k: json.loads(v) for k, v in (item.split("=", 1) for item in _EXTRA.value)}
  config = config_lib.get_config(preset, oracle="sloppy", type2_oracle="scripted", gate=gate,
                                 seed=seed, baselines=False, **overrides)
  print(f"{preset} gate {'on' if gate else 'off'} seed {seed}: {workdir}", flush=True)
  summary = loop.run(config, workdir)
  evals = [r for r in read_jsonl(os.path.join(workdir, "metrics.jsonl")) if r["phase"] == "eval"]
  return {"preset": preset, "gate": gate, "seed": seed,
          "final_type2_score": summary["final_type2_score"],
          "final_policy_accuracy": summary["final_policy_accuracy"],
          "refused_rounds": summary["refused_rounds"],
          "largest_gap": summary["largest_type1_type2_gap"]["gap"],
          "type2_calls": sum(r["type2_calls"] for r in evals),
          "h_calls": summary["oracle_calls"],
          "rounds": [{**{k: r[k] for k in ("round", "type1_score", "type2_score",
                                           "type1_type2_gap", "promoted", "policy_accuracy")},
                      "deployed_type2": deployed_type2_score(r)} for r in evals]}


def _table(rows: list[dict]) -> str:
  lines = ["| preset | gate | final type-2 score (seeds) | final accuracy (seeds) | refused rounds "
           "| largest gap | type-2 / type-1 H calls |",
           "| --- | --- | --- | --- | --- | --- | --- |"]
  for preset in dict.fromkeys(r["preset"] for r in rows):
    for gate in (True, False):
      runs = [r for r in rows if r["preset"] == preset and r["gate"] == gate]
      if not runs:
        continue
      mean = lambda key: sum(r[key] for r in runs) / len(runs)
      each = lambda key: ", ".join(f"{r[key]:.3f}" for r in runs)
      lines.append(
          f"| {preset} | {'on' if gate else 'off'} | {mean('final_type2_score'):.3f} "
          f"({each('final_type2_score')}) | {mean('final_policy_accuracy'):.3f} "
          f"({each('final_policy_accuracy')}) | "
          f"{'; '.join(','.join(map(str, r['refused_rounds'])) or '-' for r in runs)} | "
          f"{max(r['largest_gap'] for r in runs):.3f} | "
          f"{sum(r['type2_calls'] for r in runs) / sum(r['h_calls'] for r in runs):.3f} |")
  return "\n".join(lines)


def _plot(rows: list[dict], path: str) -> None:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  from matplotlib.ticker import MaxNLocator
  presets = list(dict.fromkeys(r["preset"] for r in rows))
  fig, axes = plt.subplots(len(presets), 2, figsize=(11, 3.6 * len(presets)), squeeze=False,
                           sharey=True)
  series = (("type1_score", "pi_r's type 1 (vs H^A's labels)", "tab:blue"),
            ("type2_score", "pi_r's type 2 (vs H's whole tree)", "tab:orange"),
            ("type1_type2_gap", "pi_r's gap (type 1 - type 2)", "tab:red"),
            ("deployed_type2", "type 2 of the policy deployed after the gate", "tab:green"))
  for i, preset in enumerate(presets):
    for j, gate in enumerate((True, False)):
      ax = axes[i, j]
      for run in (r for r in rows if r["preset"] == preset and r["gate"] == gate):
        rnds = [e["round"] for e in run["rounds"]]
        for key, label, colour in series:
          ax.plot(rnds, [e[key] for e in run["rounds"]], color=colour, alpha=0.8,
                  label=label if run["seed"] == rows[0]["seed"] else None,
                  linestyle={"type1_type2_gap": "--", "deployed_type2": ":"}.get(key, "-"),
                  linewidth=2.5 if key == "deployed_type2" else 1.5, marker="o", markersize=3)
        refused = [e["round"] for e in run["rounds"] if e["promoted"] is False]
        ax.scatter(refused, [-1.05] * len(refused), marker="x", color="black",
                   label="refused by the gate" if refused and run["seed"] == rows[0]["seed"]
                   else None)
      ax.axhline(0, color="grey", linewidth=0.5)
      ax.set_title(f"{preset}, gate {'on' if gate else 'off'} (sloppy H; one line per seed)")
      ax.set_xlabel("round")
      ax.xaxis.set_major_locator(MaxNLocator(integer=True))
      ax.set_ylim(-1.1, 1.1)
      if j == 0:
        ax.set_ylabel("net score of pi_r (+1 right, -1 wrong)")
      ax.legend(fontsize=7, loc="lower left")
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)  # the checkpointer's INFO lines
  rows = [_run(preset, gate == "on", int(seed)) for preset in _PRESETS.value
          for gate in _GATES.value for seed in _SEEDS.value]
  with open(os.path.join(_ROOT.value, "goodhart.json"), "w") as f:
    json.dump(rows, f, indent=2)
  table = _table(rows)
  with open(os.path.join(_ROOT.value, "goodhart.md"), "w") as f:
    f.write(table + "\n")
  _plot(rows, os.path.join(_ROOT.value, "goodhart.png"))
  print(table)


if __name__ == "__main__":
  app.run(main)
