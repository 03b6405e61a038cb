"""Per-round checkpoints: an Orbax CheckpointManager in workdir/checkpoints/, one step per round
(round_R): the distiller's state (pi_R's parameters and the optimiser state), the replay buffer
and the difficulties pi_R is competent at, which is all a later round needs: every RNG key
derives from the seed and the round. A latent world's fitted z* lives apart, in
workdir/checkpoints/prior (the manager reads only round_R folders).

Orbax writes a step into a temporary folder and renames it when whole, so a run killed in a save
leaves no round_R; one damaged later (a file cut short or overwritten) is moved aside when the
run starts, and the run resumes from the round before it. Saves are synchronous and every manager
is closed before its function returns: no Orbax thread outlives a call, even one that fails.

In a run of several processes every process calls each function here at the same point (Orbax's
managers synchronise them), and process 0 alone moves a damaged checkpoint aside."""
from __future__ import annotations

import contextlib
import os

import jax
import numpy as np
import orbax.checkpoint as ocp

from amplify import processes
from amplify.files.jsonio import WorkdirError
from amplify.learn.distill import Distiller, LabelledSet
from amplify.types import Inputs

_REPLAY = ("context", "questions", "labels", "weights")  # a replay's arrays: replay_<name>


def _directory(workdir: str) -> str:
  return os.path.join(os.path.abspath(workdir), "checkpoints")


def check(workdir: str) -> None:
  """Refuses (ValueError, one line) a workdir whose `checkpoints` is not a folder: without this
  the run would find out only at round 0's save, after all its work."""
  if os.path.exists(_directory(workdir)) and not os.path.isdir(_directory(workdir)):
    raise WorkdirError(f"workdir {workdir!r}: checkpoints is a file, not a folder: move it away or "
                       "use a new --workdir")


@contextlib.contextmanager
def _manager(workdir: str, writing: bool = False):
  """The rounds' CheckpointManager, closed on the way out whatever happens. (Not Orbax's
  read_only option when reading: it logs two warnings each time.)"""
  check(workdir)
  options = ocp.CheckpointManagerOptions(
      step_prefix="round", max_to_keep=None, create=writing,
      cleanup_tmp_directories=writing,  # what a killed save left
      enable_async_checkpointing=False)  # a round's save is done when `save` returns
  manager = ocp.CheckpointManager(_directory(workdir), options=options, item_handlers={
      "policy": ocp.StandardCheckpointHandler(), "arrays": ocp.StandardCheckpointHandler(),
      "layout": ocp.JsonCheckpointHandler()})
  try:
    yield manager
  finally:
    manager.close()


def save(workdir: str, r: int, distiller: Distiller, replay: LabelledSet | None,
         competent: np.ndarray, seen: np.ndarray | None = None) -> None:
  """Writes round r's checkpoint, whole when this returns. competent: bool[difficulties]; seen:
  bool[z entries], the keys named by a question pi trained on (None: none tracked).

  Items: `policy` (distiller.state, as its pytree), `arrays` (the replay's arrays, competent,
  seen: numpy) and `layout` (JSON: each array's shape and dtype). Orbax saves no empty array, and a
  latent world's replay context is one (int32[B, 0, 1]): the layout alone holds it."""
  check(workdir)
  arrays = {"competent": np.asarray(competent, bool)}
  if seen is not None:
    arrays["seen"] = np.asarray(seen, bool)
  if replay is not None:
    arrays |= {f"replay_{name}": np.asarray(a) for name, a in zip(_REPLAY, (
        replay.inputs.context, replay.inputs.questions, replay.labels, replay.weights))}
  items = {"policy": ocp.args.StandardSave(distiller.state),
           "layout": ocp.args.JsonSave({name: {"shape": list(a.shape), "dtype": a.dtype.name}
                                        for name, a in arrays.items()})}
  if stored := {name: a for name, a in arrays.items() if a.size}:
    items["arrays"] = ocp.args.StandardSave(stored)
  with _manager(workdir, writing=True) as manager:
    saved = manager.save(r, args=ocp.args.Composite(**items))
    manager.wait_until_finished()
    if not saved:  # Orbax skips a step at or below its latest one
      raise WorkdirError(f"round {r}'s checkpoint was not written: {_directory(workdir)} holds "
                         f"round {manager.latest_step()} already; use a new --workdir")


def _arrays(manager: ocp.CheckpointManager, r: int) -> dict[str, np.ndarray]:
  """Round r's `arrays` item, the empty ones rebuilt from its layout."""
  layout = manager.restore(r, args=ocp.args.Composite(layout=ocp.args.JsonRestore())).layout
  arrays = {name: np.zeros(a["shape"], a["dtype"]) for name, a in layout.items()}
  if stored := {name: a for name, a in arrays.items() if a.size}:
    arrays |= manager.restore(r, args=ocp.args.Composite(
        arrays=ocp.args.StandardRestore(stored))).arrays
  return arrays


def latest_round(workdir: str) -> int | None:
  """The last round with a complete checkpoint (whole as written; see latest_readable_round),
  or None."""
  if not os.path.isdir(_directory(workdir)):
    return None
  with _manager(workdir) as manager:
    return manager.latest_step()


