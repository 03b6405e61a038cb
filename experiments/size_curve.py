"""The largest instance size each task learns within a time box, with the size curriculum and
without it (the 2018 authors' ablation), and pi's accuracy against size.

  python experiments/size_curve.py  # the five paper-size presets, 600 s each: a GPU's study
  python experiments/size_curve.py --preset=permutation --size=16 --time_box=600  # a CPU's
Seeds: --seeds (default 0). Machine: any; the results name it.

Each preset, seed and curriculum setting (on, off) runs `amplify` in a child process for at most
`--time_box` seconds, compiling included, then stops it as Ctrl-C does (the rounds finished are
kept), without the baselines, into ROOT/NAME/PRESET[_nSIZE]_{on,off}_sSEED (common.py). `--size`
sets the task's instance size (its `SIZE_FIELDS` setting) in place of the preset's. A workdir
whose run finished or met its box is read, not run again; one killed before its box resumes with
the seconds its finished rounds left (the time lost to the kill is not counted). Every round's
evaluation scores pi on fresh D* questions at each size from `--config.curriculum.start` up to
the full size (`policy_accuracy_by_size`); the table reads the last round finished within the
box. Writes RESULTS/size_curve/NAME.{json,md,png}: per run the rounds and steps finished in the
box, its seconds, the accuracy at the full size, the largest size where pi reaches `--target`,
and the curriculum's size by round; the plot, accuracy against size, on and off.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from absl import flags

import common

PAPER = ["permutation_paper", "assignments_paper", "wildcard_paper", "shortest_path_paper",
         "union_find_paper"]
# each sized task's setting that holds its instance size (amplify.types.Sized.full_size)
SIZE_FIELDS = {"permutation": "num_elements", "assignments": "num_variables",
               "wildcard": "num_strings", "shortest_path": "num_vertices",
               "union_find": "num_variables"}
BOX_FILE = "time_box.json"  # written beside a run the study stopped at its box

_TIME_BOX = flags.DEFINE_integer("time_box", 600, "Seconds each run may take, compiling "
                                 "included; then it is stopped and its finished rounds read.",
                                 lower_bound=1)
_SIZE = flags.DEFINE_integer("size", None, "The task's instance size in place of the preset's "
                             "(elements, variables, strings or vertices).", lower_bound=1)
_TARGET = flags.DEFINE_float("target", 0.9, "The accuracy a size counts as learnt at.")


def _size_flags(preset: str) -> list[str]:
  if _SIZE.value is None:
    return []
  task = common.config_for(common.argv_for(preset, 0)).task.name
  if task not in SIZE_FIELDS:
    sys.exit(f"error: --size: the task {task!r} ({preset}) has no instance size; sized tasks: "
             f"{', '.join(SIZE_FIELDS)}.")
  return [f"--task.{SIZE_FIELDS[task]}={_SIZE.value}"]


def run_boxed(run_name: str, preset: str, seed: int, variant: list[str]) -> dict:
  """Runs one config in a child process for at most --time_box seconds (or reads the workdir
  where a run finished or met its box). Returns {name, seed, workdir, command, boxed}."""
  argv = common.argv_for(preset, seed, _size_flags(preset), variant)
  config, workdir = common.config_for(argv), common.workdir_for(run_name, seed)
  command = ["amplify", *argv, f"--workdir={workdir}"]
  finished = common.finished(config, workdir) is not None  # another config's run: refused
  box_file = os.path.join(workdir, BOX_FILE)
  if os.path.exists(box_file) and _box(box_file) < _TIME_BOX.value:
    os.remove(box_file)  # stopped at a smaller box: it goes on to this one
  left = _TIME_BOX.value - _spent(workdir)  # a run stopped by a kill resumes with what it has left
  done = finished or os.path.exists(box_file)
  if not done and left <= 0:
    _write_box(box_file)
    done = True
  print(f"{run_name}, seed {seed}: {'read' if done else 'running'}: {' '.join(command)}",
        flush=True)
  if not done:
    # Ctrl-C's default action in the child, as from a shell: a study started in the background
    # ignores SIGINT, an ignored signal stays ignored across exec, and a handled one does not
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
      signal.signal(signal.SIGINT, signal.default_int_handler)
    child = subprocess.Popen([sys.executable, "-m", "amplify.main", *command[1:]])
    try:
      child.wait(timeout=left)
    except subprocess.TimeoutExpired:
      child.send_signal(signal.SIGINT)  # the run stops as at Ctrl-C, keeping finished rounds
      try:
        child.wait(timeout=120)
      except subprocess.TimeoutExpired:
        child.kill()  # its checkpointed rounds are kept all the same
        child.wait()
      _write_box(box_file)
    if child.returncode != 0 and not os.path.exists(box_file):
      sys.exit(f"error: {run_name}, seed {seed} exited {child.returncode}: its log is above; "
               f"fix it and run the same command again (finished runs are read).")
  return {"name": run_name, "seed": seed, "workdir": workdir, "command": " ".join(command),
          "boxed": os.path.exists(box_file)}


def _write_box(path: str) -> None:
  with open(path, "w") as f:
    json.dump({"time_box_s": _TIME_BOX.value}, f)


def _box(path: str) -> float:
  """The box a run was stopped at (its rounds finished within a box as large are read as they
  are, within --time_box; one stopped at a smaller box goes on)."""
  from amplify.files.jsonio import read_json  # pylint: disable=g-import-not-at-top
  try:
    box = read_json(path, "the time box a run was stopped at").get("time_box_s")
  except ValueError as e:
    sys.exit(f"error: {e}")
  if not isinstance(box, (int, float)):
    sys.exit(f"error: {path} names no time box: remove it, and the run goes on to --time_box")
  return box


def _records(workdir: str) -> list[dict]:
  from amplify.views import report  # pylint: disable=g-import-not-at-top
  exists = os.path.exists(os.path.join(workdir, "metrics.jsonl"))
  return report.read_metrics(workdir) if exists else []


def _evals(records: list[dict]) -> list[dict]:
  """The evaluation lines of the rounds finished within the box (a resumed run's `run_seconds`
  count the seconds of each process it ran in)."""
  return [r for r in records if r["phase"] == "eval" and r["run_seconds"] <= _TIME_BOX.value]


def _spent(workdir: str) -> float:
  evals = _evals(_records(workdir))
  return evals[-1]["run_seconds"] if evals else 0.0


def largest_learnt(by_size: dict[str, float], target: float) -> int | None:
  """The largest size at which pi's accuracy reaches `target` (None: none does)."""
  sizes = [int(s) for s, accuracy in by_size.items() if accuracy >= target]
  return max(sizes) if sizes else None


