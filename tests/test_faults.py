"""Damaged workdir files give a clear error or a warned fallback, JSON writes are atomic, and
gap_recovered is null where there is no gap (issue 12, the parts built so far). A run interrupted
or damaged, then resumed: tests/test_resume.py."""
import json
import multiprocessing
import os
import pickle
import shutil
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import helpers
from amplify import configs as config_lib
from amplify.files import jsonio as files
from amplify.views import report
from amplify.loop import run as loop
from amplify.files.metrics import MetricWriter
from amplify.loop.summary import gap_recovered
from amplify.loop import workdir as workdir_lib
from amplify.loop.workdir import check_workdir
from amplify.learn.amplifier import Amplifier, Budget
from amplify.learn.mz import TableMz
from amplify.oracles.per_question import CallableOracle, OracleError
from amplify.oracles.scripted import ScriptedOracle
from amplify.tasks import make_task
from amplify.types import IDK


def _metrics(path, lines):
  with open(path, "w") as f:
    f.write("".join(lines))


def test_a_last_metrics_line_cut_short_is_dropped_with_a_warning(tmp_path, capsys):
  path = tmp_path / "metrics.jsonl"
  good = [json.dumps({"round": r, "phase": "eval"}) + "\n" for r in range(2)]
  _metrics(path, good + ['{"round": 2, "pha'])
  writer = MetricWriter(str(path), keep=lambda rec: True)
  assert writer.kept == [{"round": 0, "phase": "eval"}, {"round": 1, "phase": "eval"}]
  assert "dropped its last line" in capsys.readouterr().out
  assert path.read_text() == "".join(good)  # the cut line is gone; nothing else is
  writer.write({"round": 2, "phase": "eval"})
  assert [json.loads(line)["round"] for line in path.read_text().splitlines()] == [0, 1, 2]
  _metrics(path, good + ['{"round": 2, "pha'])
  assert [r["round"] for r in report.read_metrics(str(tmp_path))] == [0, 1]  # report reads it


def test_a_damaged_metrics_line_before_the_last_is_an_error_naming_it(tmp_path):
  path = tmp_path / "metrics.jsonl"
  _metrics(path, ['{"round": 0, "phase": "eval"}\n', "garbage\n",
                  '{"round": 1, "phase": "eval"}\n'])
  before = path.read_text()
  with pytest.raises(ValueError, match=r"metrics.jsonl line 2 is damaged"):
    MetricWriter(str(path), keep=lambda rec: True)
  assert path.read_text() == before  # left as it was


@pytest.mark.parametrize("content", ["{\"task\": \"lex", "\x00\x01garbage", "", "null", "[]"])
def test_a_damaged_config_is_an_error_naming_the_file(tmp_path, content):
  """Not JSON, or JSON but not an object (a file overwritten by hand)."""
  (tmp_path / "config.json").write_text(content)
  config = config_lib.get_config("lexicon_tiny")
  with pytest.raises(ValueError, match=r"config.json is damaged \(the run's config, not a JSON "
                                       r"object\)"):
    check_workdir(config, str(tmp_path))
  assert (tmp_path / "config.json").read_text() == content


@pytest.mark.parametrize("damage", ["train", "model", "replay"])
def test_a_config_whose_blocks_are_not_a_config_s_is_one_line(tmp_path, damage):
  """JSON objects, but a block of another shape: an error naming the file, not a traceback."""
  config = config_lib.get_config("lexicon_tiny")
  saved = config_lib.to_dict(config)
  if damage == "replay":  # an older layout's field whose rounds need label.size
    saved["train"]["replay_size"] = 4
    del saved["label"]
  else:
    saved[damage] = {"train": 5, "model": [1]}[damage]
  files.write_json(str(tmp_path / "config.json"), saved)
  with pytest.raises(ValueError, match=r"its config.json is damaged \(its blocks are not a "):
    check_workdir(config, str(tmp_path))


def test_a_run_s_files_without_its_config_are_refused_not_resumed_under_another(tmp_path):
  config = config_lib.get_config("lexicon_tiny")
  (tmp_path / "metrics.jsonl").write_text('{"round": 0, "phase": "eval"}\n')
  os.makedirs(tmp_path / "checkpoints" / "round_0")
  with pytest.raises(ValueError, match=r"holds a run's metrics.jsonl, checkpoints but no "
                                       r"config.json"):
    check_workdir(config, str(tmp_path))
  os.remove(tmp_path / "metrics.jsonl")
  os.rmdir(tmp_path / "checkpoints" / "round_0")
  check_workdir(config, str(tmp_path))  # an empty folder holds nothing of a run