def _move_aside(path: str, error: Exception, fallback: str) -> None:
  """Renames a damaged checkpoint PATH.damaged-N (kept for a look, never read again), with a
  warning naming what the run does instead. (Every process of a run finds the damage; process 0
  moves it.) An error that says another process has gone is no damage: raised again, the
  checkpoint left where it is."""
  if processes.lost_peer(error):
    raise error
  first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
  parent, name = os.path.split(path)
  n = sum(other.startswith(f"{name}.damaged") for other in os.listdir(parent))
  if processes.writes():
    os.rename(path, f"{path}.damaged-{n}")
  print(f"warning: checkpoint {path} is damaged ({first_line[:200]}); moved to "
        f"{path}.damaged-{n}, {fallback}", flush=True)


def set_aside_after(workdir: str, r: int, why: str) -> None:
  """Moves the checkpoints of the rounds after r aside (`_move_aside`, `why` their damage): the
  run goes on from round r's."""
  with _manager(workdir) as manager:
    later = [step for step in manager.all_steps() if step > r]
  for step in sorted(later, reverse=True):
    _move_aside(os.path.join(_directory(workdir), f"round_{step}"), ValueError(why),
                "running that round again")


def latest_readable_round(workdir: str) -> int | None:
  """The last round whose checkpoint reads back whole, or None. A damaged newer one (an empty
  folder, a file cut short or overwritten) is moved aside with a warning: the run falls back to
  the round before it. Every byte is read (into numpy, shaped as the saved metadata says): a
  metadata check alone misses a damaged array file, and no distiller exists yet to restore into."""
  if not os.path.isdir(_directory(workdir)):
    check(workdir)
    return None
  with _manager(workdir) as manager:
    for r in sorted(manager.all_steps(), reverse=True):
      try:
        _arrays(manager, r)
        policy = manager.item_metadata(r)["policy"]
        policy = getattr(policy, "tree", policy)  # Orbax >= 0.11: a TreeMetadata
        if not jax.tree.leaves(policy):
          raise ValueError("it lacks the policy's state")
        target = jax.tree.map(lambda a: np.zeros(a.shape, a.dtype), policy)
        manager.restore(r, args=ocp.args.Composite(policy=ocp.args.StandardRestore(target)))
        return r
      except Exception as e:  # Orbax and the file formats under it raise many kinds
        _move_aside(os.path.join(_directory(workdir), f"round_{r}"), e,
                    "resuming from the round before it")
  return None


def restore(workdir: str, r: int,
            distiller: Distiller) -> tuple[LabelledSet | None, np.ndarray, np.ndarray | None]:
  """Loads round r's state into `distiller` (same architecture and config: its live state is
  the target, shapes, dtypes and shardings); returns the replay buffer, the competent
  difficulties bool[difficulties] and the keys seen in training bool[z entries] (or None)."""
  target = jax.tree.map(ocp.utils.to_shape_dtype_struct, distiller.state)
  with _manager(workdir) as manager:
    arrays = _arrays(manager, r)
    try:
      state = manager.restore(r, args=ocp.args.Composite(
          policy=ocp.args.StandardRestore(target))).policy
    except ValueError as e:  # it read back whole as saved (latest_readable_round): not damage
      raise WorkdirError(f"round {r}'s checkpoint in {_directory(workdir)} holds a policy laid "
                         "out otherwise than this amplify's (an earlier version's): resume it "
                         "with that version, or use a new --workdir") from e
  distiller.load_state(state)
  competent, seen = arrays["competent"].astype(bool), arrays.get("seen")
  seen = None if seen is None else seen.astype(bool)
  if "replay_questions" not in arrays:
    return None, competent, seen
  context, questions, labels, weights = (np.asarray(arrays[f"replay_{n}"]) for n in _REPLAY)
  return LabelledSet(Inputs(context, questions), labels, weights), competent, seen


def _prior(workdir: str) -> str:
  return os.path.join(_directory(workdir), "prior")


def save_prior(workdir: str, values: np.ndarray) -> None:
  """The fitted z* (a latent world's, its entries' value indices: one array on the host, the
  same on every process, what `FittableMz.freeze` reads), in workdir/checkpoints/prior. Written
  to a temporary folder, then renamed. Every process of a run calls it (Orbax writes once)."""
  check(workdir)
  params = np.asarray(values)
  checkpointer = ocp.Checkpointer(ocp.StandardCheckpointHandler())  # synchronous
  try:
    checkpointer.save(_prior(workdir), args=ocp.args.StandardSave({"params": params}),
                      force=True)
  finally:
    checkpointer.close()


def restore_prior(workdir: str, shape: tuple[int, ...]) -> np.ndarray | None:
  """The z* `save_prior` wrote (of `shape`), or None if there are none. A damaged
  checkpoint is moved aside with a warning, and None returned: the run fits z* again (the fit is
  deterministic, so it is the same z* on the same machine)."""
  path = _prior(workdir)
  if not os.path.isdir(path):
    return None
  checkpointer = ocp.Checkpointer(ocp.StandardCheckpointHandler())
  try:
    params = checkpointer.restore(path, args=ocp.args.StandardRestore())["params"]
    if tuple(params.shape) != tuple(shape):
      raise ValueError(f"its z* has shape {tuple(params.shape)}, not {tuple(shape)}")
    return np.asarray(params)
  except Exception as e:  # Orbax and the file formats under it raise many kinds
    _move_aside(path, e, "fitting z* again")
    return None
  finally:
    checkpointer.close()
