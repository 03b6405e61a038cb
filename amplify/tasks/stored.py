"""Rows of D too many to hold in memory: generated a block at a time, written once to chunked
arrays on disk (zarr, by TensorStore, as a z* on disk: `amplify.learn.zstore`), and read back a
run of rows at a time (a block, or a sample's run of a few rows).

A world's D is stored under $AMPLIFY_DATA_DIR (default ~/.cache/amplify/data), in a folder named
by the task and a one-way fingerprint of its settings and world key, so a run of the same world
(a rerun, a resume) reads the D already written instead of making it again. It is written to a
folder of its own and renamed into place when whole: a D that was being written when its run was
killed is never read, and is made again (the killed writer's folder is removed then). D holds
observations, never the true world: what the run's process may read.
"""
from __future__ import annotations

import dataclasses
import functools
import glob
import hashlib
import json
import os
import shutil

import jax
import numpy as np
import tensorstore as ts

from amplify.learn import zstore

DONE = "rows.json"  # written last: what the folder holds
CHUNK = 1 << 16  # rows a chunk on disk holds: a run of a few rows reads little more than itself


def data_dir() -> str:
  return os.environ.get("AMPLIFY_DATA_DIR") or os.path.join(
      os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
      "amplify", "data")


def path_for(name: str, settings, key: jax.Array) -> str:
  """Where the world of `key` with these settings keeps its D."""
  fingerprint = hashlib.blake2b(
      repr(sorted(dataclasses.asdict(settings).items())).encode()
      + np.asarray(jax.random.key_data(key)).tobytes(), digest_size=8).hexdigest()
  return os.path.join(data_dir(), f"{name}-{fingerprint}")


@functools.lru_cache(maxsize=32)
def _column(path: str) -> ts.TensorStore:
  return ts.open(zstore.zarr_spec(path), open=True, read=True).result()


@dataclasses.dataclass(frozen=True)
class StoredRows:
  """`rows` rows of named columns (one zarr array each) in the folder `path`. Holds only the
  names: it pickles as a few bytes."""
  path: str
  rows: int
  columns: tuple[str, ...]

  def read(self, start: int, stop: int) -> dict[str, np.ndarray]:
    """Rows start .. stop - 1 of every column."""
    return {c: _column(os.path.join(self.path, c))[start:stop].read().result()
            for c in self.columns}


def store(path: str, columns: dict[str, type], rows: int, blocks) -> StoredRows:
  """The rows at `path`, written now from `blocks` (an iterable of (first row, {column: array}),
  together covering rows 0 .. rows - 1; drawn only if needed) unless a whole copy is there."""
  stored = StoredRows(path, rows, tuple(columns))
  if _whole(path, stored):
    return stored
  for left in glob.glob(f"{glob.escape(path)}.partial-*"):  # by writers that were killed
    if not _alive(left.rsplit("-", 1)[-1]):
      shutil.rmtree(left, ignore_errors=True)
  partial = f"{path}.partial-{os.getpid()}"
  try:
    arrays = {c: zstore.create(os.path.join(partial, c), rows, min(CHUNK, rows), t)
              for c, t in columns.items()}
    for start, block in blocks:
      for c, values in block.items():
        arrays[c][start:start + len(values)].write(np.asarray(values, columns[c])).result()
    with open(os.path.join(partial, DONE), "w") as f:
      json.dump(_contents(stored), f)
    shutil.rmtree(path, ignore_errors=True)  # a copy that is not whole (`_whole` said so)
    os.rename(partial, path)
    _column.cache_clear()  # a reader opened before holds the old arrays' shape and chunks
  except (OSError, ValueError) as e:  # TensorStore's errors are ValueErrors
    shutil.rmtree(partial, ignore_errors=True)
    if _whole(path, stored):  # another process wrote it first
      return stored
    raise ValueError(f"cannot write D to {path} ({e}): set $AMPLIFY_DATA_DIR to a folder with "
                     f"room for it.") from None
  return stored


def _alive(pid: str) -> bool:
  try:
    os.kill(int(pid), 0)
  except ProcessLookupError:
    return False
  except (ValueError, OSError):  # not a pid, or another user's process
    return True
  return True


def _contents(stored: StoredRows) -> dict:
  return {"rows": stored.rows, "columns": list(stored.columns), "chunk": CHUNK}


def _whole(path: str, stored: StoredRows) -> bool:
  try:
    with open(os.path.join(path, DONE)) as f:
      return json.load(f) == _contents(stored)
  except (OSError, ValueError):
    return False
