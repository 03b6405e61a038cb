"""Looking at a run: `python -m amplify.views.report --workdir=DIR`.

  --workdir=DIR                the run's per-round table, its baselines and summary
  --workdir=DIR --plots        and its figures, DIR/plots/*.png (amplify.views.plots)
  --workdir=A,B,C [--plots]    several runs side by side: one row each (and comparison.png)
  --out=DIR                    where --plots writes (default DIR/plots, or . for several)
  --workdir=DIR --tree=R:I     H^A's transcript of question I of round R as a tree
                               (amplify.views.transcript_tree)

The table and the plots read only the workdir's JSON files and never import JAX, so a finished
run's table and plots take a couple of seconds; only --tree rebuilds the task (with JAX) to render
questions as a person reads them.
"""
from __future__ import annotations

import os
import sys

from absl import app, flags, logging

from amplify.files import jsonio
from amplify.files.jsonio import read_json, read_jsonl

COLUMNS = [  # (header, key in the round's eval line, format); no key: n/a, a bool: yes / no
    ("round", "round", "{:d}"),
    ("label acc", "label_accuracy", "{:.3f}"),
    ("IDK", "idk_fraction", "{:.3f}"),
    ("train agr", "train_agreement", "{:.3f}"),
    ("held-out agr", "heldout_agreement", "{:.3f}"),
    ("IID gap", "iid_gap", "{:+.3f}"),
    ("competent", "competent_difficulties", "{}"),
    ("policy acc", "policy_accuracy", "{:.3f}"),
    ("unseen", "unseen_entity_fraction", "{:.3f}"),
    ("type1", "type1_score", "{:.3f}"),
    ("type2", "type2_score", "{:.3f}"),
    ("gap 1-2", "type1_type2_gap", "{:+.3f}"),
    ("type2 calls", "type2_calls", "{:d}"),
    ("promoted", "promoted", "{}"),
    ("H calls", "oracle_calls", "{:d}"),
    ("asks", "asks", "{:d}"),
    ("lookups", "lookups", "{:d}"),
    ("seconds", "seconds", "{:.1f}"),
]

# Several workdirs side by side, a row each (`comparison_row`)
COMPARISON = ["workdir", "arm", "final", "prosaic", "ceiling", "gap recovered", "promotions",
              "largest gap 1-2", "H calls", "wall s"]


class NotStarted(FileNotFoundError):
  """A run's workdir (config.json) whose run has written no metrics line yet."""


def read_metrics(workdir: str) -> list[dict]:
  """metrics.jsonl's lines. Where the workdir cannot be read, an OSError or ValueError whose advice
  is what the run itself would say of the same workdir."""
  if not os.path.isdir(workdir):
    raise FileNotFoundError(f"workdir {workdir!r} " + ("is a file, not a folder" if os.path.exists(
        workdir) else "does not exist") + ": point --workdir at a run's directory.")
  jsonio.check_workdir_layout(workdir)
  jsonio.read_summary(workdir)  # a finished run's summary without metrics.jsonl: lines lost
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.exists(path):
    if _checkpointed(workdir):  # what the run refuses to resume
      raise ValueError(f"workdir {workdir}: it holds checkpoints but no metrics.jsonl: the rounds'"
                       " lines are lost; use a new --workdir to run it again.")
    if os.path.exists(os.path.join(workdir, "config.json")):
      raise NotStarted(f"workdir {workdir}: its run has written no metrics line yet; the "
                       "command that started it (its flags are in config.json) resumes it.")
    raise FileNotFoundError(f"no metrics.jsonl in {workdir!r}: run `python -m amplify.main "
                            f"--workdir={workdir}` first, or point --workdir at a run.")
  return read_jsonl(path)


def metrics_so_far(workdir: str) -> list[dict]:
  """`read_metrics`, with none for a run not started yet (a sweep's next run, side by side)."""
  try:
    return read_metrics(workdir)
  except NotStarted:
    return []


