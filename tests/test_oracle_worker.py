"""A user's per-question oracle runs in a worker process of its own (issue 22, point 8): it is
stopped after its time limit, a crash is one line and loses no answer, its budget is out of its
reach, and pi's work is still batched. Also: a batch oracle's list, and the person's screen."""
import json
import os
import sqlite3

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from amplify.files.store import AnswerStore, StoreError
from amplify.learn.amplifier import Amplifier, Budget
from amplify.learn.mz import ExactIndex
from amplify.oracles.interactive import Interactive, InteractiveSettings
from amplify.oracles.per_question import QUIT, CallableOracle, CallableSettings, OracleError
from amplify.types import Inputs

import helpers
import oracle_fns


@pytest.fixture
def log(tmp_path, monkeypatch):
  """What the oracles in oracle_fns log from their worker ($ORACLE_LOG), read back."""
  path = tmp_path / "oracle.log"
  monkeypatch.setenv("ORACLE_LOG", str(path))
  return lambda: [json.loads(line) for line in path.read_text().splitlines()]


def _label(permutation, fn, n=16, budget=Budget(4, 4), store=None, round_=3, **settings):
  task, policy, competent = permutation
  oracle = CallableOracle.load(CallableSettings(fn=f"oracle_fns:{fn}", **settings))
  amplifier = Amplifier(oracle, ExactIndex(), task, budget, store=store, identity=fn)
  inputs = task.deployment_questions(jax.random.key(5), n)
  return amplifier.label(inputs, policy, competent, jax.random.key(2),
                         progress={"round": round_, "rounds": 5}), inputs


def _one_line(error, round_=3) -> str:
  text = str(error.value)
  assert "\n" not in text and text.startswith(f"oracle 'callable' in round {round_} "), text
  return text


def test_a_callable_runs_in_a_worker_that_holds_no_jax_and_its_asks_are_batched(permutation,
                                                                                log):
  labels, _ = _label(permutation, "where_am_i", n=64, in_flight=16)
  records = log()
  assert len(records) == 64 and {r["pid"] for r in records} != {os.getpid()}
  assert len({r["pid"] for r in records}) == 1 and not any(r["jax"] for r in records)
  assert labels.cost()["asks"] > 0  # and the labels match the script's (tests/test_oracles.py)


def test_an_oracle_that_never_returns_is_stopped_with_the_question_round_and_limit(permutation,
                                                                                   log):
  with pytest.raises(OracleError) as raised:  # a time limit that failed would hang the suite
    _label(permutation, "hangs_on_2", in_flight=4, timeout_s=1.0)
  text = _one_line(raised)
  assert "took more than 1 s on question 2 (" in text and "--oracle.timeout_s=2" in text
  pid = log()[0]["pid"]
  with pytest.raises(ProcessLookupError):  # the worker is gone
    os.kill(pid, 0)


def test_an_exception_in_the_oracle_is_one_line_naming_oracle_round_and_question(permutation):
  with pytest.raises(OracleError) as raised:
    _label(permutation, "raises_on_2", in_flight=1)
  text = _one_line(raised)
  assert "raised ValueError: the remote model said no on question 2 ('sigma^" in text


def test_a_worker_that_dies_is_one_line_and_the_answers_before_it_are_kept(permutation,
                                                                           tmp_path):
  store = AnswerStore(str(tmp_path / "s.db"), {"task": "permutation"})
  with pytest.raises(OracleError) as raised:
    _label(permutation, "dies_on_5", store=store, in_flight=1)
  text = _one_line(raised)
  assert "died: its worker process exited (code 3) while answering question 5 (" in text
  kept = sqlite3.connect(tmp_path / "s.db").execute("SELECT count(*) FROM answers").fetchone()[0]
  assert kept == 5  # questions 0..4
  # the same labelling with an oracle that does not die takes those five from the store
  task = permutation[0]
  again = Amplifier(CallableOracle.load(CallableSettings(fn="oracle_fns:permutation_by_text")),
                    ExactIndex(), task, Budget(4, 4), store=store, identity="dies_on_5")
  labels = again.label(task.deployment_questions(jax.random.key(5), 16), permutation[1],
                       permutation[2], jax.random.key(2))
  assert labels.cost()["answers_reused"] == 5 and labels.cost()["oracle_calls"] == 11


