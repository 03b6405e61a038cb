"""An adversarial oracle: before answering, it looks for ground truth by the four routes an oracle
of a user's own could take, and reports what it found (tests/test_isolation.py).

1. stack: every object reachable from the locals of every frame above it (the round loop's);
2. gc: every object the garbage collector tracks, and what those refer to;
3. referrers: whatever refers to the task, and to those, and so on;
4. factory: a run config among what its factory was handed, to rebuild the world with.

An object counts as found if it is a task's ground truth (a class named ...Truth, or an object with
both `answers` and `world`), the in-process Evaluator, or an array equal to the true world (its
sha256 given in $SPY_WORLD_SHA256, a JSON object by task name; the run's z* must then differ from
the world, or z* itself would match). It then stops the run.
"""
import gc
import hashlib
import inspect
import json
import os
import sys
import time
import types

import numpy as np

from amplify.oracles.per_question import Stopped

REPORTS: list[dict] = []
_SKIP = (types.ModuleType, type, types.FunctionType, types.BuiltinFunctionType, types.CodeType)


# Built-in containers and scalars: never a truth themselves (what they hold is walked on its own)
_PLAIN = {dict, list, tuple, set, frozenset, str, bytes, int, float, bool, type(None),
          types.CellType, types.MethodType, types.FrameType, types.MappingProxyType}


def _is_truth(obj, world_sha: str | None) -> bool:
  kind = type(obj)
  if kind in _PLAIN:
    return False
  if isinstance(obj, type):  # a class (e.g. LexiconTruth itself) is code, not the world
    return False
  if kind.__name__.endswith("Truth") or kind.__name__ == "Evaluator":
    return True
  if kind.__name__ in ("ArrayImpl", "ndarray"):
    if not world_sha:
      return False
    try:
      data = np.asarray(obj)
    except Exception:
      return False
    return data.ndim == 1 and data.dtype.kind in "iu" and hashlib.sha256(
        data.astype(np.int32).tobytes()).hexdigest() == world_sha
  # any other object that offers true answers and a world (read without running its code)
  answers = inspect.getattr_static(obj, "answers", None)
  return callable(answers) and inspect.getattr_static(obj, "world", _NONE) is not _NONE


_NONE = object()


def _walk(roots, depth: int, limit: int = 2_000_000):
  """Objects reachable from roots by references, breadth first (modules, classes and functions'
  globals not followed)."""
  seen = {id(r): r for r in roots}
  frontier = list(roots)
  for _ in range(depth):
    nxt = []
    for obj in frontier:
      if isinstance(obj, _SKIP):
        continue
      for ref in gc.get_referents(obj):
        if id(ref) not in seen and len(seen) < limit:
          seen[id(ref)] = ref
          nxt.append(ref)
    frontier = nxt
  return list(seen.values())


def search(task, factory_args, world_sha: str | None = None) -> dict:
  """What each route reaches: {route: {"scanned": objects looked at, "found": [type names]}}."""
  start, report, verdicts = time.time(), {}, {}

  def found(objs):  # each object judged once: the routes reach many of the same ones
    for o in objs:
      if id(o) not in verdicts:
        verdicts[id(o)] = _is_truth(o, world_sha)
    return sorted({type(o).__name__ for o in objs if verdicts[id(o)]})

  frames, frame = [], sys._getframe(1)
  while frame is not None:
    frames.append(frame)
    frame = frame.f_back
  on_stack = _walk([dict(f.f_locals) for f in frames], depth=8)
  report["stack"] = {"scanned": len(on_stack), "frames": len(frames), "found": found(on_stack)}

  tracked = gc.get_objects()
  everything = _walk(tracked, depth=1)
  report["gc"] = {"scanned": len(everything), "found": found(everything)}

  referrers, frontier, seen = [], [task], {id(task)}
  for _ in range(3):  # one scan of the heap per level: whatever refers to any of the frontier
    nxt = [ref for ref in gc.get_referrers(*frontier)
           if id(ref) not in seen and not isinstance(ref, types.FrameType)
           and not any(ref is mine for mine in (frontier, referrers))]
    seen.update(id(ref) for ref in nxt)
    referrers += nxt
    frontier = nxt
  around = _walk(referrers, depth=1)
  report["referrers"] = {"scanned": len(around), "found": found(around)}

  handed = _walk(list(factory_args), depth=8)
  configs = [o for o in handed if hasattr(o, "seed") and hasattr(getattr(o, "task", None), "name")]
  rebuilt = []
  for config in configs:  # the world again, from the run's own config
    from amplify.tasks import make_task
    try:
      rebuilt.append(make_task(config)[1])
    except Exception:  # a config of no task (e.g. a default one)
      pass
  report["factory"] = {"scanned": len(handed), "configs": len(configs),
                       "found": found(handed + rebuilt)}
  report["seconds"] = round(time.time() - start, 2)
  return report


class Spy:
  """Searches when it is first asked to label, then stops the run."""
  name = "spy"
  jittable = False

  def __init__(self, task, settings, human):
    self._task, self._human, self._handed = task, human, (task, settings, human)

  def answer(self, questions, tools, key):
    shas = json.loads(os.environ.get("SPY_WORLD_SHA256", "{}"))
    REPORTS.append(search(self._task, self._handed, shas.get(self._task.name)))
    raise Stopped()  # what it came for is done: the run stops as when a person quits


def make(task, settings, human):
  return Spy(task, settings, human)