def test_json_is_written_whole_or_not_at_all(tmp_path, monkeypatch):
  path = str(tmp_path / "summary.json")
  files.write_json(path, {"a": 1})
  assert json.load(open(path)) == {"a": 1} and os.listdir(tmp_path) == ["summary.json"]

  def fail(*args):  # a crash between writing the new file and renaming it over the old one
    raise OSError("killed")

  monkeypatch.setattr(os, "replace", fail)
  with pytest.raises(OSError):
    files.write_json(path, {"a": 2})
  assert json.load(open(path)) == {"a": 1}  # the old file, whole


def test_gap_recovered_is_null_with_a_reason_when_the_ceiling_is_not_above_prosaic_ml():
  assert gap_recovered(0.9, 0.5, 0.7) == {"gap_recovered": pytest.approx(2.0),
                                                  "gap_recovered_reason": None}
  assert gap_recovered(0.6, 0.5, 0.7)["gap_recovered"] == pytest.approx(0.5)
  for ceiling in (0.5, 0.4):
    out = gap_recovered(0.9, 0.5, ceiling)
    assert out["gap_recovered"] is None and "does not exceed prosaic ML" in \
        out["gap_recovered_reason"]
  assert gap_recovered(0.9, None, None)["gap_recovered"] is None


def test_a_workdir_another_live_run_holds_is_refused_and_free_once_it_ends(tmp_path):
  config = config_lib.get_config("lexicon_tiny")
  other = subprocess.Popen(
      [sys.executable, "-c", "import sys, time; from amplify.loop import workdir; "
       f"workdir.hold({str(tmp_path)!r}); print('held', flush=True); time.sleep(300)"],
      stdout=subprocess.PIPE, text=True)
  try:
    assert other.stdout.readline() == "held\n"
    with pytest.raises(ValueError, match=rf"is in use by a run \(pid {other.pid}\): wait for it "
                                         r"to end, or use another --workdir"):
      loop.check(config, str(tmp_path))  # its last check: the referee is closed again
  finally:
    other.kill()
    other.wait()
  loop.check(config, str(tmp_path)).close()  # a killed run's lock goes with it
  workdir_lib.hold(str(tmp_path))  # and this process's own is taken once
  workdir_lib.release(str(tmp_path))
  check_workdir(config, str(tmp_path))  # the workdir's check alone takes nothing (a study checks
  child = subprocess.run(  # the workdir, then runs `amplify` on it in a child process)
      [sys.executable, "-c", f"from amplify.loop import workdir; workdir.hold({str(tmp_path)!r})"],
      capture_output=True, text=True, timeout=120)
  assert child.returncode == 0, child.stderr


def test_a_workdir_that_cannot_be_written_is_refused_before_any_work(tmp_path):
  blocker = tmp_path / "a_file"
  blocker.write_text("not a directory")
  config = config_lib.get_config("lexicon_tiny")
  with pytest.raises(ValueError, match=r"cannot be written \(Not a directory\): choose a writable"):
    check_workdir(config, str(blocker / "workdir"))
  if os.geteuid() != 0:  # root writes through permission bits
    readonly = tmp_path / "readonly"
    readonly.mkdir()
    readonly.chmod(0o500)
    with pytest.raises(ValueError, match="cannot be written"):
      check_workdir(config, str(readonly))
  elif os.path.isdir("/sys/kernel"):  # but not into sysfs (Linux): a denied write, as root
    with pytest.raises(ValueError, match=r"cannot be written \("):
      check_workdir(config, "/sys/amplify_workdir")


def test_a_workdir_whose_checkpoints_is_a_file_fails_at_once_and_leaves_no_thread(tmp_path):
  """It used to print its error and then hang on a checkpoint thread still running."""
  import threading
  (tmp_path / "checkpoints").write_text("not a folder")
  before = set(threading.enumerate())
  with pytest.raises((ValueError, loop.RunError), match=r"checkpoints is a file, not a folder: "
                                                          r"move it away or use a new --workdir"):
    loop.run(config_lib.get_config("lexicon_tiny", type2_size=0, baselines=False), str(tmp_path))
  assert not [t for t in set(threading.enumerate()) - before if not t.daemon]
  assert not (tmp_path / "metrics.jsonl").exists()  # no work done