def row(run: dict, name: str, on: bool, target: float) -> dict:
  records = _records(run["workdir"])
  evals = _evals(records)
  last = evals[-1] if evals else {}
  by_size = last.get("policy_accuracy_by_size") or {}
  return {"preset": name, "curriculum": on, "seed": run["seed"],
          "ceiling": None, "boxed": run["boxed"], "rounds": len(evals),
          "steps": sum(r["steps"] for r in records if r["phase"] == "distill"
                       and r["round"] < len(evals)),
          "seconds": last.get("run_seconds"), "accuracy": last.get("policy_accuracy"),
          "largest_learnt": largest_learnt(by_size, target), "accuracy_by_size": by_size,
          "sizes": [e.get("size") for e in evals]}


def _fmt(value, fmt: str = "{:.3f}") -> str:
  return "-" if value is None else fmt.format(value)


def table(rows: list[dict], target: float) -> str:
  out = []
  for r in rows:
    sizes = " ".join("-" if s is None else str(s) for s in r["sizes"])
    by_size = r["accuracy_by_size"]
    ends = (f"{min(by_size, key=int)}: {by_size[min(by_size, key=int)]:.2f}, "
            f"{max(by_size, key=int)}: {by_size[max(by_size, key=int)]:.2f}") if by_size else "-"
    out.append([r["preset"], "on" if r["curriculum"] else "off", r["seed"],
                f"{r['rounds']}{' (boxed)' if r['boxed'] else ''}", r["steps"],
                _fmt(r["seconds"], "{:.0f}"), _fmt(r["accuracy"]),
                _fmt(r["largest_learnt"], "{}"), ends, sizes or "-"])
  return common.markdown(["preset", "curriculum", "seed", "rounds finished", "steps",
                          "run s at its last evaluation", "accuracy (full size)",
                          f"largest size >= {target:g}", "accuracy at the smallest and full size",
                          "size by round"], out)


def plot(rows: list[dict], target: float):
  def draw(ax, preset):
    ax.axhline(target, color="grey", linewidth=0.8)
    for r in (r for r in rows if r["preset"] == preset and r["accuracy_by_size"]):
      sizes = sorted(r["accuracy_by_size"], key=int)
      ax.plot([int(s) for s in sizes], [r["accuracy_by_size"][s] for s in sizes],
              "-o" if r["curriculum"] else "--s", markersize=3,
              label=f"curriculum {'on' if r['curriculum'] else 'off'}, seed {r['seed']}, "
                    f"{r['rounds']} rounds")
  return common.accuracy_figure(rows, draw, "instance size", "pi's accuracy on D* at that size")


def main(argv):
  del argv
  runs, rows = [], []
  for preset in common.presets(PAPER):
    for seed in common.seeds():
      for on in (True, False):
        variant = [f"--config.curriculum.on={str(on).lower()}", "--config.baselines=false"]
        name = common.label(preset) + ("" if _SIZE.value is None else f"_n{_SIZE.value}")
        run = run_boxed(f"{name}_{'on' if on else 'off'}", preset, seed, variant)
        runs.append(run)
        rows.append(row(run, name, on, _TARGET.value))
  title = (f"Accuracy against instance size in {_TIME_BOX.value} s a run, the curriculum on and "
           f"off, seeds {','.join(map(str, common.seeds()))}")
  common.write_results(title, table(rows, _TARGET.value), runs, figure=plot(rows, _TARGET.value),
                       per_run=rows)


if __name__ == "__main__":
  common.main(main)
