"""The 2018 benchmark (Christiano, Shlegeris and Amodei): each task in the authors' form,
amplification by the scripted H and by the learned H', against the supervised ceiling and
prosaic ML.

  python experiments/reproduce_2018.py --seeds=0,1,2
  python experiments/reproduce_2018.py --preset=permutation_tiny --seeds=0  # seconds, a try
  python experiments/reproduce_2018.py --oracles=scripted --name=scripted  # without H'
  python experiments/reproduce_2018.py --finished_only  # the table of the runs done so far
Seeds: --seeds (default 0). Machine: any; the results name it.

The paper's five tasks: permutation powering in its 2018 form (`--task.form=2018`: the authors'
question distribution, sigma^1 looked up, one question per element of each permutation), and
sequential assignments, wildcard search, shortest path and union find, which amplify has only in
that form (docs/usage.md says where each departs from the authors' code). Each preset runs
twice a seed, in ROOT/reproduce_2018/PRESET_ORACLE_sSEED (common.py): the scripted H with the
baselines (prosaic ML trains on D, the ceiling on ground-truth D* labels, with the same network
and steps) and the learned H' without them. Writes RESULTS/reproduce_2018/reproduce_2018.{json,
md,png}: per preset and oracle (mean ± sd over seeds) the final accuracy, the ceiling, the
accuracy less the same seed's ceiling, prosaic ML, the real H's calls (labels and type-2
answers) of the rounds up to the first within 1 point of the final accuracy, the ground-truth
labels the ceiling could draw (its pool, at most its steps x batch), the distillation steps and
the wall seconds (the baselines' columns read the scripted runs of the row's own seeds, listed
in its seeds column); then a row a run (accuracy, ceiling, their difference, prosaic ML, steps,
wall seconds); the plot, accuracy against distillation steps per preset, one line a seed and
oracle, with the ceiling's final accuracy beside it. Each finished run's record (config, metrics, summary, world; no checkpoints)
is kept in RESULTS/reproduce_2018/runs/, and a run whose workdir is absent is read from there,
so the seeds of a sweep run on different machines add up in one table. These tasks draw their
instances from the run's seed alone (no latent world, so the referee's secret changes nothing:
assignments' seeds 0 and 1 gave the same figures on two machines with two secrets); wall
seconds compare only runs made side by side.
"""
from __future__ import annotations

import os

from absl import flags

import common

# The authors' form of each task amplify has, as run flags (a task's name: its flags)
FORMS = {"permutation": ["--task.form=2018"], "assignments": [], "wildcard": [],
         "shortest_path": [], "union_find": []}
ORACLES = ("scripted", "learned")
_ORACLES = flags.DEFINE_list("oracles", list(ORACLES), "Who acts as H: scripted (with the "
                             "baselines), learned (H', without them), or both.")
_FINISHED_ONLY = flags.DEFINE_bool("finished_only", False, "Tabulate the runs already finished "
                                   "under --root or kept under --results, and run none (a long "
                                   "sweep's table so far).")


def _task(preset: str) -> str:
  return common.config_for(common.argv_for(preset, 0)).task.name


def curve(run: dict) -> tuple[list[int], list[float]]:
  """(distillation steps so far, policy accuracy) after each round."""
  records, steps, total = common.records(run), {}, 0
  for r in records:
    if r["phase"] == "distill":
      total += r["steps"]
      steps[r["round"]] = total
  evals = [r for r in records if r["phase"] == "eval"]
  return [steps.get(e["round"], 0) for e in evals], [e["policy_accuracy"] for e in evals]


def real_h_calls_to_final(run: dict) -> int:
  """The real H's answers (`common.real_h_calls`) in the rounds up to the first whose accuracy
  is within 1 point of the run's final accuracy."""
  records = common.records(run)
  evals = [r for r in records if r["phase"] == "eval"]
  final = run["summary"]["final_policy_accuracy"]
  reached = next((e["round"] for e in evals if e["policy_accuracy"] >= final - 0.01),
                 evals[-1]["round"])
  return common.real_h_calls(records, reached)


def ceiling_labels(run: dict) -> int | None:
  """The ground-truth labels the ceiling could draw: its pool, at most its steps x batch."""
  from amplify.files.jsonio import read_json  # pylint: disable=g-import-not-at-top (after --help)
  train = read_json(os.path.join(run["workdir"], "config.json"), "the run's config")["train"]
  lines = [r for r in common.records(run) if r.get("baseline") == "ceiling"]
  return (min(train["baseline_size"], lines[-1]["steps"] * train["batch_size"])
          if lines else None)


