"""The comparisons the recipe is argued over, side by side: every arm that applies to a preset's
task, over seeds, with the baselines (prosaic ML, the supervised ceiling and any other the task
trains).

  python experiments/arms.py --preset=lexicon --seeds=0,1,2 --raw_d_lookups=16
Seeds: --seeds (the figures: 0,1,2). Machine: the project's 2-core CPU (results/lexicon/README.md).

Rows (`--arms`, default all): every arm of `amplify.loop.arms.arms_for(task)`; for a task whose
questions name Mz keys also `ltp_memorises` (`--config.model.policy=memorises`) and
`raw_d_lookups` (`raw_d` with `--raw_d_lookups` look-ups a question). The baselines are trained once
per seed, in the `ltp` run (they do not depend on the arm); every run has the preset's step budget.
Runs go to ROOT/arms/PRESET_ROW_sSEED (common.py); results to RESULTS/PRESET/arms.{json,md,png}:
per row the mean ± standard deviation of accuracy on D*, agreement with D's labels, z* accuracy,
H's calls, asks and look-ups, distillation steps and seconds (without the baselines); the plot
shows accuracy per row and by difficulty. On colored digits the md also holds the Arjovsky et al.
table (train env = agreement on D, test env = accuracy on D*, in %).
"""
from __future__ import annotations

import sys

from absl import flags
import numpy as np

import common

_ARMS = flags.DEFINE_list("arms", None, "The rows to run (default: every one that applies): ltp, "
                          "ltp_memorises, no_prior, raw_d, raw_d_lookups, imitate_on_d, joint.")
_RAW_D_LOOKUPS = flags.DEFINE_integer("raw_d_lookups", 16, "The look-up budget of the "
                                      "raw_d_lookups row (--config.label.max_lookups).")

# the table's columns after the row name: (figure, header, format of its mean and spread)
FIGURES = [("accuracy", "accuracy on D*", "{:.3f}"), ("agreement_on_d", "agreement on D", "{:.3f}"),
           ("z_accuracy", "z* accuracy", "{:.4f}"), ("oracle_calls", "labelling H calls", "{:.0f}"),
           ("asks", "asks", "{:.0f}"), ("lookups", "look-ups", "{:.0f}"),
           ("lookups_per_deployment_question", "look-ups / D* question", "{:.3f}"),
           ("distillation_steps", "distillation steps", "{:.0f}"), ("seconds", "seconds", "{:.0f}")]
NO_BASELINES = "--config.baselines=false"


def rows_for(preset: str) -> list[tuple[str, str, list[str]]]:
  """(key, name in the table, the flags the row varies) for every row that applies."""
  from amplify.loop import arms as arms_lib  # pylint: disable=g-import-not-at-top
  from amplify.tasks import make_task  # pylint: disable=g-import-not-at-top
  task, _ = make_task(common.config_for(common.argv_for(preset, 0)))  # the spec: no world needed
  rows = [(arm, arm, [f"--config.arm={arm}"] + ([] if arm == "ltp" else [NO_BASELINES]))
          for arm in arms_lib.arms_for(task)]
  if task.spec.names_mz_keys:
    rows.insert(1, ("ltp_memorises", "ltp, pi memorises",
                    ["--config.arm=ltp", "--config.model.policy=memorises", NO_BASELINES]))
    if "raw_d" in [key for key, _, _ in rows]:
      at = [key for key, _, _ in rows].index("raw_d") + 1
      n = _RAW_D_LOOKUPS.value
      rows.insert(at, ("raw_d_lookups", f"raw_d, {n} look-ups",
                       ["--config.arm=raw_d", f"--config.label.max_lookups={n}", NO_BASELINES]))
  return rows


def _chosen(rows: list) -> list:
  return [row for row in rows if _ARMS.value is None or row[0] in _ARMS.value]


def figures(name: str, run: dict, records: list[dict]) -> dict:
  """One row's figures for one seed. `seconds` is the run's until its last round's evaluation:
  it leaves out the wait for the baselines, which only the `ltp` runs train (beside the rounds,
  in the referee) and which have rows of their own."""
  s = run["summary"]
  final = [r for r in records if r["phase"] == "eval"][-1]
  return {"row": name, "seed": run["seed"], "accuracy": s["final_policy_accuracy"],
          "accuracy_by_difficulty": s["final_policy_accuracy_by_difficulty"],
          "agreement_on_d": final.get("policy_agreement_on_d"),
          "label_accuracy": final["label_accuracy"], "z_accuracy": s["z_accuracy"],
          **{k: s[k] for k in ("oracle_calls", "asks", "lookups",
                               "lookups_per_deployment_question", "distillation_steps",
                               "unseen_entity_fraction")},
          "seconds": round(final.get("run_seconds", s["wall_seconds"]), 1),
          "command": run["command"]}


def baseline_figures(line: dict, run: dict) -> dict:
  return {"row": line["baseline"], "seed": run["seed"], "accuracy": line["accuracy"],
          "accuracy_by_difficulty": line["accuracy_by_difficulty"],
          "agreement_on_d": line.get("agreement_on_d"), "label_accuracy": None,
          "z_accuracy": None, "oracle_calls": 0, "asks": 0, "lookups": 0,
          "lookups_per_deployment_question": None, "distillation_steps": line["steps"],
          "unseen_entity_fraction": None, "seconds": line["seconds"], "command": run["command"]}