def test_an_answer_that_is_no_answer_or_a_missing_function_is_one_line(permutation):
  with pytest.raises(OracleError) as raised:
    _label(permutation, "answers_an_object")
  assert "with a object: an answer is text the task parses, tokens, or None" in _one_line(raised)
  with pytest.raises(OracleError) as raised:
    _label(permutation, "no_such_function")
  assert ("could not start in its worker process: AttributeError: module 'oracle_fns' has no "
          "attribute 'no_such_function'") in _one_line(raised)
  with pytest.raises(ValueError, match=r"no module named 'no_such_module'; is the module on "):
    CallableOracle.load(CallableSettings(fn="no_such_module:answer"))
  with pytest.raises(ValueError, match=r"--oracle.timeout_s=0: must be > 0"):
    CallableSettings(fn="oracle_fns:greedy", timeout_s=0)


def test_an_oracle_cannot_reach_its_budget_from_the_worker(permutation, log):
  """resets_its_budget walks its handle's closures, their __self__, the garbage collector and
  the handle's referents for the ledger behind its tools, resets the record and reads Mz
  through it unrecorded. In this process that works (the control); in its worker there is no
  ledger to find, and every look-up it makes is counted."""
  budget, n = Budget(2, 2), 8
  labels, _ = _label(permutation, "resets_its_budget", n=n, budget=budget, in_flight=4)
  records = log()
  assert len(records) == n
  for r in records:
    assert r["found"] == {"closure": 0, "self": 0, "gc": 0, "referents": 0}, r
    assert r["resets"] == r["unrecorded"] == r["known_after"] == 0
  cost = labels.cost()
  assert cost["lookups"] == 2 * n and cost["budget_overruns"] == 4 * n

  # the control: the same function holding the tools a person at this terminal holds (inline)
  task, policy, competent = permutation

  class Inline:
    name, in_flight, in_process, person = "inline", 1, True, True

    def answer_one(self, question, tools):
      return oracle_fns.resets_its_budget(question, tools)

  Amplifier(Inline(), ExactIndex(), task, budget).label(
      task.deployment_questions(jax.random.key(5), 2), policy, competent, jax.random.key(2))
  control = log()[n:]
  assert all(r["found"]["closure"] and r["found"]["gc"] and r["found"]["referents"]
             for r in control)
  assert all(r["unrecorded"] and r["known_after"] == 2 for r in control)  # escaped in process


# -- a batch oracle's answers that are not an array -----------------------------------------

class _ListOracle:
  name = "lister"
  jittable = False

  def __init__(self, spec):
    self.spec = spec

  def answer(self, questions, tools, key):
    return [[1] * self.spec.answer_len for _ in range(questions.shape[0])]


def test_a_batch_oracle_that_returns_a_list_is_one_line_naming_it_and_the_cause(permutation):
  task = permutation[0]
  amplifier = Amplifier(_ListOracle(task.spec), ExactIndex(), task, Budget(4, 4))
  with pytest.raises(OracleError) as raised:
    amplifier.label(task.deployment_questions(jax.random.key(0), 8), None, None,
                    jax.random.key(1), progress={"round": 1, "rounds": 2})
  text = str(raised.value)
  assert "\n" not in text and text.startswith(
      "oracle 'lister' in round 1 returned a list, not an int32[8, 1] array")


# -- the person's screen ----------------------------------------------------------------------

def _person(task, store, lines):
  keys = helpers.Keys(lines, width=120)
  amplifier = Amplifier(Interactive(InteractiveSettings(), console=keys.console), ExactIndex(),
                        task, Budget(2, 2), store=store, identity="interactive(who=person)")
  return keys, amplifier


def test_the_screen_counts_store_answers_only_and_numbers_rounds_from_0(permutation, tmp_path):
  from amplify.oracles.per_question import Stopped
  task = permutation[0]
  store = AnswerStore(str(tmp_path / "s.db"), {"task": "permutation"})
  four = task.deployment_questions(jax.random.key(0), 4)
  inputs = Inputs(jnp.concatenate([four.context] * 2), jnp.concatenate([four.questions] * 2))
  keys, amplifier = _person(task, store, ["x", "x", "q"])  # two answered, then quit
  with pytest.raises(Stopped):
    amplifier.label(inputs, None, None, jax.random.key(1), progress={"round": 0, "rounds": 5})
  assert all(h.startswith("round 0 of 5  ") for h in keys.headers())
  assert "question 1 of 4 " in keys.headers()[0] and "from the store: 0)" in keys.headers()[0]
  keys, amplifier = _person(task, store, ["x", "x"])  # the two left
  labels = amplifier.label(inputs, None, None, jax.random.key(1),
                           progress={"round": 0, "rounds": 5})
  assert labels.cost()["answers_reused"] == 4  # two questions, each twice in the batch
  assert "question 1 of 2 " in keys.headers()[0] and "from the store: 4)" in keys.headers()[0]