def _checkpointed(workdir: str) -> bool:
  """A round's checkpoint in the workdir (`amplify.files.checkpoint`, read without JAX)."""
  directory = os.path.join(workdir, "checkpoints")
  return os.path.isdir(directory) and any(name.startswith("round_")
                                          for name in os.listdir(directory))


def read_summary(workdir: str) -> dict | None:
  """summary.json, or None while the run has not finished (`amplify.files.jsonio.read_summary`)."""
  return jsonio.read_summary(workdir)


def _span(values: list[int]) -> str:
  """[1, 2, 3, 5] -> '1-3,5': the difficulties H may ask pi about next round."""
  runs = []
  for v in values:
    if runs and v == runs[-1][1] + 1:
      runs[-1][1] = v
    else:
      runs.append([v, v])
  return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs) or "-"


def _table(rows: list[list[str]], headers: list[str], left: int = 0) -> str:
  """Columns right-aligned, but for the first `left` (names) left-aligned."""
  widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
  line = lambda cells: "  ".join(c.ljust(w) if i < left else c.rjust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths)))
  return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows])


def _cell(value, fmt: str) -> str:
  if value is None:  # the key is missing (an older run) or null
    return "n/a"
  if isinstance(value, bool):
    return "yes" if value else "no"
  return _span(value) if isinstance(value, list) else fmt.format(value)


def _fraction(value: float | None) -> str:
  return "n/a" if value is None else f"{value:.3f}"


def _largest_gap(summary: dict) -> str:
  largest = summary.get("largest_type1_type2_gap")
  return "n/a" if largest is None else f"{largest['gap']:+.3f} (round {largest['round']})"


def _promotions(summary: dict) -> str:
  """Promotions of the rounds the gate decided (a round that trains nothing decides nothing)."""
  promotions = summary.get("promotions")
  if promotions is None:
    return "n/a"
  return f"{promotions}/{promotions + len(summary.get('refused_rounds') or [])}"


def _refused(evals: list[dict]) -> str:
  """The rounds whose pi_r the type-2 gate refused, each with the eval line's reason."""
  refused = [r for r in evals if r.get("promoted") is False]
  if not refused:
    return ""
  return (f"\nthe gate refused pi_r in round(s) {', '.join(str(r['round']) for r in refused)} "
          "(the deployed policy stayed):\n" +
          "\n".join(f"  round {r['round']}: {r.get('gate') or 'no reason recorded'}"
                    for r in refused))


def format_table(workdir: str) -> str:
  records = read_metrics(workdir)
  return _read(workdir, lambda: _format_table(workdir, records))


def _read(workdir: str, make):
  """make(), whose KeyError or TypeError (a metrics line amplify did not write) is a ValueError
  naming the workdir's metrics.jsonl."""
  try:
    return make()
  except (KeyError, TypeError) as e:
    raise ValueError(f"{os.path.join(workdir, 'metrics.jsonl')} does not read as a run's lines "
                     f"({type(e).__name__}: {e}; damaged, or not written by a run): use a new "
                     "--workdir to run it again.") from None


