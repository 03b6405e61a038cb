"""The run's end of a per-question oracle's channel: questions out, asks served in waves.

A per-question oracle of a user's (a `callable`, a plug-in) runs in a worker process of its own
(`amplify.oracles.worker`), started fresh (`python -m`, no fork of this process, which holds
JAX) for each batch. This side keeps `in_flight` questions open there and holds each one's
`Tools`: a message from the worker is an ask, a look-up or another tool call for one open
question, or its answer. An ask or look-up waits; whenever every open question waits on one,
the waiting asks go to pi in one batched call and the look-ups to Mz in another (a "wave"), so
labelling B questions costs O(B) policy rows in a handful of calls per question depth.

Each question may take `timeout_s` seconds (the oracle's, else 60) of the oracle's own time (its
waits on a wave not counted); past that, or when the worker raises, sends what the protocol does
not allow, or dies, the worker is ended and the run stops with one line naming the oracle, the
round and the question. Answers given before it have already gone to `on_event` (the answer store).

A function of the calling program that no worker can import by name (a lambda, a closure) runs
the same way in threads of this process: it is that program's own code.
"""
from __future__ import annotations

import dataclasses
import json
import multiprocessing
import pickle
import subprocess
import sys
import threading
import time

import numpy as np

from amplify.files.jsonio import WorkdirError
from amplify.oracles import worker as worker_lib
from amplify.oracles.question import QUIT, SKIP, UNDO, OracleError, Reply

TIMEOUT_S = 60.0  # seconds of its own time a per-question oracle may take on one question
START_S = 120.0  # at least this long for a worker to import its oracle (a model may load)


class Worker:
  """The oracle's side: a process of its own, or (`in_process`) a thread of this one."""

  def __init__(self, oracle, where: str, in_process: bool):
    self.conn, child = multiprocessing.Pipe()  # a socket pair
    self.process, self.where = None, where
    if in_process:  # the thread closes its end when it stops (`worker.serve`)
      threading.Thread(target=worker_lib.serve, args=(child, oracle.answer_one),
                       daemon=True).start()
      return
    target = oracle.worker_target() if hasattr(oracle, "worker_target") else None
    if target is None:
      try:
        target = ("object", pickle.dumps(oracle))
      except Exception as e:
        raise OracleError(f"{where}runs in a worker process of its own and cannot be sent there "
                          f"({type(e).__name__}: {e}): keep its state in plain fields and its "
                          "class at a module's top level") from None
    self.process = subprocess.Popen([sys.executable, "-m", "amplify.oracles.worker",
                                     str(child.fileno())], pass_fds=(child.fileno(),),
                                    stdin=subprocess.DEVNULL)
    child.close()
    try:
      self.send("init", {"path": list(sys.path), "target": target})
      limit = max(START_S, getattr(oracle, "timeout_s", TIMEOUT_S))
      first = self.receive(lambda: limit, where)
      if first is None:
        raise OracleError(f"{where}did not start: its worker process took more than {limit:g} "
                          "s to import the oracle")
      if first[:1] == ["failed"]:
        raise OracleError(f"{where}could not start in its worker process: {first[1]} (is its "
                          "module on PYTHONPATH?)")
    except BaseException:
      self.close(ok=False)
      raise

  def send(self, *message) -> None:
    """To the worker; one that died is the oracle's error, naming it."""
    try:
      self.conn.send_bytes(pickle.dumps(dict(message[1]) if message[0] == "init" else message))
    except OSError as e:
      code = self._end(kill=True)
      raise OracleError(f"{self.where}died: its worker process exited (code {code}) while the "
                        f"run was answering it ({e.strerror or e})") from None

  def _end(self, kill: bool) -> int | None:
    """Waits for the worker process (killing it if `kill`, or if it will not end); its exit
    code."""
    if self.process is None:
      return None
    if kill:
      self.process.kill()
    try:
      return self.process.wait(timeout=5)
    except subprocess.TimeoutExpired:  # e.g. its socket half-closed while it goes on
      self.process.kill()
      return self.process.wait()

  def receive(self, timeout, where: str, open_questions=list):
    """The next message (a JSON list), or None if none came within timeout() seconds (called
    only when none is there yet); open_questions() names the questions if the worker died."""
    try:
      if not self.conn.poll(0) and not self.conn.poll(max(timeout(), 0.0)):
        return None
      message = json.loads(self.conn.recv_bytes())
    except (EOFError, OSError):
      open_questions = open_questions()
      code = self._end(kill=False)
      on = (f" while answering question {open_questions[0].index} ({open_questions[0].text!r})"
            + (f" and {len(open_questions) - 1} more" if len(open_questions) > 1 else "")
            if open_questions else "")
      raise OracleError(f"{where}died: its worker process exited (code {code}){on}") from None
    except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth
      message = None
    if not isinstance(message, list) or not message:
      raise OracleError(f"{where}sent its worker's channel a message that is not the protocol's")
    return message

  def close(self, ok: bool) -> None:
    """Ends the other side: asked to stop once the batch is done, killed after an error."""
    if ok:
      try:
        self.conn.send_bytes(pickle.dumps(("stop",)))
      except OSError:
        pass
    self._end(kill=not ok)
    self.conn.close()


