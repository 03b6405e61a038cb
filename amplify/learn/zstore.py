"""z* on disk: a fitted z* as a chunked array (zarr, written and read by TensorStore, which Orbax
is built on), behind Mz's interface.

`DiskMz.lookup` is what H, pi's view (`MzView`) and type 2 call, inside their compiled programs, as
they call a `TableMz`'s: the keys go to the host (`jax.pure_callback`), which reads the chunks
that hold them through a cache of at most `CACHE_BYTES` of decoded chunks. So z* is never whole
in memory: what a run holds of it is what its questions have read lately. The referee scores it a
chunk at a time (`blocks`).

A run keeps z* in memory (`TableMz`) up to `MEMORY_ENTRIES` entries and on disk past that, in
workdir/checkpoints/zstar: a host round trip per look-up costs more than reading a table that
fits (`experiments/results/zstore/`).
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import os

import jax
import jax.numpy as jnp
import numpy as np
import tensorstore as ts

from amplify.types import IDK

CHUNK = 1 << 20  # entries per chunk on disk
CACHE_BYTES = 64 << 20  # decoded chunks a process keeps in memory, at most
MEMORY_ENTRIES = 1 << 26  # a run's z* past this many entries lives on disk


def zarr_spec(path: str) -> dict:
  return {"driver": "zarr", "kvstore": {"driver": "file", "path": os.path.abspath(path)}}


def create(path: str, length: int, chunk: int, dtype) -> ts.TensorStore:
  """A new one-dimensional zarr array at `path` (one there already is replaced), to write."""
  metadata = {"shape": [length], "chunks": [chunk], "dtype": np.dtype(dtype).str}
  return ts.open(zarr_spec(path) | {"metadata": metadata}, create=True,
                 delete_existing=True).result()


@functools.lru_cache(maxsize=8)
def _store(path: str) -> ts.TensorStore:
  """z* at `path`, opened for reading once per process, with its bounded cache."""
  return ts.open(zarr_spec(path) | {"context": {"cache_pool": {"total_bytes_limit": CACHE_BYTES}}},
                 open=True, read=True).result()


@dataclasses.dataclass(frozen=True)
class DiskMz:
  """A fitted z* on disk: entry i is value `zarr[i]` (the token z_first_token + it); a key
  outside the table reads IDK. Holds only the path and the table's shape: it pickles (to the
  referee) as a few bytes."""
  path: str
  z_entries: int
  z_values: int
  z_first_token: int
  digest: str = ""  # of the values written: the answer store's tools version reads it

  def lookup(self, keys: jax.Array, context: jax.Array) -> jax.Array:
    del context  # a latent world's z* is the same for every example
    return jax.pure_callback(self._read, jax.ShapeDtypeStruct(keys.shape, jnp.int32), keys,
                             vmap_method="broadcast_all")

  def _read(self, keys) -> np.ndarray:
    keys = np.asarray(keys)
    inside = (keys >= 0) & (keys < self.z_entries)
    flat = np.where(inside, keys, 0).reshape(-1)
    values = _store(self.path).vindex[flat].read().result().reshape(keys.shape)
    return np.where(inside, values.astype(np.int32) + self.z_first_token, IDK).astype(np.int32)

  def distribution(self, keys: jax.Array) -> jax.Array:
    """One-hot float32[K, z_values]: z* itself, for scoring the objective at z*."""
    return jax.nn.one_hot(self.lookup(keys, None) - self.z_first_token, self.z_values)

  def blocks(self):
    """z*'s tokens a chunk at a time: (first entry, int32[<= CHUNK])."""
    store = _store(self.path)
    for start in range(0, self.z_entries, CHUNK):
      stop = min(start + CHUNK, self.z_entries)
      yield start, store[start:stop].read().result().astype(np.int32) + self.z_first_token


jax.tree_util.register_dataclass(
    DiskMz, data_fields=[],
    meta_fields=["path", "z_entries", "z_values", "z_first_token", "digest"])


def write(path: str, blocks, z_entries: int, z_values: int, z_first_token: int) -> DiskMz:
  """Writes z* a block at a time (`blocks` yields (first entry, value indices int[n]), together
  covering 0..z_entries - 1) to a new chunked array at `path` (one there already is replaced);
  returns the DiskMz that reads it."""
  dtype = np.uint8 if z_values <= 256 else np.int32
  store, digest = create(path, z_entries, CHUNK, dtype), hashlib.blake2b(digest_size=8)
  for start, values in blocks:
    values = np.asarray(values).astype(dtype)
    digest.update(np.asarray([start], np.int64).tobytes() + values.tobytes())
    store[start:start + len(values)].write(values).result()
  _store.cache_clear()  # a reader opened before holds the old chunks
  return DiskMz(os.path.abspath(path), z_entries, z_values, z_first_token, digest.hexdigest())