def table(results: list[dict], order: list[str]) -> str:
  cells = lambda row: [common.mean_spread([r[k] for r in results if r["row"] == row], fmt)
                       for k, _, fmt in FIGURES]
  return common.markdown(["row"] + [header for _, header, _ in FIGURES],
                         [[row] + cells(row) for row in order])


def environments_table(results: list[dict]) -> str:
  """The Arjovsky et al. table (colored digits): train env = agreement with D's observed labels,
  test env = accuracy on D*, both against labels with the protocol's flips, in %."""
  from amplify.tasks import colored_digits  # pylint: disable=g-import-not-at-top
  pct = lambda values: common.mean_spread([None if v is None else 100 * v for v in values],
                                          "{:.1f}")
  of = lambda row, key: [r[key] for r in results if r["row"] == row]
  pair = lambda row: [pct(of(row, "agreement_on_d")), pct(of(row, "accuracy"))]
  cap = f"{100 * (1 - colored_digits.LABEL_FLIP):.1f}"  # a constant of the protocol
  rows = [["ERM on D (prosaic)", *pair("prosaic")],
          ["this recipe (prior + H^A + pi)", *pair("ltp")],
          ["H^A's labels of D* (label pool)", "-", pct(of("ltp", "label_accuracy"))],
          ["grayscale oracle", *pair("grayscale")],
          ["supervised ceiling (D* truth)", *pair("ceiling")],
          ["best colour-blind rule (protocol)", cap, cap]]
  return common.markdown(["method", "train env %", "test env %"], rows)


def plot(results: list[dict], order: list[str], title: str, task_name: str):
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  baselines = {r["row"] for r in results if r["label_accuracy"] is None}
  by_difficulty = len(results[0]["accuracy_by_difficulty"]) > 1
  if by_difficulty:
    fig, (left, right) = plt.subplots(1, 2, figsize=(15, 5.2),
                                      gridspec_kw={"width_ratios": [1, 1.3]})
  else:  # one difficulty (colored digits): the by-difficulty panel would be a single column
    fig, left = plt.subplots(figsize=(7.5, 4.5))
  for i, row in enumerate(order):
    accuracy = [r["accuracy"] for r in results if r["row"] == row]
    left.barh(i, np.mean(accuracy), color="0.6" if row in baselines else "C0")
    left.plot(accuracy, [i] * len(accuracy), "k.", markersize=8)
    left.text(1.03, i, f"{np.mean(accuracy):.3f}", va="center")  # a column right of the bars
  left.set_yticks(range(len(order)), order)
  left.invert_yaxis()
  left.set_xlim(0, 1.15)
  left.set_xticks(np.linspace(0, 1, 6))
  left.set_xlabel("exact accuracy on D* (bar: mean; dots: seeds)")
  left.set_title("final accuracy per arm")
  if by_difficulty:
    for i, row in enumerate(order):
      runs = [r for r in results if r["row"] == row]
      difficulties = sorted(runs[0]["accuracy_by_difficulty"], key=int)
      mean = [np.mean([r["accuracy_by_difficulty"][d] for r in runs]) for d in difficulties]
      right.plot([int(d) for d in difficulties], mean, "--" if row in baselines else "-",
                 marker="o", markersize=3, label=row, color=f"C{i}")
    right.set_xlabel("difficulty" + (" (set size)" if task_name == "lexicon" else ""))
    right.set_ylabel("exact accuracy (mean over seeds)")
    right.set_ylim(-0.02, 1.02)
    right.set_title("accuracy by difficulty")
    right.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
  fig.suptitle(title)
  fig.tight_layout()
  return fig


def study(preset: str) -> None:
  name, results, order, baselines, runs = common.label(preset), [], [], [], []
  for key, row, variant in _chosen(rows_for(preset)):
    order.append(row)
    for seed in common.seeds():
      run = common.run(f"{name}_{key}", preset, seed, variant=variant)
      records = common.records(run)
      runs.append(run)
      results.append(figures(row, run, records))
      lines = [r for r in records if r["phase"] == "baseline"]
      results += [baseline_figures(line, run) for line in lines]
      baselines += [line["baseline"] for line in lines if line["baseline"] not in baselines]
  order += baselines
  task_name = common.config_for(common.argv_for(preset, 0)).task.name
  seeds = ",".join(map(str, common.seeds()))
  text = table(results, order)
  if task_name == "colored_digits" and "grayscale" in order:
    text += f"\n\nThe Arjovsky et al. table:\n\n{environments_table(results)}"
  title = f"Arms on {name}, seeds {seeds} (mean ± standard deviation)"
  common.write_results(title, text, runs, folder=name, rows=order, per_seed=results,
                       figure=plot(results, order, f"{name}: arms over seeds {seeds}", task_name))


def main(argv):
  del argv
  presets = common.presets(["lexicon"])
  rows = {preset: [key for key, _, _ in rows_for(preset)] for preset in presets}
  known = {key for keys in rows.values() for key in keys}
  if _ARMS.value is not None and (missing := set(_ARMS.value) - known):
    sys.exit(f"error: --arms={','.join(sorted(missing))}: a row of none of the presets; their "
             "rows: " + "; ".join(f"{common.label(p)}: {', '.join(r)}" for p, r in rows.items()))
  for preset in presets:  # each runs the rows of --arms that apply to it
    study(preset)


if __name__ == "__main__":
  common.main(main)
