"""The workdir as the unit of an experiment: refused when it cannot be written or holds another
config's run; a finished run's summary read back instead of running again."""
from __future__ import annotations

import dataclasses
import os

from amplify.files import checkpoint
from amplify.files.jsonio import read_json


def check_workdir(config, workdir: str) -> None:
  """Refuses a workdir that cannot be written, or that holds a run of another config (rather
  than overwrite it). Creates the workdir."""
  try:  # a file written and removed: what the run will do, tried before any work
    os.makedirs(workdir, exist_ok=True)
    probe = os.path.join(workdir, ".write_check")
    with open(probe, "w") as f:
      f.write("ok")
    os.remove(probe)
  except OSError as e:
    raise ValueError(f"workdir {workdir!r} cannot be written ({e.strerror}): choose a writable "
                     "--workdir.") from None
  checkpoint.check(workdir)
  path = os.path.join(workdir, "config.json")
  if os.path.exists(path):
    old = read_json(path, "the run's config")
    new = dataclasses.asdict(config)
    if old != new:
      changed = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
      raise ValueError(f"workdir {workdir!r} holds a run with a different config (differs in "
                       f"{changed}); use a new --workdir, or the same flags to resume.")


def finished_summary(workdir: str) -> dict | None:
  """The summary of a finished run in `workdir` (its last round checkpointed and its summary
  written), or None."""
  path = os.path.join(workdir, "summary.json")
  if not os.path.exists(path) or checkpoint.latest_round(workdir) is None:
    return None
  summary = read_json(path, "the run's summary")
  return summary if checkpoint.latest_round(workdir) == summary["rounds"] - 1 else None
