"""A batch of questions shared by many people at once: leases, tools, answers (the web oracle's
state; `amplify.oracles.web` puts it in front of a browser).

The run's thread owns everything here. A page (a server thread) never touches the state: it
hands the run's thread an operation (`submit`) and waits for the result, so operations happen
one at a time in the order they came, pi's asks of operations that came together go to pi in one
batched call, and every event is committed to the answer store (`on_event`) before the page that
caused it is served.

A question is leased to one labeller at a time; a lease not acted on within `lease_s` seconds
lapses and the question goes back to the queue (its budget and what was asked so far stay with
the question). An answer to a question keeps the first one: a second, or one from a lapsed lease
the question has since moved on from, is refused with the reason. Skip leaves a question
unanswered in this batch (IDK in this round's labels, not stored: a later run over the same store
that draws it asks it again); undo reopens the labeller's previous answer while the batch is open.
"""
from __future__ import annotations

import dataclasses
import itertools
import queue
import secrets
import threading
import time
from concurrent.futures import Future
from typing import Callable

import numpy as np

from amplify.files.jsonio import WorkdirError
from amplify.oracles.question import Question, Reply

MAX_TEXT = 500  # characters in anything a labeller types
# what a page may ask of the batch, and the arguments each takes after the labeller's name
OPS = {"status": 0, "next": 0, "undo": 0, "idk": 2, "skip": 2, "answer": 3, "note": 3, "ask": 3,
       "lookup": 3, "overview": 0}


class Refused(ValueError):
  """An operation the workspace will not do; `status` is the HTTP status a page answers with."""

  def __init__(self, message: str, status: int = 400):
    super().__init__(message)
    self.status = status


class Closed(Exception):
  """No batch is open (the run is training, or it ended)."""


@dataclasses.dataclass
class Slot:
  """One question of the batch and what has happened to it."""
  question: Question
  tools: object  # its `amplify.oracles.per_question.Tools`: budget, transcript
  state: str = "open"  # open, leased, answered, idk, skipped
  holder: str | None = None
  lease: int = 0  # the lease's number (0: never leased): a form from another lease is stale
  until: float = 0.0
  since: float = 0.0  # when the current holder got it
  held_by: set = dataclasses.field(default_factory=set)
  history: list = dataclasses.field(default_factory=list)  # (kind, what, reply) shown on its page
  answered_by: str | None = None


@dataclasses.dataclass
class Person:
  """One labeller's part in the batch."""
  current: int | None = None
  done: list = dataclasses.field(default_factory=list)  # positions they finished, in order
  answered: int = 0
  idk: int = 0
  skipped: int = 0
  seconds: float = 0.0


def _shown(person: Person) -> dict:
  """A labeller's counts as a page shows them (`done`: how many they finished)."""
  return dataclasses.asdict(person) | {"done": len(person.done)}


def check_text(text, what: str) -> str:
  """What a labeller typed, refused where it is not short printable text."""
  if not isinstance(text, str):
    raise Refused(f"the {what} is not text")
  if len(text) > MAX_TEXT:
    raise Refused(f"the {what} is {len(text)} characters long; at most {MAX_TEXT}")
  if any(not (c.isprintable() or c == " ") for c in text):
    raise Refused(f"the {what} holds characters that are not printable text")
  return text.strip()


