"""The peak memory of a command and every process it starts (a run's referee, its fork server,
the other processes of a run), summed: what the machine must hold.

  python experiments/peak_memory.py --out=RESULTS/peak.json -- python -m amplify.main ...

Every `--every` seconds it adds up the proportional set size (PSS: a page shared by k processes
counts 1/k in each, so forked processes are not counted twice; /proc/PID/smaps_rollup) of the
command's process tree, and keeps the largest sum and each process's largest PSS. The command's
output passes through; its exit status is this script's. Linux only.
"""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time

from absl import app, flags

_OUT = flags.DEFINE_string("out", None, "Where the peaks are written (JSON).", required=True)
_EVERY = flags.DEFINE_float("every", 0.5, "Seconds between samples.", lower_bound=0.01)

def _children(pid: int) -> list[int]:
  try:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
      return [int(p) for p in f.read().split()]
  except OSError:
    return []


def _tree(pid: int) -> list[int]:
  pids, i = [pid], 0
  while i < len(pids):
    pids += _children(pids[i])
    i += 1
  return pids


def _pss_kb(pid: int) -> int:
  try:
    with open(f"/proc/{pid}/smaps_rollup") as f:
      return next(int(line.split()[1]) for line in f if line.startswith("Pss:"))
  except (OSError, StopIteration):
    return 0  # the process has ended


def _name(pid: int) -> str:
  try:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
      return f.read().replace(b"\0", b" ").decode(errors="replace").strip()[:120]
  except OSError:
    return "?"


def main(argv) -> int:
  command = argv[1:]  # what follows --
  if not command:
    raise app.UsageError("give the command to run after --")
  start = time.time()
  try:
    process = subprocess.Popen(command)
  except OSError as e:
    sys.exit(f"error: {shlex.join(command)}: {e.strerror}: give a command this shell can run "
             "after --")
  peak, peak_at, each = 0, 0.0, {}
  while process.poll() is None:
    sizes = {pid: _pss_kb(pid) for pid in _tree(process.pid)}
    if sum(sizes.values()) > peak:
      peak, peak_at = sum(sizes.values()), time.time() - start
    for pid, kb in sizes.items():
      if kb > each.get(pid, (0, ""))[0]:
        each[pid] = (kb, each.get(pid, (0, _name(pid)))[1])
    time.sleep(_EVERY.value)
  record = {"command": command, "exit_status": process.returncode,
            "seconds": round(time.time() - start, 1), "peak_pss_gib": round(peak / 2**20, 3),
            "peak_at_seconds": round(peak_at, 1),
            "processes": sorted(({"command": name, "peak_pss_gib": round(kb / 2**20, 3)}
                                 for kb, name in each.values()),
                                key=lambda p: -p["peak_pss_gib"])[:8]}
  os.makedirs(os.path.dirname(os.path.abspath(_OUT.value)), exist_ok=True)
  with open(_OUT.value, "w") as f:
    json.dump(record, f, indent=1)
  print(f"peak memory (PSS, the process tree): {record['peak_pss_gib']} GiB at "
        f"{record['peak_at_seconds']} s of {record['seconds']} s", file=sys.stderr)
  return process.returncode


if __name__ == "__main__":
  app.run(main)
