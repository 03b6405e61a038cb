"""workdir/metrics.jsonl, one JSON object per line (a round's phase, the prior, a baseline), and the
same lines as TensorBoard scalars in workdir/tensorboard/ (`amplify.files.events`)."""
from __future__ import annotations

import json
import os

from amplify import processes
from amplify.files import events
from amplify.files.jsonio import read_jsonl


class MetricWriter:
  """Appends one JSON object per line to workdir/metrics.jsonl, and writes each line as
  TensorBoard scalars to workdir/tensorboard/ (`amplify.files.events`).

  `keep` selects the lines of an earlier run in the same workdir to keep (resume); the rest are
  dropped, since they will be recomputed. A last line cut short (what a kill in mid-write leaves)
  is dropped with a warning; a damaged line before the last is an error naming it. The event
  files are rebuilt from the kept lines, so TensorBoard shows each point once. In a run of several
  processes, process 0 alone reads and writes the files; every process has the same `kept` and
  `records`.
  """

  def __init__(self, path: str, keep=lambda record: False):
    self._path = path
    self._events = None
    self.kept = processes.shared(self._start, keep)
    self.records = list(self.kept)  # every line of this run, kept or written

  def _start(self, keep) -> list[dict]:
    path = self._path
    old = read_jsonl(path) if os.path.exists(path) else []
    kept = [r for r in old if keep(r)]
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
      f.writelines(json.dumps(r) + "\n" for r in kept)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
    self._events = events.EventWriter(os.path.join(os.path.dirname(path), events.DIRECTORY),
                                      kept)
    return kept

  def write(self, record: dict) -> None:
    self.records.append(record)
    if self._events is None:  # not process 0
      return
    with open(self._path, "a") as f:
      f.write(json.dumps(record) + "\n")
      f.flush()
      os.fsync(f.fileno())
    self._events.write(record)
