"""`python -m amplify.views.report`: the table's new columns, the plots, runs side by side, the tree of
one question, and clear errors. Workdirs are written by hand (metrics lines, summary, transcripts
of a known lexicon question): no training."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from matplotlib import image

import helpers

from amplify import configs as config_lib
from amplify.views import plots
from amplify.views import report
from amplify.views import transcript_tree
from amplify.tasks import make_task
from amplify.types import IDK

TYPE2_KEYS = ("type1_score", "type2_score", "type1_type2_gap", "type2_calls", "promoted")
GATE = "pi_r's type-2 score 0.400 is below the deployed policy's 0.600: the deployed policy stays"


def _eval_line(r: int, type2: dict | None) -> dict:
  by_difficulty = {str(d): min(1.0, 0.3 * (r + 1) + 0.5 / d) for d in range(1, 5)}
  return {"round": r, "phase": "eval", "label_accuracy": 0.5 + 0.2 * r,
          "label_accuracy_by_difficulty": by_difficulty, "idk_fraction": 0.5 - 0.2 * r,
          "train_agreement": 0.9, "heldout_agreement": 0.88 + 0.01 * r, "iid_gap": 0.02 - 0.01 * r,
          "competent_difficulties": list(range(1, r + 2)), "kept_previous_policy": False,
          "policy_accuracy": 0.4 + 0.25 * r, "policy_accuracy_by_difficulty": by_difficulty,
          "unseen_entity_fraction": 0.0, "oracle_calls": 2048, "asks": 1000 + 500 * r,
          "lookups": 1500, "seconds": 2.5, **(type2 or {})}


def _write_run(workdir, *, type2: bool, summary: bool = True) -> None:
  """A three-round lexicon_tiny run's metrics lines (and summary): round 0 written before type 2
  existed (no type-2 keys), rounds 1 and 2 with them, round 2 refused by the gate."""
  os.makedirs(workdir, exist_ok=True)
  gates = [None,
           {"type1_score": 0.9, "type2_score": 0.6, "type1_type2_gap": 0.3, "type2_calls": 640,
            "type2_score_deployed": 0.0, "promoted": True, "gate": "deployed"},
           {"type1_score": 0.7, "type2_score": 0.4, "type1_type2_gap": 0.3, "type2_calls": 700,
            "type2_score_deployed": 0.6, "promoted": False, "gate": GATE}]
  lines = [{"round": None, "phase": "prior", "d_rows": 384, "log_prior": -44.4,
            "log_likelihood": -296.9, "mz_parameters": 128, "mz_bytes": 512, "seconds": 1.9,
            "z_accuracy": 1.0}]
  for r in range(3):
    lines += [{"round": r, "phase": "label", "oracle_calls": 2048, "asks": 1000 + 500 * r,
               "lookups": 1500, "budget_overruns": 0, "seconds": 0.8},
              {"round": r, "phase": "distill", "steps": 200, "step_budget": 200},
              _eval_line(r, gates[r] if type2 else None)]
  lines += [{"round": None, "phase": "baseline", "baseline": name, "accuracy": accuracy,
             "agreement_on_d": 0.8, "steps": 600, "seconds": 9.0}
            for name, accuracy in [("prosaic", 0.35), ("ceiling", 0.97)]]
  with open(os.path.join(workdir, "metrics.jsonl"), "w") as f:
    f.writelines(json.dumps(line) + "\n" for line in lines)
  if summary:
    with open(os.path.join(workdir, "summary.json"), "w") as f:
      json.dump({"arm": "ltp", "policy": "reads_mz", "final_policy_accuracy": 0.9,
                 "prosaic_accuracy": 0.35, "ceiling_accuracy": 0.97, "gap_recovered": 0.887,
                 "z_accuracy": 1.0, "oracle_calls": 6144, "rounds": 3, "seed": 0,
                 "wall_seconds": 61.0, "promotions": 2 if type2 else None,
                 "refused_rounds": [2] if type2 else [],
                 "largest_type1_type2_gap": {"round": 1, "gap": 0.3} if type2 else None}, f)


@pytest.fixture(scope="module")
def lexicon():
  config = config_lib.get_config("lexicon_tiny")
  return config, make_task(config)[0]  # the task alone: these tests need no ground truth


def _question(task, pairs):
  """The lexicon question about (entity, background) pairs, in the task's own tokens."""
  q = np.zeros(task.spec.question_len, np.int32)
  q[0] = task.count0 + len(pairs)
  for i, (e, b) in enumerate(pairs):
    q[2 + 2 * i], q[3 + 2 * i] = task.entity0 + e, task.background0 + b
  return q


