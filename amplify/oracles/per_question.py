"""Per-question oracles: H as plain Python answering one rendered question at a time.

`label_per_question` runs such an oracle over a batch. It answers up to `oracle.in_flight`
questions at once, each in its own thread; whenever every question in flight is waiting on a
tool, the waiting asks go to pi in one batched call and the waiting look-ups to Mz in another
(a "wave"), so labelling B questions costs O(B) policy rows in a handful of calls per question
depth, not one full-batch policy call per ask. With `in_flight == 1` (a person) it runs in the
calling thread, question by question, and serves each ask at once.

Every tool call goes through `Tools`: it parses a typed subquestion or key with the task's
`Text`, enforces the question's budget (an ask or look-up past it returns IDK and counts as an
overrun) and records the transcript. `on_event` sees every event (ask, look-up, answer, IDK, skip,
undo) as it happens: the answer store commits each before the next question is shown.
"""
from __future__ import annotations

import dataclasses
import importlib
import threading
import time
from typing import Callable

import numpy as np

from amplify import registry
from amplify.oracles.base import QUIT, SKIP, UNDO, Question, Reply, answer_problem
from amplify.oracles.tools import handle
from amplify.types import IDK


class OracleError(RuntimeError):
  """An oracle failed or gave an answer the task cannot read: names the oracle and question."""


class Stopped(Exception):
  """The person quit (q, Ctrl-C, end of input): every answer given so far is in the store."""


@dataclasses.dataclass
class RowTranscript:
  """What H did for one question: its asks (subquestion, subanswer) and look-ups (key, value)."""
  asks: list = dataclasses.field(default_factory=list)
  lookups: list = dataclasses.field(default_factory=list)
  overruns: int = 0
  notes: list = dataclasses.field(default_factory=list)  # also events in the store


class Tools:
  """`ask` and `lookup` for one question, within its budget; what a per-question oracle holds."""

  def __init__(self, task, question: Question, serve: Callable, on_event: Callable):
    self._task, self._question, self._serve, self._on_event = task, question, serve, on_event
    self._record = RowTranscript()

  def asks_left(self) -> int:
    return self._question.max_asks - len(self._record.asks)

  def lookups_left(self) -> int:
    return self._question.max_lookups - len(self._record.lookups)

  def handle(self) -> object:
    """What the oracle is handed: `ask` and `lookup`, and, for a person's screen, the budget
    left, the task's reading of a typed answer, and notes; no way to the record or to pi and Mz
    past the budget."""
    return handle(ask=lambda subquestion: self.ask(subquestion),
                  lookup=lambda key: self.lookup(key),
                  asks_left=lambda: self.asks_left(), lookups_left=lambda: self.lookups_left(),
                  parse_answer=lambda text: self.parse_answer(text),
                  note=lambda text: self.note(text))

  def parse_answer(self, text: str):
    """The task's reading of a typed answer to this question (ValueError with the reason)."""
    return self._task.parse_answer(text, self._question.tokens)

  def note(self, text: str) -> None:
    """A note kept with this question's transcript."""
    self._record.notes.append(text)
    self._on_event(self._question.index, "note", {"text": text})

  def ask(self, subquestion) -> Reply:
    tokens = (self._task.parse_question(subquestion, self._question.tokens)
              if isinstance(subquestion, str) else np.asarray(subquestion, np.int32))
    if self.asks_left() <= 0:
      self._record.overruns += 1
      return Reply("IDK (no asks left)", np.full(self._task.spec.answer_len, IDK, np.int32), False)
    answer = np.asarray(self._serve("ask", self._question.index, tokens), np.int32)
    self._record.asks.append((tokens, answer))
    self._on_event(self._question.index, "ask",
                   {"subquestion": self._task.render_question(tokens),
                    "reply": self._task.render_answer(answer)})
    return Reply(self._task.render_answer(answer), answer, not np.any(answer == IDK))

  def lookup(self, key) -> Reply:
    key = (self._task.parse_key(key, self._question.tokens) if isinstance(key, str) else int(key))
    if self.lookups_left() <= 0:
      self._record.overruns += 1
      return Reply("IDK (no look-ups left)", np.asarray([IDK], np.int32), False)
    value = int(self._serve("lookup", self._question.index, key))
    self._record.lookups.append((key, value))
    text = self._task.render_lookup(key, value)
    self._on_event(self._question.index, "lookup", {"key": key, "value": value, "text": text})
    return Reply(text, np.asarray([value], np.int32), value != IDK)


