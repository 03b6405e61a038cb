"""Workdir files: JSON written atomically, JSON and JSON lines read with clear errors. No JAX
here: `amplify.views.report` reads workdirs with it and stays fast."""
from __future__ import annotations

import json
import os


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
  """The JSON object in `path`; a damaged file is a ValueError naming it and the way out."""
  try:
    with open(path) as f:
      return json.load(f)
  except (json.JSONDecodeError, UnicodeDecodeError):
    raise ValueError(f"{path} is damaged ({what}, not JSON): move it away, or use a new "
                     "--workdir.") from None


def read_jsonl(path: str) -> list[dict]:
  """The records of a JSON-lines file. A last line cut short (what a kill in mid-write leaves)
  is dropped with a warning; a damaged line before the last is a ValueError naming it."""
  with open(path, errors="replace") as f:
    lines = [(i, line) for i, line in enumerate(f, 1) if line.strip()]
  records = []
  for i, line in lines:
    try:
      records.append(json.loads(line))
    except json.JSONDecodeError:
      if i != lines[-1][0]:
        raise ValueError(f"{path} line {i} is damaged (not JSON): move the file away, or use a "
                         "new --workdir.") from None
      print(f"warning: {path}: dropped its last line, cut short (a run killed while writing it); "
            "a resumed run recomputes what it recorded", flush=True)
  return records