def table(rows: list[dict]) -> str:
  out = []
  for preset, oracle in dict.fromkeys((r["preset"], r["oracle"]) for r in rows):
    mine = [r for r in rows if r["preset"] == preset and r["oracle"] == oracle]
    # the baselines (run beside the scripted H) of this row's own seeds
    by_seed = {r["seed"]: r for r in rows if r["preset"] == preset and r["oracle"] == "scripted"}
    scripted = [by_seed[r["seed"]] for r in mine if r["seed"] in by_seed]
    values = lambda key, rs=mine: [r[key] for r in rs]
    labels = values("ceiling_labels", scripted)
    # per seed, against the scripted run of the same seed: how many times fewer real-H calls
    # than the ceiling's labels, and the wall time's ratio
    ratio = lambda f: [f(r, by_seed[r["seed"]]) for r in mine if r["seed"] in by_seed]
    fewer = ratio(lambda r, s: s["ceiling_labels"] and s["ceiling_labels"] / r["real_h_calls"])
    gap = ratio(lambda r, s: None if s["ceiling"] is None else r["accuracy"] - s["ceiling"])
    wall = ratio(lambda r, s: r["wall_seconds"] / s["wall_seconds"])
    out.append([preset, oracle, ",".join(str(r["seed"]) for r in mine),
                common.mean_spread(values("accuracy")),
                common.mean_spread(values("ceiling", scripted)),
                common.mean_spread(gap),
                common.mean_spread(values("prosaic", scripted)),
                common.mean_spread(values("real_h_calls"), "{:.0f}"),
                common.mean_spread(labels, "{:.0f}"),
                common.mean_spread(fewer, "{:.1f}x"),
                common.mean_spread(values("steps"), "{:.0f}"),
                common.mean_spread(values("wall_seconds"), "{:.0f}"),
                common.mean_spread(wall, "{:.2f}x")])
  return common.markdown(["preset", "H", "seeds", "accuracy", "ceiling", "accuracy - ceiling",
                          "prosaic ML", "real-H calls to final", "ceiling's ground-truth labels",
                          "labels per real-H call", "steps", "wall s", "wall / scripted"], out)


def per_run(rows: list[dict]) -> str:
  """A row a run: its accuracy against the same seed's ceiling and prosaic ML."""
  scripted = {(r["preset"], r["seed"]): r for r in rows if r["oracle"] == "scripted"}
  out, order = [], list(dict.fromkeys((r["preset"], r["oracle"]) for r in rows))
  fmt = lambda v: "-" if v is None else f"{v:.3f}"
  for r in sorted(rows, key=lambda r: (order.index((r["preset"], r["oracle"])), r["seed"])):
    s = scripted.get((r["preset"], r["seed"]), {})
    ceiling, prosaic = s.get("ceiling"), s.get("prosaic")
    out.append([r["preset"], r["oracle"], r["seed"], fmt(r["accuracy"]), fmt(ceiling),
                fmt(None if ceiling is None else r["accuracy"] - ceiling), fmt(prosaic),
                r["steps"], f"{r['wall_seconds']:.0f}"])
  return common.markdown(["preset", "H", "seed", "accuracy", "ceiling", "accuracy - ceiling",
                          "prosaic ML", "steps", "wall s"], out)


def plot(runs: list[dict], rows: list[dict]):
  def draw(ax, preset):
    for run, row in zip(runs, rows):
      if row["preset"] == preset:
        steps, accuracy = curve(run)
        ax.plot(steps, accuracy, "-o" if row["oracle"] == "scripted" else "--s", markersize=3,
                label=f"{row['oracle']} H, seed {row['seed']}")
  return common.accuracy_figure(rows, draw, "distillation steps")


def main(argv):
  del argv
  runs, rows = [], []
  if not _ORACLES.value or set(_ORACLES.value) - set(ORACLES):
    raise SystemExit(f"error: --oracles={','.join(_ORACLES.value)}: choose from {list(ORACLES)}.")
  for preset in common.presets(list(FORMS)):
    form = FORMS.get(_task(preset))
    if form is None:
      raise SystemExit(f"error: --preset={preset}: amplify has no 2018 form of its task; the "
                       f"tasks with one are {sorted(FORMS)}.")
    for oracle in _ORACLES.value:
      for seed in common.seeds():
        variant = [*form, f"--oracle={oracle}",
                   f"--config.baselines={str(oracle == 'scripted').lower()}"]
        name = f"{common.label(preset)}_{oracle}"
        run = common.run(name, preset, seed, variant=variant, keep=True,
                         finished_only=_FINISHED_ONLY.value)
        if run is None:
          continue
        summary = run["summary"]
        runs.append(run)
        rows.append({"preset": common.label(preset), "oracle": oracle, "seed": seed,
                     "accuracy": summary["final_policy_accuracy"],
                     "ceiling": summary["ceiling_accuracy"],
                     "prosaic": summary["prosaic_accuracy"],
                     "real_h_calls": real_h_calls_to_final(run),
                     "ceiling_labels": ceiling_labels(run),
                     "steps": summary["distillation_steps"],
                     "wall_seconds": summary["wall_seconds"]})
  if not rows:
    raise SystemExit("error: no run of these presets and seeds has finished under --root="
                     f"{common.FLAGS.root} or is kept under --results={common.FLAGS.results}: "
                     "run the same command without --finished_only.")
  seeds = ",".join(map(str, sorted({r["seed"] for r in rows})))  # the seeds tabulated
  common.write_results(f"The 2018 tasks in the authors' form, seeds {seeds}",
                       f"{table(rows)}\n\nBy seed:\n\n{per_run(rows)}", runs,
                       figure=plot(runs, rows), per_seed=rows)


if __name__ == "__main__":
  common.main(main)
