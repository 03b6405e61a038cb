"""The devices a run computes on: one mesh over every device JAX sees, with one axis, `data`.

Every batch the run computes on (a distillation minibatch, a chunk of questions H^A labels,
the rows pi predicts, type 2's sample) is split over that axis row by row (`split_rows`, in
traced code); parameters, optimiser state, z* and the rows a fit samples its minibatches from
are a copy on each device (`replicate`). XLA's partitioner places the collectives (the sum of the
gradient over devices), so the code is the same for one device and for several, and with one
device it is the single-device program of old: `split_rows` is the identity and `replicate` a
plain `device_put`. `--config.train.shard_params` splits the parameters and optimiser state too
(`place_params`): each array along its longest axis that the devices divide, gathered where a
step needs it.

The axis is JAX's Auto kind, not the Explicit kind `jax.make_mesh` now defaults to. Explicit
axes type each array's sharding and refuse what is ambiguous; inside flax's layers an embedding's
gather with row-split indices is such a case ("use `.at[...].get(out_sharding=)`"), so a policy
could not be traced without rewriting its layers. With Auto axes the constraints on the batch
decide, and the rest follows from them.

With several processes (`amplify.processes`) the mesh spans every device of every process, and
what goes back to the host is made whole first (`whole`).

`--xla_force_host_platform_device_count=N` (in XLA_FLAGS, before JAX starts) gives a CPU N
devices: how the tests check that 1, 2 and 4 devices compute the same thing (tests/test_mesh.py:
1 and 4 in one process; tests/test_processes.py: two processes of 2 against one of 4;
tests/test_lexicon.py: the prior's table over 2).
"""
from __future__ import annotations

import functools

import jax
import numpy as np
from jax.sharding import AxisType, NamedSharding, PartitionSpec

DATA = "data"


@functools.cache
def data_mesh() -> jax.sharding.Mesh:
  """The mesh over every device, its one axis `data`."""
  return jax.make_mesh((jax.device_count(),), (DATA,), axis_types=(AxisType.Auto,))


def rows_sharding(*trailing) -> NamedSharding:
  """Rows split over the devices (`trailing`: how the other axes are split; none by default)."""
  return NamedSharding(data_mesh(), PartitionSpec(DATA, *trailing))


def split_rows(tree):
  """In traced code: every array of `tree` split over the devices by its first axis (rows)."""
  if jax.device_count() == 1:
    return tree
  return jax.lax.with_sharding_constraint(tree, rows_sharding())


def whole(tree):
  """In traced code: a result that goes back to the host, as a copy on every device when the run
  has several processes (each process reads its own copy; a split array spans devices another
  process owns). Within one process, the split result is left as it is: reading it gathers it."""
  if jax.process_count() == 1:
    return tree
  return jax.lax.with_sharding_constraint(tree, NamedSharding(data_mesh(), PartitionSpec()))


def to_host(tree):
  """On the host: `tree`'s arrays as numpy, whole (gathered from every process's devices)."""
  if jax.process_count() == 1:
    return jax.tree.map(np.asarray, tree)
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  return multihost_utils.process_allgather(tree, tiled=True)


def replicate(tree):
  """On the host: `tree`'s arrays as one copy on each device."""
  return place_params(tree, shard=False)


def param_shardings(tree, shard: bool):
  """Each array of `tree` (parameters, optimiser state) as a copy on each device, or, with
  `shard`, split over the devices along its longest axis that their number divides (a copy where
  none does: a scalar, a bias of 6)."""
  devices = jax.device_count()

  def sharding(leaf):
    shape = tuple(getattr(leaf, "shape", ()))
    axes = [a for a, size in enumerate(shape) if size % devices == 0] if shard else []
    if not axes:
      return NamedSharding(data_mesh(), PartitionSpec())
    axis = max(axes, key=lambda a: shape[a])
    return NamedSharding(data_mesh(), PartitionSpec(*[None] * axis, DATA))
  return jax.tree.map(sharding, tree)


def place_params(tree, shard: bool):
  """On the host: parameters (or optimiser state) placed by `param_shardings`."""
  if jax.device_count() == 1:
    return jax.device_put(tree)
  return jax.device_put(tree, param_shardings(tree, shard))


def keep_params(tree, shard: bool):
  """In traced code: parameters (or optimiser state) kept where `param_shardings` puts them."""
  if jax.device_count() == 1:
    return tree
  return jax.lax.with_sharding_constraint(tree, param_shardings(tree, shard))
