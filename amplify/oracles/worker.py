"""The worker process a per-question oracle of a user's runs in: the oracle here, the ledger not.

`python -m amplify.oracles.worker FD` (started by `amplify.oracles.channel`): FD is its end of a
socket to the run. The run sends the oracle (a function named module:function, imported here by
name, or a pickled plug-in oracle), then the questions to answer; each runs in a thread of its
own. The tools an oracle holds send every `ask` and `lookup` over the socket and wait for the
reply: the run serves them through its `Tools`, which enforce the budget and record the
transcript. Nothing else of the run is in this process (it imports no JAX and no task), so no
walk of the handle's closures, the stack or the garbage collector can reset a budget or read
pi or Mz unrecorded: all there is to find is the socket, and the run checks every message on it.

Messages to the run are JSON (the run never unpickles what an oracle could shape); from the run,
pickles (this side trusts the run).
"""
from __future__ import annotations

import functools
import importlib
import json
import os
import pickle
import queue
import signal
import sys
import threading

import numpy as np

from amplify.oracles.question import Reply, handle

TOOLS = ("ask", "lookup", "asks_left", "lookups_left", "parse_answer", "note")
_ERRORS = {"ValueError": ValueError, "TypeError": TypeError}  # the tools' errors, raised again


def load(target):
  """The function that answers one question: ("fn", "module:function") imported by name, or
  ("object", a pickled oracle) whose `answer_one` it is."""
  kind, value = target
  if kind == "object":
    return pickle.loads(value).answer_one
  module, _, attr = value.partition(":")
  fn = functools.reduce(getattr, attr.split("."), importlib.import_module(module))
  if not callable(fn):
    raise TypeError(f"{value} is a {type(fn).__name__}, not a function")
  return fn


def wire(value):
  """An answer, subquestion or key as JSON holds it: text, None, or (nested) numbers."""
  if value is None or isinstance(value, str):
    return value
  array = np.asarray(value)
  if array.dtype.kind not in "biuf":
    raise TypeError(type(value).__name__)
  return array.tolist()


class _Question:
  """One question's end of the channel: one call at a time, and closed once it is answered."""

  def __init__(self):
    self.lock, self.replies, self.closed = threading.Lock(), queue.Queue(), False


class Channel:
  """The socket, shared by the questions in flight; each call waits for its own reply."""

  def __init__(self, conn):
    self._conn, self._send_lock, self._open = conn, threading.Lock(), {}

  def send(self, *message) -> None:
    data = json.dumps(message).encode()
    with self._send_lock:
      self._conn.send_bytes(data)

  def call(self, slot: int, name: str, arg=None):
    question = self._open.get(slot)
    if question is None:
      raise RuntimeError("this question is answered: its tools are closed")
    with question.lock:
      self.send("call", slot, name, arg)
      ok, value = question.replies.get()
    if not ok:
      raise _ERRORS.get(value[0], RuntimeError)(value[1])
    return value

  def tools(self, slot: int) -> object:
    """What the oracle holds for question `slot`: these functions, each a message to the run."""
    self._open[slot] = _Question()
    reply = lambda value: Reply(value[0], np.asarray(value[1], np.int32), bool(value[2]))
    return handle(ask=lambda subquestion: reply(self.call(slot, "ask", wire(subquestion))),
                  lookup=lambda key: reply(self.call(slot, "lookup", wire(key))),
                  asks_left=lambda: self.call(slot, "asks_left"),
                  lookups_left=lambda: self.call(slot, "lookups_left"),
                  parse_answer=lambda text: np.asarray(self.call(slot, "parse_answer", str(text)),
                                                       np.int32),
                  note=lambda text: self.call(slot, "note", str(text)))

  def answer(self, answer_one, slot: int, question) -> None:
    """Runs the oracle on one question (in a thread of its own) and sends what came of it."""
    tools = self.tools(slot)
    try:
      result = answer_one(question, tools)
    except BaseException as e:  # noqa: BLE001 (reported to the run, which stops)
      self._open.pop(slot, None)
      self.send("raised", slot, type(e).__name__, (str(e).strip().splitlines() or [""])[0])
      return
    self._open.pop(slot, None)
    try:
      self.send("done", slot, wire(result))
    except (TypeError, ValueError):  # an object JSON cannot hold
      self.send("bad", slot, type(result).__name__)

  def reply(self, slot: int, ok: bool, value) -> None:
    if slot in self._open:
      self._open[slot].replies.put((ok, value))


def serve(conn, answer_one) -> None:
  """Answers the run's questions until it says stop or goes away: each "start" runs a question
  in a thread, each "reply" wakes the question that waits on it."""
  channel = Channel(conn)
  with conn:  # closed on the way out: in a thread of the run, nothing else would
    while True:
      try:
        message = pickle.loads(conn.recv_bytes())
      except (EOFError, OSError):
        return
      if message[0] == "start":
        threading.Thread(target=channel.answer, args=(answer_one, *message[1:]),
                         daemon=True).start()
      elif message[0] == "reply":
        channel.reply(*message[1:])
      else:
        return


def main() -> None:
  from multiprocessing.connection import Connection
  signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the run's to handle: it ends this
  conn = Connection(int(sys.argv[1]))
  init = pickle.loads(conn.recv_bytes())
  sys.path[:] = init["path"]
  try:
    answer_one = load(init["target"])
  except BaseException as e:  # noqa: BLE001 (reported to the run)
    Channel(conn).send("failed", f"{type(e).__name__}: {e}")
  else:
    Channel(conn).send("ready")
    serve(conn, answer_one)
  sys.stdout.flush()
  sys.stderr.flush()
  os._exit(0)  # the oracle's own threads, if any are left, end with the process


if __name__ == "__main__":
  main()