@dataclasses.dataclass
class _Open:
  """A question open in the worker."""
  position: int  # in the batch's question list (the slot the worker names)
  tools: object  # its `Tools`: budget and transcript
  started: float
  since: float | None  # when the oracle last got control of it (None: waiting on a wave)
  used: float = 0.0  # seconds of the oracle's own time spent on it
  request: tuple | None = None  # (kind, payload) waiting on the wave


def _wired(value):
  if isinstance(value, Reply):
    return (value.text, np.asarray(value.tokens).tolist(), bool(value.known))
  return value.tolist() if isinstance(value, np.ndarray) else value


def run(oracle, questions, make_tools, finish, serve_asks, serve_lookups, where: str,
        in_process: bool) -> None:
  """Answers `questions` with `oracle` behind a channel; finish(position, tools, result,
  seconds) takes each answer as it comes."""
  limit = float(getattr(oracle, "timeout_s", TIMEOUT_S))
  worker = Worker(oracle, where, in_process)
  ok = False
  try:
    _serve(oracle, worker, questions, make_tools, finish, serve_asks, serve_lookups, where, limit)
    ok = True
  finally:
    worker.close(ok)


def _serve(oracle, worker, questions, make_tools, finish, serve_asks, serve_lookups, where,
           limit):
  in_flight = max(1, getattr(oracle, "in_flight", 1))
  open_: dict[int, _Open] = {}
  next_ = waiting = 0  # waiting: open questions with a request for the next wave
  protocol = lambda what: OracleError(f"{where}sent {what}, which its channel does not allow: "
                                      "a worker speaks only for the questions open in it")
  while True:
    while len(open_) < in_flight and next_ < len(questions):
      now = time.time()
      open_[next_] = _Open(next_, make_tools(next_), now, now)
      worker.send("start", next_, questions[next_])
      next_ += 1
    if not open_:
      return
    if waiting == len(open_):
      _wave(worker, open_, questions, serve_asks, serve_lookups)
      waiting = 0
      continue
    running = lambda: [o for o in open_.values() if o.request is None]
    left = lambda: min(limit - o.used - (time.time() - o.since) for o in running())
    message = worker.receive(left, where, lambda: [questions[p] for p in sorted(open_)])
    now = time.time()
    if message is None:
      late = [o for o in running() if o.used + now - o.since >= limit]
      if late:
        q = questions[late[0].position]
        raise OracleError(f"{where}took more than {limit:g} s on question {q.index} ({q.text!r}) "
                          "and was stopped: raise its time limit per question (timeout_s, e.g. "
                          f"--oracle.timeout_s={2 * limit:g}) if it needs longer")
      continue
    kind, slot = message[0], message[1] if len(message) > 1 else None
    o = open_.get(slot) if isinstance(slot, int) else None
    if o is None or o.request is not None:
      raise protocol(f"a {kind!r} message for no question open and running there")
    o.used += now - o.since
    q = questions[o.position]
    if kind == "call" and len(message) == 4 and message[2] in worker_lib.TOOLS:
      name, arg = message[2], message[3]
      try:
        if name in ("ask", "lookup"):
          step = o.tools.begin(name, arg)
          if not isinstance(step, Reply):  # to the next wave
            o.request, o.since = (name, step), None
            waiting += 1
            continue
          value = step
        elif name in ("asks_left", "lookups_left"):
          value = getattr(o.tools, name)()
        else:
          value = getattr(o.tools, name)(str(arg))
        worker.send("reply", slot, True, _wired(value))
      except WorkdirError:  # the answer store failed: the run's error, not the oracle's input
        raise
      except (ValueError, TypeError, OverflowError) as e:  # what the task cannot read
        worker.send("reply", slot, False, (type(e).__name__, str(e)))
      o.since = time.time()
    elif kind == "done" and len(message) == 3:
      del open_[slot]
      result = message[2]
      if isinstance(result, str) and result in (SKIP, UNDO, QUIT):
        raise OracleError(f"{where}returned {result!r}: only a person's oracle may skip, undo or "
                          "quit")
      if isinstance(result, list):
        try:
          result = np.asarray(result)
        except ValueError:
          raise OracleError(f"{where}answered question {q.index} ({q.text!r}) with "
                            f"{str(result)[:60]}, which is not tokens") from None
      finish(o.position, o.tools, result, now - o.started)
    elif kind == "raised" and len(message) == 4:
      raise OracleError(f"{where}raised {message[2]}: {message[3]} on question {q.index} "
                        f"({q.text!r})")
    elif kind == "bad" and len(message) == 3:
      raise OracleError(f"{where}answered question {q.index} ({q.text!r}) with a {message[2]}: "
                        "an answer is text the task parses, tokens, or None (IDK)")
    else:
      raise protocol(f"a message {str(message)[:60]}")


def _wave(worker, open_, questions, serve_asks, serve_lookups) -> None:
  """Every open question waits on a tool: one batched call for the asks, one for the look-ups."""
  waiting = [(slot, o, o.request) for slot, o in open_.items()]
  for kind, serve in (("ask", serve_asks), ("lookup", serve_lookups)):
    part = [(slot, o, payload) for slot, o, (k, payload) in waiting if k == kind]
    if not part:
      continue
    values = serve([questions[o.position].index for _, o, _ in part],
                   np.stack([np.asarray(payload) for _, _, payload in part]))
    for (slot, o, payload), value in zip(part, values):
      reply = o.tools.end(kind, payload, value)
      o.request = None
      worker.send("reply", slot, True, _wired(reply))
      o.since = time.time()
