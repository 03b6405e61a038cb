"""Per-question oracles, the answer store, replay, and the person at the terminal."""
import dataclasses
import json
import os
import pathlib
import pickle
import signal
import re
import sqlite3
import subprocess
import sys
import time
import types

import hypothesis
import hypothesis.strategies as st
import jax
import numpy as np
import pexpect
import pytest

import helpers
import oracle_fns
from amplify import configs as config_lib
from amplify import registry
from amplify.loop import run as loop
from amplify.learn import zstore
from amplify.learn.amplifier import Amplifier, Budget
from amplify.oracles import scripted
from amplify.oracles.make import make_oracle
from amplify.oracles.base import QUIT, SKIP, UNDO, Question
from amplify.oracles.interactive import Interactive, InteractiveSettings
from amplify.oracles.per_question import Tools
from amplify.files.store import AnswerStore, StoreError, question_keys
from amplify.learn.policy import make_policy
from amplify.tasks import make_task
from amplify.types import IDK

TESTS = pathlib.Path(__file__).parent
ENV = {**os.environ, "PYTHONPATH": str(TESTS), "COLUMNS": "100"}
RUN = [sys.executable, "-m", "amplify.main", "--rounds=1", "--config.train.total_steps=100",
       "--baselines=false", "--config.eval_size=256", "--config.type2.size=0"]


def _metrics(workdir):
  return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


# -- text ---------------------------------------------------------------------------------------

@hypothesis.settings(deadline=None, max_examples=30)
@hypothesis.given(seed=st.integers(0, 10**6))
def test_questions_and_answers_render_and_parse_back(seed):
  for name in ("permutation", "lexicon"):
    config = config_lib.get_config(f"{name}_tiny")
    task, truth = make_task(config)
    inputs = task.deployment_questions(jax.random.key(seed), 8)
    answers = np.asarray(truth.answers(inputs))
    for q, a in zip(np.asarray(inputs.questions), answers):
      text = task.render_question(q)
      assert str(int(q[0])) not in text.split()  # shown as names, never token ids
      assert np.array_equal(task.parse_answer(task.render_answer(a), q), a)
      assert np.array_equal(task.parse_question(text, q), q)
      if name == "lexicon":  # typed as the set's own entities, it is the set again
        entities = " ".join(w.split("[")[0] for w in text.split(": ")[1].split())
        assert np.array_equal(task.parse_question(entities, q), q)
        first = text.split(": ")[1].split()[0]
        with pytest.raises(ValueError, match=r" in this set, not "):
          task.parse_question(first.replace("[b", "[b9"), q)


@pytest.mark.parametrize("task_name, text, message", [
    ("permutation", "sigma^99(a)", "the power must lie in 1..3"),
    ("permutation", "sigma^2(z)", "'z' is not an element; the elements are a to d"),
    ("lexicon", "c9=1", "'c9' is not a class; the classes are c0-c3"),
    ("lexicon", "c0=9", "add up to the set's"),
    ("colored_digits", "class 7", "type the class, 0 or 1"),
])
def test_an_answer_the_task_cannot_read_is_refused_with_the_reason(task_name, text, message):
  config = config_lib.get_config(f"{task_name}_tiny")
  task, _ = make_task(config)
  q = np.asarray(task.deployment_questions(jax.random.key(0), 1).questions[0])
  parse = task.parse_question if text.startswith("sigma") else task.parse_answer
  with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("^", r"\^")):
    parse(text, q)


def test_colored_digits_shows_the_image_and_reads_a_rule_key():
  task, _ = make_task(config_lib.get_config("colored_digits_tiny"))
  q = np.asarray(task.deployment_questions(jax.random.key(0), 1).questions[0])
  text = task.render_question(q)
  assert ("red digit" in text or "green digit" in text) and len(text.splitlines()) == 9
  assert task.parse_key("3 green", q) == 7
  assert task.render_lookup(7, task.class0 + 1) == "digit 3, green: class 1"


# -- a noisy H's slips ----------------------------------------------------------------------------