def _format_table(workdir: str, records: list[dict]) -> str:
  evals = [r for r in records if r["phase"] == "eval"]
  out = []
  for p in (r for r in records if r["phase"] == "prior"):
    out.append(f"prior: z* accuracy {p['z_accuracy']:.4f}  log prior {p['log_prior']:.1f}  "
               f"log likelihood {p['log_likelihood']:.1f}  (D: {p['d_rows']} rows)  Mz "
               f"{p['mz_parameters']} parameters, {p['mz_bytes']} bytes  {p['seconds']:.1f}s\n")
  if evals:
    columns = COLUMNS  # with a size curriculum: each round's instance size, pi's accuracy at it
    if any(r.get("size") is not None for r in evals):
      at = [key for _, key, _ in COLUMNS].index("policy_accuracy") + 1
      columns = [COLUMNS[0], ("size", "size", "{:d}"), *COLUMNS[1:at],
                 ("acc at size", "policy_accuracy_at_size", "{:.3f}"), *COLUMNS[at:]]
    if any(r.get("real_h_calls") is not None for r in evals):  # H' answered the others
      at = [key for _, key, _ in columns].index("oracle_calls") + 1
      columns = [*columns[:at], ("real H", "real_h_calls", "{:d}"), *columns[at:]]
    out.append(_table([[_cell(r.get(key), fmt) for _, key, fmt in columns] for r in evals],
                      [h for h, _, _ in columns]))
    kept = [str(r["round"]) for r in evals if r.get("kept_previous_policy")]
    if kept:
      out.append(f"\nround(s) {', '.join(kept)} kept the previous round's policy: the fresh "
                 "network agreed less with H^A's held-out labels (--config.train.warm_start=false)")
    if refused := _refused(evals):
      out.append(refused)
    final = evals[-1]  # by instance size only for a task with one (amplify.types.Sized)
    for by, accuracy in (("difficulty", final["policy_accuracy_by_difficulty"]),
                         ("size", final.get("policy_accuracy_by_size"))):
      if accuracy is not None:
        out.append(f"\nfinal policy (round {final['round']}) accuracy by {by}: " +
                   " ".join(f"{d}:{a:.2f}" for d, a in accuracy.items()))
  baselines = [r for r in records if r["phase"] == "baseline"]
  if baselines:
    out.append("\n" + _table([[b["baseline"], f"{b['accuracy']:.3f}",
                               _cell(b.get("agreement_on_d"), "{:.3f}"), str(b["steps"]),
                               f"{b['seconds']:.1f}"] for b in baselines],
                             ["baseline", "accuracy on D*", "agreement on D", "steps",
                              "seconds"]))
  if (s := read_summary(workdir)) is not None:
    if s.get("policy_accuracy_unseen") is not None:
      unseen = _fraction(s.get("unseen_entity_fraction"))
      out.append(f"\nunseen entities: {unseen} of the evaluation's "
                 f"entities were in no question pi trained on; on the questions made only of "
                 f"them pi's accuracy is {s['policy_accuracy_unseen']:.3f}")
    out.append(f"\narm {s.get('arm', 'ltp')}  policy {s.get('policy', 'memorises')}  "
               f"final {_fraction(s['final_policy_accuracy'])}  prosaic "
               f"{_fraction(s['prosaic_accuracy'])}  ceiling {_fraction(s['ceiling_accuracy'])}"
               f"  gap recovered {_fraction(s['gap_recovered'])}"
               + (f"  z* accuracy {s['z_accuracy']:.4f}" if s.get("z_accuracy") is not None else "")
               + (f"  promotions {_promotions(s)}  largest gap 1-2 {_largest_gap(s)}"
                  if s.get("promotions") is not None else "")
               + (f"  type-2 H calls {s['type2_share_of_h_calls']:.1%} of labelling's"
                  + (" real-H calls" if s.get("real_h_calls") is not None else "")
                  if s.get("type2_share_of_h_calls") is not None else "")
               + f"  seed {s['seed']}  wall {s['wall_seconds']:.0f}s"
               + (f"  peak memory {s['peak_memory_mb'] / 1024:.1f} GiB"
                  if s.get("peak_memory_mb") else ""))
  return "\n".join(out)


def comparison_row(workdir: str) -> list[str]:
  """One run's cells of the side-by-side table. An unfinished run (no summary.json) shows its
  last round's policy accuracy (if it has one) and n/a for what only the summary holds."""
  evals = [r for r in metrics_so_far(workdir) if r["phase"] == "eval"]
  s = read_summary(workdir)
  return _read(workdir, lambda: _comparison_cells(workdir, evals, s))