# -- every oracle output checked at the seam --------------------------------------------------

class _Bad:
  """The scripted H, its answers then damaged by `damage` (or it raises)."""
  name = "bad"
  jittable = False

  def __init__(self, task, damage):
    self.human, self.damage = ScriptedOracle(task), damage

  def answer(self, questions, tools, key):
    return self.damage(np.asarray(self.human.answer(questions, tools, key)))


def _class_zero_mz(task):
  """Mz holding class 0 for every entity: what the seam checks does not depend on z*."""
  spec = task.spec
  return TableMz(jnp.full(spec.z_entries, spec.z_first_token, jnp.int32), spec.z_values,
                 spec.z_first_token)


def _raise(answers):
  raise RuntimeError("the remote model timed out\nsecond line of a long traceback")


def _set(value):
  def damage(answers):
    answers = answers.copy()
    answers[3, 0] = value
    return answers
  return damage


def _nan(answers):
  out = answers.astype(np.float32)
  out[3, 0] = np.nan
  return out


BAD_OUTPUTS = {
    "too high": (_set(999), r"token 999 in its answer to question 3, neither IDK \(1\) nor an "
                            r"answer token"),
    "too low": (_set(-5), r"token -5 in its answer to question 3"),
    "wrong width": (lambda a: a[:, :1], r"answers of shape \(64, 1\); the task needs \(64, 4\)"),
    "wrong rank": (lambda a: a[:, 0], r"answers of shape \(64,\); the task needs \(64, 4\)"),
    "one row short": (lambda a: a[:-1], r"answers of shape \(63, 4\)"),
    "float": (lambda a: a.astype(np.float32), r"answers of dtype float32; answers are integer"),
    "NaN": (_nan, r"dtype float32 \(NaN among them\)"),
    "bool": (lambda a: a > 0, r"answers of dtype bool"),
    "exception": (_raise, r"oracle 'bad' in round 2 raised RuntimeError: the remote model timed "
                          r"out \(on questions 0..63; the first reads 'count by class: "),
}


@pytest.mark.parametrize("case", sorted(BAD_OUTPUTS))
def test_each_bad_oracle_output_is_one_clear_error_naming_oracle_round_and_row(case):
  config = config_lib.get_config("lexicon_tiny")
  task, _ = make_task(config)
  damage, message = BAD_OUTPUTS[case]
  amplifier = Amplifier(_Bad(task, damage), _class_zero_mz(task), task, Budget(4, 4))
  inputs = task.deployment_questions(jax.random.key(0), 64)
  with pytest.raises(OracleError, match=message) as raised:
    amplifier.label(inputs, None, None, jax.random.key(1), progress={"round": 2})
  text = str(raised.value)
  assert "\n" not in text and text.startswith("oracle 'bad' in round 2 ")
  assert text.endswith("fix the oracle; everything before this batch is saved")
  from amplify.loop import run as loop  # pylint: disable=g-import-not-at-top
  assert loop.failure(raised.value, "W") == (f"error: {text}", 2)  # exit 2, as a bad setting


@pytest.mark.parametrize("answer, message", [([999, 4, 4, 4], r"token 999 in its answer to "
                                                                r"question 0"),
                                             ([4.5, 4, 4, 4], r"answers of dtype float64")])
def test_a_per_question_oracle_is_checked_at_the_same_seam(answer, message):
  config = config_lib.get_config("lexicon_tiny")
  task, _ = make_task(config)
  oracle = CallableOracle(lambda question, tools: answer, 1)
  amplifier = Amplifier(oracle, _class_zero_mz(task), task, Budget(4, 4))
  with pytest.raises(OracleError, match=message):
    amplifier.label(task.deployment_questions(jax.random.key(0), 8), None, None,
                    jax.random.key(1), progress={"round": 0})


