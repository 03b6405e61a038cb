"""Per-question oracles: H as plain Python answering one rendered question at a time.

`label_per_question` runs such an oracle over a batch. A person (`person = True`: the terminal)
answers in the calling thread, question by question, each ask served at once; a person alone
may skip, undo or quit. Every other per-question oracle runs behind a channel
(`amplify.oracles.channel`): a user's oracle in a worker process of its own that holds nothing
but the channel, `oracle.in_flight` questions at once, their waiting asks served in batched waves.

Every tool call goes through `Tools`: it parses a typed subquestion or key with the task's
`Text`, enforces the question's budget (an ask or look-up past it returns IDK and counts as an
overrun) and records the transcript. `on_event` sees every event (ask, look-up, answer, IDK, skip,
undo) as it happens: the answer store commits each before the next question is shown.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import operator
import time
from typing import Callable

import numpy as np

from amplify import registry
from amplify.files.jsonio import WorkdirError
from amplify.oracles import channel
from amplify.oracles.base import answer_problem
from amplify.oracles.question import (QUIT, SKIP, UNDO, OracleError, Question, Reply,  # noqa: F401
                                      Stopped, handle)
from amplify.oracles.channel import TIMEOUT_S
from amplify.types import IDK


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
    step = self.begin("ask", subquestion)
    return step if isinstance(step, Reply) else self.end(
        "ask", step, self._serve("ask", self._question.index, step))

  def lookup(self, key) -> Reply:
    step = self.begin("lookup", key)
    return step if isinstance(step, Reply) else self.end(
        "lookup", step, self._serve("lookup", self._question.index, step))

  def begin(self, kind: str, arg):
    """An ask's subquestion tokens (a look-up's key) to serve, or the IDK `Reply` past the
    budget; ValueError or TypeError where the task cannot read `arg`."""
    if kind == "ask":
      tokens = (self._task.parse_question(arg, self._question.tokens) if isinstance(arg, str)
                else np.asarray(arg))
      if tokens.shape != (self._task.spec.question_len,):
        raise ValueError(f"a subquestion is {self._task.spec.question_len} tokens, not "
                         f"{tokens.shape}")
      vocab = self._task.spec.vocab_size
      if tokens.dtype.kind not in "iu" or np.any((tokens < 0) | (tokens >= vocab)):
        raise ValueError(f"a subquestion's tokens are integers 0..{vocab - 1}, not {tokens}")
      tokens = tokens.astype(np.int32)
      _shown("subquestion", tokens, self._task.render_question, tokens)
      if self.asks_left() > 0:
        return tokens
      self._record.overruns += 1
      return Reply("IDK (no asks left)", np.full(self._task.spec.answer_len, IDK, np.int32), False)
    key = (self._task.parse_key(arg, self._question.tokens) if isinstance(arg, str)
           else operator.index(arg))  # an integer: a float is refused, not truncated
    if not 0 <= key < 2**31:
      raise ValueError(f"a look-up key is an integer 0..2**31 - 1, not {key}")
    _shown("look-up key", key, self._task.render_lookup, key, IDK)
    if self.lookups_left() > 0:
      return key
    self._record.overruns += 1
    return Reply("IDK (no look-ups left)", np.asarray([IDK], np.int32), False)

  def end(self, kind: str, payload, value) -> Reply:
    """Records what pi (Mz) gave for `payload`, from `begin`, and returns it as the oracle's."""
    if kind == "ask":
      answer = np.asarray(value, np.int32)
      self._record.asks.append((payload, answer))
      self._on_event(self._question.index, "ask",
                     {"subquestion": self._task.render_question(payload),
                      "reply": self._task.render_answer(answer)})
      return Reply(self._task.render_answer(answer), answer, not np.any(answer == IDK))
    value = int(value)
    self._record.lookups.append((payload, value))
    text = self._task.render_lookup(payload, value)
    self._on_event(self._question.index, "lookup", {"key": payload, "value": value, "text": text})
    return Reply(text, np.asarray([value], np.int32), value != IDK)


def _shown(what: str, value, render: Callable, *args) -> None:
  """A ValueError, for the oracle, where the task cannot render a step it is to record (a
  subquestion whose tokens are in the vocabulary but not a question, a key past the task's)."""
  try:
    render(*args)
  except Exception as e:  # noqa: BLE001 (the task's own rendering: any error is the step's)
    raise ValueError(f"the task cannot read the {what} {np.asarray(value).tolist()} "
                     f"({type(e).__name__}: {e})") from None


