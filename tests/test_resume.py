"""A run interrupted anywhere resumes to the summary of the same run uninterrupted: one test, a
case per way of being interrupted (a round's checkpoint lost, a checkpoint or the prior damaged,
kill -9 inside a write, a baseline lost), each on a copy of a finished run (tests/helpers.py).
A fresh network per round (--config.train.warm_start=false), resumed: tests/test_end_to_end.py's
cold-round test."""
import json
import shutil

import pytest

import helpers
from amplify.loop import run as loop, setup


def _last_round_lost(config, workdir, out):
  """As if killed during the last round, after its eval line, before its checkpoint: that round
  alone is redone (its lines written once), the prior and the baselines are kept. The run's
  wall time goes on from the kept rounds' (made a day here, so that it cannot pass unnoticed)."""
  shutil.rmtree(workdir / "checkpoints" / f"round_{config.rounds - 1}")
  day, kept = 86400.0, config.rounds - 2
  records = [{**r, "run_seconds": day} if r["phase"] == "eval" and r["round"] == kept else r
             for r in helpers.lines(workdir)]
  (workdir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
  yield
  records = helpers.lines(workdir)
  assert [r["round"] for r in records if r["phase"] == "eval"] == list(range(config.rounds))
  assert day < helpers.evals(workdir)[-1]["run_seconds"]
  assert day < json.loads((workdir / "summary.json").read_text())["wall_seconds"]
  assert sum(r["phase"] == "baseline" for r in records) == 2 * config.baselines  # kept
  assert sum(r["phase"] == "prior" for r in records) == (config.task.name == "lexicon")


def _damaged_checkpoints(config, workdir, out):
  """The newest round's checkpoint truncated, overwritten, emptied (one after another): each is
  moved aside with a warning and that round recomputed; then the prior's, which is fitted again
  to the same z*."""
  newest = workdir / "checkpoints" / f"round_{config.rounds - 1}"
  for damage in ("truncate", "overwrite", "empty"):
    for path in sorted(newest.rglob("*")):
      if path.is_file():
        if damage == "truncate":
          path.write_bytes(path.read_bytes()[:len(path.read_bytes()) // 2])
        elif damage == "overwrite":
          path.write_bytes(bytes(range(256)) * (len(path.read_bytes()) // 256 + 1))
        else:
          path.unlink()
    yield
    text = out()
    assert f"warning: checkpoint {newest} is damaged" in text
    assert f"resuming after round {config.rounds - 2}" in text
  damaged = sorted(p.name for p in newest.parent.iterdir() if ".damaged" in p.name)
  assert damaged == [f"{newest.name}.damaged-{i}" for i in range(3)]  # kept, never read again
  prior = workdir / "checkpoints" / "prior"
  for path in sorted(prior.rglob("*")):
    if path.is_file():
      path.write_bytes(b"\x00" * len(path.read_bytes()))
  yield
  text = out()
  assert f"warning: checkpoint {prior} is damaged" in text and "fitting z* again" in text
  assert "prior: z* accuracy" in text


def _newest_line_cut_short(config, workdir, out):
  """The newest round's eval line cut short after its checkpoint was written (a power cut, a
  line lost): the line is dropped as the warning says, the checkpoint that has no line is moved
  aside, and that round is run again (it was refused, the line already gone from the file)."""
  text = (workdir / "metrics.jsonl").read_text()
  (workdir / "metrics.jsonl").write_text(text[:len(text) - len(text.splitlines()[-1]) // 2 - 1])
  yield
  newest = workdir / "checkpoints" / f"round_{config.rounds - 1}"
  printed = out()
  assert (f"warning: checkpoint {newest} is damaged (metrics.jsonl lacks its round's lines)"
          in printed)
  assert f"resuming after round {config.rounds - 2}" in printed
  assert (newest.parent / f"{newest.name}.damaged-0").is_dir()


def _killed_inside(where):
  def interrupt(config, workdir, out):
    """SIGKILL to the run and its referee half-way through a metrics line, or inside round 1's
    checkpoint save, its step written in part and not committed (the run from the start, in a
    process of its own)."""
    shutil.rmtree(workdir)
    helpers.kill_inside(workdir, where, ["--preset=lexicon_tiny", "--config.type2.size=0",
                                         "--baselines=false"])
    assert not (workdir / "summary.json").exists()  # killed before the end
    if where == "checkpoint":  # round 0's step committed, round 1's begun and not
      steps = sorted(p.name for p in (workdir / "checkpoints").iterdir())
      assert "round_0" in steps and "round_1" not in steps, steps
      assert any(name.startswith("round_1") for name in steps), steps
    yield
  return interrupt


def _ceiling_lost(config, workdir, out):
  """A finished workdir is returned as it is (nothing recomputed); killed while training the
  ceiling (its line and the summary missing), it trains that baseline again and redoes no
  round."""
  metrics = (workdir / "metrics.jsonl").read_text()
  summary = json.loads((workdir / "summary.json").read_text())
  assert loop.run(config, str(workdir)) == summary
  assert (workdir / "metrics.jsonl").read_text() == metrics
  kept = [r for r in map(json.loads, metrics.splitlines()) if r.get("baseline") != "ceiling"]
  (workdir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept))
  yield
  records = helpers.lines(workdir)
  assert sum(r["phase"] == "eval" for r in records) == config.rounds  # no round redone
  assert [r["baseline"] for r in records if r["phase"] == "baseline"] == ["prosaic", "ceiling"]


CASES = {  # name: (the finished run, how it is interrupted)
    "lexicon, last round lost": (helpers.LEXICON, _last_round_lost),
    "permutation, last round lost": (helpers.PERMUTATION, _last_round_lost),
    # the last round's size comes from the round before's line (amplify.loop.curriculum)
    "curriculum, last round lost": (helpers.CURRICULUM, _last_round_lost),
    # the entities pi trained on (`seen`) are restored: the last round alone names fewer of them
    # than all rounds, so a forgotten `seen` would change the unseen fraction and accuracy
    "sparse lexicon, last round lost": (helpers.SPARSE, _last_round_lost),
    "checkpoints damaged": (helpers.LEXICON_ROUNDS, _damaged_checkpoints),
    "the newest line cut short": (helpers.LEXICON_ROUNDS, _newest_line_cut_short),
    "killed inside a metrics write": (helpers.LEXICON_ROUNDS, _killed_inside("metrics")),
    "killed inside a checkpoint save": (helpers.LEXICON_ROUNDS, _killed_inside("checkpoint")),
    "ceiling lost": (helpers.LEXICON, _ceiling_lost),
}
# The eval line's fields a resumed round must reproduce (the others are times).
SAME = ["label_accuracy", "idk_fraction", "train_agreement", "heldout_agreement",
        "policy_accuracy", "policy_accuracy_by_difficulty", "asks", "lookups",
        "competent_difficulties", "unseen_entity_fraction", "policy_accuracy_unseen", "size"]


@pytest.mark.parametrize("case", CASES)
def test_an_interrupted_run_resumes_to_the_uninterrupted_summary(case, finished_run, tmp_path,
                                                                 capsys):
  which, interrupt = CASES[case]
  config, original, whole = finished_run(which)
  workdir = helpers.copy_run(original, tmp_path / "run")
  out = lambda: capsys.readouterr().out
  steps = interrupt(config, workdir, out)
  for _ in steps:  # each interruption, then the same run again
    if (workdir / "summary.json").exists():
      (workdir / "summary.json").unlink()  # else the finished run is returned as it is
    out()
    resumed = loop.run(config, str(workdir))
    assert helpers.same_summary(resumed, whole)
    for again, first in zip(helpers.evals(workdir), helpers.evals(original), strict=True):
      assert {k: again.get(k) for k in SAME} == {k: first.get(k) for k in SAME}


def test_what_metrics_jsonl_recorded_bounds_the_round_resumed_from_and_the_prior_kept(tmp_path):
  lines = [{"round": None, "phase": "prior"}] + [{"round": r, "phase": phase} for r in range(3)
                                                  for phase in ("label", "distill", "eval")]
  write = lambda records, cut="": (tmp_path / "metrics.jsonl").write_text(
      "".join(json.dumps(r) + "\n" for r in records) + cut)
  write(lines)
  assert setup._recorded(str(tmp_path), 2) == (2, True)
  assert setup._recorded(str(tmp_path), 1) == (1, True)
  write(lines[:-1], '{"round": 2, "pha')  # round 2's eval line cut short
  assert setup._recorded(str(tmp_path), 2) == (1, True)
  write([], '{"round": null, "pha')  # the prior's line cut short: z* is fitted again
  assert setup._recorded(str(tmp_path), -1) == (-1, False)
  (tmp_path / "metrics.jsonl").unlink()  # no lines at all: the checkpoint's round (refused later)
  assert setup._recorded(str(tmp_path), 2) == (2, False)


def test_the_kept_rounds_time_is_the_last_kept_lines_or_the_rounds_sum():
  """Counted once: round done's run_seconds (which holds the rounds before it), or, in lines
  from before that field, the rounds' own seconds; a line past `done` is not kept time."""
  old = [{"phase": "eval", "round": r, "seconds": 10.0} for r in range(3)]
  new = [{**line, "run_seconds": 100.0 * (line["round"] + 1)} for line in old]
  distill = {"phase": "distill", "round": 0, "seconds": 5.0}
  assert setup.kept_seconds([], -1) == 0
  assert setup.kept_seconds([distill, *old], 1) == 20.0
  assert setup.kept_seconds([distill, *new], 1) == 200.0
  assert setup.kept_seconds([*old[:2], new[2]], 2) == 300.0  # resumed once already