@pytest.mark.parametrize("task_name", registry.names(registry.TASK_GROUP))
def test_a_noisy_h_slips_into_answers_a_person_could_type(task_name):
  """At error rate 1 every answer is a slip: a draw the task accepts for its question, for every
  task (shortest path's and union find's draws, not knowing the question, were refused for it
  half the time and more, lexicon's nearly always, so H's parse turned those slips into IDK)."""
  task, _ = make_task(config_lib.get_config(f"{task_name}_tiny"))
  questions = task.deployment_questions(jax.random.key(0), 1024).questions

  @dataclasses.dataclass(frozen=True)
  class Sure:  # an H that always answers (IDK is never replaced)
    def answer(self, questions, tools, key):
      return task.random_answers(key, questions.shape[0])

  noisy = scripted.NoisyOracle(Sure(), task, error_rate=1.0)
  slips = jax.jit(lambda k: noisy.answer(questions, None, k))(jax.random.key(1))
  first = task.random_answers(jax.random.split(jax.random.key(1), 3)[2], questions.shape[0])
  # at most the rare row whose every draw was refused (one draw in m fits: (1 - 1/m)**129)
  assert np.mean(task.valid_answers(questions, slips)) >= 0.995
  # a draw the task accepts stands: uniform over the question's answers, as the first draw is
  valid = np.asarray(task.valid_answers(questions, first))
  assert np.array_equal(np.asarray(slips)[valid], np.asarray(first)[valid])


# -- per-question oracles: the same labels as the script, pi's asks batched -----------------------

@pytest.mark.parametrize("task_name, fn", [("permutation", "permutation_by_text"),
                                           ("lexicon", "lexicon_by_text")])