@dataclasses.dataclass
class Outcome:
  answers: np.ndarray  # int32[B, La], IDK where not answered
  transcripts: list  # RowTranscript per row (None: not asked)
  answered: np.ndarray  # bool[B]: the oracle gave an answer (not IDK, not skipped)
  skipped: int


def label_per_question(oracle, task, questions: list[Question], serve_asks: Callable,
                       serve_lookups: Callable, on_event: Callable) -> Outcome:
  """Runs `oracle` on `questions`. serve_asks(rows, subquestions int32[n, Lq]) -> int32[n, La];
  serve_lookups(rows, keys int32[n]) -> int32[n]; on_event(question index, kind, payload)."""
  n, answer_len = len(questions), task.spec.answer_len
  out = Outcome(np.full((n, answer_len), IDK, np.int32), [None] * n, np.zeros(n, bool), 0)
  if n == 0:
    return out
  position = {q.index: i for i, q in enumerate(questions)}

  def finish(i: int, tools: Tools, result, seconds: float) -> None:
    q = questions[i]
    if result is None:
      out.transcripts[i] = tools._record
      on_event(q.index, "idk", {"answer": out.answers[i], "seconds": seconds,
                                "transcript": tools._record})
      return
    if isinstance(result, str):
      try:
        result = task.parse_answer(result, q.tokens)
      except ValueError as e:
        raise OracleError(f"oracle {oracle.name!r} answered {result!r} to question {q.index} "
                          f"({q.text!r}), which the task cannot read: {e}") from None
    answer = np.asarray(result).reshape(-1)
    if answer.shape != (answer_len,):
      raise OracleError(f"oracle {oracle.name!r} answered question {q.index} ({q.text!r}) with "
                        f"{answer.shape[0]} tokens; the task's answers have {answer_len}.")
    if (problem := answer_problem(answer[None], 1, task.spec, q.index)) is not None:
      raise OracleError(f"oracle {oracle.name!r} gave {problem} ({q.text!r}): fix the oracle; "
                        "every answer before it is saved")
    answer = answer.astype(np.int32)
    out.answers[i], out.transcripts[i] = answer, tools._record
    out.answered[i] = not np.any(answer == IDK)
    on_event(q.index, "answer", {"answer": answer, "seconds": seconds,
                                 "transcript": tools._record})

  if getattr(oracle, "in_flight", 1) <= 1:
    _run_inline(oracle, task, questions, out, finish, serve_asks, serve_lookups, on_event)
  else:
    _run_in_waves(oracle, task, questions, position, finish, serve_asks, serve_lookups, on_event)
  return out


def _call(oracle, question: Question, tools: Tools):
  try:
    return oracle.answer_one(question, tools.handle())
  except (Stopped, OracleError, KeyboardInterrupt):
    raise
  except Exception as e:
    raise OracleError(f"oracle {oracle.name!r} raised {type(e).__name__}: {e} on question "
                      f"{question.index} ({question.text!r})") from e


def _run_inline(oracle, task, questions, out, finish, serve_asks, serve_lookups, on_event):
  """One question at a time in this thread (a person): asks served at once; SKIP, UNDO, QUIT."""
  serve = lambda kind, row, payload: (serve_asks([row], np.asarray(payload)[None])[0]
                                      if kind == "ask" else
                                      serve_lookups([row], np.asarray([payload]))[0])
  done: list[int] = []  # positions answered this run, in order (what UNDO walks back)
  i = 0
  while i < len(questions):
    tools = Tools(task, questions[i], serve, on_event)
    t0 = time.time()
    result = _call(oracle, questions[i], tools)
    if isinstance(result, str) and result == QUIT:
      raise Stopped()
    if isinstance(result, str) and result == SKIP:
      out.skipped = len(questions) - i
      on_event(questions[i].index, "skip", {"rest_of_batch": out.skipped})
      return
    if isinstance(result, str) and result == UNDO:
      if done:
        i = done.pop()
        out.answers[i], out.answered[i], out.transcripts[i] = IDK, False, None
        on_event(questions[i].index, "undo", None)
      continue
    finish(i, tools, result, time.time() - t0)
    done.append(i)
    i += 1


