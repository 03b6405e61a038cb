"""kill -9 at random points of a run, then the same command again: does it resume to the summary
an uninterrupted run gives? (issue 12)

  python experiments/kill9.py --root=/tmp/kill9 --trials=20

One uninterrupted run of the command below gives the reference summary and its duration T. Each
trial starts the same command in a fresh workdir, sends SIGKILL to its process group (the run and
its referee process: what a power cut does) at a time drawn uniformly from [0, T) (seeded), runs
the command again to its end, and compares the summary with the reference (every field but wall
time and peak memory). Besides the random points, `--targeted` kills a run inside a metrics write
(half a line written), 10 ms into a checkpoint save, and between the summary's temporary file
and its rename. Prints one line per trial: where the kill landed (the
last line the run had printed) and whether the resumed summary is the same.
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

from absl import app, flags

_ROOT = flags.DEFINE_string("root", None, "Directory of the trials' workdirs.", required=True)
_TRIALS = flags.DEFINE_integer("trials", 20, "Kills at random times.")
_TARGETED = flags.DEFINE_bool("targeted", True, "Also kill inside each kind of write.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the kill times.")

# A small run with every phase: prior, three rounds, every baseline. About half a minute on CPU.
COMMAND = [sys.executable, "-m", "amplify.main", "--preset=lexicon_tiny", "--rounds=3",
           "--total_steps=150", "--label_size=512", "--eval_size=256", "--baseline_size=512",
           "--steps_per_call=25"]
VOLATILE = ("wall_seconds", "peak_memory_mb")

# Run inside the process to be killed: the write named by argv[1] kills its own process group
# in the middle of writing, then the command's main runs as usual.
TARGETED = r"""
import os, signal, sys
where = sys.argv.pop(1)
def die():
  os.killpg(os.getpgrp(), signal.SIGKILL)
from amplify.files import checkpoint
from amplify.files import jsonio as files
from amplify.files.metrics import MetricWriter
if where == "metrics":  # the third line, half written
  write, count = MetricWriter.write, [0]
  def half(self, record):
    count[0] += 1
    if count[0] == 3:
      import json
      with open(self._path, "a") as f:
        line = json.dumps(record) + "\n"
        f.write(line[:len(line) // 2]); f.flush(); os.fsync(f.fileno())
      die()
    write(self, record)
  MetricWriter.write = half
elif where == "checkpoint":  # 10 ms into round 1's checkpoint save
  import threading
  save = checkpoint.save
  def dying_save(workdir, r, *args, **kwargs):
    if r == 1:
      threading.Timer(0.01, die).start()
    save(workdir, r, *args, **kwargs)
  checkpoint.save = dying_save
elif where == "summary":  # the summary's temporary file written, not yet renamed
  replace = os.replace
  def dying_replace(src, dst):
    if dst.endswith("summary.json"):
      die()
    replace(src, dst)
  files.os.replace = dying_replace
from amplify import main
sys.argv[0] = "amplify.main"
main.cli()
"""


def _summary(workdir: str) -> dict:
  with open(os.path.join(workdir, "summary.json")) as f:
    return {k: v for k, v in json.load(f).items() if k not in VOLATILE}


def _run(workdir: str) -> subprocess.CompletedProcess:
  return subprocess.run([*COMMAND, f"--workdir={workdir}"], capture_output=True, text=True)


def kill_at(workdir: str, seconds: float) -> str:
  """Starts the command, SIGKILLs its process group after `seconds`; returns the last line it
  printed (where the kill landed), or "finished" if it ended first."""
  out_path = f"{workdir}.out"
  with open(out_path, "w") as out:
    process = subprocess.Popen([*COMMAND, f"--workdir={workdir}"], stdout=out,
                               stderr=subprocess.STDOUT, start_new_session=True)
    try:
      process.wait(timeout=seconds)
      return "finished"
    except subprocess.TimeoutExpired:
      os.killpg(process.pid, signal.SIGKILL)
      process.wait()
  lines = [line for line in open(out_path).read().splitlines() if line.strip()]
  return lines[-1][:70] if lines else "(nothing printed yet)"


def kill_inside(workdir: str, where: str, flags=tuple(COMMAND[3:])) -> str:
  """Runs amplify.main with `flags` into `workdir`, the write `where` (metrics, checkpoint,
  summary) killing its own process group midway."""
  os.makedirs(workdir, exist_ok=True)
  process = subprocess.run([sys.executable, "-c", TARGETED, where, *flags, f"--workdir={workdir}"],
                           capture_output=True, text=True, start_new_session=True)
  assert process.returncode == -signal.SIGKILL, process.stderr[-2000:]
  return f"inside a {where} write"


def main(argv):
  del argv
  os.makedirs(_ROOT.value, exist_ok=True)
  reference_dir = os.path.join(_ROOT.value, "reference")
  t0 = time.time()
  result = _run(reference_dir)
  duration = time.time() - t0
  if result.returncode != 0:
    sys.exit(f"the reference run failed:\n{result.stderr[-3000:]}")
  reference = _summary(reference_dir)
  print(f"reference run: {duration:.1f}s, final {reference['final_policy_accuracy']:.4f}",
        flush=True)
  rng = random.Random(_SEED.value)
  trials = [("random", rng.uniform(0, duration)) for _ in range(_TRIALS.value)]
  if _TARGETED.value:
    trials += [("targeted", where) for where in ("metrics", "checkpoint", "summary")]
  same = 0
  for i, (kind, point) in enumerate(trials):
    workdir = os.path.join(_ROOT.value, f"trial_{i}")
    if kind == "random":
      landed = kill_at(workdir, point)
      what = f"at {point:5.1f}s"
    else:
      landed = kill_inside(workdir, point)
      what = "        "
    again = _run(workdir)
    ok = again.returncode == 0 and _summary(workdir) == reference
    same += ok
    print(f"trial {i:2d} {what} | {landed:70s} | resumed: "
          f"{'same summary' if ok else 'DIFFERENT: ' + again.stderr[-300:]}", flush=True)
  print(f"{same} of {len(trials)} kill -9 trials resumed to the uninterrupted summary")


if __name__ == "__main__":
  app.run(main)