class Workspace:
  """The open batch (or none) and the queue of operations the run's thread serves."""

  def __init__(self, lease_s: float):
    self.lease_s = lease_s
    self._lock = threading.Lock()
    self._ops: queue.Queue = queue.Queue()
    self._open = False
    self.slots: list[Slot] = []
    self.people: dict[str, Person] = {}
    self.progress: dict = {}  # round, rounds, reused: what the pages show of the run
    self.examples: dict = {}  # what a person types for each tool (`amplify.types.Text`)
    # lease numbers, unique across this workspace's batches and (from a random start) across
    # processes: a form from an earlier batch, or from before a restart, names a position that
    # may now hold another question, and its lease refuses it
    self._leases = itertools.count(secrets.randbits(40) + 1)

  # -- a page's side ----------------------------------------------------------------------------
  def submit(self, op: str, who: str, *args) -> Future:
    """Hands `op` for `who` to the run's thread: a Future of its result (Refused, Closed)."""
    future: Future = Future()
    with self._lock:
      if not self._open:
        raise Closed()
      self._ops.put((op, who, args, future))
    return future

  @property
  def is_open(self) -> bool:
    return self._open

  # -- the run's side ---------------------------------------------------------------------------
  def label(self, questions: list[Question], make_tools: Callable, serve_asks: Callable,
            serve_lookups: Callable, finish: Callable, reopen: Callable, on_event: Callable,
            progress: dict, status: Callable = lambda text: None) -> int:
    """Serves operations until every question is answered, IDK or skipped; the count skipped.
    make_tools(position, on_event) -> Tools; finish(position, tools, result, seconds) and
    reopen(position) record an answer and take it back; on_event(index, kind, payload);
    status(fn) is handed a function that makes the counts' text (`amplify.views.progress`)."""
    self._finish, self._reopen, self._on_event = finish, reopen, on_event
    self._make_tools = make_tools
    self.slots = [Slot(q, None) for q in questions]
    for i in range(len(questions)):
      self.slots[i].tools = self._tools(i)
    self.people, self.progress = {}, dict(progress)
    self._warm(serve_asks, serve_lookups)
    with self._lock:
      self._open = True

    def counts() -> str:  # made only when a progress line is printed, not at every operation
      c = self._counts()
      return (f"{c['answered']} answered, {c['idk']} IDK, {c['skipped']} skipped of "
              f"{len(self.slots)}; {len(self.people)} labellers")

    status(counts)
    try:
      while not self._finished():
        self._expire(time.time())
        try:
          first = self._ops.get(timeout=0.2)
        except queue.Empty:
          continue
        ops = [first]
        while True:
          try:
            ops.append(self._ops.get_nowait())
          except queue.Empty:
            break
        self._serve(ops, serve_asks, serve_lookups)
    finally:
      with self._lock:
        self._open = False
        while not self._ops.empty():
          self._ops.get_nowait()[3].set_exception(Closed())
    return sum(s.state == "skipped" for s in self.slots)

  def _warm(self, serve_asks: Callable, serve_lookups: Callable) -> None:
    """pi and Mz compile once for each shape a wave of asks can take (8, 16, ... rows: as many as
    labellers act at once, up to the batch, at most 256); each is compiled before the pages open,
    so no labeller waits on a compile. The replies are dropped: nothing is recorded."""
    n, size = len(self.slots), 8
    while True:
      rows = [self.slots[i % n].question.index for i in range(size)]
      serve_asks(rows, np.stack([self.slots[i % n].question.tokens for i in range(size)]))
      serve_lookups(rows, np.zeros(size, np.int32))
      if size >= min(n, 256):
        return
      size *= 2

  def _tools(self, i: int):
    """Fresh tools for question i, whose store events name the labeller holding it."""
    slot = self.slots[i]
    return self._make_tools(i, lambda index, kind, payload: self._on_event(
        index, kind, dict(payload or {}) | {"who": slot.holder}))

  def _finished(self) -> bool:
    return all(s.state in ("answered", "idk", "skipped") for s in self.slots)

  def _expire(self, now: float) -> None:
    for slot in self.slots:
      if slot.state == "leased" and slot.until < now:
        self.people[slot.holder].current = None
        slot.state, slot.holder = "open", None

  def _serve(self, ops: list, serve_asks: Callable, serve_lookups: Callable) -> None:
    """Runs `ops` in order; the asks and look-ups among them wait for one batched call each."""
    waiting: dict[str, list] = {"ask": [], "lookup": []}
    for op, who, args, future in ops:
      try:
        if OPS.get(op) != len(args):
          raise Refused(f"no operation {op!r} of {len(args)} arguments")
        if op == "overview":  # a researcher's: no part in the batch
          future.set_result(self._overview())
          continue
        person = self.people.setdefault(who, Person())
        # an op on a question (all but status, next, undo) while its ask or look-up of this wave
        # waits for pi or Mz: the answer would be kept without that step, or the step land on
        # the question reopened
        if len(args) >= 2 and any(self._at(args[0]) is other
                                  for other, *_ in waiting["ask"] + waiting["lookup"]):
          raise Refused("this question's last step is still being answered; wait for it", 409)
        if op in ("ask", "lookup"):
          slot = self._held(who, *args[:2])
          payload = slot.tools.begin(op, check_text(args[2], "subquestion" if op == "ask"
                                                    else "key"))
          if isinstance(payload, Reply):  # past the budget: IDK, no call
            future.set_result(self._record(slot, op, args[2], payload))
          else:
            waiting[op].append((slot, args[2], payload, future))
          continue
        future.set_result(getattr(self, "_" + op)(who, person, *args))
      except WorkdirError as e:  # the answer store failed: the run's failure, as below
        future.set_exception(e)
        raise
      except (ValueError, TypeError, OverflowError) as e:  # Refused, or the task's parser
        future.set_exception(e if isinstance(e, Refused) else Refused(f"not accepted: {e}"))
      except Exception as e:  # noqa: BLE001 (the run's failure: the page says so, the run stops)
        future.set_exception(e)
        raise
    for op, serve in (("ask", serve_asks), ("lookup", serve_lookups)):
      part = waiting[op]
      if part:
        values = serve([slot.question.index for slot, *_ in part],
                       np.stack([np.asarray(payload) for _, _, payload, _ in part]))
        for (slot, text, payload, future), value in zip(part, values):
          future.set_result(self._record(slot, op, text, slot.tools.end(op, payload, value)))

  def _record(self, slot: Slot, op: str, text: str, reply: Reply) -> Reply:
    slot.history.append((op, text, reply.text))
    slot.until = time.time() + self.lease_s  # acting on a lease keeps it
    return reply

  def _at(self, position) -> Slot | None:
    ok = isinstance(position, int) and 0 <= position < len(self.slots)
    return self.slots[position] if ok else None

  def _held(self, who: str, position, lease) -> Slot:
    """The slot `who` holds under lease number `lease`, or the reason it is not theirs."""
    if (slot := self._at(position)) is None:
      raise Refused("no such question in this batch", 404)
    if slot.state in ("answered", "idk", "skipped"):
      by = "you" if slot.answered_by == who else "another labeller"
      raise Refused(f"this question was already {slot.state} (by {by}); the first answer is "
                    "kept", 409)
    if who not in slot.held_by:
      raise Refused("this question is not leased to you", 403)
    if slot.holder != who or slot.lease != lease:
      if slot.state == "open" and slot.lease == lease:  # lapsed, and nobody took it since
        since = slot.since
        self._lease(who, position)
        slot.since = since  # their time on it counts from when they took it
        return slot
      if slot.holder == who:
        raise Refused("this form is from an older page (an earlier lease, or an earlier batch "
                      "whose question stood here): reload the page", 409)
      raise Refused("your lease on this question ran out and it went to another labeller; "
                    "take the next question", 409)
    return slot

  def _lease(self, who: str, i: int) -> None:
    slot, person = self.slots[i], self.people[who]
    if person.current is not None and person.current != i:
      self._release(person.current)
    now = time.time()
    if slot.holder != who:
      slot.lease = next(self._leases)
      slot.since = now
    slot.state, slot.holder, slot.until = "leased", who, now + self.lease_s
    slot.held_by.add(who)
    person.current = i

  def _release(self, i: int) -> None:
    slot = self.slots[i]
    if slot.state == "leased":
      self.people[slot.holder].current = None
      slot.state, slot.holder = "open", None

  # -- the operations (each returns what the page shows) ---------------------------------------
  def _next(self, who: str, person: Person):
    """The labeller's current question, or the next open one leased to them (None: nothing
    open for them: every question is leased to someone or done)."""
    if person.current is not None and self.slots[person.current].holder == who:
      self.slots[person.current].until = time.time() + self.lease_s
      return self._view(who, person.current)
    for i, slot in enumerate(self.slots):
      if slot.state == "open":
        self._lease(who, i)
        return self._view(who, i)
    return None

  def _view(self, who: str, i: int | None = None) -> dict:
    """What a labeller's page shows: their question, its tools' state and the counts."""
    person = self.people.setdefault(who, Person())
    i = person.current if i is None else i
    out = {"progress": self.progress, "batch": self._counts(), "total": len(self.slots),
           "me": _shown(person), "question": None, "can_undo": bool(person.done),
           "examples": self.examples}
    if i is not None and self.slots[i].holder == who:
      slot = self.slots[i]
      out["question"] = {"position": i, "lease": slot.lease, "text": slot.question.text,
                         "asks_left": slot.tools.asks_left(),
                         "lookups_left": slot.tools.lookups_left(),
                         "history": list(slot.history),
                         "lease_left": max(0, round(slot.until - time.time()))}
    return out

  def _counts(self) -> dict[str, int]:
    """How many of the batch's questions are in each state."""
    states = [s.state for s in self.slots]
    return {k: states.count(k) for k in ("open", "leased", "answered", "idk", "skipped")}

  def _overview(self) -> dict:
    """The batch's counts and each labeller's, for the researcher's page."""
    return {"progress": self.progress, "batch": self._counts(), "total": len(self.slots),
            "people": {who: _shown(p) for who, p in sorted(self.people.items())}}

  def _status(self, who: str, person: Person):
    return self._view(who)

  def _answer(self, who: str, person: Person, position, lease, text):
    slot = self._held(who, position, lease)
    text = check_text(text, "answer")
    if not text:
      raise Refused("an answer is needed (or press IDK)")
    answer = slot.tools.parse_answer(text)  # ValueError with the task's reason
    return self._done(who, person, slot, position, answer, "answered")

  def _idk(self, who: str, person: Person, position, lease):
    return self._done(who, person, self._held(who, position, lease), position, None, "idk")

  def _done(self, who, person, slot, position, answer, state):
    seconds = time.time() - slot.since
    self._finish(position, slot.tools, answer, seconds, {"who": who})
    slot.state, slot.answered_by, slot.holder = state, who, None
    person.current = None
    person.done.append(position)
    person.seconds += seconds
    setattr(person, state, getattr(person, state) + 1)
    return self._next(who, person)

  def _skip(self, who: str, person: Person, position, lease):
    slot = self._held(who, position, lease)
    self._on_event(slot.question.index, "skip", {"who": who})
    slot.state, slot.holder, person.current = "skipped", None, None
    person.skipped += 1
    return self._next(who, person)

  def _note(self, who: str, person: Person, position, lease, text):
    slot = self._held(who, position, lease)
    text = check_text(text, "note")
    if not text:
      raise Refused("a note needs text")
    slot.tools.note(text)
    slot.history.append(("note", "", text))
    return self._view(who, position)

  def _undo(self, who: str, person: Person):
    """Reopens the labeller's previous answer (its store entry removed, its tools fresh)."""
    if not person.done:
      raise Refused("nothing of yours to undo in this batch", 409)
    i = person.done.pop()
    slot = self.slots[i]
    was = slot.state
    person.answered -= was == "answered"
    person.idk -= was == "idk"
    if was in ("answered", "idk"):
      self._reopen(i, {"who": who})
    slot.state, slot.answered_by, slot.history = "open", None, []
    slot.tools = self._tools(i)
    self._lease(who, i)
    return self._view(who, i)
