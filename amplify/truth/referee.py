"""The referee: a process of its own that holds the task's ground truth, scores predictions and runs
the named baselines.

`check` builds the task and its `GroundTruth` in the run's process, hands both to a new referee
process, then drops the truth (and refuses to go on if anything still holds it). From then on the
run's process, where H, H^A, the prior fit and distillation run, holds no object from which the
truth can be reached: an oracle that walks the stack, the garbage collector or the referrers of
the task finds nothing, because the truth is in another process. What the run's process sends is
predictions (questions and answers, a fitted z*); what comes back is scores, and the baselines'
metric lines.

The wire is the child's stdin and stdout: frames of an 8-byte length and a pickle. The first frames
are the run's sys.path and (task, truth), so the task's classes must be importable by module name
(not defined in a script's `__main__`). The child reads them before importing anything heavy, so
the run hardly waits on the child's start; it exits at the end of its stdin (the run ended or was
killed) and ignores Ctrl-C (the run decides what a Ctrl-C means).
"""
from __future__ import annotations

import os
import pickle
import struct
import subprocess
import sys
import weakref

_HEADER = struct.Struct("<Q")
# What the run may ask of the referee: the Evaluator's scores; to start the named baselines, and
# each one's metrics line.
_METHODS = ("accuracy", "accuracy_by_difficulty", "z_accuracy", "start_baselines", "baseline")


def _write(stream, obj) -> None:
  data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
  stream.write(_HEADER.pack(len(data)) + data)
  stream.flush()


def _read_bytes(stream) -> bytes | None:
  header = stream.read(_HEADER.size)
  if len(header) < _HEADER.size:
    return None  # the other end closed
  size, = _HEADER.unpack(header)
  data = stream.read(size)
  return data if len(data) == size else None


