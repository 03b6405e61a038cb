"""The size curriculum against none (the 2018 authors' ablation): the same task, config and seed
with `--config.curriculum.on` true and false.

  python experiments/curriculum.py --seeds=0
  python experiments/curriculum.py --seeds=0 --task.form=2018  # the authors' question form
  python experiments/curriculum.py --preset=permutation_tiny --task.num_elements=6 \
    --config.curriculum.start=4  # a try
Seeds: --seeds (default 0). Machine: any; the results name it.

Default: the permutation preset at twice its size (16 elements, k < 16), where amplification
without a curriculum stalled below prosaic ML (issue 23); another `--preset` runs at its own
size. Each seed runs twice, in ROOT/curriculum/PRESET_{on,off}_sSEED (common.py): the curriculum on,
with the baselines (the ceiling and prosaic ML do not depend on it), and off, without them. Writes
RESULTS/curriculum/curriculum.{json,md,png}: per run the final accuracy at the full size, the
ceiling and prosaic ML, each round's size and accuracy, the distillation steps and the wall seconds;
the plot, accuracy after each round, on and off, the ceiling beside them.
"""
from __future__ import annotations

import common

# the default preset's size, twice its own; a --task.num_elements given wins. Another preset
# runs at its own size (set it with its --task.FIELD).
DEFAULTS = {"permutation": ["--task.num_elements=16"]}


def _row(run: dict, preset: str, on: bool) -> dict:
  evals = [r for r in common.records(run) if r["phase"] == "eval"]
  summary = run["summary"]
  return {"preset": common.label(preset), "curriculum": on, "seed": run["seed"],
          "accuracy": summary["final_policy_accuracy"],
          "ceiling": summary["ceiling_accuracy"], "prosaic": summary["prosaic_accuracy"],
          "sizes": [e.get("size") for e in evals],
          "accuracy_by_round": [e["policy_accuracy"] for e in evals],
          "steps": summary["distillation_steps"], "wall_seconds": summary["wall_seconds"]}


def _baseline(rows: list[dict], row: dict, key: str) -> str:
  """A baseline's accuracy for `row`'s preset and seed, from whichever run trained it."""
  value = next((o[key] for o in rows if (o["preset"], o["seed"]) == (row["preset"], row["seed"])
                and o[key] is not None), None)
  return "-" if value is None else f"{value:.3f}"


def table(rows: list[dict]) -> str:
  out = []
  for r in rows:
    sizes = " ".join("-" if s is None else str(s) for s in r["sizes"])
    out.append([r["preset"], "on" if r["curriculum"] else "off", r["seed"],
                f"{r['accuracy']:.3f}", _baseline(rows, r, "ceiling"),
                _baseline(rows, r, "prosaic"), sizes,
                " ".join(f"{a:.2f}" for a in r["accuracy_by_round"]), r["steps"],
                f"{r['wall_seconds']:.0f}"])
  return common.markdown(["preset", "curriculum", "seed", "accuracy (full size)", "ceiling",
                          "prosaic ML", "size by round", "accuracy by round", "steps",
                          "wall s"], out)


def plot(rows: list[dict]):
  def draw(ax, preset):
    for r in (r for r in rows if r["preset"] == preset):
      ax.plot(range(len(r["accuracy_by_round"])), r["accuracy_by_round"],
              "-o" if r["curriculum"] else "--s", markersize=3,
              label=f"curriculum {'on' if r['curriculum'] else 'off'}, seed {r['seed']}")
  return common.accuracy_figure(rows, draw, "round", "accuracy on D* (full size)")


def main(argv):
  del argv
  runs, rows = [], []
  for preset in common.presets(["permutation"]):
    for seed in common.seeds():
      for on in (True, False):
        variant = [f"--config.curriculum.on={str(on).lower()}",
                   f"--config.baselines={str(on).lower()}"]
        run = common.run(f"{common.label(preset)}_{'on' if on else 'off'}", preset, seed,
                         defaults=DEFAULTS.get(preset, []), variant=variant)
        runs.append(run)
        rows.append(_row(run, preset, on))
  seeds = ",".join(map(str, common.seeds()))
  common.write_results(f"The size curriculum on and off, seeds {seeds}", table(rows), runs,
                       figure=plot(rows), per_seed=rows)


if __name__ == "__main__":
  common.main(main)
