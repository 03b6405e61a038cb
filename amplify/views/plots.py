"""A run's figures as PNG files, and several runs' policy accuracy side by side
(`python -m amplify.views.report --workdir=DIR --plots`).

Each figure reads the run's metrics lines (the `eval` line of each round, the `label` lines, the
`baseline` lines) and draws a round's missing key as a gap, so an older run, or one without
baselines or type 2, still plots. matplotlib draws through its Agg canvas with no pyplot (no global
backend to set, nothing shown), and is imported only here, so printing a table stays fast. No JAX.
"""
from __future__ import annotations

import dataclasses
import math
import os

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

_DPI = 100
_ANNOTATE_CELLS = 24  # a heat map with at most this many difficulties prints each cell's value


def _series(records: list[dict], key: str) -> np.ndarray:
  """float[len(records)]: each record's `key`, NaN where it is missing or null (a gap)."""
  return np.array([np.nan if r.get(key) is None else float(r[key]) for r in records])


def _rounds_axis(ax, rounds: list[int]) -> None:
  ax.set_xlabel("round")
  ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
  ax.set_xlim(min(rounds) - 0.5, max(rounds) + 0.5)


def _limits(values: np.ndarray, low: float, high: float, pad: float = 0.05) -> tuple[float, float]:
  """The data's range padded by `pad`, clipped to [low, high] (the whole range when no data)."""
  values = values[np.isfinite(values)]
  if not values.size:
    return low, high
  return max(low, values.min() - pad), min(high, values.max() + pad)


def _note(ax, text: str) -> None:
  """A figure that has nothing to draw says why, in place of empty axes."""
  ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, fontsize=11,
          transform=ax.transAxes)
  ax.set_axis_off()


def _save(fig: Figure, out_dir: str, name: str) -> str:
  """Writes the figure atomically (a reader never sees half a PNG); returns its path."""
  path = os.path.join(out_dir, f"{name}.png")
  fig.savefig(f"{path}.tmp", format="png", dpi=_DPI)
  os.replace(f"{path}.tmp", path)
  return path


# -- one run --------------------------------------------------------------------------------------

@dataclasses.dataclass
class RunMetrics:
  """What the figures read of one run: its name, its eval lines and label lines (one a round),
  and each baseline's accuracy on D* (name -> accuracy; empty without baselines)."""
  title: str
  evals: list[dict]
  labels: list[dict]
  baselines: dict[str, float]


def accuracy_by_difficulty(fig: Figure, run: RunMetrics) -> None:
  """Two heat maps, rounds x difficulty: the deployed policy's (pi_r unless the gate refused it)
  accuracy on fresh D* questions and H^A's label accuracy, on one colour scale; a grey cell is a
  difficulty with no question that round."""
  keys = [("policy_accuracy_by_difficulty", "the deployed policy's accuracy on fresh D* "
                                            "questions"),
          ("label_accuracy_by_difficulty", "H^A's label accuracy (the round's labels)")]
  difficulties = sorted({d for r in run.evals for key, _ in keys for d in (r.get(key) or {})},
                        key=int)
  if not difficulties:
    _note(fig.subplots(), "no accuracy by difficulty in this run's eval lines")
    return
  rounds = [r["round"] for r in run.evals]
  axes = fig.subplots(1, 2, sharey=True)
  fontsize = 8 if len(difficulties) <= 10 else 6.5  # the cells' values
  for ax, (key, panel) in zip(axes, keys):
    grid = np.array([[(r.get(key) or {}).get(d, np.nan) for d in difficulties]
                     for r in run.evals], float)
    colours = ax.imshow(np.ma.masked_invalid(grid), cmap="viridis", vmin=0, vmax=1,
                        aspect="auto", interpolation="nearest")
    ax.set_facecolor("0.85")  # masked cells: no question of that difficulty
    ax.set_title(panel, fontsize=10)
    ax.set_xlabel("difficulty")
    step = max(1, math.ceil(len(difficulties) / 16))
    ax.set_xticks(range(0, len(difficulties), step), difficulties[::step])
    if len(difficulties) <= _ANNOTATE_CELLS and len(rounds) <= 30:
      for (i, j), v in np.ndenumerate(grid):
        if np.isfinite(v):
          ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=fontsize,
                  color="black" if v > 0.6 else "white")
  step = max(1, math.ceil(len(rounds) / 20))
  axes[0].set_yticks(range(0, len(rounds), step), rounds[::step])
  axes[0].set_ylabel("round")
  fig.colorbar(colours, ax=list(axes), shrink=0.9,
               label="exact accuracy (grey: no data)")
  fig.suptitle(f"{run.title}: accuracy by round and difficulty")


