"""The run's metrics lines as TensorBoard scalars, in workdir/tensorboard/, written by tensorboardX
(no TensorFlow). metrics.jsonl stays the source of truth: the event files are a view of its
lines, rebuilt from the kept lines whenever a run starts, so a resumed run shows each point once.

A line's numeric fields become scalars tagged PHASE/KEY (`eval/policy_accuracy`), a dict of
numbers PHASE/KEY/SUBKEY (`eval/policy_accuracy_by_difficulty/3`), a bool 0 or 1; None, lists and
strings are skipped. The step is the line's round; a line without one (the prior, the baselines)
is at step 0, a baseline's tags under its name (`baseline/prosaic/accuracy`).

Watch a run with `tensorboard --logdir=WORKDIR/tensorboard` (`pip install tensorboard`).
"""
from __future__ import annotations

import glob
import os
import time

# tensorboardX imports torch when it is installed: paid once, when a run opens its writer
from tensorboardX.event_file_writer import EventsWriter
from tensorboardX.proto.event_pb2 import Event
from tensorboardX.proto.summary_pb2 import Summary

DIRECTORY = "tensorboard"  # in the workdir
EVENT_FILES = "events.out.tfevents.*"  # the names tensorboardX gives its files


def scalars(record: dict) -> tuple[int, dict[str, float]]:
  """(step, {tag: value}) of one metrics line; the tags are empty if it holds no number."""
  prefix = record["phase"]
  skip = {"round", "phase"}
  if prefix == "baseline":
    prefix, skip = f"baseline/{record['baseline']}", skip | {"baseline"}
  values = {}
  for key, value in record.items():
    if key not in skip:
      _add(values, f"{prefix}/{key}", value)
  return record.get("round") or 0, values


def _add(values: dict[str, float], tag: str, value) -> None:
  if isinstance(value, dict):
    for key, inner in value.items():
      _add(values, f"{tag}/{key}", inner)
  elif isinstance(value, (int, float)):  # bool is an int: 0 or 1
    values[tag] = float(value)


class EventWriter:
  """Removes the event files in `logdir` (an earlier run's, now stale), then writes `records`
  into a fresh one, then each line `write` is given. Written and flushed (fsync) in the calling
  thread, a line at a time: tensorboardX's `SummaryWriter` queues events to a thread and its
  `flush` does not wait for the queue, so a kill could lose more than the line in hand."""

  def __init__(self, logdir: str, records: list[dict]):
    os.makedirs(logdir, exist_ok=True)
    for path in glob.glob(os.path.join(logdir, EVENT_FILES)):
      os.remove(path)
    self._events = EventsWriter(os.path.join(logdir, "events"))
    for record in records:
      self._add(record)
    self._events.flush()

  def write(self, record: dict) -> None:
    self._add(record)
    self._events.flush()

  def _add(self, record: dict) -> None:
    step, values = scalars(record)
    if values:
      summary = Summary(value=[Summary.Value(tag=tag, simple_value=value)
                               for tag, value in values.items()])
      self._events.write_event(Event(wall_time=time.time(), step=step, summary=summary))