def _counts(task, classes):
  return np.asarray([task.count0 + classes.count(c) for c in range(task.num_classes)], np.int32)


def _write_transcripts(workdir, task) -> None:
  """Round 0: {e3, e5} answered by two look-ups. Round 1: {e3, e5, e7, e9} split into halves
  asked of pi; the first half is round 0's question (expanded), the second is in no transcript.
  Classes: e3 c1, e5 c2, e7 c0, e9 c3."""
  os.makedirs(os.path.join(workdir, "transcripts"), exist_ok=True)
  la, lq = task.spec.answer_len, task.spec.question_len
  halves = [_question(task, [(3, 1), (5, 2)]), _question(task, [(7, 0), (9, 3)])]
  rounds = {
      0: dict(questions=halves[:1], answers=[_counts(task, [1, 2])],
              subquestions=np.zeros((1, 2, lq)), subanswers=np.full((1, 2, la), IDK),
              asked=[[False, False]], lookup_keys=[[3, 5]],
              lookup_values=[[task.class0 + 1, task.class0 + 2]], looked_up=[[True, True]],
              overruns=[0]),
      1: dict(questions=[_question(task, [(3, 1), (5, 2), (7, 0), (9, 3)])],
              answers=[_counts(task, [0, 1, 2, 3])], subquestions=[halves],
              subanswers=[[_counts(task, [1, 2]), _counts(task, [0, 3])]],
              asked=[[True, True]], lookup_keys=[[0, 0]], lookup_values=[[IDK, IDK]],
              looked_up=[[False, False]], overruns=[0])}
  for r, fields in rounds.items():
    np.savez_compressed(os.path.join(workdir, "transcripts", f"round_{r}.npz"),
                        **{k: np.asarray(v, bool if k in ("asked", "looked_up") else np.int32)
                           for k, v in fields.items()})


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, lexicon):
  config, task = lexicon
  path = tmp_path_factory.mktemp("run")
  _write_run(path, type2=True)
  with open(path / "config.json", "w") as f:
    f.write(config_lib.to_json(config))
  _write_transcripts(path, task)
  return path


def test_table_shows_type2_columns_and_na_for_older_rounds(workdir):
  table = report.format_table(str(workdir))
  lines = table.splitlines()
  header = next(line for line in lines if line.startswith("round"))
  for column in ("type1", "type2", "gap 1-2", "type2 calls", "promoted"):
    assert column in header
  rows = {int(line.split()[0]): line for line in lines if line.split() and line[:5].strip()
          .isdigit()}
  assert sorted(rows) == [0, 1, 2]
  start = header.index("unseen") + len("unseen")  # the type-2 columns follow `unseen`
  end = header.index("H calls")
  assert rows[0][start:end].split() == ["n/a"] * 5  # round 0: an older line without the keys
  assert rows[1][start:end].split() == ["0.900", "0.600", "+0.300", "640", "yes"]
  assert rows[2][start:end].split() == ["0.700", "0.400", "+0.300", "700", "no"]
  assert "the gate refused pi_r in round(s) 2" in table
  assert f"round 2: {GATE}" in table
  assert "promotions 2/3  largest gap 1-2 +0.300 (round 1)" in table
  # of the rounds decided: a round that trains nothing (imitate_on_d's round 1) decides nothing
  assert report._promotions({"promotions": 1, "refused_rounds": [], "rounds": 2}) == "1/1"


