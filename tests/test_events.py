"""Metrics lines reach TensorBoard event files: tags, steps and values read back from the files
(without TensorFlow), a resumed run leaves each point once, lines with no number write nothing."""
import glob
import os
import struct

from tensorboardX.proto.event_pb2 import Event
from tensorboardX.record_writer import masked_crc32c

from amplify.files import events
from amplify.files.metrics import MetricWriter


def _read_events(logdir) -> list[Event]:
  """Every event of the one event file in `logdir`, its TFRecord framing checked: uint64 length,
  uint32 masked CRC of it, the data, uint32 masked CRC of the data."""
  (path,) = glob.glob(str(logdir / events.EVENT_FILES))
  with open(path, "rb") as f:
    data = f.read()
  read, at = [], 0
  while at < len(data):
    header = data[at:at + 8]
    (length,), (header_crc,) = struct.unpack("Q", header), struct.unpack("I", data[at + 8:at + 12])
    payload = data[at + 12:at + 12 + length]
    (payload_crc,) = struct.unpack("I", data[at + 12 + length:at + 16 + length])
    assert (header_crc, payload_crc) == (masked_crc32c(header), masked_crc32c(payload))
    read.append(Event.FromString(payload))
    at += 16 + length
  return read


def _points(logdir) -> list[tuple[str, int, float]]:
  """(tag, step, value) of every scalar in `logdir`'s event file, in the order written."""
  return [(value.tag, event.step, value.simple_value) for event in _read_events(logdir)
          for value in event.summary.value]


PRIOR = {"round": None, "phase": "prior", "loss": 0.5, "steps": 100}
LABEL = {"round": 0, "phase": "label", "oracle_calls": 2048, "asks": 1047}
EVAL = {"round": 1, "phase": "eval", "policy_accuracy": 0.25,
        "policy_accuracy_by_difficulty": {"1": 1.0, "3": 0.0},
        "kept_previous_policy": True, "policy_accuracy_unseen": None,
        "competent_difficulties": [1, 2]}
BASELINE = {"round": None, "phase": "baseline", "baseline": "prosaic", "accuracy": 0.125}


def test_each_number_of_a_line_is_a_scalar_tagged_phase_key_at_its_round(tmp_path):
  writer = MetricWriter(str(tmp_path / "metrics.jsonl"))
  for record in (PRIOR, LABEL, EVAL, BASELINE):
    writer.write(record)
  assert _points(tmp_path / "tensorboard") == [  # each line on disk when `write` returns
      ("prior/loss", 0, 0.5), ("prior/steps", 0, 100.0),
      ("label/oracle_calls", 0, 2048.0), ("label/asks", 0, 1047.0),
      ("eval/policy_accuracy", 1, 0.25),
      ("eval/policy_accuracy_by_difficulty/1", 1, 1.0),
      ("eval/policy_accuracy_by_difficulty/3", 1, 0.0),
      ("eval/kept_previous_policy", 1, 1.0),
      ("baseline/prosaic/accuracy", 0, 0.125)]
  assert _read_events(tmp_path / "tensorboard")[0].file_version == "brain.Event:2"


def test_a_resumed_run_leaves_the_kept_and_the_new_points_once(tmp_path):
  path = str(tmp_path / "metrics.jsonl")
  first = MetricWriter(path)
  for r in range(3):
    first.write({"round": r, "phase": "eval", "policy_accuracy": r / 10})
  first.write(BASELINE)
  (old,) = glob.glob(str(tmp_path / "tensorboard" / events.EVENT_FILES))
  os.rename(old, tmp_path / "tensorboard" / "events.out.tfevents.1000000000.elsewhere")  # a run
  # on another host (the same second and host would give the new file the old one's name)
  resumed = MetricWriter(path, keep=lambda rec: rec["phase"] == "baseline"
                                or rec["round"] <= 0)
  resumed.write({"round": 1, "phase": "eval", "policy_accuracy": 0.5})
  assert _points(tmp_path / "tensorboard") == [  # one file: the stale one is gone
      ("eval/policy_accuracy", 0, 0.0), ("baseline/prosaic/accuracy", 0, 0.125),
      ("eval/policy_accuracy", 1, 0.5)]


def test_a_line_of_none_lists_and_strings_writes_no_point(tmp_path):
  writer = MetricWriter(str(tmp_path / "metrics.jsonl"))
  writer.write({"round": 2, "phase": "eval", "note": "text", "rows": [1, 2], "unseen": None,
                "by_difficulty": {"1": None}})
  assert _points(tmp_path / "tensorboard") == []