@dataclasses.dataclass
class Outcome:
  answers: np.ndarray  # int32[B, La], IDK where not answered
  transcripts: list  # RowTranscript per row (None: not asked)
  answered: np.ndarray  # bool[B]: the oracle gave an answer (not IDK, not skipped)
  skipped: int


def runs_in_process(oracle) -> bool:
  """The person at the terminal (built in, trusted) and a function of the calling program that
  no worker could import by name run in this process; every other per-question oracle runs in a
  worker process of its own (`amplify.oracles.channel`)."""
  return bool(getattr(oracle, "in_process", False))


def label_per_question(oracle, task, questions: list[Question], serve_asks: Callable,
                       serve_lookups: Callable, on_event: Callable, where: str = "") -> Outcome:
  """Runs `oracle` on `questions`. serve_asks(rows, subquestions int32[n, Lq]) -> int32[n, La];
  serve_lookups(rows, keys int32[n]) -> int32[n]; on_event(question index, kind, payload);
  where: how errors name the oracle ("oracle 'NAME' in round R ")."""
  n, answer_len = len(questions), task.spec.answer_len
  out = Outcome(np.full((n, answer_len), IDK, np.int32), [None] * n, np.zeros(n, bool), 0)
  if n == 0:
    return out
  where = where or f"oracle {oracle.name!r} "

  def finish(i: int, tools: Tools, result, seconds: float, who: dict | None = None) -> None:
    """who: what names the person in the store's event ({"who": name}), where several answer."""
    q = questions[i]
    if result is None:
      out.transcripts[i] = tools._record
      on_event(q.index, "idk", {"answer": out.answers[i], "seconds": seconds,
                                "transcript": tools._record} | (who or {}))
      return
    if isinstance(result, str):
      try:
        result = task.parse_answer(result, q.tokens)
      except ValueError as e:
        raise OracleError(f"{where}answered {result!r} to question {q.index} ({q.text!r}), which "
                          f"the task cannot read: {e}") from None
    answer = np.asarray(result).reshape(-1)
    if answer.shape != (answer_len,):
      raise OracleError(f"{where}answered question {q.index} ({q.text!r}) with "
                        f"{answer.shape[0]} tokens; the task's answers have {answer_len}.")
    if (problem := answer_problem(answer[None], 1, task.spec, q.index)) is not None:
      raise OracleError(f"{where}gave {problem} ({q.text!r}): fix the oracle; every answer before "
                        "it is saved")
    answer = answer.astype(np.int32)
    out.answers[i], out.transcripts[i] = answer, tools._record
    out.answered[i] = not np.any(answer == IDK)
    on_event(q.index, "answer", {"answer": answer, "seconds": seconds,
                                 "transcript": tools._record} | (who or {}))

  def reopen(i: int, payload=None) -> None:  # a person's undo: the answer taken back
    out.answers[i], out.answered[i], out.transcripts[i] = IDK, False, None
    on_event(questions[i].index, "undo", payload)

  in_process = runs_in_process(oracle)
  if hasattr(oracle, "label_batch"):  # many people at once (`amplify.oracles.web`)
    out.skipped = oracle.label_batch(
        questions, lambda i, events: Tools(task, questions[i], None, events), serve_asks,
        serve_lookups, finish, reopen, on_event)
  elif getattr(oracle, "person", False):  # the terminal's: one question at a time, here
    _run_inline(oracle, task, questions, out, finish, reopen, serve_asks, serve_lookups,
                on_event, where)
  else:
    unserved = lambda *args: None  # the channel serves asks through `begin` and `end`
    channel.run(oracle, questions, lambda i: Tools(task, questions[i], unserved, on_event),
                finish, serve_asks, serve_lookups, where, in_process)
  return out


def _call(oracle, question: Question, tools: Tools, where: str):
  try:
    return oracle.answer_one(question, tools.handle())
  except (Stopped, OracleError, KeyboardInterrupt, WorkdirError):  # the last: the store's
    raise
  except Exception as e:
    raise OracleError(f"{where}raised {type(e).__name__}: {e} on question {question.index} "
                      f"({question.text!r})") from e