def test_plots_are_written_and_read_back(workdir, tmp_path):
  older = tmp_path / "older"  # no type-2 keys at all: that figure says so instead
  _write_run(older, type2=False)
  for run, out in [(workdir, tmp_path / "plots"), (older, older / "plots")]:
    paths = plots.run_plots(str(run), report.read_metrics(str(run)), str(out))
    assert sorted(os.path.basename(p) for p in paths) == sorted(
        f"{name}.png" for name, _, _ in plots.PLOTS)
    for (name, _, (width, height)), path in zip(plots.PLOTS, paths):
      pixels = image.imread(path)
      assert pixels.shape == (round(height * 100), round(width * 100), 4), name
      assert pixels[..., :3].std() > 0.05, name  # not blank
  assert not any(name.endswith(".tmp") for name in os.listdir(older / "plots"))


def test_the_command_line_writes_plots_without_jax(workdir, tmp_path):
  out = tmp_path / "figures"
  result = subprocess.run([sys.executable, "-X", "importtime", "-m", "amplify.views.report",
                           f"--workdir={workdir}", "--plots", f"--out={out}"],
                          capture_output=True, text=True, timeout=120)
  assert result.returncode == 0, result.stderr
  assert "type2 calls" in result.stdout and str(out / "cost.png") in result.stdout
  imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()
              if line.startswith("import time:")}
  assert "matplotlib" in imported and "jax" not in imported
  assert len(os.listdir(out)) == len(plots.PLOTS)


def test_runs_side_by_side(workdir, tmp_path):
  unfinished = tmp_path / "unfinished"
  _write_run(unfinished, type2=False, summary=False)
  table = report.format_comparison([str(workdir), str(unfinished)])
  rows = table.splitlines()[2:]
  assert [row.split()[0] for row in rows] == [str(workdir), str(unfinished)]
  assert rows[0].split()[1:] == ["ltp", "0.900", "0.350", "0.970", "0.887", "2/3", "+0.300",
                                 "(round", "1)", "6144", "61"]
  assert "0.900 (unfinished)" in rows[1] and "n/a" in rows[1]
  started = tmp_path / "started"  # config.json, no metrics line yet (a sweep's next run)
  started.mkdir()
  (started / "config.json").write_text("{}")
  row = report.format_comparison([str(workdir), str(started)]).splitlines()[-1].split()
  assert row == [str(started), "n/a", "n/a"] + ["n/a"] * (len(report.COMPARISON) - 3)
  plotted = _report_cli(f"--workdir={workdir},{started}", "--plots", f"--out={tmp_path}")
  assert plotted.returncode == 0 and "comparison.png" in plotted.stdout, plotted.stderr
  path = plots.comparison_plot([(str(workdir), report.read_metrics(str(workdir))),
                                (str(unfinished), report.read_metrics(str(unfinished)))],
                               str(tmp_path))
  assert path == str(tmp_path / "comparison.png")
  assert image.imread(path)[..., :3].std() > 0.05


def test_tree_shows_h_decomposition_and_expands_a_known_half(workdir):
  assert transcript_tree.render(str(workdir), "1:0").splitlines()[1:] == [
      "count by class: e3[b1] e5[b2] e7[b0] e9[b3] -> c0=1 c1=1 c2=1 c3=1",
      "├── ask: count by class: e3[b1] e5[b2] -> c0=0 c1=1 c2=1 c3=0    [round 0 row 0]",
      "│   ├── look up: e3: c1",
      "│   └── look up: e5: c2",
      "└── ask: count by class: e7[b0] e9[b3] -> c0=1 c1=0 c2=0 c3=1"]


