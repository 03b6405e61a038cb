"""Goodhart: does type 1 keep tracking type 2, and does the type-2 gate help when it doesn't?
(issue 13)

  python experiments/goodhart.py --preset=lexicon,permutation --seeds=0,1,2 --gates=on,off
Seeds: --seeds (the figures: 0,1,2). Machine: the project's 2-core CPU (results/goodhart/README.md).

H is the `sloppy` oracle: the scripted H slipping systematically on the upper half of the
difficulties (it answers with its first subanswer, the first half of its decomposition). A policy
can imitate the slip, so type 1 (its net score against H^A's labels) rewards it; type 2 is the
exact scripted H's whole tree (`--config.type2.oracle=scripted`), which does not slip. Each preset
runs with the gate and without it (every pi_r deployed), over the seeds, without the baselines,
into ROOT/goodhart/PRESET_gate_{on,off}_sSEED (common.py). Writes RESULTS/goodhart/goodhart.json,
.md (final type-2 score of the deployed policy, its accuracy on D*, refused rounds, largest gap,
type 2's share of H's calls) and .png (type 1, type 2 and their gap per round, one panel per
preset and gate).
"""
from __future__ import annotations

from absl import flags

import common

_GATES = flags.DEFINE_list("gates", ["on", "off"], "With the gate, without it, or both.")
flags.register_validator(_GATES, lambda gates: set(gates) <= {"on", "off"}, "--gates: on, off")
SLOPPY = ["--oracle=sloppy", "--config.type2.oracle=scripted", "--config.baselines=false"]


def figures(preset: str, gate: bool, run: dict) -> dict:
  from amplify.loop.summary import deployed_type2_score  # pylint: disable=g-import-not-at-top
  summary = run["summary"]
  evals = [r for r in common.records(run) if r["phase"] == "eval"]
  return {"preset": preset, "gate": gate, "seed": run["seed"],
          "final_type2_score": summary["final_type2_score"],
          "final_policy_accuracy": summary["final_policy_accuracy"],
          "refused_rounds": summary["refused_rounds"],
          "largest_gap": summary["largest_type1_type2_gap"]["gap"],
          "type2_calls": sum(r["type2_calls"] for r in evals),
          "h_calls": summary["oracle_calls"],
          "rounds": [{**{k: r[k] for k in ("round", "type1_score", "type2_score",
                                           "type1_type2_gap", "promoted", "policy_accuracy")},
                      "deployed_type2": deployed_type2_score(r)} for r in evals]}


def table(rows: list[dict]) -> str:
  out = []
  for preset in dict.fromkeys(r["preset"] for r in rows):
    for gate in (True, False):
      runs = [r for r in rows if r["preset"] == preset and r["gate"] == gate]
      if not runs:
        continue
      each = lambda key: (f"{common.mean_spread([r[key] for r in runs])} "
                          f"({', '.join(f'{r[key]:.3f}' for r in runs)})")
      out.append([preset, "on" if gate else "off", each("final_type2_score"),
                  each("final_policy_accuracy"),
                  "; ".join(",".join(map(str, r["refused_rounds"])) or "-" for r in runs),
                  f"{max(r['largest_gap'] for r in runs):.3f}",
                  f"{sum(r['type2_calls'] for r in runs) / sum(r['h_calls'] for r in runs):.3f}"])
  return common.markdown(["preset", "gate", "final type-2 score: mean ± sd (seeds)",
                          "final accuracy: mean ± sd (seeds)",
                          "refused rounds", "largest gap", "type-2 / type-1 H calls"], out)


def plot(rows: list[dict]):
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  from matplotlib.ticker import MaxNLocator  # pylint: disable=g-import-not-at-top
  presets = list(dict.fromkeys(r["preset"] for r in rows))
  gates = [gate for gate in (True, False) if any(r["gate"] == gate for r in rows)]
  fig, axes = plt.subplots(len(presets), len(gates), figsize=(5.5 * len(gates), 3.6 * len(presets)),
                           squeeze=False, sharey=True)
  series = (("type1_score", "pi_r's type 1 (vs H^A's labels)", "tab:blue"),
            ("type2_score", "pi_r's type 2 (vs H's whole tree)", "tab:orange"),
            ("type1_type2_gap", "pi_r's gap (type 1 - type 2)", "tab:red"),
            ("deployed_type2", "type 2 of the policy deployed after the gate", "tab:green"))
  first_seed = rows[0]["seed"]
  for i, preset in enumerate(presets):
    for j, gate in enumerate(gates):
      ax = axes[i, j]
      for run in (r for r in rows if r["preset"] == preset and r["gate"] == gate):
        rounds = [e["round"] for e in run["rounds"]]
        for key, name, colour in series:
          ax.plot(rounds, [e[key] for e in run["rounds"]], color=colour, alpha=0.8,
                  label=name if run["seed"] == first_seed else None,
                  linestyle={"type1_type2_gap": "--", "deployed_type2": ":"}.get(key, "-"),
                  linewidth=2.5 if key == "deployed_type2" else 1.5, marker="o", markersize=3)
        refused = [e["round"] for e in run["rounds"] if e["promoted"] is False]
        ax.scatter(refused, [-1.05] * len(refused), marker="x", color="black",
                   label="refused by the gate" if refused and run["seed"] == first_seed else None)
      ax.axhline(0, color="grey", linewidth=0.5)
      ax.set_title(f"{preset}, gate {'on' if gate else 'off'} (sloppy H; one line per seed)")
      ax.set_xlabel("round")
      ax.xaxis.set_major_locator(MaxNLocator(integer=True))
      ax.set_ylim(-1.1, 1.1)
      if j == 0:
        ax.set_ylabel("net score of pi_r (+1 right, -1 wrong)")
      ax.legend(fontsize=7, loc="lower left")
  fig.tight_layout()
  return fig


def main(argv):
  del argv
  rows, runs = [], []
  for preset in common.presets(["lexicon", "permutation"]):
    for gate in _GATES.value:
      for seed in common.seeds():
        run = common.run(f"{common.label(preset)}_gate_{gate}", preset, seed, defaults=SLOPPY,
                         variant=[f"--config.type2.gate={str(gate == 'on').lower()}"])
        runs.append(run)
        rows.append(figures(common.label(preset), gate == "on", run))
  seeds = ",".join(map(str, common.seeds()))
  common.write_results(f"Type 1 against type 2 with a sloppy H, seeds {seeds}", table(rows), runs,
                       per_seed=rows, figure=plot(rows))


if __name__ == "__main__":
  common.main(main)