def _run_in_waves(oracle, task, questions, position, finish, serve_asks, serve_lookups, on_event):
  """Up to oracle.in_flight questions at once, each in a thread; pending asks (and look-ups)
  are served in one batched call whenever every live thread is waiting on one."""
  lock = threading.Lock()
  all_waiting = threading.Condition(lock)  # notified when no live thread is running oracle code
  pending: list[dict] = []
  state = {"running": 0, "next": 0, "error": None}
  event_lock = threading.Lock()

  def locked_event(*args):
    with event_lock:
      on_event(*args)

  def stop_running():  # called with the lock held
    state["running"] -= 1
    if state["running"] == 0:
      all_waiting.notify()

  def serve(kind, row, payload):
    request = {"kind": kind, "row": row, "payload": payload, "done": threading.Event()}
    with lock:
      pending.append(request)
      stop_running()
    request["done"].wait()
    if "error" in request:
      raise request["error"]
    return request["result"]

  def worker():
    while True:
      with lock:
        if state["error"] is not None or state["next"] >= len(questions):
          stop_running()
          return
        i = state["next"]
        state["next"] += 1
      tools = Tools(task, questions[i], serve, locked_event)
      t0 = time.time()
      try:
        result = _call(oracle, questions[i], tools)
        if isinstance(result, str) and result in (SKIP, UNDO, QUIT):
          raise OracleError(f"oracle {oracle.name!r} returned {result!r}: only a person's "
                            "oracle (in_flight 1) may skip, undo or quit.")
        with event_lock:
          finish(i, tools, result, time.time() - t0)
      except BaseException as e:  # noqa: BLE001 (handed to the calling thread)
        with lock:
          state["error"] = state["error"] or e
          stop_running()
        return

  workers = [threading.Thread(target=worker, daemon=True)
             for _ in range(min(oracle.in_flight, len(questions)))]
  state["running"] = len(workers)
  for w in workers:
    w.start()
  while True:
    with lock:
      while state["running"] > 0:
        all_waiting.wait()
      wave, pending[:] = list(pending), []
      if not wave:
        break
      state["running"] += len(wave)  # each request's thread runs again once served
    for kind, serve_fn in (("ask", serve_asks), ("lookup", serve_lookups)):
      part = [r for r in wave if r["kind"] == kind]
      if not part:
        continue
      try:
        results = serve_fn([r["row"] for r in part], np.stack([np.asarray(r["payload"])
                                                               for r in part]))
        for r, result in zip(part, results):
          r["result"] = result
      except BaseException as e:  # noqa: BLE001
        for r in part:
          r["error"] = e
    for r in wave:
      r["done"].set()
  for w in workers:
    w.join()
  if state["error"] is not None:
    raise state["error"]


# -- the built-in per-question oracles ---------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class CallableSettings:
  fn: str = ""  # module:function, answer(question, tools) -> text, tokens or None (IDK)
  in_flight: int = 256  # questions answered at once (pi's asks are batched across them)

  def __post_init__(self):
    if self.in_flight < 1:
      raise ValueError(f"--oracle.in_flight={self.in_flight}: must be >= 1.")


@dataclasses.dataclass(frozen=True)
class CallableOracle:
  """Any Python function in H's place: fn(question: Question, tools) -> the answer as text the
  task parses, answer tokens, or None (IDK). `tools.ask(text or tokens)` and
  `tools.lookup(text or key)` return a `Reply` (text, tokens, known)."""
  fn: Callable
  in_flight: int
  name: str = "callable"
  jittable: bool = False

  @staticmethod
  def load(settings: CallableSettings) -> "CallableOracle":
    module, _, attr = settings.fn.partition(":")
    if not module or not attr:
      raise ValueError(f"--oracle.fn={settings.fn!r}: name the function as module:function "
                       "(e.g. --oracle.fn=my_lab.oracles:answer).")
    try:
      fn = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
      raise ValueError(f"--oracle.fn={settings.fn}: {e}; is the module on PYTHONPATH?") from None
    if not callable(fn):
      raise ValueError(f"--oracle.fn={settings.fn}: {type(fn).__name__} is not callable.")
    return CallableOracle(fn, settings.in_flight)

  def answer_one(self, question: Question, tools):
    return self.fn(question, tools)


@dataclasses.dataclass(frozen=True)
class ReplaySettings:
  source: str = "scripted"  # whose stored answers to replay: an oracle identity in the store


@dataclasses.dataclass(frozen=True)
class ReplayOracle:
  """Answers only from the answer store (the answers `source` gave with the same tools); a
  question the store does not answer is IDK, counted as `replay_misses`."""
  source: str
  name: str = "replay"
  jittable: bool = False
  needs_store: str = "answers only from the answer store"


CALLABLE = registry.OraclePlugin(lambda task, settings, human: CallableOracle.load(settings),
                                 CallableSettings)
REPLAY = registry.OraclePlugin(lambda task, settings, human: ReplayOracle(settings.source),
                               ReplaySettings)
