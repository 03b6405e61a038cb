"""`amplify` that SIGKILLs its own process group in the middle of a write: what a power cut does
there. Used by experiments/kill9.py and tests/helpers.py; not a study of its own.

  python experiments/killed_inside.py WHERE [amplify flags]   # WHERE: metrics, checkpoint, summary

metrics: half-way through the third metrics line; checkpoint: inside round 1's checkpoint save,
its files part written and not committed; summary: the summary's temporary file written, not yet
renamed. The run then goes on as `amplify` does until the kill lands.
"""
import json
import os
import signal
import sys

import orbax.checkpoint as ocp

from amplify import main
from amplify.files import checkpoint
from amplify.files.metrics import MetricWriter


def die() -> None:
  os.killpg(os.getpgrp(), signal.SIGKILL)


def in_metrics() -> None:
  """The third metrics line, half written."""
  write, count = MetricWriter.write, [0]

  def half(self, record):
    count[0] += 1
    if count[0] == 3:
      with open(self._path, "a") as f:
        line = json.dumps(record) + "\n"
        f.write(line[:len(line) // 2])
        f.flush()
        os.fsync(f.fileno())
      die()
    write(self, record)

  MetricWriter.write = half


def in_checkpoint() -> None:
  """Inside round 1's checkpoint save: as Orbax writes its `layout` item, the step not yet
  committed (whatever the machine's speed)."""
  save, armed = checkpoint.save, [False]

  def dying_save(workdir, r, *args, **kwargs):
    armed[0] = r == 1
    save(workdir, r, *args, **kwargs)

  def dying(write):
    def written(*args, **kwargs):
      if armed[0]:
        die()
      return write(*args, **kwargs)
    return written

  for name in ("save", "async_save"):  # the one Orbax's version calls
    if hasattr(ocp.JsonCheckpointHandler, name):
      setattr(ocp.JsonCheckpointHandler, name, dying(getattr(ocp.JsonCheckpointHandler, name)))
  checkpoint.save = dying_save


def in_summary() -> None:
  """The summary's temporary file written, not yet renamed."""
  replace = os.replace

  def dying_replace(src, dst):
    if dst.endswith("summary.json"):
      die()
    replace(src, dst)

  os.replace = dying_replace


if __name__ == "__main__":
  {"metrics": in_metrics, "checkpoint": in_checkpoint, "summary": in_summary}[sys.argv.pop(1)]()
  sys.argv[0] = "amplify.main"
  main.cli()
