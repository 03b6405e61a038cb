"""The answer store: every answer H gives, durable before the next question is shown.

`--oracle_store=PATH` is an SQLite database in WAL mode. An answer is keyed by the question (its
tokens and, in an episodic task, its facts), the oracle's identity (name and settings) and the
version of the tools it answered with (a hash of pi's parameters, the difficulties pi may be
asked about, and Mz): the same question asked of the same H with the same tools gets the same
answer, so a rerun or a resumed run takes it from here instead of asking again. A person's events
(ask, look-up, answer, IDK, skip, undo, note) are committed one transaction each as they happen;
a batch oracle's answers, one transaction per batch.

A store belongs to one task (its name and settings, recorded when the store is created): a store
of another task, or a file that is not such a store, is refused and left as it is.
"""
from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import os
import queue
import sqlite3
import threading
import time

import jax
import numpy as np

from amplify.files.jsonio import WorkdirError

FORMAT = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS answers (
  question BLOB NOT NULL, oracle TEXT NOT NULL, version TEXT NOT NULL,
  answer BLOB NOT NULL, transcript BLOB, seconds REAL, created REAL NOT NULL,
  PRIMARY KEY (question, oracle, version)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
  id INTEGER PRIMARY KEY AUTOINCREMENT, question BLOB, oracle TEXT NOT NULL, version TEXT,
  kind TEXT NOT NULL, payload TEXT, created REAL NOT NULL);
"""
_TABLES = {"meta", "answers", "events"}


class StoreError(WorkdirError):
  """A store that can't be used: another task's, not a store at all, or damaged (the same
  command would fail again: the message names the way out)."""


def question_keys(context: np.ndarray, questions: np.ndarray) -> list[bytes]:
  """One key per row: a digest of the row's facts and question tokens."""
  context, questions = np.asarray(context, np.int32), np.asarray(questions, np.int32)
  return [hashlib.blake2b(c.tobytes() + q.tobytes(), digest_size=16).digest()
          for c, q in zip(context.reshape(len(context), -1), questions)]


def tools_version(*trees) -> str:
  """A digest of every array in `trees` (pi's parameters, competence, Mz): the tools an answer
  was given with."""
  h = hashlib.blake2b(digest_size=8)
  for leaf in jax.tree.leaves(trees):
    if isinstance(leaf, (jax.Array, np.ndarray, np.generic, int, float, bool)):
      a = np.asarray(leaf)
      h.update(str((a.dtype, a.shape)).encode())
      h.update(np.ascontiguousarray(a).tobytes())
    elif isinstance(leaf, str):
      h.update(leaf.encode())
    else:  # an object with no arrays: its kind
      h.update(type(leaf).__qualname__.encode())
  return h.hexdigest()