def _run_inline(oracle, task, questions, out, finish, reopen, serve_asks, serve_lookups, on_event,
                where):
  """One question at a time in this thread (a person): asks served at once; SKIP, UNDO, QUIT."""
  serve = lambda kind, row, payload: (serve_asks([row], np.asarray(payload)[None])[0]
                                      if kind == "ask" else
                                      serve_lookups([row], np.asarray([payload]))[0])
  done: list[int] = []  # positions answered this run, in order (what UNDO walks back)
  i = 0
  while i < len(questions):  # a reopened question starts afresh, as on the web pages
    tools = Tools(task, questions[i], serve, on_event)
    t0 = time.time()
    result = _call(oracle, questions[i], tools, where)
    if isinstance(result, str) and result == QUIT:
      raise Stopped()
    if isinstance(result, str) and result == SKIP:
      out.skipped = len(questions) - i
      on_event(questions[i].index, "skip", {"rest_of_batch": out.skipped})
      return
    if isinstance(result, str) and result == UNDO:
      if done:
        i = done.pop()
        reopen(i)
      continue
    finish(i, tools, result, time.time() - t0)
    done.append(i)
    i += 1


# -- the built-in per-question oracles ---------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class CallableSettings:
  fn: str = ""  # module:function, answer(question, tools) -> text, tokens or None (IDK)
  in_flight: int = 256  # questions answered at once (pi's asks are batched across them)
  timeout_s: float = TIMEOUT_S  # seconds one question may take (waits on pi not counted)

  def __post_init__(self):
    if self.in_flight < 1:
      raise ValueError(f"--oracle.in_flight={self.in_flight}: must be >= 1.")
    if not self.timeout_s > 0:
      raise ValueError(f"--oracle.timeout_s={self.timeout_s}: must be > 0 (seconds per question).")


@dataclasses.dataclass(frozen=True)
class CallableOracle:
  """Any Python function in H's place: fn(question: Question, tools) -> the answer as text the
  task parses, answer tokens, or None (IDK). `tools.ask(text or tokens)` and
  `tools.lookup(text or key)` return a `Reply` (text, tokens, known).

  fn: "module:function", or a function. It runs in a worker process of its own, which imports
  it by name and holds only the channel to the tools: its budget and transcript are out of its
  reach, a question it never finishes is stopped after `timeout_s`, and a crash stops the run
  with one line. A function no worker can import by name (a lambda, a closure, one of
  `__main__`) is the calling program's own code and runs in this process instead."""
  fn: Callable | str
  in_flight: int
  timeout_s: float = TIMEOUT_S
  name: str = "callable"
  jittable: bool = False

  @staticmethod
  def load(settings: CallableSettings) -> "CallableOracle":
    """Checks that the module is there without running it: only the worker imports it."""
    module, _, attr = settings.fn.partition(":")
    if not module or not attr:
      raise ValueError(f"--oracle.fn={settings.fn!r}: name the function as module:function "
                       "(e.g. --oracle.fn=my_lab.oracles:answer).")
    try:
      found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError) as e:
      raise ValueError(f"--oracle.fn={settings.fn}: {e}; is the module on PYTHONPATH?") from None
    if not found:
      raise ValueError(f"--oracle.fn={settings.fn}: no module named {module!r}; is the module on "
                       "PYTHONPATH?")
    return CallableOracle(settings.fn, settings.in_flight, settings.timeout_s)

  @property
  def in_process(self) -> bool:
    return self.worker_target() is None

  def worker_target(self) -> tuple[str, str] | None:
    """("fn", "module:function") for the worker to import; None for a function it cannot."""
    if isinstance(self.fn, str):
      return ("fn", self.fn)
    module, name = getattr(self.fn, "__module__", None), getattr(self.fn, "__qualname__", "<")
    if not module or module == "__main__" or "<" in name:
      return None
    try:
      found = importlib.import_module(module)
      for part in name.split("."):
        found = getattr(found, part)
    except (ImportError, AttributeError):
      return None
    return ("fn", f"{module}:{name}") if found is self.fn else None

  def answer_one(self, question: Question, tools):
    return self.fn(question, tools)  # in this process: a lambda or closure of the caller's


@dataclasses.dataclass(frozen=True)
class ReplaySettings:
  source: str = "scripted"  # whose stored answers to replay: an oracle identity in the store


@dataclasses.dataclass(frozen=True)
class ReplayOracle:
  """Answers only from the answer store (the answers `source` gave with the same tools); a
  question the store does not answer is IDK, counted as `replay_misses`. Built in: it runs no
  oracle code, so it stays in this process."""
  source: str
  name: str = "replay"
  jittable: bool = False
  needs_store: str = "answers only from the answer store"


CALLABLE = registry.OraclePlugin(lambda task, settings, human: CallableOracle.load(settings),
                                 CallableSettings)
REPLAY = registry.OraclePlugin(lambda task, settings, human: ReplayOracle(settings.source),
                               ReplaySettings)