def iid_gap(fig: Figure, run: RunMetrics) -> None:
  """pi_r's agreement with H^A's labels on its training rows and on the held-out rows (top), and
  their difference, the IID gap (bottom): the only generalisation the recipe relies on."""
  rounds = [r["round"] for r in run.evals]
  top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 2])
  train, heldout = _series(run.evals, "train_agreement"), _series(run.evals, "heldout_agreement")
  top.plot(rounds, train, "o-", label="training rows")
  top.plot(rounds, heldout, "s--", label="held-out rows")
  top.set_ylim(*_limits(np.concatenate([train, heldout]), 0, 1.01))
  top.set_ylabel("agreement with H^A")
  top.legend(loc="best")
  top.grid(alpha=0.3)
  top.set_title("pi_r's agreement with H^A's labels")
  gap = _series(run.evals, "iid_gap")
  _gap_bars(bottom, rounds, gap, np.where(gap > 0, "C3", "C0"), "IID gap\n(train - held-out)")
  fig.suptitle(f"{run.title}: IID check per round")


def _gap_bars(ax, rounds: list[int], gap: np.ndarray, color, ylabel: str) -> None:
  """A gap per round as bars about 0, the axis symmetric (at least +-0.01); a round without one
  (its eval line has none: no held-out check, or no type-2 sample) says n/a, not a bar of 0."""
  ax.bar(rounds, np.nan_to_num(gap), color=color)
  ax.axhline(0, color="black", linewidth=0.8)
  extent = max(0.01, np.nanmax(np.abs(gap), initial=0) * 1.2)
  ax.set_ylim(-extent, extent)
  for r in np.asarray(rounds)[np.isnan(gap)]:
    ax.text(r, extent / 2, "n/a", ha="center", va="center", color="0.4", fontsize=8)
  ax.set_ylabel(ylabel)
  ax.grid(alpha=0.3, axis="y")
  _rounds_axis(ax, rounds)


def type1_type2(fig: Figure, run: RunMetrics) -> None:
  """pi_r's net score against H^A's labels (type 1) and against H's whole tree (type 2) on the
  type-2 sample (top), their gap (bottom); the rounds whose pi_r the gate refused are shaded."""
  rounds = [r["round"] for r in run.evals]
  type1, type2 = _series(run.evals, "type1_score"), _series(run.evals, "type2_score")
  if np.all(np.isnan(type1)) and np.all(np.isnan(type2)):
    _note(fig.subplots(), "no type-1 / type-2 evaluation in this run\n(its eval lines have no "
                          "type1_score / type2_score:\nan older run, or --config.type2.size=0)")
    fig.suptitle(f"{run.title}: type 1 against type 2")
    return
  top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 2])
  top.plot(rounds, type2, "s-", color="C1", label="type 2: against H's whole tree")
  top.plot(rounds, type1, "o--", color="C0", markersize=10, markerfacecolor="none",
           label="type 1: against H^A's labels")  # open, on top: visible where the two agree
  deployed = _series(run.evals, "type2_score_deployed")
  if not np.all(np.isnan(deployed)):
    top.plot(rounds, deployed, "x:", color="0.4", label="type 2 of the policy deployed\nbefore "
             "pi_r (the gate's bar)")
  refused = [r["round"] for r in run.evals if r.get("promoted") is False]
  for i, r in enumerate(refused):
    for ax in (top, bottom):
      ax.axvspan(r - 0.5, r + 0.5, color="C3", alpha=0.15,
                 label="gate refused pi_r" if ax is top and i == 0 else None)
  top.set_ylim(*_limits(np.concatenate([type1, type2, deployed]), -1.05, 1.05, pad=0.1))
  top.set_ylabel("net score\n(+1 same, -1 other, 0 IDK)")
  top.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
  top.grid(alpha=0.3)
  top.set_title("pi_r's net score on the type-2 sample")
  gap = _series(run.evals, "type1_type2_gap")
  _gap_bars(bottom, rounds, gap, "C2", "gap\n(type 1 - type 2)")
  if np.all(gap == 0):
    bottom.text(0.5, 0.75, "no gap: type 1 = type 2 in every round", ha="center",
                transform=bottom.transAxes)
  fig.suptitle(f"{run.title}: type 1 against type 2")