def test_a_key_or_subquestion_the_task_cannot_hold_is_refused_before_it_is_served():
  """A look-up key past int32 would wrap to another entry (2**32 + 3 read entry 3); a float key
  or subquestion token was truncated; a token past the vocabulary is no token. Each is a
  ValueError or TypeError the oracle sees, and spends nothing of its budget."""
  task, _ = make_task(config_lib.get_config("lexicon_tiny"))
  length, seen, left = task.spec.question_len, [], []

  def oracle(question, tools):
    tries = [lambda: tools.lookup(2**32 + 3), lambda: tools.lookup(3.7),
             lambda: tools.lookup(-1), lambda: tools.ask(np.full(length, 0.5)),
             lambda: tools.ask(np.full(length, task.spec.vocab_size))]
    for call in tries:
      try:
        call()
        seen.append(None)
      except (ValueError, TypeError) as e:
        seen.append(type(e).__name__)
    left.append((tools.asks_left(), tools.lookups_left()))
    return [IDK] * task.spec.answer_len
  amplifier = Amplifier(CallableOracle(oracle, 1), _class_zero_mz(task), task, Budget(4, 4))
  amplifier.label(task.deployment_questions(jax.random.key(0), 1), None, None, jax.random.key(1),
                  progress={"round": 0})
  assert seen == ["ValueError", "TypeError", "ValueError", "ValueError", "ValueError"]
  assert left == [(4, 4)]


def test_a_failure_after_the_start_is_one_line_naming_the_phase_and_debug_shows_the_traceback(
    tmp_path, finished_run):
  """A finished run made unfinished again, its metrics damaged mid-file: the command exits 1 with
  one line naming the phase; with --debug, the traceback."""
  import subprocess
  _, whole, _ = finished_run(helpers.LEXICON_ROUNDS)
  workdir = helpers.copy_run(whole, tmp_path / "run")
  command = [sys.executable, "-m", "amplify.main", "--preset=lexicon_tiny",
             "--config.type2.size=0", "--baselines=false", f"--workdir={workdir}"]
  (workdir / "summary.json").unlink()
  metrics = (workdir / "metrics.jsonl").read_text().splitlines(keepends=True)
  damaged = "".join([metrics[0][:10] + "\n", *metrics[1:]])
  (workdir / "metrics.jsonl").write_text(damaged)
  again = subprocess.run(command, capture_output=True, text=True, timeout=600)
  assert again.returncode == 1
  lines = again.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("error: starting the run"), lines
  assert "metrics.jsonl line 1 is damaged" in lines[0] and "Traceback" not in again.stderr
  # one way out: the same command cannot resume this workdir, so the line does not say it can
  assert lines[0].endswith("use a new --workdir (--debug shows the traceback).") and (
      "resumes" not in lines[0]), lines[0]
  debug = subprocess.run(command + ["--debug"], capture_output=True, text=True, timeout=600)
  assert debug.returncode != 0 and "Traceback" in debug.stderr
  assert (workdir / "metrics.jsonl").read_text() == damaged  # left as it was


def test_a_nan_loss_stops_distillation_with_a_clear_error_and_keeps_the_last_good_policy():
  from flax import nnx

  from amplify.learn.distill import Distiller, LabelledSet
  from amplify.learn.policy import make_policy
  config = config_lib.get_config("lexicon_tiny", steps_per_call=10)
  task, truth = make_task(config)
  inputs = task.deployment_questions(jax.random.key(0), 256)
  data = LabelledSet.of(inputs, truth.answers(inputs))
  distiller = Distiller(make_policy(task.spec, config.model, jax.random.key(1)), config.train, 100)
  distiller.fit(data, 10, jax.random.key(2))  # a good chunk
  good = jax.tree.map(np.asarray, nnx.state(distiller.policy, nnx.Param))
  poisoned = LabelledSet(data.inputs, data.labels, np.full_like(data.weights, np.nan))
  with pytest.raises(FloatingPointError, match=r"the distillation loss became nan within steps "
                                               r"10..20 .*in a new --workdir with a lower "):
    distiller.fit(poisoned, 20, jax.random.key(3))
  after = jax.tree.map(np.asarray, nnx.state(distiller.policy, nnx.Param))
  assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(good), jax.tree.leaves(after)))
  assert all(np.isfinite(leaf).all() for leaf in jax.tree.leaves(after))
  distiller.fit(data, 10, jax.random.key(4))  # and it trains on from there