class Referee:
  """The run's handle on the referee process: the Evaluator's methods (`accuracy`,
  `accuracy_by_difficulty`, `z_accuracy`), `start_baselines` / `baseline`, and `close`. It holds
  no ground truth."""

  def __init__(self, task, truth, rounds: int):
    """rounds: the run's; they set how many requests of each kind the referee answers (what a
    run makes, `allowance`), fixed before any oracle exists."""
    try:
      world = pickle.dumps((task, truth, allowance(task, rounds)),
                           protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as e:
      raise ValueError(f"task {getattr(task, 'name', task)!r} cannot be handed to the referee "
                       f"process ({type(e).__name__}: {e}): define the task's and its ground "
                       "truth's classes at the top level of an importable module.") from None
    # the child must not take the accelerator's memory from the run (JAX preallocates by default)
    env = dict(os.environ, XLA_PYTHON_CLIENT_PREALLOCATE="false")
    self._process = subprocess.Popen(
        [sys.executable, "-c", "from amplify.truth.referee import serve; serve()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    self._finalizer = weakref.finalize(self, _stop, self._process)
    path = pickle.dumps(list(sys.path))
    self._process.stdin.write(_HEADER.pack(len(path)) + path + _HEADER.pack(len(world)) + world)
    self._process.stdin.flush()

  def _call(self, method: str, *args):
    try:
      _write(self._process.stdin, (method, args))
      data = _read_bytes(self._process.stdout)
    except (BrokenPipeError, OSError):
      data = None
    if data is None:
      code = self._process.wait()
      raise RuntimeError(f"the referee process (ground truth, scores, baselines) ended with exit "
                         f"code {code}; its error is printed above")
    status, value = pickle.loads(data)
    if status == "error":
      raise RuntimeError(f"the referee process failed: {value}")
    return value

  def accuracy(self, inputs, answers) -> float:
    return self._call("accuracy", inputs, answers)

  def accuracy_by_difficulty(self, inputs, answers) -> dict[str, float]:
    return self._call("accuracy_by_difficulty", inputs, answers)

  def z_accuracy(self, mz) -> float:
    return self._call("z_accuracy", mz)

  def start_baselines(self, named_keys, eval_inputs, d_sample, config, view) -> None:
    """Starts training the named baselines (`amplify.truth.baselines`; (name, key) pairs, in order)
    in the referee process, beside whatever the run does next."""
    import jax  # the handle itself imports nothing heavy
    self._call("start_baselines", [(name, jax.random.key_data(key)) for name, key in named_keys],
               eval_inputs, d_sample, config, view)

  def baseline(self, i: int) -> dict:
    """The metrics line of the i-th baseline started, once it has finished."""
    return self._call("baseline", i)

  def close(self) -> None:
    self._finalizer()


def _stop(process: subprocess.Popen) -> None:
  """Every request has had its reply (they are synchronous): nothing is lost by ending it now."""
  process.kill()
  process.wait()
  for stream in (process.stdin, process.stdout):
    try:
      stream.close()
    except OSError:
      pass


def allowance(task, rounds: int) -> dict[str, int]:
  """The most requests of each kind a run makes: z*'s accuracy once; per round the labels'
  accuracy (overall and by difficulty), pi's (overall, by difficulty, on unseen entities); one
  start of the baselines and one line per baseline. Something besides the run that asks the
  referee (an oracle that found the handle) takes requests the run then lacks, and the run stops
  with an error saying so; where a run makes fewer (no unseen-entity score), such a caller can
  read at most one aggregate score per round."""
  baselines = 2 + len(getattr(task, "extra_baselines", ()))
  return {"z_accuracy": 1, "accuracy": 3 * rounds, "accuracy_by_difficulty": 2 * rounds,
          "start_baselines": 1, "baseline": baselines}


def _error(e: Exception) -> str:
  first_line = (str(e).strip().splitlines() or [""])[0]
  return f"{type(e).__name__}: {first_line}"


class _Baselines:
  """The named baselines, trained one after another in a thread of the referee process while the
  run's rounds go on (they read nothing the rounds produce but z*, fitted before round 0)."""

  def __init__(self, task, truth, evaluator, named_keys, eval_inputs, d_sample, config, view):
    import threading
    self.records, self.error = [], None
    self.finished = [threading.Event() for _ in named_keys]
    threading.Thread(target=self._train, args=(task, truth, evaluator, named_keys, eval_inputs,
                                               d_sample, config, view), daemon=True).start()

  def _train(self, task, truth, evaluator, named_keys, eval_inputs, d_sample, config, view):
    import jax
    from amplify.truth import baselines  # the networks' code loads only for a run with baselines
    named = {"prosaic": baselines.prosaic_ml, "ceiling": baselines.supervised_ceiling,
             **baselines.EXTRA}
    try:
      for (name, key_data), finished in zip(named_keys, self.finished):
        self.records.append(named[name](task, truth, evaluator, eval_inputs, d_sample,
                                        jax.random.wrap_key_data(key_data), config, view=view))
        finished.set()
    except Exception as e:  # handed to the run with its next request for a result
      self.error = _error(e)
      for finished in self.finished:
        finished.set()

  def record(self, i: int) -> dict:
    """The metrics line of the i-th baseline started, once it has finished."""
    self.finished[i].wait()
    if i >= len(self.records):
      raise RuntimeError(f"a baseline failed: {self.error}")
    return self.records[i]


def serve() -> None:
  """The referee process's loop (started by `Referee`): one reply per request until the end of
  its input."""
  import signal
  signal.signal(signal.SIGINT, signal.SIG_IGN)
  requests = sys.stdin.buffer
  replies = os.fdopen(os.dup(1), "wb")
  os.dup2(2, 1)  # a stray print goes to stderr, not into the replies
  path, world = _read_bytes(requests), _read_bytes(requests)  # read at once: the run goes on
  if world is None:
    return
  sys.path[:] = pickle.loads(path)  # the run's: the task's modules import here as there
  from amplify.truth.evaluator import Evaluator
  task, truth, left = pickle.loads(world)
  del world
  evaluator, training = Evaluator(task, truth), None
  while (data := _read_bytes(requests)) is not None:
    try:
      method, args = pickle.loads(data)
      if method not in _METHODS:
        raise ValueError(f"unknown request {method!r}")
      if left[method] <= 0:
        raise PermissionError(f"more {method!r} requests than a run makes: something besides the "
                              "run has asked the referee (an oracle reaching for the truth?)")
      left[method] -= 1
      if method == "start_baselines":
        training = _Baselines(task, truth, evaluator, *args)
        value = None
      elif method == "baseline":
        value = training.record(*args)
      else:
        value = getattr(evaluator, method)(*args)
      reply = ("ok", value)
    except Exception as e:
      reply = ("error", _error(e))
    try:
      _write(replies, reply)
    except BrokenPipeError:
      break
  os._exit(0)  # the run has ended: a baseline still training goes with it