class AnswerStore:
  """An open store. `task_identity`: what the store must belong to (the task's name and
  settings), a JSON-able dict."""

  def __init__(self, path: str, task_identity: dict):
    self.path = path
    identity = json.dumps(task_identity, sort_keys=True)
    existed = os.path.exists(path) and os.path.getsize(path) > 0
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
      raise StoreError(f"--oracle_store={path}: the folder {folder} does not exist: create it, or "
                       "pass another path.")
    try:
      self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
      # the tables first: another program's SQLite file is refused before anything is written
      tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
      if not existed or tables >= _TABLES:
        self._db.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: a committed event survives the process being killed (kill -9, a crash);
        # FULL would also survive a power cut, at an fsync per event.
        self._db.execute("PRAGMA synchronous=NORMAL")
    except sqlite3.DatabaseError as e:
      raise StoreError(f"--oracle_store={path}: not an answer store ({e}); it was left as it "
                       "is: pass another path.") from None
    if existed and not tables >= _TABLES:
      self._db.close()
      raise StoreError(f"--oracle_store={path}: an SQLite file but not an answer store (tables "
                       f"{sorted(tables)}); it was left as it is: pass another path.")
    self._lock = threading.RLock()  # one connection, used by the caller and the writer thread
    self._writer, self._queue, self._failed = None, queue.Queue(), []
    try:
      if not existed:
        self._db.executescript(_SCHEMA)
      meta = dict(self._db.execute("SELECT key, value FROM meta"))
    except sqlite3.DatabaseError as e:  # a damaged page, or another program's table "meta"
      self._db.close()
      raise StoreError(f"--oracle_store={path}: damaged, or not an answer store ({e}); it was "
                       "left as it is: restore it from a copy, or pass another path.") from None
    if not meta:
      with self._db:
        self._db.execute("BEGIN")
        self._db.executemany("INSERT INTO meta VALUES (?, ?)",
                             [("format", str(FORMAT)), ("task", identity)])
      return
    if meta.get("format") != str(FORMAT):
      self._db.close()
      raise StoreError(f"--oracle_store={path}: store format {meta.get('format')}, this amplify "
                       f"reads {FORMAT}; pass another path.")
    if meta.get("task") != identity:
      self._db.close()
      raise StoreError(f"--oracle_store={path} holds answers for another task ({meta.get('task')}"
                       f", this run is {identity}); it was left as it is: pass another path.")

  def close(self) -> None:
    self.flush()
    self._db.close()

  def flush(self) -> None:
    """Waits until every batch handed to `put_batch` is committed."""
    if self._writer is not None:
      self._queue.join()
      if self._failed:  # told once (the atexit flush finds none left)
        error = self._failed[0]
        self._failed.clear()
        raise StoreError(f"--oracle_store={self.path}: writing answers failed ({error}): restore "
                         "the store from a copy, or pass another path.")

  @contextlib.contextmanager
  def _sql(self):
    """SQLite's failure as a StoreError naming the store (a damaged file, its disk)."""
    try:
      yield
    except sqlite3.DatabaseError as e:
      raise StoreError(f"--oracle_store={self.path} cannot be read or written ({e}): restore it "
                       "from a copy, or pass another path.") from e

  # -- reading ---------------------------------------------------------------------------------
  def answers(self, keys: list[bytes], oracle: str, version: str) -> dict[bytes, tuple]:
    """{key: (answer int32[La], transcript record)} for the keys the store answers (records:
    `amplify.oracles.tools.encode_rows`)."""
    self.flush()
    with self._sql():
      return self._answers(keys, oracle, version)

  def _answers(self, keys: list[bytes], oracle: str, version: str) -> dict[bytes, tuple]:
    found = {}
    if self._db.execute("SELECT 1 FROM answers WHERE oracle=? AND version=? LIMIT 1",
                        (oracle, version)).fetchone() is None:
      return found  # new tools (a new policy): nothing to look for
    for i in range(0, len(keys), 500):  # SQLite's limit on bound parameters
      chunk = keys[i:i + 500]
      rows = self._db.execute(
          f"SELECT question, answer, transcript FROM answers WHERE oracle=? AND version=? AND "
          f"question IN ({','.join('?' * len(chunk))})", [oracle, version, *chunk])
      for question, answer, transcript in rows:
        found[question] = (np.frombuffer(answer, np.int32).copy(), transcript)
    return found

  def events(self) -> list[tuple]:
    self.flush()
    with self._sql():
      return list(self._db.execute("SELECT kind, oracle, version, payload FROM events ORDER BY "
                                   "id"))

  # -- writing ---------------------------------------------------------------------------------
  def put_batch(self, rows: list[tuple[bytes, np.ndarray, bytes]], oracle: str,
                version: str, seconds: float) -> None:
    """A batch oracle's answers, one transaction: rows of (key, answer, transcript record).
    Written by a background thread, so labelling goes on meanwhile: a batch oracle's answers
    are cheap to recompute, unlike a person's (`event` commits before it returns). Reads, `close`
    and the end of the process wait for it."""
    if self._writer is None:
      self._writer = threading.Thread(target=self._write_batches, daemon=True)
      self._writer.start()
      atexit.register(self.flush)
    self._queue.put((rows, oracle, version, seconds))

  def _write_batches(self) -> None:
    while True:
      rows, oracle, version, seconds = self._queue.get()
      try:
        with self._lock:
          self._insert(rows, oracle, version, seconds)
      except Exception as e:  # noqa: BLE001 (reported by flush, in the caller's thread)
        self._failed.append(e)
      finally:
        self._queue.task_done()

  def _insert(self, rows, oracle: str, version: str, seconds: float) -> None:
    now = time.time()
    with self._db:  # its failure is told by `flush`, in the caller's thread
      self._db.execute("BEGIN")
      self._db.executemany(
          "INSERT OR IGNORE INTO answers VALUES (?, ?, ?, ?, ?, ?, ?)",
          sorted((k, oracle, version, np.asarray(a, np.int32).tobytes(), t, seconds, now)
                 for k, a, t in rows))  # in key order: appends to the index, few page splits

  def event(self, key: bytes | None, oracle: str, version: str, kind: str, payload=None,
            answer: np.ndarray | None = None, transcript: bytes | None = None,
            seconds: float | None = None) -> None:
    """One event of a per-question oracle, committed before this returns. kinds "answer" and
    "idk" (with `answer`) also store the answer; "undo" removes it (the event stays)."""
    now = time.time()
    with self._lock, self._sql(), self._db:
      self._db.execute("BEGIN")
      self._db.execute("INSERT INTO events (question, oracle, version, kind, payload, created) "
                       "VALUES (?, ?, ?, ?, ?, ?)",
                       (key, oracle, version, kind, None if payload is None else
                        json.dumps(payload), now))
      if kind in ("answer", "idk"):
        self._db.execute("INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (key, oracle, version, np.asarray(answer, np.int32).tobytes(),
                          transcript, seconds, now))
      elif kind == "undo":
        self._db.execute("DELETE FROM answers WHERE question=? AND oracle=? AND version=?",
                         (key, oracle, version))
