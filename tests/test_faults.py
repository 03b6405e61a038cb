"""Damaged workdir files give a clear error or a warned fallback, JSON writes are atomic, and
gap_recovered is null where there is no gap (issue 12, the parts built so far)."""
import json
import os

import pytest

from amplify import config as config_lib
from amplify import rounds


def _metrics(path, lines):
  with open(path, "w") as f:
    f.write("".join(lines))


def test_a_last_metrics_line_cut_short_is_dropped_with_a_warning(tmp_path, capsys):
  path = tmp_path / "metrics.jsonl"
  good = [json.dumps({"round": r, "phase": "eval"}) + "\n" for r in range(2)]
  _metrics(path, good + ['{"round": 2, "pha'])
  writer = rounds.MetricWriter(str(path), keep=lambda rec: True)
  assert writer.kept == [{"round": 0, "phase": "eval"}, {"round": 1, "phase": "eval"}]
  assert "dropped its last line" in capsys.readouterr().out
  assert path.read_text() == "".join(good)  # the cut line is gone; nothing else is
  writer.write({"round": 2, "phase": "eval"})
  assert [json.loads(line)["round"] for line in path.read_text().splitlines()] == [0, 1, 2]


def test_a_damaged_metrics_line_before_the_last_is_an_error_naming_it(tmp_path):
  path = tmp_path / "metrics.jsonl"
  _metrics(path, ['{"round": 0}\n', "garbage\n", '{"round": 1}\n'])
  before = path.read_text()
  with pytest.raises(ValueError, match=r"metrics.jsonl line 2 is damaged"):
    rounds.MetricWriter(str(path), keep=lambda rec: True)
  assert path.read_text() == before  # left as it was


@pytest.mark.parametrize("content", ["{\"task\": \"lex", "\x00\x01garbage", ""])
def test_a_damaged_config_is_an_error_naming_the_file(tmp_path, content):
  (tmp_path / "config.json").write_text(content)
  config = config_lib.get_config("lexicon_tiny")
  with pytest.raises(ValueError, match=r"config.json is damaged \(the run's config, not JSON\)"):
    rounds.check_workdir(config, str(tmp_path))
  assert (tmp_path / "config.json").read_text() == content


def test_json_is_written_whole_or_not_at_all(tmp_path, monkeypatch):
  path = str(tmp_path / "summary.json")
  rounds.write_json(path, {"a": 1})
  assert json.load(open(path)) == {"a": 1} and os.listdir(tmp_path) == ["summary.json"]

  def fail(*args):  # a crash between writing the new file and renaming it over the old one
    raise OSError("killed")

  monkeypatch.setattr(os, "replace", fail)
  with pytest.raises(OSError):
    rounds.write_json(path, {"a": 2})
  assert json.load(open(path)) == {"a": 1}  # the old file, whole


def test_gap_recovered_is_null_with_a_reason_when_the_ceiling_is_not_above_prosaic_ml():
  assert rounds.gap_recovered(0.9, 0.5, 0.7) == {"gap_recovered": pytest.approx(2.0),
                                                  "gap_recovered_reason": None}
  assert rounds.gap_recovered(0.6, 0.5, 0.7)["gap_recovered"] == pytest.approx(0.5)
  for ceiling in (0.5, 0.4):
    out = rounds.gap_recovered(0.9, 0.5, ceiling)
    assert out["gap_recovered"] is None and "does not exceed prosaic ML" in \
        out["gap_recovered_reason"]
  assert rounds.gap_recovered(0.9, None, None)["gap_recovered"] is None


def test_a_workdir_that_cannot_be_written_is_refused_before_any_work(tmp_path):
  blocker = tmp_path / "a_file"
  blocker.write_text("not a directory")
  config = config_lib.get_config("lexicon_tiny")
  with pytest.raises(ValueError, match=r"cannot be written \(Not a directory\): choose a writable"):
    rounds.check_workdir(config, str(blocker / "workdir"))
  if os.geteuid() != 0:  # root writes through permission bits
    readonly = tmp_path / "readonly"
    readonly.mkdir()
    readonly.chmod(0o500)
    with pytest.raises(ValueError, match="cannot be written"):
      rounds.check_workdir(config, str(readonly))
