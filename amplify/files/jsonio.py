"""Workdir files: JSON written atomically, JSON and JSON lines read with clear errors. No JAX
here: `amplify.views.report` reads workdirs with it and stays fast."""
from __future__ import annotations

import json
import os


class WorkdirError(ValueError):
  """A workdir that the same command cannot go on with; the message names the way out (so a
  failed run does not add "the same command resumes it")."""


def write_json(path: str, obj) -> None:
  """Writes `obj` as JSON to `path` atomically: a temporary file beside it, fsynced, renamed over
  it. A kill at any point leaves the old file or the new one, never a part of either."""
  tmp = f"{path}.tmp"
  with open(tmp, "w") as f:
    json.dump(obj, f, indent=2)
    f.flush()
    os.fsync(f.fileno())
  os.replace(tmp, path)


def read_json(path: str, what: str):
  """The JSON object in `path`; a damaged file (not JSON, or JSON but not an object) is a
  ValueError naming it and the way out."""
  value = _load(path, what)
  if not isinstance(value, dict):
    raise _damaged(path, what)
  return value


def _load(path: str, what: str):
  """The JSON value in `path`; not JSON is `_damaged`."""
  try:
    with open(path) as f:
      return json.load(f)
  except (json.JSONDecodeError, UnicodeDecodeError):
    raise _damaged(path, what) from None


def _damaged(path: str, what: str) -> WorkdirError:
  return WorkdirError(f"{path} is damaged ({what}, not a JSON object): move it away, or use a "
                      "new --workdir.")


def read_jsonl(path: str, warn: bool = True) -> list[dict]:
  """The records of metrics.jsonl, each a JSON object with its "round" and "phase". A last line
  cut short (what a kill in mid-write leaves) is dropped (with a warning, if `warn`); a damaged
  line before the last, or a line of JSON that is not such a record, is a WorkdirError naming
  it."""
  with open(path, errors="replace") as f:
    lines = [(i, line) for i, line in enumerate(f, 1) if line.strip()]
  records = []
  for i, line in lines:
    try:
      record = json.loads(line)
    except json.JSONDecodeError:
      if i != lines[-1][0]:
        raise WorkdirError(f"{path} line {i} is damaged (not JSON): the run's record cannot be "
                           "read back; use a new --workdir.") from None
      if warn:
        print(f"warning: {path}: dropped its last line, cut short (a run killed while writing it); "
              "a resumed run recomputes what it recorded", flush=True)
      continue
    if not (isinstance(record, dict) and "round" in record and "phase" in record):
      raise WorkdirError(f"{path} line {i} is damaged (not a record with a round and a phase): "
                         "the run's record cannot be read back; use a new --workdir.")
    records.append(record)
  return records


# What a run writes in its workdir: these files, and these folders
FILES = ("config.json", "metrics.jsonl", "summary.json")
FOLDERS = ("checkpoints", "transcripts", "tensorboard")
# What the run (`rounds` to know it has finished) and the report read in every summary
SUMMARY_KEYS = ("rounds", "final_policy_accuracy", "prosaic_accuracy", "ceiling_accuracy",
                "gap_recovered", "seed", "wall_seconds")


def check_workdir_layout(workdir: str) -> None:
  """A ValueError where a file the run writes is a folder, or a folder a file: the same command
  would fail the same way, so the way out is to move it (for the run and the report alike)."""
  for name in FILES + FOLDERS:
    path, folder = os.path.join(workdir, name), name in FOLDERS
    if os.path.exists(path) and os.path.isdir(path) != folder:
      kinds = ("file", "folder") if folder else ("folder", "file")
      raise WorkdirError(f"workdir {workdir}: {name} is a {kinds[0]}, not a {kinds[1]}: move it "
                         "away or use a new --workdir.")


def read_summary(workdir: str) -> dict | None:
  """The summary.json of a finished run, None where there is none. A ValueError, the same for the
  run and the report, where the summary is damaged or lacks SUMMARY_KEYS (a run writes it again
  from its checkpoints and metrics.jsonl), or metrics.jsonl is gone (its lines are lost)."""
  path = os.path.join(workdir, "summary.json")
  if not os.path.exists(path):
    return None
  summary = _load(path, "the run's summary")  # JSON but not an object: lacks every key
  missing = ([k for k in SUMMARY_KEYS if k not in summary] if isinstance(summary, dict)
             else list(SUMMARY_KEYS))
  if missing:
    raise WorkdirError(f"{path} lacks {missing} (damaged, or not written by a run): move it away "
                       "and run the same command, which writes it again from the checkpoints and "
                       "metrics.jsonl.")
  if not os.path.exists(os.path.join(workdir, "metrics.jsonl")):
    raise WorkdirError(f"workdir {workdir}: summary.json says its run finished, but metrics.jsonl "
                       "is gone: the rounds' lines are lost; use a new --workdir to run it again.")
  return summary