def cost(fig: Figure, run: RunMetrics) -> None:
  """What each round cost: H's calls labelling (and, with a learned H', the real H's), H's calls
  in the type-2 evaluation, H's asks of pi and look-ups in Mz. A log scale where the counts
  differ by orders of magnitude (a count of 0 is then not drawn), else linear from 0."""
  ax = fig.subplots()
  lines = [(run.labels, "oracle_calls", "H calls labelling", "o-"),
           (run.labels, "real_h_calls", "real H calls (the rest: learned H')", "o:"),
           (run.evals, "type2_calls", "H calls of the type-2 evaluation", "D-"),
           (run.labels, "asks", "asks (H asking pi)", "s--"),
           (run.labels, "lookups", "look-ups (H reading Mz)", "^--")]
  series = [(records, _series(records, key), label, style) for records, key, label, style in lines]
  drawn = [line for line in series if np.any(line[1] > 0)]  # keys a run lacks, or all zero
  if not drawn:
    _note(ax, "no counts in this run's label and eval lines")
    ax.set_title(f"{run.title}: cost per round")
    return
  counts = np.concatenate([values[values > 0] for _, values, _, _ in drawn] or [np.ones(1)])
  log = counts.max() / counts.min() > 50
  for records, values, label, style in drawn:
    ax.plot([r["round"] for r in records], np.where(values > 0, values, np.nan) if log else values,
            style, label=label)
  if log:
    ax.set_yscale("log")
  else:
    ax.set_ylim(0, counts.max() * 1.1)
  ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
  ax.set_ylabel("count per round" + (" (log scale)" if log else ""))
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
  _rounds_axis(ax, [r["round"] for r in run.labels + run.evals])
  ax.set_title(f"{run.title}: cost per round")


def amplification(fig: Figure, run: RunMetrics) -> None:
  """pi_r's accuracy on fresh D* questions per round against prosaic ML and the supervised
  ceiling (the `baseline` lines' accuracy), with H^A's label accuracy for reference."""
  ax = fig.subplots()
  rounds = [r["round"] for r in run.evals]
  ax.plot(rounds, _series(run.evals, "policy_accuracy"), "o-", linewidth=2,
          label="deployed policy (pi_r unless the gate refused it)")
  ax.plot(rounds, _series(run.evals, "label_accuracy"), "s:", color="0.5",
          label="H^A's labels")
  styles = {"prosaic": ("C3", "--"), "ceiling": ("black", "--")}
  for i, (name, accuracy) in enumerate(run.baselines.items()):
    colour, style = styles.get(name, (f"C{4 + i}", "-."))
    ax.axhline(accuracy, color=colour, linestyle=style, label=f"{name} ({accuracy:.3f})")
  ax.set_ylim(-0.02, 1.02)
  ax.set_ylabel("exact accuracy on D*")
  ax.grid(alpha=0.3)
  ax.legend(loc="best", fontsize=9)
  _rounds_axis(ax, rounds)
  ax.set_title(f"{run.title}: amplification against prosaic ML and the ceiling"
               + ("" if run.baselines else "\n(no baselines in this run)"))


PLOTS = [("accuracy_by_difficulty", accuracy_by_difficulty, (11, 4.8)),
         ("iid_gap", iid_gap, (8, 5.5)),
         ("type1_type2", type1_type2, (10, 5.5)),
         ("cost", cost, (9.5, 4.8)),
         ("amplification", amplification, (8, 4.8))]


def run_plots(workdir: str, records: list[dict], out_dir: str) -> list[str]:
  """Writes every figure of PLOTS for one run's metrics `records` into out_dir; their paths."""
  evals = [r for r in records if r["phase"] == "eval"]
  if not evals:
    raise ValueError(f"{workdir!r} has no finished round (no eval line in metrics.jsonl): "
                     "nothing to plot yet.")
  labels = [r for r in records if r["phase"] == "label"]
  baselines = {r["baseline"]: r["accuracy"] for r in records if r["phase"] == "baseline"}
  run = RunMetrics(os.path.basename(os.path.abspath(workdir)), evals, labels, baselines)
  os.makedirs(out_dir, exist_ok=True)
  paths = []
  for name, draw, size in PLOTS:
    fig = Figure(figsize=size, layout="constrained")
    draw(fig, run)
    paths.append(_save(fig, out_dir, name))
  return paths


# -- several runs ---------------------------------------------------------------------------------

def comparison_plot(runs: list[tuple[str, list[dict]]], out_dir: str) -> str:
  """Policy accuracy per round, one line per run ((workdir, its metrics records) each), written
  as out_dir/comparison.png; returns its path."""
  fig = Figure(figsize=(9, 5), layout="constrained")
  ax = fig.subplots()
  rounds = []
  for workdir, records in runs:
    evals = [r for r in records if r["phase"] == "eval"]
    rounds += [r["round"] for r in evals]
    final = f" ({evals[-1]['policy_accuracy']:.3f})" if evals else " (no round yet)"
    ax.plot([r["round"] for r in evals], _series(evals, "policy_accuracy"), "o-",
            label=workdir + final)
  ax.set_ylim(-0.02, 1.02)
  ax.set_ylabel("the deployed policy's exact accuracy on D*")
  ax.grid(alpha=0.3)
  ax.legend(title="workdir (final accuracy)", fontsize=8, loc="center left",
            bbox_to_anchor=(1.01, 0.5))
  _rounds_axis(ax, rounds or [0])
  ax.set_title("policy accuracy per round, side by side")
  os.makedirs(out_dir, exist_ok=True)
  return _save(fig, out_dir, "comparison")
