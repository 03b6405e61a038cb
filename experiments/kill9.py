"""kill -9 at random points of a run, then the same command again: does it resume to the summary
an uninterrupted run gives? (issue 12)

  python experiments/kill9.py --seeds=0 --trials=20
Seeds: --seeds (the figures: 0 and 1), each the run's seed and the kill times'. Machine: the
project's 2-core CPU (results/kill9/README.md).

For each seed, one uninterrupted `amplify` run (a subprocess) gives the reference summary and its
wall time T. Each trial starts the same command in a fresh workdir, sends SIGKILL to its process
group (the run and its referee process: what a power cut does) at a time drawn uniformly from
[0, T), runs the command again to its end, and compares the summary with the reference (every field
but wall time and peak memory). With `--targeted` it also kills a run inside a metrics write (half a
line written), inside a checkpoint save (its step begun, not committed), and between the summary's
temporary file and its rename. The run: the preset (default lexicon_tiny) with 3 rounds of 150 steps
and small sets, which run flags override. Workdirs: ROOT/kill9/PRESET_{reference,trialI}_sSEED (a
finished trial is compared, not run again). Writes RESULTS/kill9/kill9.{json,md}: per trial where
the kill landed (the last line the run had printed) and whether the resumed summary is the same.
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys

from absl import flags

import common

_TRIALS = flags.DEFINE_integer("trials", 20, "Kills at random times, per seed.", lower_bound=0)
_TARGETED = flags.DEFINE_bool("targeted", True, "Also kill inside each kind of write.")

# A small run with every phase: prior, three rounds, every baseline. About half a minute on CPU.
DEFAULTS = ["--rounds=3", "--config.train.total_steps=150", "--config.label.size=512",
            "--config.eval_size=256", "--config.train.baseline_size=512",
            "--config.train.steps_per_call=25"]
VOLATILE = ("wall_seconds", "peak_memory_mb")
# `amplify` killing itself inside a write (metrics, checkpoint, summary)
KILLED_INSIDE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "killed_inside.py")


def summary(config, workdir: str) -> dict | None:
  """The finished run's summary in `workdir` less its VOLATILE fields; a run of another config
  there is refused in one line (common.finished)."""
  return _stable(common.finished(config, workdir))


def _stable(done: dict | None) -> dict | None:
  return None if done is None else {k: v for k, v in done.items() if k not in VOLATILE}


def amplify(argv: list[str], workdir: str) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, "-m", "amplify.main", *argv, f"--workdir={workdir}"],
                        capture_output=True, text=True)


def kill_at(workdir: str, seconds: float, argv: list[str]) -> str:
  """Starts `amplify ARGV` into `workdir`, SIGKILLs its process group after `seconds`; returns
  the last line it printed (where the kill landed), or "finished" if it ended first."""
  os.makedirs(os.path.dirname(workdir), exist_ok=True)
  out_path = f"{workdir}.out"
  with open(out_path, "w") as out:
    process = subprocess.Popen([sys.executable, "-m", "amplify.main", *argv,
                                f"--workdir={workdir}"], stdout=out, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
      process.wait(timeout=seconds)
      return "finished"
    except subprocess.TimeoutExpired:
      os.killpg(process.pid, signal.SIGKILL)
      process.wait()
  lines = [line for line in open(out_path).read().splitlines() if line.strip()]
  return lines[-1][:70] if lines else "(nothing printed yet)"


def kill_inside(workdir: str, where: str, argv: list[str]) -> str:
  """Runs `amplify ARGV` into `workdir`, the write `where` (metrics, checkpoint, summary) killing
  its own process group midway."""
  os.makedirs(workdir, exist_ok=True)
  process = subprocess.run([sys.executable, KILLED_INSIDE, where, *argv, f"--workdir={workdir}"],
                           capture_output=True, text=True, start_new_session=True)
  if process.returncode != -signal.SIGKILL:
    sys.exit(f"error: the {where} kill did not land:\n{process.stderr[-2000:]}")
  return f"inside a {where} write"


def trials(preset: str, seed: int) -> list[dict]:
  argv = common.argv_for(preset, seed, defaults=DEFAULTS)
  config = common.config_for(argv)  # a bad flag: one line, before any run
  reference_dir = common.workdir_for(f"{common.label(preset)}_reference", seed)
  if common.finished(config, reference_dir) is None:
    result = amplify(argv, reference_dir)
    if result.returncode:
      sys.exit(f"error: the reference run failed:\n{result.stderr[-3000:]}")
  whole = common.finished(config, reference_dir)
  reference = _stable(whole)
  duration = whole["wall_seconds"]
  print(f"{common.label(preset)}, seed {seed}: reference {duration:.1f}s, final "
        f"{reference['final_policy_accuracy']:.4f}", flush=True)
  rng = random.Random(seed)
  points = [("random", rng.uniform(0, duration)) for _ in range(_TRIALS.value)]
  if _TARGETED.value:
    points += [("targeted", where) for where in ("metrics", "checkpoint", "summary")]
  out = []
  for i, (kind, point) in enumerate(points):
    workdir = common.workdir_for(f"{common.label(preset)}_trial{i}", seed)
    if os.path.exists(os.path.join(workdir, "summary.json")) and summary(config, workdir):
      landed = "(finished earlier)"  # a killed one is checked by the run that resumes it
    elif os.path.exists(workdir) and os.listdir(workdir):
      landed = "(killed by an earlier invocation)"
    else:
      landed = (kill_at(workdir, point, argv) if kind == "random" else
                kill_inside(workdir, point, argv))
    again = amplify(argv, workdir)
    same = again.returncode == 0 and summary(config, workdir) == reference
    out.append({"preset": common.label(preset), "seed": seed, "trial": i, "kind": kind,
                "at_seconds": round(point, 1) if kind == "random" else None, "landed": landed,
                "same_summary": same, "error": None if same else again.stderr[-300:],
                "workdir": workdir, "command": " ".join(["amplify", *argv])})
    print(f"trial {i:2d} {kind} {point if kind != 'random' else f'{point:.1f}s'} | {landed} | "
          f"resumed: {'same summary' if same else 'DIFFERENT: ' + again.stderr[-300:]}",
          flush=True)
  return out


def main(argv):
  del argv
  rows = [t for preset in common.presets(["lexicon_tiny"]) for seed in common.seeds()
          for t in trials(preset, seed)]
  same = sum(r["same_summary"] for r in rows)
  table = common.markdown(
      ["preset", "seed", "trial", "kill", "where it landed", "resumed to the same summary"],
      [[r["preset"], r["seed"], r["trial"], f"{r['at_seconds']} s" if r["at_seconds"] is not None
        else r["kind"], r["landed"].replace("|", "/"), "yes" if r["same_summary"] else "**no**"]
       for r in rows])
  common.write_results(f"kill -9 and resume: {same} of {len(rows)} trials resumed to the "
                       "uninterrupted summary", table, rows)


if __name__ == "__main__":
  common.main(main)