def test_a_function_of_the_rendered_question_labels_as_the_script_does(task_name, fn):
  config, task, mz, policy, competent = helpers.setup_task(task_name)
  inputs = task.deployment_questions(jax.random.key(5), 1024)
  scripted = helpers.amplifier(config, task, mz).label(inputs, policy, competent, jax.random.key(2))
  callable_config = config_lib.get_config(f"{task_name}_tiny", oracle="callable",
                                          **{"oracle.fn": f"oracle_fns:{fn}",
                                             "oracle.in_flight": 128})
  amplifier = helpers.amplifier(callable_config, task, mz)
  calls = []
  ask = amplifier._ask
  amplifier._ask = lambda *a: calls.append(a[-1].shape[0]) or ask(*a)
  labels = amplifier.label(inputs, policy, competent, jax.random.key(2))
  assert np.array_equal(np.asarray(labels.answers), np.asarray(scripted.answers))
  # the same asks, once per distinct question (a repeat in the batch takes the first's answer)
  keys = question_keys(np.asarray(inputs.context), np.asarray(inputs.questions))
  first = sorted({k: i for i, k in reversed(list(enumerate(keys)))}.values())
  asks = labels.cost()["asks"]
  assert asks == int(np.asarray(scripted.transcript.asked)[first].sum()) and asks > 300
  # pi's work is batched across the questions in flight: a few waves per 128 questions, and
  # the rows it runs are the asks (padded to a power of two), not a full batch per ask
  assert len(calls) <= 2 * 8 * (1024 // 128)
  assert sum(calls) <= 2 * asks + 8 * len(calls)


def test_an_ask_past_the_budget_is_idk_and_counted():
  config, task, mz, policy, competent = helpers.setup_task("permutation")
  config = config_lib.get_config("permutation_tiny", oracle="callable",
                                 **{"oracle.fn": "oracle_fns:greedy"})
  inputs = task.deployment_questions(jax.random.key(5), 16)
  labels = helpers.amplifier(config, task, mz).label(inputs, policy, competent, jax.random.key(2))
  assert labels.cost()["budget_overruns"] == 16 * 2 and labels.cost()["asks"] == 16 * 4
  assert np.all(np.asarray(labels.answers) == IDK)


def test_a_batch_oracle_not_compiled_whole_asks_a_compiled_pi(monkeypatch):
  """An oracle with `jittable = False` (H') runs outside one compiled program; pi reaches it
  compiled, so a second batch of the same shape runs none of the policy's code in Python."""
  config, task, mz, policy, competent = helpers.setup_task("permutation")
  calls = []
  policy_call = type(policy).__call__
  monkeypatch.setattr(type(policy), "__call__",
                      lambda self, *args: calls.append(1) or policy_call(self, *args))
  inputs = task.deployment_questions(jax.random.key(5), 64)
  uncompiled = dataclasses.replace(make_oracle(config, task), jittable=False)
  amplifier = Amplifier(uncompiled, mz, task, Budget(4, 4))
  first = amplifier.label(inputs, policy, competent, jax.random.key(2))
  traced = len(calls)
  amplifier.label(inputs, policy, competent, jax.random.key(2))
  assert traced > 0 and len(calls) == traced
  compiled = helpers.amplifier(config, task, mz).label(inputs, policy, competent, jax.random.key(2))
  assert first.cost()["asks"] > 0
  np.testing.assert_array_equal(first.answers, compiled.answers)


def test_a_batch_plugin_oracle_that_says_nothing_of_jit_runs_op_by_op():
  """docs/plugins.md's batch-first oracle, `answer` alone: H^A runs outside jit, the same labels."""
  config, task, mz, policy, competent = helpers.setup_task("lexicon")
  scripted = make_oracle(config, task)

  class Mine:
    def answer(self, questions, tools, key):
      return scripted.answer(questions, tools, key)

  inputs = task.deployment_questions(jax.random.key(5), 64)
  got = Amplifier(Mine(), mz, task, Budget(4, 4)).label(inputs, policy, competent,
                                                         jax.random.key(2))
  want = helpers.amplifier(config, task, mz).label(inputs, policy, competent, jax.random.key(2))
  np.testing.assert_array_equal(np.asarray(got.answers), np.asarray(want.answers))


# -- the answer store -----------------------------------------------------------------------------

def test_a_second_labelling_takes_every_answer_from_the_store(tmp_path):
  config, task, mz, policy, competent = helpers.setup_task("lexicon")
  store = AnswerStore(str(tmp_path / "s.db"), {"task": "lexicon"})
  inputs = task.deployment_questions(jax.random.key(5), 512)
  first = helpers.amplifier(config, task, mz, store).label(inputs, policy, competent, jax.random.key(2))
  again = helpers.amplifier(config, task, mz, store).label(inputs, policy, competent, jax.random.key(2))
  assert np.array_equal(np.asarray(first.answers), np.asarray(again.answers))
  assert again.cost()["answers_reused"] == 512 and again.cost()["oracle_calls"] == 0
  assert first.cost()["oracle_calls"] == len({bytes(np.asarray(q)) for q in inputs.questions})
  # other tools (here: another policy) are other questions to H: nothing is reused
  other = make_policy(task.spec, config.model, jax.random.key(9))
  fresh = helpers.amplifier(config, task, mz, store).label(inputs, other, competent, jax.random.key(2))
  assert fresh.cost()["answers_reused"] == 0


def test_another_budget_or_another_z_star_on_disk_reuses_nothing(tmp_path):
  """The tools version holds H's budget (a person with more asks may answer otherwise) and a z*
  on disk by the digest of its values (its object holds only a path and a shape)."""
  config, task, mz, policy, competent = helpers.setup_task("lexicon")
  spec, inputs = task.spec, task.deployment_questions(jax.random.key(5), 64)
  store = AnswerStore(str(tmp_path / "s.db"), {"task": "lexicon"})
  label = lambda mz, budget: Amplifier(make_oracle(config, task), mz, task, budget, store=store,
                                       identity="scripted").label(inputs, policy, competent,
                                                                  jax.random.key(2)).cost()
  assert label(mz, Budget(4, 4))["oracle_calls"] > 0
  assert label(mz, Budget(4, 4))["answers_reused"] == 64
  assert label(mz, Budget(1, 1))["answers_reused"] == 0
  values = np.asarray(mz.entries) - spec.z_first_token
  write = lambda name, v: zstore.write(str(tmp_path / name), [(0, v)], spec.z_entries,
                                       spec.z_values, spec.z_first_token)
  first, same, other = (write("a", values), write("b", values),
                        write("c", (values + 1) % spec.z_values))
  assert first.digest == same.digest != other.digest
  assert label(first, Budget(4, 4))["oracle_calls"] > 0
  assert label(same, Budget(4, 4))["answers_reused"] == 64  # another path, the same z*
  assert label(other, Budget(4, 4))["answers_reused"] == 0


def test_a_store_of_another_task_or_a_damaged_one_is_refused_untouched(tmp_path):
  path = tmp_path / "s.db"
  AnswerStore(str(path), {"task": "lexicon", "settings": {"num_entities": 32}}).close()
  before = path.read_bytes()
  with pytest.raises(StoreError, match="holds answers for another task"):
    AnswerStore(str(path), {"task": "lexicon", "settings": {"num_entities": 64}})
  assert path.read_bytes() == before
  garbage = tmp_path / "garbage.db"
  garbage.write_bytes(b"not a database" * 100)
  with pytest.raises(StoreError, match="not an answer store"):
    AnswerStore(str(garbage), {"task": "lexicon"})
  assert garbage.read_bytes() == b"not a database" * 100
  for i, tables in enumerate(("t (x)", "meta (name, data)", "meta (key, value)")):  # others'
    other = tmp_path / f"other{i}.db"
    sqlite3.connect(other).execute(f"CREATE TABLE {tables}").connection.commit()
    written = other.read_bytes()
    with pytest.raises(StoreError, match="an SQLite file but not an answer store"):
      AnswerStore(str(other), {"task": "lexicon"})
    assert other.read_bytes() == written  # not even switched to SQLite's write-ahead log
  with pytest.raises(StoreError, match=r"the folder .*nowhere does not exist: create it"):
    AnswerStore(str(tmp_path / "nowhere" / "s.db"), {"task": "lexicon"})
  damaged = tmp_path / "damaged.db"  # a page past the header scribbled over
  damaged.write_bytes(before[:4096] + bytes(range(256)) * 16 + before[8192:])
  with pytest.raises(StoreError, match="damaged, or not an answer store"):
    AnswerStore(str(damaged), {"task": "lexicon", "settings": {"num_entities": 32}})
  assert damaged.read_bytes() == before[:4096] + bytes(range(256)) * 16 + before[8192:]


def test_a_store_damaged_during_a_run_is_one_line_that_does_not_say_resume(tmp_path):
  """SQLite's error at a read or a write, as a damaged file or its disk gives it mid-run: a
  StoreError naming the store, which the run's last line does not tell to resume."""
  path = tmp_path / "s.db"
  store = AnswerStore(str(path), {"task": "lexicon"})

  class Damaged:  # the connection to a file whose pages are scribbled over
    def execute(self, *args):
      raise sqlite3.DatabaseError("database disk image is malformed")
    __enter__ = lambda self: self
    __exit__ = lambda self, *exc: False

  store._db = Damaged()
  message = (rf"--oracle_store={path} cannot be read or written \(database disk image is "
             r"malformed\): restore it from a copy, or pass another path")
  for call in (lambda: store.answers([b"k"], "scripted", "v"), store.events,
               lambda: store.event(b"k", "web", "v", "skip")):
    with pytest.raises(StoreError, match=message):
      call()
  with pytest.raises(loop.RunError) as failed:
    with loop._phase("round 0, labelling"):
      store.answers([b"k"], "scripted", "v")
  line, status = loop.failure(failed.value, str(tmp_path))
  assert status == 1 and "restore it from a copy" in line and "resumes it" not in line


def test_a_run_s_end_commits_the_answers_the_store_was_handed(tmp_path, monkeypatch):
  """`Checked.close` (what `run` does at its end, a Ctrl-C's too; amplify.main then exits by
  os._exit, which runs no atexit) waits for the background writer: a slow commit is not lost."""
  from amplify.loop import setup  # pylint: disable=g-import-not-at-top
  path = tmp_path / "s.db"
  store = AnswerStore(str(path), {"task": "lexicon"})
  insert = AnswerStore._insert
  monkeypatch.setattr(AnswerStore, "_insert", lambda self, *a: time.sleep(0.5) or insert(self, *a))
  store.put_batch([(b"k", np.zeros(2, np.int32), b"t")], "scripted", "v", 0.1)
  closed = []
  setup.Checked(None, types.SimpleNamespace(close=lambda: closed.append(1)), None, store,
                None).close()
  assert closed == [1]
  assert sqlite3.connect(path).execute("SELECT COUNT(*) FROM answers").fetchone() == (1,)


def test_a_store_that_fails_to_commit_is_told_once_and_never_hides_the_run_s_error(
    tmp_path, monkeypatch, capsys):
  from amplify.loop import setup  # pylint: disable=g-import-not-at-top
  store = AnswerStore(str(tmp_path / "s.db"), {"task": "lexicon"})

  def full(self, *args):
    raise sqlite3.OperationalError("database or disk is full")
  monkeypatch.setattr(AnswerStore, "_insert", full)
  referee = types.SimpleNamespace(close=lambda: None)
  for failed in (True, False):
    store.put_batch([(b"k", np.zeros(2, np.int32), b"t")], "scripted", "v", 0.1)
    checked = setup.Checked(None, referee, None, store, None)
    message = (r"writing answers failed \(database or disk is full\): restore the store from a "
               r"copy, or pass another path")
    if failed:  # after the run's own failure: a warning, the run's error is the one raised
      checked.close(failed=True)
      assert re.search(message, capsys.readouterr().err)
    else:
      with pytest.raises(StoreError, match=message):
        checked.close()
    store.flush()  # told once: the process's exit (atexit) finds nothing left to tell


def test_replay_reproduces_a_scripted_runs_labels_exactly(tmp_path):
  # in this process: the answers pass only through the store's file (a new AnswerStore on it)
  common = dict(rounds=2, label_size=512, total_steps=40, baselines=False, eval_size=256,
                type2_size=0, oracle_store=str(tmp_path / "s.db"))
  loop.run(config_lib.get_config("permutation_tiny", **common), str(tmp_path / "a"))
  loop.run(config_lib.get_config("permutation_tiny", oracle="replay", **common),
             str(tmp_path / "b"))
  for r in (0, 1):
    a = np.load(tmp_path / "a" / "transcripts" / f"round_{r}.npz")
    b = np.load(tmp_path / "b" / "transcripts" / f"round_{r}.npz")
    assert np.array_equal(a["answers"], b["answers"])
  lines = [l for l in _metrics(tmp_path / "b") if l["phase"] == "label"]
  assert [(l["replay_misses"], l["answers_reused"], l["oracle_calls"]) for l in lines] == [
      (0, 512, 0)] * 2


def test_replay_of_an_empty_store_is_idk_and_counted(tmp_path):
  config, task, mz, policy, competent = helpers.setup_task("permutation")
  replay = config_lib.get_config("permutation_tiny", oracle="replay")
  store = AnswerStore(str(tmp_path / "s.db"), {"task": "permutation"})
  inputs = task.deployment_questions(jax.random.key(0), 64)
  labels = Amplifier(make_oracle(replay, task), mz, task, Budget(4, 4), store=store,
                     identity="replay").label(inputs, policy, competent, jax.random.key(1))
  assert np.all(np.asarray(labels.answers) == IDK)
  distinct = set(question_keys(np.asarray(inputs.context), np.asarray(inputs.questions)))
  assert labels.cost()["replay_misses"] == len(distinct) > 50


def test_a_run_killed_mid_labelling_loses_no_answer_and_asks_none_twice(tmp_path):
  """Killed (SIGKILL) while its oracle holds after 150 answers of round 0's 512, then run again
  by the same command: every answer given is kept, reused, and no question asked twice."""
  db = tmp_path / "s.db"
  command = [*RUN, "--preset=permutation_tiny", "--oracle=callable",
             "--oracle.fn=oracle_fns:held_permutation_by_text", "--oracle.in_flight=1",
             "--config.label.size=512", f"--oracle_store={db}", f"--workdir={tmp_path / 'w'}"]
  process = subprocess.Popen(command, env={**ENV, "ORACLE_HOLD_AFTER": "150"},
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  def answered():
    try:  # the store's file exists a moment before its tables do
      return sqlite3.connect(db).execute(
          "SELECT count(*) FROM events WHERE kind IN ('answer', 'idk')").fetchone()[0]
    except sqlite3.OperationalError:
      return 0
  deadline = time.time() + 300
  while time.time() < deadline and (not db.exists() or answered() < 150):
    time.sleep(0.2)
  process.send_signal(signal.SIGKILL)
  process.wait()
  answered_before = set(sqlite3.connect(db).execute("SELECT question, answer FROM answers"))
  assert len(answered_before) == 150
  again = subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=600)
  assert again.returncode == 0, again.stderr
  after = set(sqlite3.connect(db).execute("SELECT question, answer FROM answers"))
  assert answered_before <= after  # nothing lost
  twice = sqlite3.connect(db).execute(
      "SELECT count(*) FROM (SELECT question, version FROM events WHERE kind IN ('answer', "
      "'idk') GROUP BY question, version HAVING count(*) > 1)").fetchone()[0]
  assert twice == 0  # no question answered twice with the same tools
  label = [l for l in _metrics(tmp_path / "w") if l["phase"] == "label"][-1]
  assert label["answers_reused"] >= len(answered_before)


# -- the person at the terminal -------------------------------------------------------------------

@hypothesis.settings(deadline=None, max_examples=200)
@hypothesis.given(lines=st.lists(st.one_of(
    st.text(max_size=12),
    st.sampled_from(["a", "l", "=", "x", "u", "n", "?", "ask", "lookup", "answer", "note",
                     "help", "=a", "= b", "l c", "a sigma^2(a)", "a sigma^9(a)", "= zz",
                     "l 7", "a", "n hi", "idk"]),
    st.just(UnicodeDecodeError("utf-8", b"\xe9", 0, 1, "invalid continuation byte"))),
    max_size=30))
def test_random_keystrokes_never_crash_the_interactive_oracle(lines):
  task, _ = make_task(config_lib.get_config("permutation_tiny"))
  keys = helpers.Keys(lines, width=100)
  person = Interactive(InteractiveSettings(), console=keys.console)
  person.begin(task, {"round": 0, "rounds": 1, "questions": 1})
  q = np.asarray(task.deployment_questions(jax.random.key(0), 1).questions[0])
  question = Question(task.render_question(q), q, 1, 0, 2, 2)
  serve = lambda kind, row, payload: (np.asarray([IDK]) if kind == "ask" else task.bit0 - 1)
  result = person.answer_one(question, Tools(task, question, serve, lambda *a: None))
  assert (result is None or result in (SKIP, UNDO, QUIT)
          or (isinstance(result, np.ndarray) and result.shape == (1,)))


def _screen(child, pattern):
  child.expect(pattern, timeout=120)
  return child.after


def _ctrl_c_as_at_a_terminal():
  """The child starts with Ctrl-C's default action, as from a shell: a pytest-xdist worker may
  ignore SIGINT, and an ignored signal stays ignored across exec (Python then installs no
  KeyboardInterrupt handler)."""
  signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_a_person_answers_at_the_terminal_and_nothing_accepted_is_lost(tmp_path):
  db = tmp_path / "s.db"
  command = [*RUN[1:], "--preset=permutation_tiny", "--config.label.size=4", "--oracle=interactive",
             f"--oracle_store={db}", f"--workdir={tmp_path / 'w'}"]
  child = pexpect.spawn(sys.executable, command, env=ENV, encoding="utf-8", timeout=120,
                        dimensions=(40, 100), preexec_fn=_ctrl_c_as_at_a_terminal)
  question = r"sigma\^\d+\(\w\) = \?"
  first = _screen(child, question)
  child.sendline("zz")  # a typo: re-prompted with the reason
  _screen(child, "'zz' is not a command")
  child.sendline("= q")  # an answer the task cannot read
  _screen(child, "'q' is not an element")
  child.sendline("l " + first[first.index("(") + 1])
  _screen(child, r"sigma\(\w\) = \w")
  child.sendline("= a")
  _screen(child, "question 2 of")
  second = _screen(child, question)
  child.sendline("= b")
  _screen(child, "question 3 of")
  child.sendline("u")  # reopen question 2
  _screen(child, "question 2 of")
  assert _screen(child, question) == second
  child.sendline("= c")
  _screen(child, "question 3 of")
  child.sendline("= d")
  _screen(child, "question 4 of")
  _screen(child, "> ")
  child.sendintr()  # Ctrl-C: saved, exit 0
  _screen(child, "every answer given is in")
  child.expect(pexpect.EOF)
  child.close()
  assert child.exitstatus == 0
  rows = sqlite3.connect(db).execute(
      "SELECT kind, payload FROM events WHERE kind IN ('answer', 'undo') ORDER BY id").fetchall()
  assert [k for k, _ in rows] == ["answer", "answer", "undo", "answer", "answer"]
  stored = sorted(sqlite3.connect(db).execute("SELECT answer FROM answers").fetchall())
  assert len(stored) == 3  # a, c, d: the undone b is gone, every accepted answer is there
  # the same command again: the three answers come from the store, one question is left
  child = pexpect.spawn(sys.executable, command, env=ENV, encoding="utf-8", timeout=120,
                        dimensions=(40, 100), preexec_fn=_ctrl_c_as_at_a_terminal)
  _screen(child, r"question 1 of 1 .*from the store: 3")
  child.sendline("x")
  child.expect(pexpect.EOF, timeout=300)
  child.close()
  assert child.exitstatus == 0


def test_another_run_of_the_same_world_and_oracle_traces_h_a_no_more():
  """The referee's task bytes, unpickled once per process, give one task object; H^A's program,
  bound to an equal oracle, task and budget, is found in JAX's cache by a second Amplifier."""
  from amplify.learn import amplifier
  from amplify.truth import referee
  config, task, mz, policy, competent = helpers.setup_task("permutation")
  inputs = task.deployment_questions(jax.random.key(1), 64)
  first = helpers.amplifier(config, task, mz).label(inputs, policy, competent, jax.random.key(2))
  programs = amplifier._compiled(amplifier._amplified_answers, 5)._cache_size()
  again = helpers.amplifier(config, task, mz).label(inputs, policy, competent, jax.random.key(2))
  assert amplifier._compiled(amplifier._amplified_answers, 5)._cache_size() == programs > 0
  np.testing.assert_array_equal(first.answers, again.answers)
  data = pickle.dumps(task)
  assert referee._same_task(data) is referee._same_task(data) is not task


def test_an_answer_store_that_fails_mid_question_stops_the_run_not_the_person_s_input(
    tmp_path, monkeypatch):
  """A look-up whose record the store cannot write ends the labelling with the store's error;
  the person is not told "not accepted" and left to go on spending the budget."""
  config, task, mz, _, _ = helpers.setup_task("lexicon")
  store = AnswerStore(str(tmp_path / "s.db"), {"task": "lexicon"})
  full = StoreError("--oracle_store=s.db cannot be read or written (disk full)")
  monkeypatch.setattr(AnswerStore, "event", lambda self, *a, **k: (_ for _ in ()).throw(full))
  keys = helpers.Keys(["l e0", "l e0", "= 1 0 0 0"], width=120)
  person = Interactive(InteractiveSettings(who="ann"), console=keys.console)
  amplifier = Amplifier(person, mz, task, Budget(4, 4), store=store, identity="interactive")
  with pytest.raises(StoreError, match="disk full"):
    amplifier.label(task.deployment_questions(jax.random.key(0), 2), None, None,
                    jax.random.key(1), progress={"round": 0, "rounds": 1})
  assert "not accepted" not in keys.console.file.getvalue() and len(keys.lines) == 2


def test_a_step_the_task_cannot_render_is_the_oracle_s_error_and_reaches_neither_pi_nor_mz():
  """A subquestion whose tokens are in the vocabulary but not a question, and a key past the
  task's, are refused to the oracle (a ValueError it may catch) before pi or Mz serve them: they
  had failed after, as the run's error, with a line telling the user to resume."""
  task, _ = make_task(config_lib.get_config("permutation_tiny"))
  q = np.asarray(task.deployment_questions(jax.random.key(0), 1).questions[0])
  served = []
  tools = Tools(task, Question(task.render_question(q), q, 1, 0, 2, 2),
                lambda *step: served.append(step), lambda *event: None)
  with pytest.raises(ValueError, match=r"^the task cannot read the look-up key 2147483647 "):
    tools.lookup(2**31 - 1)
  with pytest.raises(ValueError, match=r"^the task cannot read the subquestion "):
    tools.ask(np.full_like(q, q[0]))  # element tokens where the power's bits go
  assert not served and (tools.asks_left(), tools.lookups_left()) == (2, 2)