def test_an_episodic_tree_has_one_level(tmp_path):
  config = config_lib.get_config("permutation_tiny")
  task = make_task(config)[0]
  with open(tmp_path / "config.json", "w") as f:
    f.write(config_lib.to_json(config))
  os.makedirs(tmp_path / "transcripts")
  x, bit = task.element_name, lambda k: [task.bit0 + (k >> 1), task.bit0 + (k & 1)]
  e = 2  # the first element's token
  # sigma^3(e) = sigma(sigma^2(e)): one ask (sigma^2(e), itself a saved question), one look-up
  np.savez_compressed(tmp_path / "transcripts" / "round_0.npz",
                      questions=np.asarray([[e, *bit(3)], [e, *bit(2)]], np.int32),
                      answers=np.asarray([[e + 1], [e + 2]], np.int32),
                      subquestions=np.asarray([[[e, *bit(2)]], [[e, *bit(1)]]], np.int32),
                      subanswers=np.asarray([[[e + 2]], [[e + 3]]], np.int32),
                      asked=np.asarray([[True], [True]]),
                      lookup_keys=np.asarray([[e + 2], [e + 3]], np.int32),
                      lookup_values=np.asarray([[e + 1], [e + 2]], np.int32),
                      looked_up=np.asarray([[True], [True]]), overruns=np.zeros(2, np.int32))
  lines = transcript_tree.render(str(tmp_path), "0:0").splitlines()
  assert lines[1:4] == [f"sigma^3({x(e)}) = ? -> {x(e + 1)}",
                        f"├── ask: sigma^2({x(e)}) = ? -> {x(e + 2)}",
                        f"└── look up: sigma({x(e + 2)}) = {x(e + 1)}"]
  assert "episodic" in lines[4]


ERRORS = [  # (arguments, the one line expected on stderr); {w}: the hand-made run, {empty}: none
    (["--workdir={w}/nonesuch"], "does not exist"),
    (["--workdir={w}/summary.json"], "is a file, not a folder"),
    (["--workdir={w}", "stray"], "unexpected arguments ['stray']"),
    (["--workdir={empty}", "--tree=0:0"], "no transcripts in"),
    (["--workdir={w}", "--tree=zero"], "--tree='zero': write ROUND:ROW"),
    (["--workdir={w}", "--tree=7:0"], "no transcripts of round 7"),
    (["--workdir={w}", "--tree=1:5"], "round 1 has 1 questions (rows 0-0)"),
]


@pytest.mark.parametrize("args, message", ERRORS)
def test_bad_input_is_one_line_and_exit_2(workdir, tmp_path, args, message):
  result = subprocess.run([sys.executable, "-m", "amplify.views.report",
                           *(a.format(w=workdir, empty=tmp_path) for a in args)],
                          capture_output=True, text=True, timeout=120)
  assert result.returncode == 2
  assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
  assert message in result.stderr


# -- a workdir a run left in a state it cannot go on from: one line, the same advice as the run's -

def _report_cli(*args):
  return subprocess.run([sys.executable, "-m", "amplify.views.report", *map(str, args)],
                        capture_output=True, text=True, timeout=120)


def _one_line(result, *messages):
  assert result.returncode == 2, result.stderr
  assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
  for message in messages:
    assert message in result.stderr, result.stderr


def _copy(workdir, tmp_path):
  import shutil
  shutil.copytree(workdir, tmp_path / "run")
  return tmp_path / "run"


def test_a_summary_that_lacks_keys_is_one_line_that_says_to_rewrite_it(workdir, tmp_path):
  run = _copy(workdir, tmp_path)
  summary = json.loads((run / "summary.json").read_text())
  del summary["rounds"], summary["wall_seconds"]
  (run / "summary.json").write_text(json.dumps(summary))
  for args in ([], ["--plots"]):
    _one_line(_report_cli(f"--workdir={run}", *args), "summary.json lacks ['rounds', "
              "'wall_seconds']", "move it away and run the same command, which writes it again")
  (run / "summary.json").write_text("[]")  # JSON, but no summary
  _one_line(_report_cli(f"--workdir={run}"), "summary.json lacks ['rounds', ")
  _one_line(_report_cli(f"--workdir={run},{workdir}"), "summary.json lacks")  # side by side too