def test_a_diverged_loss_names_a_new_workdir_where_other_failures_name_the_same_command():
  """The same command would diverge again, and a lower learning rate is another config, which
  the workdir refuses: the line names a new workdir, not a resume."""
  from amplify.loop import run as loop

  def line(cause: Exception) -> str:
    try:
      with loop._phase("round 2, distillation"):  # pylint: disable=protected-access
        raise cause
    except loop.RunError as e:
      line, status = loop.failure(e, "W")
      assert status == 1
      return line

  diverged = line(FloatingPointError("the distillation loss became nan: start again in a new "
                                     "--workdir with a lower --config.train.learning_rate"))
  assert diverged == ("error: round 2, distillation: FloatingPointError: the distillation loss "
                      "became nan: start again in a new --workdir with a lower "
                      "--config.train.learning_rate (--debug shows the traceback).")
  assert line(OSError("disk full")).endswith(
      "The work so far is kept in W: the same command resumes it (--debug shows the traceback).")
  # a baseline's, in the referee process, whose errors come back as their one line
  from amplify.truth import referee
  ours, theirs = multiprocessing.Pipe()
  theirs.send_bytes(pickle.dumps(("error", "RuntimeError: a baseline failed: FloatingPointError: "
                                           "the distillation loss became nan: start again in a "
                                           "new --workdir")))
  judge = object.__new__(referee.Referee)
  judge._connection = ours  # pylint: disable=protected-access
  with pytest.raises(loop.RunError) as failed:
    with loop._phase("baselines"):  # pylint: disable=protected-access
      judge.baseline(0)
  assert loop.failure(failed.value, "W")[0].endswith(
      "start again in a new --workdir (--debug shows the traceback).")


# -- what an oracle holds: ask and lookup, within the budget, every call recorded ---------------

def _attributes(tools) -> dict:
  """Every attribute an oracle can read off its tools by name, dunders included."""
  out = {}
  for name in dir(tools):
    try:
      out[name] = getattr(tools, name)
    except AttributeError:
      pass
  return out


class _Greedy:
  """Asks and looks up past the budget, and tries every attribute of its tools for another way
  to pi or Mz."""
  name = "greedy"
  jittable = False

  def __init__(self, spec):
    self.spec, self.seen = spec, {}

  def answer(self, questions, tools, key):
    n = questions.shape[0]
    every = jnp.ones(n, bool)
    self.seen, self.tools = _attributes(tools), tools
    for _ in range(6):  # the budget is 2 of each
      tools.ask(questions, every)
      tools.lookup(jnp.full(n, 0, jnp.int32), every)
    return jnp.full((n, self.spec.answer_len), 1, jnp.int32)  # IDK


def test_a_batch_oracle_holds_only_ask_and_lookup_and_cannot_pass_its_budget():
  task, _ = make_task(config_lib.get_config("lexicon_tiny"))
  oracle = _Greedy(task.spec)
  amplifier = Amplifier(oracle, _class_zero_mz(task), task, Budget(2, 2))
  labels = amplifier.label(task.deployment_questions(jax.random.key(0), 16), None, None,
                           jax.random.key(1))
  public = {name for name in oracle.seen if not name.startswith("_")}
  assert public == {"ask", "lookup"}
  for name, value in oracle.seen.items():  # no dunder leads to the ledger either
    assert not isinstance(value, (dict, list, jax.Array, np.ndarray)), name
    assert getattr(value, "__self__", None) is None or name.startswith("__"), name
  with pytest.raises(TypeError):
    vars(oracle.tools)  # no __dict__: nothing but the two functions
  cost = labels.cost()
  assert cost["asks"] == 16 * 2 and cost["lookups"] == 16 * 2  # the budget, every call counted
  t = labels.transcript
  assert np.asarray(t.overruns).tolist() == [8] * 16  # 4 asks + 4 look-ups past it, per row
  assert np.asarray(t.asked).sum() == 32 and np.asarray(t.looked_up).sum() == 32


def test_a_per_question_oracle_holds_no_way_past_its_budget():
  task, _ = make_task(config_lib.get_config("lexicon_tiny"))
  seen = {}

  def greedy(question, tools):
    seen.update(_attributes(tools))
    replies = [tools.lookup(0) for _ in range(6)] + [tools.ask(question.tokens) for _ in range(6)]
    with pytest.raises(AttributeError):
      tools.serve = None  # nothing can be added to the handle
    seen["known"] = sum(r.known for r in replies)
    return None

  amplifier = Amplifier(CallableOracle(greedy, 1), _class_zero_mz(task), task, Budget(2, 2))
  labels = amplifier.label(task.deployment_questions(jax.random.key(0), 1), None, None,
                           jax.random.key(1))
  public = {name for name in seen if not name.startswith("_")} - {"known"}
  assert public == {"ask", "lookup", "asks_left", "lookups_left", "parse_answer", "note"}
  assert not any(isinstance(v, (dict, list)) or getattr(v, "__self__", None) is not None
                 for name, v in seen.items() if not name.startswith("__") and name != "known")
  assert seen["known"] <= 2  # only the look-ups within the budget read Mz
  assert labels.cost()["lookups"] == 2 and labels.cost()["asks"] == 2
  assert int(np.asarray(labels.transcript.overruns)[0]) == 8