def _comparison_cells(workdir: str, evals: list[dict], s: dict | None) -> list[str]:
  if s is None:
    path = os.path.join(workdir, "config.json")
    config = read_json(path, "the run's config") if os.path.exists(path) else {}
    final = f"{evals[-1]['policy_accuracy']:.3f} (unfinished)" if evals else "n/a"
    return [workdir, config.get("arm", "n/a"), final] + ["n/a"] * (len(COMPARISON) - 3)
  return [workdir, s.get("arm", "ltp"), _fraction(s["final_policy_accuracy"]),
          _fraction(s["prosaic_accuracy"]), _fraction(s["ceiling_accuracy"]),
          _fraction(s["gap_recovered"]), _promotions(s), _largest_gap(s),
          _cell(s.get("oracle_calls"), "{:d}") + (f" ({s['real_h_calls']} real)"
                                                   if s.get("real_h_calls") is not None else ""),
          f"{s['wall_seconds']:.0f}"]


def format_comparison(workdirs: list[str]) -> str:
  return _table([comparison_row(w) for w in workdirs], COMPARISON, left=2)


def _report(workdirs: list[str], write_plots: bool, out: str | None, tree: str | None) -> None:
  """What the flags ask for, printed (and the plots written); a ValueError or OSError names a bad
  flag or workdir."""
  if not workdirs:
    raise ValueError("--workdir names no run: pass --workdir=DIR, or --workdir=A,B,C to compare.")
  if tree is not None:
    if len(workdirs) > 1 or write_plots:
      raise ValueError("--tree shows one question of one run: pass a single --workdir and no "
                       "--plots.")
    from amplify.views import transcript_tree  # pylint: disable=g-import-not-at-top
    print(transcript_tree.render(workdirs[0], tree))
    return
  workdirs = [os.path.normpath(w) for w in workdirs]
  if len(workdirs) == 1:
    print(format_table(workdirs[0]))
  else:
    print(format_comparison(workdirs))
  if write_plots:
    try:  # matplotlib loads only to plot
      from amplify.views import plots  # pylint: disable=g-import-not-at-top
    except ImportError as e:
      raise ValueError(f"--plots needs matplotlib, which does not import ({e}): pip install "
                       "matplotlib, or drop --plots.") from None
    if len(workdirs) == 1:
      written = plots.run_plots(workdirs[0], read_metrics(workdirs[0]),
                                out or os.path.join(workdirs[0], "plots"))
    else:
      written = [plots.comparison_plot([(w, metrics_so_far(w)) for w in workdirs], out or ".")]
    print("\nplots: " + " ".join(written))


def main(argv):
  f = flags.FLAGS
  if len(argv) > 1:
    print(f"error: unexpected arguments {argv[1:]}: every setting is one --flag=value (e.g. "
          "--workdir=DIR).", file=sys.stderr)
    sys.exit(2)
  if not f["verbosity"].present:  # JAX's start-up INFO logs (--tree) are noise here
    logging.set_verbosity(logging.WARNING)
  try:
    _report(f.workdir, f.plots, f.out, f.tree)
  except (OSError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)


def cli() -> None:
  """The command line, for `amplify-report` and `python -m amplify.views.report`."""
  flags.DEFINE_list("workdir", None, "The run's workdir; several, comma-separated, side by side.",
                    required=True)
  flags.DEFINE_bool("plots", False, "Also write PNG figures: DIR/plots/*.png for one workdir, "
                    "comparison.png (in --out) for several.")
  flags.DEFINE_string("out", None, "Where --plots writes (default: DIR/plots for one workdir, the "
                      "current directory for several).")
  flags.DEFINE_string("tree", None, "ROUND:ROW: print question ROW of round ROUND's transcripts "
                      "as H^A's tree of asks and look-ups (rebuilds the task; imports JAX).")
  app.run(main)


if __name__ == "__main__":
  cli()
