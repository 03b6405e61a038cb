"""The studies' shared shape (experiments/common.py): a finished run's kept record."""
import functools
import importlib.util
import json
import os
import shutil
import subprocess
import sys

import helpers
import pytest
from amplify import configs
from amplify.views import report

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _common():
  spec = importlib.util.spec_from_file_location(
      "experiments_common", os.path.join(ROOT, "experiments", "common.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


@functools.cache  # once a process: it defines its flags
def _reproduce_2018():
  """experiments/reproduce_2018.py as a module (it imports `common` from its own folder)."""
  sys.path.insert(0, os.path.join(ROOT, "experiments"))
  spec = importlib.util.spec_from_file_location(
      "experiments_reproduce_2018", os.path.join(ROOT, "experiments", "reproduce_2018.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_one_value_has_no_spread_to_show():
  common = _common()
  assert common.mean_spread([0.5, 0.7]) == "0.600 ± 0.141"
  assert common.mean_spread([0.997]) == "0.997 (n=1)"  # not "± 0.000", three seeds agreeing
  assert common.mean_spread([0.5, None]) == common.mean_spread([]) == "-"


def test_real_h_calls_count_the_type_2_gate_s_answers_too(monkeypatch):
  """The rounds up to the first within 1 point of the final accuracy: their labels (a learned
  H''s own answers left out) and the real H's answers to the type-2 gate."""
  study = _reproduce_2018()
  lines = [{"round": 0, "phase": "label", "oracle_calls": 100},
           {"round": 0, "phase": "eval", "policy_accuracy": 0.5, "type2_calls": 7},
           {"round": 1, "phase": "label", "oracle_calls": 100, "real_h_calls": 40},
           {"round": 1, "phase": "eval", "policy_accuracy": 0.895, "type2_calls": 5},
           {"round": 2, "phase": "label", "oracle_calls": 100},
           {"round": 2, "phase": "eval", "policy_accuracy": 0.9, "type2_calls": 3}]
  monkeypatch.setattr(study.common, "records", lambda run: lines)
  run = {"summary": {"final_policy_accuracy": 0.9}}
  assert study.real_h_calls_to_final(run) == 100 + 7 + 40 + 5


def test_a_row_s_baselines_are_those_of_its_own_seeds():
  """A learned H' at seeds 0 and 5, the scripted H at 0-2: H''s row reads seed 0's ceiling and
  prosaic ML only, so its accuracy less its ceiling is its accuracy less that ceiling."""
  study = _reproduce_2018()
  row = lambda oracle, seed, accuracy, ceiling: {
      "preset": "p", "oracle": oracle, "seed": seed, "accuracy": accuracy, "ceiling": ceiling,
      "prosaic": ceiling and ceiling / 2, "real_h_calls": 10, "ceiling_labels": 100, "steps": 1,
      "wall_seconds": 1.0}
  rows = [row("scripted", 0, 0.9, 0.9), row("scripted", 1, 0.9, 1.0),
          row("scripted", 2, 0.9, 0.8), row("learned", 0, 0.7, None), row("learned", 5, 0.5, None)]
  learned = study.table(rows).splitlines()[-1].split(" | ")
  assert learned[1:6] == ["learned", "0,5", "0.600 ± 0.141", "0.900 (n=1)", "-0.200 (n=1)"]
  assert learned[6] == "0.450 (n=1)"  # seed 0's prosaic ML alone


def test_a_kept_record_reads_as_its_run_and_only_for_its_own_config(finished_run, tmp_path):
  """Kept: the run's config, metrics, summary and world, no checkpoints; read back as the run
  (the report reads the same lines), and refused for any other config (here another seed)."""
  common = _common()
  config, workdir, summary = finished_run(helpers.LEXICON)
  kept = str(tmp_path / "kept")
  common._keep(str(workdir), kept)  # pylint: disable=protected-access
  assert sorted(os.listdir(kept)) == sorted(common.KEPT_FILES)
  assert common._kept_summary(config, kept) == summary  # pylint: disable=protected-access
  assert report.read_metrics(kept) == report.read_metrics(str(workdir))
  other = configs.replace(config, seed=config.seed + 1)
  assert common._kept_summary(other, kept) is None  # pylint: disable=protected-access
  missing = str(tmp_path / "none")
  assert common._kept_summary(config, missing) is None  # pylint: disable=protected-access


def test_the_table_so_far_reads_kept_records_of_its_config_and_runs_nothing(finished_run,
                                                                            tmp_path):
  """`reproduce_2018 --finished_only` over seeds 0-2, no workdir anywhere: seed 0's record (its
  config the study's) is tabulated, seed 1's (another config's) and seed 2's (none) are left
  out; nothing is run and no workdir is made."""
  _, workdir, _ = finished_run(helpers.LEXICON)  # any finished run's lines, with baselines
  runs = tmp_path / "results" / "reproduce_2018" / "runs" / "reproduce_2018"
  for seed, rounds in ((0, None), (1, 5)):
    kept = runs / f"wildcard_tiny_scripted_s{seed}"
    shutil.copytree(workdir, kept, ignore=shutil.ignore_patterns("checkpoints", "transcripts",
                                                                  "tensorboard"))
    config = configs.get_config("wildcard_tiny", oracle="scripted", baselines=True, seed=seed)
    if rounds:
      config = configs.replace(config, rounds=rounds)
    (kept / "config.json").write_text(configs.to_json(config))
  done = subprocess.run(
      [sys.executable, "experiments/reproduce_2018.py", "--preset=wildcard_tiny",
       "--seeds=0,1,2", "--oracles=scripted", "--finished_only", f"--root={tmp_path / 'root'}",
       f"--results={tmp_path / 'results'}"], cwd=ROOT, capture_output=True, text=True,
      timeout=300)
  assert done.returncode == 0, done.stderr[-2000:]
  assert "wildcard_tiny_scripted, seed 0: finished earlier, its record kept in" in done.stdout
  for seed in (1, 2):
    assert f"wildcard_tiny_scripted, seed {seed}: not finished, left out" in done.stdout
  assert "| wildcard_tiny | scripted | 0 |" in (
      tmp_path / "results" / "reproduce_2018" / "reproduce_2018.md").read_text()
  assert not (tmp_path / "root").exists()


def test_a_study_whose_run_fails_ends_in_the_run_s_one_line(finished_run, tmp_path):
  """A study's run that fails after its start (here its metrics damaged, which the same command
  cannot get past) ends the study as it ends `amplify`: one line naming the problem, the way out
  and the command that shows the traceback, exit 1, the workdir left as it was."""
  _, whole, _ = finished_run(helpers.LEXICON_ROUNDS)
  workdir = helpers.copy_run(whole, tmp_path / "root" / "compiles" / "lexicon_tiny_s0")
  (workdir / "summary.json").unlink()
  lines = (workdir / "metrics.jsonl").read_text().splitlines(keepends=True)
  damaged = "".join([lines[0][:10] + "\n", *lines[1:]])
  (workdir / "metrics.jsonl").write_text(damaged)
  done = subprocess.run(
      [sys.executable, "experiments/compiles.py", "--preset=lexicon_tiny", "--seeds=0",
       "--config.type2.size=0", "--baselines=false", f"--root={tmp_path / 'root'}",
       f"--results={tmp_path / 'results'}"], cwd=ROOT, capture_output=True, text=True,
      timeout=300)
  assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-2000:]
  last = done.stderr.strip().splitlines()[-1]
  assert last.startswith("error: starting the run") and "metrics.jsonl line 1 is damaged" in last
  assert ("use a new --workdir (adding --debug to the run's command, amplify "
          "--preset=lexicon_tiny ") in last, last
  assert last.endswith(f"--seed=0 --workdir={workdir}, shows the traceback)."), last
  assert (workdir / "metrics.jsonl").read_text() == damaged


@pytest.mark.parametrize("script, folder, flags", [
    ("seeds.py", "seeds/lexicon_tiny_v0_s0", ["--variant=--config.train.total_steps=40"]),
    ("kill9.py", "kill9/lexicon_tiny_reference_s0", ["--trials=0", "--notargeted"])])
def test_a_study_refuses_a_finished_run_of_other_flags_and_runs_nothing(finished_run, tmp_path,
                                                                        script, folder, flags):
  """A study that launches `amplify` itself (seeds, kill9) reads a finished run in its workdir
  only where it is a run of the study's flags: another config's, here a finished run of other
  settings, is refused in one line (exit 1), not read as this one's, and left as it was."""
  _, whole, summary = finished_run(helpers.LEXICON)
  workdir = helpers.copy_run(whole, tmp_path / "root" / folder)
  done = subprocess.run(
      [sys.executable, f"experiments/{script}", "--preset=lexicon_tiny", "--seeds=0", *flags,
       f"--root={tmp_path / 'root'}", f"--results={tmp_path / 'results'}"], cwd=ROOT,
      capture_output=True, text=True, timeout=300)
  assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-2000:]
  last = done.stderr.strip().splitlines()[-1]
  assert last.startswith(f"error: workdir '{workdir}' holds a run with a different config"), last
  assert not (tmp_path / "results").exists()
  assert json.loads((workdir / "summary.json").read_text()) == summary
