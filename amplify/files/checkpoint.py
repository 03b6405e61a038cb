"""Per-round checkpoints in workdir/checkpoints/round_R (Orbax): the distiller's state (pi_R's
parameters and the optimiser state), the replay buffer and the difficulties pi_R is competent at,
which is all a later round needs: every RNG key derives from the seed and the round."""
from __future__ import annotations

import os
import re

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from amplify.learn.distill import Distiller, LabelledSet
from amplify.types import Inputs

_ROUND_DIR = re.compile(r"round_(\d+)$")


def _directory(workdir: str) -> str:
  return os.path.join(os.path.abspath(workdir), "checkpoints")


def save(workdir: str, r: int, distiller: Distiller, replay: LabelledSet | None,
         competent: np.ndarray, seen: np.ndarray | None = None) -> None:
  """seen: bool[z entries], the keys named by a question pi trained on (None: none tracked)."""
  leaves = jax.tree.leaves(distiller.state)
  state = {"train_state": {str(i): leaf for i, leaf in enumerate(leaves)},
           "competent": np.asarray(competent, np.int8)}
  if seen is not None:
    state["seen"] = np.asarray(seen, np.int8)
  if replay is not None:
    state["replay"] = {"questions": replay.inputs.questions, "labels": replay.labels,
                       "weights": replay.weights,
                       # Orbax saves no empty array: a latent world's (empty) context by its shape
                       **({"context": replay.inputs.context} if replay.inputs.context.size else
                          {"context_shape": np.asarray(replay.inputs.context.shape)})}
  checkpointer = ocp.StandardCheckpointer()
  checkpointer.save(os.path.join(_directory(workdir), f"round_{r}"), state, force=True)
  checkpointer.wait_until_finished()


def latest_round(workdir: str) -> int | None:
  """The last round with a complete checkpoint, or None."""
  if not os.path.isdir(_directory(workdir)):
    return None
  rounds = [int(m.group(1)) for name in os.listdir(_directory(workdir))
            if (m := _ROUND_DIR.match(name))]
  return max(rounds, default=None)


def _move_aside(path: str, error: Exception, fallback: str) -> None:
  """Renames a damaged checkpoint PATH.damaged-N (kept for a look, never read again), with a
  warning naming what the run does instead."""
  first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
  parent, name = os.path.split(path)
  n = sum(other.startswith(f"{name}.damaged") for other in os.listdir(parent))
  os.rename(path, f"{path}.damaged-{n}")
  print(f"warning: checkpoint {path} is damaged ({first_line[:200]}); moved to "
        f"{path}.damaged-{n}, {fallback}", flush=True)


def latest_readable_round(workdir: str) -> int | None:
  """The last round whose checkpoint reads back whole, or None. A damaged newer one (an empty
  folder, a file cut short or overwritten) is moved aside with a warning: the run falls back to
  the round before it."""
  while (r := latest_round(workdir)) is not None:
    path = os.path.join(_directory(workdir), f"round_{r}")
    try:
      state = ocp.StandardCheckpointer().restore(path)
      if "train_state" not in state or "competent" not in state:
        raise ValueError("it lacks the policy's state")
      return r
    except Exception as e:  # Orbax and the file formats under it raise many kinds
      _move_aside(path, e, "resuming from the round before it")
  return None


def restore(workdir: str, r: int,
            distiller: Distiller) -> tuple[LabelledSet | None, np.ndarray, np.ndarray | None]:
  """Loads round r's state into `distiller` (same architecture and config); returns the replay
  buffer, the competent difficulties and the keys seen in training (or None)."""
  state = ocp.StandardCheckpointer().restore(os.path.join(_directory(workdir), f"round_{r}"))
  saved = state["train_state"]
  leaves = [jnp.asarray(saved[str(i)]) for i in range(len(saved))]
  distiller.load_state(jax.tree.unflatten(jax.tree.structure(distiller.state), leaves))
  competent = np.asarray(state["competent"]).astype(bool)
  seen = np.asarray(state["seen"]).astype(bool) if "seen" in state else None
  if "replay" not in state:
    return None, competent, seen
  b = state["replay"]
  context = (jnp.asarray(b["context"]) if "context" in b else
             jnp.zeros(tuple(np.asarray(b["context_shape"])), jnp.int32))
  return LabelledSet(Inputs(context, jnp.asarray(b["questions"])), jnp.asarray(b["labels"]),
                     jnp.asarray(b["weights"])), competent, seen


def save_prior(workdir: str, params) -> None:
  """The fitted Mz's parameters (a latent world's z*), in workdir/checkpoints/prior."""
  checkpointer = ocp.StandardCheckpointer()
  checkpointer.save(os.path.join(_directory(workdir), "prior"), {"params": params}, force=True)
  checkpointer.wait_until_finished()


def restore_prior(workdir: str, shape: tuple[int, ...]):
  """The parameters `save_prior` wrote (of `shape`), or None if there are none. A damaged
  checkpoint is moved aside with a warning, and None returned: the run fits z* again (the fit is
  deterministic, so it is the same z* on the same machine)."""
  path = os.path.join(_directory(workdir), "prior")
  if not os.path.isdir(path):
    return None
  try:
    params = ocp.StandardCheckpointer().restore(path)["params"]
    if tuple(params.shape) != tuple(shape):
      raise ValueError(f"its table has shape {tuple(params.shape)}, not {tuple(shape)}")
    return jnp.asarray(params)
  except Exception as e:  # Orbax and the file formats under it raise many kinds
    _move_aside(path, e, "fitting z* again")
    return None
