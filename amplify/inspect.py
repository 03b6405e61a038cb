"""Print a run's per-round table: `python -m amplify.inspect --workdir=DIR`."""
from __future__ import annotations

import os
import sys

from absl import app, flags

from amplify.files import read_json, read_jsonl

COLUMNS = [  # (header, key in the round's eval line, format)
    ("round", "round", "{:d}"),
    ("label acc", "label_accuracy", "{:.3f}"),
    ("IDK", "idk_fraction", "{:.3f}"),
    ("train agr", "train_agreement", "{:.3f}"),
    ("held-out agr", "heldout_agreement", "{:.3f}"),
    ("IID gap", "iid_gap", "{:+.3f}"),
    ("competent", "competent_difficulties", "{}"),
    ("policy acc", "policy_accuracy", "{:.3f}"),
    ("unseen", "unseen_entity_fraction", "{:.3f}"),
    ("H calls", "oracle_calls", "{:d}"),
    ("asks", "asks", "{:d}"),
    ("lookups", "lookups", "{:d}"),
    ("seconds", "seconds", "{:.1f}"),
]


def read_metrics(workdir: str) -> list[dict]:
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.exists(path):
    raise FileNotFoundError(f"no metrics.jsonl in {workdir!r}: run `python -m amplify.main "
                            f"--workdir={workdir}` first, or point --workdir at a run.")
  return read_jsonl(path)


def _span(values: list[int]) -> str:
  """[1, 2, 3, 5] -> '1-3,5': the difficulties H may ask pi about next round."""
  runs = []
  for v in values:
    if runs and v == runs[-1][1] + 1:
      runs[-1][1] = v
    else:
      runs.append([v, v])
  return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs) or "-"


def _table(rows: list[list[str]], headers: list[str]) -> str:
  widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
  line = lambda cells: "  ".join(c.rjust(w) for c, w in zip(cells, widths))
  return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows])


def _cell(value, fmt: str) -> str:
  return "n/a" if value is None else _span(value) if isinstance(value, list) else fmt.format(value)


def format_table(workdir: str) -> str:
  records = read_metrics(workdir)
  evals = [r for r in records if r["phase"] == "eval"]
  out = []
  for p in (r for r in records if r["phase"] == "prior"):
    out.append(f"prior: z* accuracy {p['z_accuracy']:.4f}  log prior {p['log_prior']:.1f}  "
               f"log likelihood {p['log_likelihood']:.1f}  (D: {p['d_rows']} rows)  Mz "
               f"{p['mz_parameters']} parameters, {p['mz_bytes']} bytes  {p['seconds']:.1f}s\n")
  if evals:
    out.append(_table([[_cell(r.get(key), fmt) for _, key, fmt in COLUMNS] for r in evals],
                      [h for h, _, _ in COLUMNS]))
    kept = [str(r["round"]) for r in evals if r.get("kept_previous_policy")]
    if kept:
      out.append(f"\nround(s) {', '.join(kept)} kept the previous round's policy: the fresh network "
                 "agreed less with H^A's held-out labels (--warm_start=false)")
    by_difficulty = evals[-1]["policy_accuracy_by_difficulty"]
    out.append(f"\nfinal policy (round {evals[-1]['round']}) accuracy by difficulty: " +
               " ".join(f"{d}:{a:.2f}" for d, a in by_difficulty.items()))
  baselines = [r for r in records if r["phase"] == "baseline"]
  if baselines:
    out.append("\n" + _table([[b["baseline"], f"{b['accuracy']:.3f}",
                               _cell(b.get("agreement_on_d"), "{:.3f}"), str(b["steps"]),
                               f"{b['seconds']:.1f}"] for b in baselines],
                             ["baseline", "accuracy on D*", "agreement on D", "steps",
                              "seconds"]))
  summary_path = os.path.join(workdir, "summary.json")
  if os.path.exists(summary_path):
    s = read_json(summary_path, "the run's summary")
    show = lambda v: "n/a" if v is None else f"{v:.3f}"
    if s.get("policy_accuracy_unseen") is not None:
      out.append(f"\nunseen entities: {s['unseen_entity_fraction']:.3f} of the evaluation's "
                 f"entities were in no question pi trained on; on the questions made only of "
                 f"them pi's accuracy is {s['policy_accuracy_unseen']:.3f}")
    out.append(f"\narm {s.get('arm', 'ltp')}  policy {s.get('policy', 'memorises')}  "
               f"final {show(s['final_policy_accuracy'])}  prosaic {show(s['prosaic_accuracy'])}"
               f"  ceiling {show(s['ceiling_accuracy'])}  gap recovered "
               f"{show(s['gap_recovered'])}"
               + (f"  z* accuracy {s['z_accuracy']:.4f}" if s.get("z_accuracy") is not None else "")
               + f"  seed {s['seed']}  wall {s['wall_seconds']:.0f}s"
               + (f"  peak memory {s['peak_memory_mb'] / 1024:.1f} GiB"
                  if s.get("peak_memory_mb") else ""))
  return "\n".join(out)


def main(argv):
  del argv
  try:
    print(format_table(flags.FLAGS.workdir))
  except (FileNotFoundError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
  flags.DEFINE_string("workdir", None, "The run's workdir.", required=True)
  app.run(main)