def test_a_finished_run_without_metrics_says_to_use_a_new_workdir(workdir, tmp_path):
  run = _copy(workdir, tmp_path)
  (run / "metrics.jsonl").unlink()
  _one_line(_report_cli(f"--workdir={run}"), "summary.json says its run finished, but "
            "metrics.jsonl is gone", "use a new --workdir to run it again")
  (run / "summary.json").unlink()  # what the run refuses to resume (checkpoints, no lines)
  os.makedirs(run / "checkpoints" / "round_0")
  _one_line(_report_cli(f"--workdir={run}"), "holds checkpoints but no metrics.jsonl",
            "use a new --workdir")
  os.rmdir(run / "checkpoints" / "round_0")  # started, no line yet: the same command goes on
  _one_line(_report_cli(f"--workdir={run}"), "its run has written no metrics line yet",
            "(its flags are in config.json) resumes it")
  _one_line(_report_cli(f"--workdir={tmp_path / 'run' / 'transcripts'}"), "no metrics.jsonl in")


def test_a_metrics_line_that_lacks_keys_is_one_line(tmp_path):
  _write_run(tmp_path, type2=False)
  with open(tmp_path / "metrics.jsonl", "a") as f:
    f.write(json.dumps({"round": 3, "phase": "eval"}) + "\n")
  _one_line(_report_cli(f"--workdir={tmp_path}"), "does not read as a run's lines (KeyError:")


@pytest.mark.parametrize("line", ["{}", "[1, 2]"])
def test_a_metrics_line_that_is_no_record_is_one_line_alone_and_side_by_side(workdir, tmp_path,
                                                                            line):
  """JSON, but not a run's line (no round, no phase): the same one line for the table, the
  side-by-side table and the plots."""
  run = _copy(workdir, tmp_path)
  lines = (run / "metrics.jsonl").read_text().splitlines()
  (run / "metrics.jsonl").write_text("\n".join(lines[:2] + [line] + lines[2:]) + "\n")
  for args in ([f"--workdir={run}"], [f"--workdir={workdir},{run}"],
               [f"--workdir={workdir},{run}", "--plots", f"--out={tmp_path}"]):
    _one_line(_report_cli(*args), "metrics.jsonl line 3 is damaged (not a record with a round "
              "and a phase)", "use a new --workdir")