def test_a_finished_run_whose_checkpoints_were_deleted_is_not_run_again(tmp_path, finished_run):
  """Checkpoints deleted to free the disk: summary.json and every round's eval line say the run
  finished; it is returned as it is (it was run again from the start, its files overwritten)."""
  config, whole, summary = finished_run(helpers.LEXICON_ROUNDS)
  workdir = helpers.copy_run(whole, tmp_path / "run")
  shutil.rmtree(workdir / "checkpoints")
  before = {name: (workdir / name).read_bytes() for name in ("metrics.jsonl", "summary.json")}
  assert loop.run(config, str(workdir)) == summary
  assert {name: (workdir / name).read_bytes() for name in before} == before


def test_a_finished_run_whose_last_line_was_cut_short_writes_it_again(tmp_path, finished_run,
                                                                       capsys):
  """summary.json and every checkpoint, but the last round's eval line cut short: not finished,
  as the warning says; that round runs again and the run ends as it did."""
  config, whole, summary = finished_run(helpers.LEXICON_ROUNDS)
  workdir = helpers.copy_run(whole, tmp_path / "run")
  text = (workdir / "metrics.jsonl").read_text()
  (workdir / "metrics.jsonl").write_text(text[:-40])
  assert helpers.same_summary(loop.run(config, str(workdir)), summary)
  assert "nothing to do" not in capsys.readouterr().out
  assert [r["round"] for r in helpers.evals(workdir)] == list(range(config.rounds))


def test_a_lost_process_s_error_moves_no_checkpoint_aside(tmp_path, monkeypatch):
  """On several processes, a peer killed during a checkpoint's read is no damage: each good
  checkpoint was moved aside, round after round, and the restart began afresh."""
  from amplify import processes  # pylint: disable=g-import-not-at-top
  from amplify.files import checkpoint  # pylint: disable=g-import-not-at-top
  monkeypatch.setattr(processes, "several", lambda: True)
  folder = tmp_path / "round_1"
  folder.mkdir()
  lost = RuntimeError("UNKNOWN: Gloo AllGather failed: Connection closed by peer")
  with pytest.raises(RuntimeError, match="Connection closed by peer"):
    checkpoint._move_aside(str(folder), lost, "resuming from the round before it")
  assert sorted(os.listdir(tmp_path)) == ["round_1"]
  checkpoint._move_aside(str(folder), ValueError("cut short"), "resuming from the round before it")
  assert sorted(os.listdir(tmp_path)) == ["round_1.damaged-0"]  # damage is moved aside


def test_checkpoints_without_metrics_jsonl_are_a_clear_error(tmp_path, finished_run):
  """Every line lost (a round's lines alone lost: that round runs again, tests/test_resume.py)."""
  config, whole, _ = finished_run(helpers.LEXICON_ROUNDS)
  workdir = helpers.copy_run(whole, tmp_path / "run")
  (workdir / "metrics.jsonl").unlink()
  (workdir / "summary.json").unlink()
  with pytest.raises(loop.RunError, match=rf"has a checkpoint of round {config.rounds - 1} but "
                                          r"metrics.jsonl lacks that round's distill or eval line"):
    loop.run(config, str(workdir))


def test_a_baseline_that_fails_is_one_line_and_the_others_still_finish(monkeypatch):
  from amplify.truth import baselines  # pylint: disable=g-import-not-at-top
  def boom(*args, **kwargs):
    raise ValueError("out of memory\nmore detail")
  monkeypatch.setitem(baselines.EXTRA, "boom", boom)
  monkeypatch.setitem(baselines.EXTRA, "fine", lambda *args, **kwargs: {"baseline": "fine"})
  key = jax.random.key_data(jax.random.key(0))
  training = baselines.Training(None, None, None, [("boom", key), ("fine", key)], None, None,
                                None, None)
  assert training.record(1) == {"baseline": "fine"}
  with pytest.raises(RuntimeError, match=r"^a baseline failed: ValueError: out of memory$"):
    training.record(0)
