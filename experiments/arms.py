"""The comparisons the recipe is argued over, side by side: every arm that applies to a task, over
seeds, with prosaic ML and the supervised ceiling.

  python experiments/arms.py --task=lexicon --seeds=3 --root=DIR

Each row is one run of `python -m amplify.main --task=TASK --arm=ARM --seed=S` in its own
workdir DIR/TASK_ROW_sS (a finished run is read, not run again, so an interrupted sweep resumes).
Rows: every arm of `amplify.loop.arms.arms_for(task)`; for a task whose questions name Mz keys also
`ltp` with the memorising policy (`--policy=memorises`) and `raw_d` with `--raw_d_lookups` look-ups
a question. prosaic ML and the ceiling are trained once per seed (in the `ltp` run: they do not
depend on the arm). Every run has the same step budget (`--total_steps` of the task's preset).

Writes DIR/arms.json (per row and seed: accuracy on D*, z* accuracy, oracle calls, asks,
look-ups, look-ups per D* question, distillation steps, seconds without the baselines),
DIR/arms.md (mean ± standard
deviation per row) and DIR/arms.png (accuracy per row with its spread; accuracy by difficulty).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
from absl import app, flags, logging

from amplify.loop import arms as arms_lib
from amplify import config as config_lib
from amplify.views import report
from amplify.tasks import make_task

_TASK = flags.DEFINE_string("task", "lexicon", "The task (its preset of the same name).")
_SEEDS = flags.DEFINE_integer("seeds", 3, "Seeds 0 .. seeds - 1.")
_ROOT = flags.DEFINE_string("root", None, "Directory of the runs and the outputs.", required=True)
_RAW_D_LOOKUPS = flags.DEFINE_integer("raw_d_lookups", 16, "The larger look-up budget a second "
                                      "raw_d row gets (--max_lookups of that run).")

# the table's columns after the row name: (figure, format of its mean and spread)
FIGURES = [("accuracy", "{:.3f}"), ("z_accuracy", "{:.4f}"), ("oracle_calls", "{:.0f}"),
           ("asks", "{:.0f}"), ("lookups", "{:.0f}"), ("lookups_per_deployment_question", "{:.3f}"),
           ("distillation_steps", "{:.0f}"), ("seconds", "{:.0f}")]


def rows_for(task_name: str) -> list[tuple[str, list[str]]]:
  """(row name, the flags of its runs) for every row of the table."""
  task, _ = make_task(config_lib.get_config(task_name))
  rows = [(arm, [f"--arm={arm}"] + ([] if arm == "ltp" else ["--baselines=false"]))
          for arm in arms_lib.arms_for(task)]
  if task.spec.names_mz_keys:
    rows.insert(1, ("ltp, pi memorises", ["--policy=memorises", "--baselines=false"]))
    if "raw_d" in dict(rows):
      at = [name for name, _ in rows].index("raw_d") + 1
      rows.insert(at, (f"raw_d, {_RAW_D_LOOKUPS.value} look-ups",
                       ["--arm=raw_d", f"--max_lookups={_RAW_D_LOOKUPS.value}",
                        "--baselines=false"]))
  return rows


def run_or_read(row: str, flags_: list[str], seed: int) -> dict:
  """The run's summary and metrics lines, running it first unless its workdir holds a finished
  run (amplify.main returns a finished run's table without redoing it)."""
  slug = row.replace(", ", "_").replace(" ", "_").replace("-", "")
  workdir = os.path.join(_ROOT.value, f"{_TASK.value}_{slug}_s{seed}")
  command = [sys.executable, "-m", "amplify.main", f"--task={_TASK.value}", f"--seed={seed}",
             f"--workdir={workdir}", *flags_]
  print(f"{row}, seed {seed}: {' '.join(command[1:])}", flush=True)
  result = subprocess.run(command, capture_output=True, text=True)
  if result.returncode:
    raise SystemExit(f"error: {row}, seed {seed} failed:\n{result.stderr[-2000:]}")
  with open(os.path.join(workdir, "summary.json")) as f:
    summary = json.load(f)
  return {"summary": summary, "records": report.read_metrics(workdir), "command": command[1:]}


def figures(row: str, seed: int, run: dict) -> dict:
  """One row's figures for one seed. `seconds` leaves out the baselines, which only the `ltp`
  runs train (they have rows of their own)."""
  s = run["summary"]
  baselines = sum(r["seconds"] for r in run["records"] if r["phase"] == "baseline")
  return {"row": row, "seed": seed, "accuracy": s["final_policy_accuracy"],
          "accuracy_by_difficulty": s["final_policy_accuracy_by_difficulty"],
          "z_accuracy": s["z_accuracy"], "oracle_calls": s["oracle_calls"], "asks": s["asks"],
          "lookups": s["lookups"],
          "lookups_per_deployment_question": s["lookups_per_deployment_question"],
          "distillation_steps": s["distillation_steps"],
          "seconds": round(s["wall_seconds"] - baselines, 1),
          "unseen_entity_fraction": s["unseen_entity_fraction"],
          "command": " ".join(run["command"])}


def baseline_figures(name: str, seed: int, run: dict) -> dict:
  line = next(r for r in run["records"] if r.get("baseline") == name)
  return {"row": name, "seed": seed, "accuracy": line["accuracy"],
          "accuracy_by_difficulty": line["accuracy_by_difficulty"], "z_accuracy": None,
          "oracle_calls": 0, "asks": 0, "lookups": 0, "lookups_per_deployment_question": None,
          "distillation_steps": line["steps"], "seconds": line["seconds"],
          "unseen_entity_fraction": None, "command": " ".join(run["command"])}


def _cell(values: list, fmt: str) -> str:
  if any(v is None for v in values):
    return "-"
  values = np.asarray(values, float)
  spread = values.std(ddof=1) if len(values) > 1 else 0.0
  return f"{fmt.format(values.mean())} ± {fmt.format(spread)}"


def table(results: list[dict], order: list[str]) -> str:
  headers = ["row", "accuracy on D*", "z* accuracy", "H calls", "asks", "look-ups",
             "look-ups / D* question", "distillation steps", "seconds"]
  lines = ["| " + " | ".join(headers) + " |", "|" + " --- |" * len(headers)]
  for row in order:
    runs = [r for r in results if r["row"] == row]
    cells = [_cell([r[k] for r in runs], fmt) for k, fmt in FIGURES]
    lines.append("| " + " | ".join([row] + cells) + " |")
  return "\n".join(lines)


def plot(results: list[dict], order: list[str], path: str, title: str) -> None:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  difficulties = sorted(results[0]["accuracy_by_difficulty"], key=int)
  if len(difficulties) > 1:
    fig, (left, right) = plt.subplots(1, 2, figsize=(15, 5.2),
                                      gridspec_kw={"width_ratios": [1, 1.3]})
  else:  # one difficulty (colored digits): the by-difficulty panel would be a single column
    fig, left = plt.subplots(figsize=(7.5, 4.5))
  for i, row in enumerate(order):
    accuracy = [r["accuracy"] for r in results if r["row"] == row]
    left.barh(i, np.mean(accuracy), color="C0" if row not in ("prosaic", "ceiling") else "0.6")
    left.plot(accuracy, [i] * len(accuracy), "k.", markersize=8)
    left.text(1.03, i, f"{np.mean(accuracy):.3f}", va="center")  # a column right of the bars
  left.set_yticks(range(len(order)), order)
  left.invert_yaxis()
  left.set_xlim(0, 1.15)
  left.set_xticks(np.linspace(0, 1, 6))
  left.set_xlabel("exact accuracy on D* (bar: mean; dots: seeds)")
  left.set_title("final accuracy per arm")
  if len(difficulties) == 1:
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return
  for i, row in enumerate(order):
    runs = [r for r in results if r["row"] == row]
    difficulties = sorted(runs[0]["accuracy_by_difficulty"], key=int)
    mean = [np.mean([r["accuracy_by_difficulty"][d] for r in runs]) for d in difficulties]
    style = "--" if row in ("prosaic", "ceiling") else "-"
    right.plot([int(d) for d in difficulties], mean, style, marker="o", markersize=3,
               label=row, color=f"C{i}")
  right.set_xlabel("difficulty" + (" (set size)" if _TASK.value == "lexicon" else ""))
  right.set_ylabel("exact accuracy (mean over seeds)")
  right.set_ylim(-0.02, 1.02)
  right.set_title("accuracy by difficulty")
  right.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
  fig.suptitle(title)
  fig.tight_layout()
  fig.savefig(path, dpi=110)


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)  # each run's progress is in its workdir
  os.makedirs(_ROOT.value, exist_ok=True)
  results, order = [], []
  for row, flags_ in rows_for(_TASK.value):
    order.append(row)
    for seed in range(_SEEDS.value):
      run = run_or_read(row, flags_, seed)
      results.append(figures(row, seed, run))
      if row == "ltp":
        results += [baseline_figures(name, seed, run) for name in ("prosaic", "ceiling")]
  order += ["prosaic", "ceiling"]
  command = (f"python experiments/arms.py --task={_TASK.value} --seeds={_SEEDS.value} "
             f"--root={_ROOT.value} --raw_d_lookups={_RAW_D_LOOKUPS.value}")
  with open(os.path.join(_ROOT.value, "arms.json"), "w") as f:
    json.dump({"task": _TASK.value, "seeds": _SEEDS.value, "command": command,
               "rows": order, "runs": results}, f, indent=2)
  text = (f"Arms on {_TASK.value}, seeds 0-{_SEEDS.value - 1} (mean ± standard deviation); "
          f"made by `{command}`.\n\n{table(results, order)}\n")
  with open(os.path.join(_ROOT.value, "arms.md"), "w") as f:
    f.write(text)
  plot(results, order, os.path.join(_ROOT.value, "arms.png"),
       f"{_TASK.value}: arms over {_SEEDS.value} seeds")
  print(text)


if __name__ == "__main__":
  app.run(main)
