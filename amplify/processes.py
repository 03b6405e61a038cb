"""The run's processes: one, or several on JAX's own distributed runtime (`jax.distributed`).

Several processes (on one machine or several) run the same program on the same seed: every
process draws the same questions and holds the same host-side state, and each computes its share
of a batch on its own devices (one mesh spans every device of every process, `amplify.learn.mesh`;
XLA reduces the gradient across them over its CPU collectives, gloo, or NCCL on GPUs). What the
processes must agree on and only one may do is process 0's:
- it alone talks to the referee (ground truth, scores, baselines) and writes the workdir's files;
- what the run reads from the workdir's files (a finished summary, the metrics lines a resumed run
  keeps) it reads, and hands to the others (`shared`), so no process reads a file while process 0
  rewrites it;
- checkpoints are saved, found and restored by all processes together (Orbax synchronises them);
  process 0 alone moves a damaged one aside.

A process that dies ends the others at their next collective (a JAX runtime error: `amplify.main`
prints one line and exits; see `lost_peer`); the run resumes from its last checkpoint when every
process is started again with the same command.
"""
from __future__ import annotations

import os
import pickle

import numpy as np

# The environment under which `jax.distributed.initialize()` finds its settings by itself, and the
# variable that says how many processes there are.
CLUSTERS = {"Slurm": "SLURM_NTASKS", "Open MPI": "OMPI_COMM_WORLD_SIZE"}


def start(coordinator_address: str | None, num_processes: int | None,
          process_id: int | None) -> None:
  """Joins a multi-process run when told to (all three settings given) or when a cluster's
  environment (Slurm, Open MPI) says there are several processes; else does nothing. Raises
  ValueError, naming the flag, for settings that cannot start one."""
  given = {"--coordinator_address": coordinator_address, "--num_processes": num_processes,
           "--process_id": process_id}
  if any(v is not None for v in given.values()):
    if missing := [flag for flag, v in given.items() if v is None]:
      raise ValueError(f"a multi-process run needs --coordinator_address, --num_processes and "
                       f"--process_id together: add {', '.join(missing)}.")
    if not 0 <= process_id < num_processes:
      raise ValueError(f"--process_id={process_id}: processes are numbered 0.."
                       f"{num_processes - 1} (--num_processes={num_processes}).")
    import jax  # pylint: disable=g-import-not-at-top
    try:
      jax.distributed.initialize(coordinator_address, num_processes, process_id)
    except Exception as e:
      raise ValueError(f"process {process_id} could not join the run at --coordinator_address="
                       f"{coordinator_address} ({(str(e).strip().splitlines() or [''])[0]}): "
                       "start process 0 there, or fix the address.") from None
    return
  for cluster, variable in CLUSTERS.items():
    if int(os.environ.get(variable, "1") or 1) > 1:
      import jax  # pylint: disable=g-import-not-at-top
      try:
        jax.distributed.initialize()
      except Exception as e:
        raise ValueError(f"{cluster} says {variable}={os.environ[variable]}, but JAX could not "
                         f"start the processes from its environment ({e}); pass "
                         "--coordinator_address, --num_processes and --process_id.") from None
      return


def several() -> bool:
  """This run has more than one process."""
  import jax  # pylint: disable=g-import-not-at-top  (this module is imported where JAX is not)
  return jax.process_count() > 1


def writes() -> bool:
  """This process writes the workdir (the only one, or process 0 of several)."""
  import jax  # pylint: disable=g-import-not-at-top
  return jax.process_index() == 0


def shared(fn, *args):
  """fn(*args) run on process 0 alone, its value (or the exception it raised) the same on every
  process. Every process calls `shared` at the same point of the program."""
  if not several():
    return fn(*args)
  outcome = None
  if writes():
    try:
      outcome = (True, fn(*args))
    except Exception as e:  # the others raise it too, then process 0 its own (with its traceback)
      _broadcast((False, e))
      raise
  ok, value = _broadcast(outcome)
  if not ok:
    raise value
  return value


def _broadcast(obj):
  """Process 0's `obj` (pickled) on every process. Sizes are padded to a power of two: one
  compiled program per size class."""
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL) if writes() else b""
  n = int(multihost_utils.broadcast_one_to_all(np.int32(len(data))))
  buffer = np.zeros(max(1024, 1 << (n - 1).bit_length()), np.uint8)
  buffer[:len(data)] = np.frombuffer(data, np.uint8)
  return pickle.loads(multihost_utils.broadcast_one_to_all(buffer)[:n].tobytes())


# What a collective's error says when a process it waited for has gone (gloo on CPUs, NCCL on GPUs)
_LOST = ("Connection closed by peer", "Connection reset by peer", "heartbeat timeout",
         "remote process exited")


def lost_peer(error: BaseException | None) -> str | None:
  """In a run of several processes, the one-line reason `error` (or an error it was raised from)
  says another process has gone; None for any other error."""
  import jax  # pylint: disable=g-import-not-at-top
  while error is not None and several():
    if any(sign in str(error) for sign in _LOST):
      return f"another process of this {jax.process_count()}-process run has stopped"
    error = error.__cause__ or error.__context__
  return None