def test_the_screen_recounts_answered_after_an_undo(permutation):
  from amplify.oracles.per_question import Stopped
  task = permutation[0]
  keys, amplifier = _person(task, None, ["= a", "u", "= b", "q"])
  with pytest.raises(Stopped):
    amplifier.label(task.deployment_questions(jax.random.key(0), 4), None, None,
                    jax.random.key(1), progress={"round": 2, "rounds": 5})
  shown = [(h.split("question ")[1].split(" of")[0], h.split("answered ")[1].split()[0])
           for h in keys.headers()]
  assert shown == [("1", "0"), ("2", "1"), ("1", "0"), ("2", "1")]


def test_an_undo_with_nothing_to_undo_says_so_and_restores_no_budget(permutation):
  """`u` before any answer of this session reopens nothing and restores no budget; a question
  an undo reopens starts afresh, its history and budget both (as on the web pages)."""
  from amplify.oracles.per_question import Stopped
  task = permutation[0]
  keys, amplifier = _person(task, None, ["l a", "u", "= a", "l b", "u", "= b", "= c", "q"])
  with pytest.raises(Stopped):
    amplifier.label(task.deployment_questions(jax.random.key(0), 4), None, None,
                    jax.random.key(1), progress={"round": 0, "rounds": 1})
  screen = keys.console.file.getvalue()
  assert "nothing to undo: no question answered in this session" in screen
  budgets = [line.split("  [")[0] for line in screen.splitlines()
             if line.startswith("budget left")]
  assert [b.split(", ")[1] for b in budgets] == [
      "2 look-ups", "1 look-ups", "1 look-ups",  # question 1; `u`: nothing to undo
      "2 look-ups", "1 look-ups",  # question 2, then `u` reopens question 1
      "2 look-ups", "2 look-ups", "2 look-ups"]  # 1 and 2 afresh; question 3


def test_a_lambda_runs_in_threads_of_this_process_with_its_asks_batched_as_in_a_worker(
    permutation):
  task, policy, competent = permutation
  inputs = task.deployment_questions(jax.random.key(5), 64)
  here = CallableOracle(lambda q, tools: oracle_fns.permutation_by_text(q, tools), 16)
  named = CallableOracle(oracle_fns.permutation_by_text, 16)  # imported by name in a worker
  assert here.in_process and not named.in_process
  assert named.worker_target() == ("fn", "oracle_fns:permutation_by_text")
  labels = [Amplifier(o, ExactIndex(), task, Budget(4, 4)).label(inputs, policy, competent,
                                                                  jax.random.key(2))
            for o in (here, named)]
  np.testing.assert_array_equal(labels[0].answers, labels[1].answers)
  assert labels[0].cost() == labels[1].cost() and labels[0].cost()["asks"] > 0


def test_a_function_of_this_process_answering_one_at_a_time_is_no_person(permutation):
  """A lambda with in_flight 1 runs in this process but behind the channel, as any callable: it
  may not quit the run (a person's `<quit>`, taken from it, had ended the run as stopped)."""
  task = permutation[0]
  quits = CallableOracle(lambda question, tools: QUIT, 1)
  with pytest.raises(OracleError, match="only a person's oracle may skip, undo or quit"):
    Amplifier(quits, ExactIndex(), task, Budget(2, 2)).label(
        task.deployment_questions(jax.random.key(0), 4), None, None, jax.random.key(1))


def test_a_store_that_fails_on_a_callable_s_note_stops_the_run_not_the_oracle(
    permutation, tmp_path, monkeypatch):
  """The store's failure behind a user's oracle's tool is the run's one line, not an error handed
  to the oracle (which could catch it and go on, the note lost)."""
  store = AnswerStore(str(tmp_path / "s.db"), {"task": "permutation"})
  full = StoreError("--oracle_store=s.db cannot be read or written (disk full)")
  monkeypatch.setattr(AnswerStore, "event", lambda self, key, oracle, version, kind, *a, **k:
                      (_ for _ in ()).throw(full) if kind == "note" else None)
  seen = []

  def notes(question, tools):
    try:
      tools.note("hello")
    except Exception as e:  # noqa: BLE001 (what the oracle is handed, if anything)
      seen.append(e)

  task = permutation[0]
  with pytest.raises(StoreError, match="disk full"):
    Amplifier(CallableOracle(notes, 1), ExactIndex(), task, Budget(2, 2), store=store,
              identity="notes").label(task.deployment_questions(jax.random.key(0), 3), None,
                                      None, jax.random.key(1))
  assert not seen