def test_the_side_by_side_table_reads_a_damaged_run_s_line_as_one_line(workdir, tmp_path):
  run = _copy(workdir, tmp_path)
  lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
  del [r for r in lines if r["phase"] == "eval"][-1]["policy_accuracy"]
  (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
  (run / "summary.json").unlink()  # unfinished: the row reads the last eval line
  _one_line(_report_cli(f"--workdir={workdir},{run}"), "does not read as a run's lines (KeyError:")


def test_a_gap_a_round_lacks_is_drawn_as_n_a_not_as_no_gap():
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  evals = [_eval_line(r, None) | {"iid_gap": [0.0, None, 0.02][r]} for r in range(3)]
  fig = Figure()
  plots.iid_gap(fig, plots.RunMetrics("run", evals, [], {}))
  bottom = fig.axes[1]
  assert [t.get_text() for t in bottom.texts] == ["n/a"] and bottom.texts[0].get_position()[0] == 1
  evals = [_eval_line(r, {"type1_score": 0.5, "type2_score": 0.5, "type1_type2_gap": 0.0})
           for r in range(2)] + [_eval_line(2, None)]
  fig = Figure()
  plots.type1_type2(fig, plots.RunMetrics("run", evals, [], {}))
  assert [t.get_text() for t in fig.axes[1].texts] == ["n/a"]  # no "no gap" note: round 2 lacks it


def test_transcripts_that_are_a_file_or_damaged_are_one_line(workdir, tmp_path):
  run = _copy(workdir, tmp_path)
  (run / "transcripts" / "round_1.npz").write_bytes(b"PK\x03\x04 cut short")  # zipfile's error
  _one_line(_report_cli(f"--workdir={run}", "--tree=1:0"), "round_1.npz cannot be read "
            "(BadZipFile): not a transcript file")
  _one_line(_report_cli(f"--workdir={run}", "--tree=5:0"), "no transcripts of round 5",
            "(rounds saved: 0, 1)")
  import shutil
  shutil.rmtree(run / "transcripts")
  (run / "transcripts").write_text("")
  for args in (["--tree=0:0"], []):
    _one_line(_report_cli(f"--workdir={run}", *args), f"workdir {run}: transcripts is a file, "
              "not a folder: move it away or use a new --workdir.")


def test_check_workdir_layout_names_what_to_move(tmp_path):
  """What the run's workdir check calls (amplify.loop.workdir), and the report."""
  from amplify.files import jsonio
  jsonio.check_workdir_layout(str(tmp_path))  # empty: nothing to refuse
  for name in jsonio.FOLDERS:
    (tmp_path / name).write_text("")
    with pytest.raises(ValueError, match=rf"workdir {tmp_path}: {name} is a file, not a folder: "
                                         r"move it away or use a new --workdir\.$"):
      jsonio.check_workdir_layout(str(tmp_path))
    (tmp_path / name).unlink()
    (tmp_path / name).mkdir()
  for name in jsonio.FILES:
    (tmp_path / name).mkdir()
    with pytest.raises(ValueError, match=rf"{name} is a folder, not a file: move it away"):
      jsonio.check_workdir_layout(str(tmp_path))
    (tmp_path / name).rmdir()
  jsonio.check_workdir_layout(str(tmp_path))


def test_read_summary_is_the_run_and_report_view_of_a_finished_workdir(tmp_path):
  from amplify.files import jsonio
  assert jsonio.read_summary(str(tmp_path)) is None  # not finished
  _write_run(tmp_path, type2=False)
  assert jsonio.read_summary(str(tmp_path))["rounds"] == 3
  (tmp_path / "summary.json").write_text("{not json")
  with pytest.raises(ValueError, match=r"summary.json is damaged .*: move it away"):
    jsonio.read_summary(str(tmp_path))


def test_a_learned_h_run_shows_its_real_h_calls_beside_all_of_h_a_s(workdir, tmp_path):
  """Beside H', H calls counts H''s answers too: the table adds the real H's, the summary line
  gives type 2's share of them, and the side-by-side row both."""
  learned = helpers.copy_run(workdir, tmp_path / "learned")
  lines = helpers.lines(learned)
  for line in lines:
    if line["phase"] in ("label", "eval"):
      line["real_h_calls"] = 200 + line["round"]
  (learned / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
  summary = json.loads((learned / "summary.json").read_text())
  summary |= {"real_h_calls": 603, "type2_share_of_h_calls": 1340 / 603}
  (learned / "summary.json").write_text(json.dumps(summary))
  table = report.format_table(str(learned))
  header = next(line for line in table.splitlines() if line.startswith("round"))
  assert "H calls  real H  asks" in header
  assert [line.split()[-4] for line in table.splitlines()
          if line.split() and line[:5].strip().isdigit()] == ["200", "201", "202"]
  assert "type-2 H calls 222.2% of labelling's real-H calls" in table
  assert "6144 (603 real)" in report.format_comparison([str(learned)])
  assert "real H" not in report.format_table(str(workdir))  # the scripted run: H is all real
