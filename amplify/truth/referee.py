"""The referee: a process of its own that builds the task's world, holds its ground truth, scores
predictions and runs the named baselines.

`Referee.start(config, rounds)` starts the referee process, which builds the task and its
`GroundTruth` from the seed and a secret that only it reads (`read_secret`: a file of this user's,
never opened by the run's process), keeps the truth and sends the task back. So the run's process,
where H, H^A, the prior fit and distillation run, never holds the truth, nor what rebuilds it: an
oracle that walks the stack, the garbage collector or the referrers of the task finds no truth,
and one that reads the run's config and calls the task's factory with the seed builds another
world. (The boundary is the process, not the user: code of the same user can open the secret
file; BUILD_NOTES.md, known limits.) What the run's process sends is predictions (questions and
answers, a fitted z*), read with an allowlist of the classes a run sends; what comes back is
scores, and the baselines' metric lines. (`Referee(task, truth, rounds)` hands over
a task and truth built in the caller's process instead: for a test or an experiment that acts as
the evaluator.)

A referee process is forked from a server of the run's own that has imported JAX, the evaluator
and the baselines' networks once (amplify.truth.forks), so it starts without importing them again.
The wire is a socket of pickled frames. The first frames are the run's sys.path, its environment
and what to build (or the task and truth), so the task's classes must be importable by module name
(not defined in a script's `__main__`). The child exits when the run closes its end (the run ended
or was killed) and ignores Ctrl-C (the run decides what a Ctrl-C means).
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import os
import pickle
import sys
import tempfile
import weakref

from amplify import processes
from amplify.truth import forks

# What every referee needs, imported once by the server it is forked from (JAX, the evaluator, the
# baselines' networks) rather than by each referee.
_PRELOAD = ("amplify.truth.evaluator", "amplify.truth.baselines", "amplify.registry")
# What the run may ask of the referee: the Evaluator's scores; to start the named baselines, and
# each one's metrics line.
_METHODS = ("accuracy", "accuracy_by_difficulty", "z_accuracy", "start_baselines", "baseline")


def _write(connection, obj) -> None:
  connection.send_bytes(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))


# What a request may hold (`Referee._ask`: predictions, a fitted z*, the baselines' inputs and
# config), and no other global: a crafted request runs no code in the process holding the truth.
_REQUEST_GLOBALS = frozenset(tuple(name.rsplit(".", 1)) for name in """
    amplify.types.Inputs amplify.learn.mz.MzView amplify.learn.mz.TableMz
    amplify.learn.mz.ExactIndex amplify.learn.zstore.DiskMz jax._src.array._reconstruct_array
    numpy.dtype numpy.ndarray numpy.core.multiarray._reconstruct numpy.core.multiarray.scalar
    numpy._core.multiarray._reconstruct numpy._core.multiarray.scalar
    numpy._core.numeric._frombuffer numpy.core.numeric._frombuffer
    ml_collections.config_dict.config_dict.ConfigDict
    ml_collections.config_dict.config_dict.FrozenConfigDict collections.OrderedDict
    ml_collections.config_dict.config_dict.FieldReference builtins.tuple builtins.list builtins.dict
    builtins.set builtins.frozenset builtins.int builtins.float builtins.bool builtins.str
    builtins.bytes builtins.complex builtins.slice""".split())


class _RequestUnpickler(pickle.Unpickler):
  def find_class(self, module: str, name: str):
    if (module, name) not in _REQUEST_GLOBALS:
      raise pickle.UnpicklingError(f"a request holding {module}.{name}, which no run sends")
    return super().find_class(module, name)


def _read_bytes(connection) -> bytes | None:
  try:
    return connection.recv_bytes()
  except (EOFError, OSError):
    return None  # the other end closed


SECRET_BYTES = 32


def secret_path() -> str:
  """$AMPLIFY_SECRET_FILE, else amplify/referee_secret in $XDG_CONFIG_HOME (default ~/.config)."""
  return os.environ.get("AMPLIFY_SECRET_FILE") or os.path.join(
      os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config"),
      "amplify", "referee_secret")


def read_secret(create: bool = True) -> bytes:
  """This user's referee secret (`secret_path`), made on first use (`create`): 32 random bytes,
  mode 0600. The same file gives the same worlds, so reruns on this machine reproduce; read only
  by the referee process (and by views of a finished run), never by a run's own process."""
  path = secret_path()
  if create and not os.path.exists(path):
    _create_secret(path)
  try:
    with open(path, "rb") as f:
      mode, secret = os.fstat(f.fileno()).st_mode & 0o777, f.read(SECRET_BYTES + 1)
  except OSError as e:
    raise ValueError(f"cannot read the referee's secret {path} ({e.strerror}): set "
                     "$AMPLIFY_SECRET_FILE to a file of yours (made on first use).") from None
  if mode & 0o077:
    raise ValueError(f"the referee's secret {path} is readable by others (mode {mode:o}): "
                     f"chmod 600 {path}")
  if len(secret) != SECRET_BYTES:
    raise ValueError(f"the referee's secret {path} holds {len(secret)} bytes, not {SECRET_BYTES}"
                     ": move it away (a new one is made on the next run; runs' worlds change).")
  return secret


def _create_secret(path: str) -> None:
  """Written beside `path`, then hard-linked into place: a reader never sees part of it, and of
  two processes making it at once both end up with the one that was linked first."""
  directory = os.path.dirname(os.path.abspath(path))
  try:
    os.makedirs(directory, mode=0o700, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".referee_secret.")  # mode 0600
    try:
      with os.fdopen(fd, "wb") as f:
        f.write(os.urandom(SECRET_BYTES))
        f.flush()
        os.fsync(f.fileno())
      try:
        os.link(tmp, path)
      except FileExistsError:  # another process made it first: theirs is the secret
        pass
    finally:
      os.unlink(tmp)
  except OSError as e:
    raise ValueError(f"cannot create the referee's secret {path} ({e.strerror}): set "
                     "$AMPLIFY_SECRET_FILE to a path you can write.") from None


# The tasks unpickled here, by their bytes, while anything holds them: a run sent the bytes an
# earlier run got (the same task, seed and secret) gets its object, so the programs jitted with
# the task static (hashed by identity: it holds arrays) are found in JAX's caches, not traced again.
_TASKS: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


def _same_task(data: bytes):
  task = _TASKS.get(key := hashlib.sha256(data).digest())
  if task is None:
    task = pickle.loads(data)
    with contextlib.suppress(TypeError):  # a task with __slots__ takes no weak reference
      _TASKS[key] = task
  return task


class Referee:
  """The run's handle on the referee process: the Evaluator's methods (`accuracy`,
  `accuracy_by_difficulty`, `z_accuracy`), `start_baselines` / `baseline`, and `close`. It holds
  no ground truth."""

  def __init__(self, task, truth, rounds: int):
    """A task and its truth built in this process (a test or an experiment acting as the
    evaluator; a run uses `start`). rounds: as in `start`."""
    try:
      world = pickle.dumps(("given", task, truth, rounds), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as e:
      raise ValueError(f"task {getattr(task, 'name', task)!r} cannot be handed to the referee "
                       f"process ({type(e).__name__}: {e}): define the task's and its ground "
                       "truth's classes at the top level of an importable module.") from None
    self.world_id = None  # the caller's world: no secret of the referee's
    self._spawn(world)  # no reply awaited: the child loads while the run goes on

  @classmethod
  def start(cls, config, rounds) -> tuple[object, "Referee"]:
    """(task, referee): the referee process builds config.task's world from config.seed and this
    user's secret (`read_secret`), keeps its truth and sends the task here. rounds: the run's
    (or (rounds, how many smaller sizes pi is scored at)), or a function of the task that gives
    them; they set how many requests of each kind the referee answers (`allowance`), fixed
    before any oracle exists. A ValueError names a task that cannot be built there, or whose
    truth is reachable from the task."""
    from amplify import registry  # pylint: disable=g-import-not-at-top
    from amplify.configs import settings  # pylint: disable=g-import-not-at-top
    name = config.task.name
    try:  # a plug-in the child cannot find by name (registered here) goes by value
      plugin = pickle.dumps(registry.task_plugin(name), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as e:  # e.g. a lambda: the child finds it by name, or says why not
      plugin = f"{type(e).__name__}: {e}"
    try:
      build = pickle.dumps(("build", plugin, settings(config.task, "task"), config.seed, name),
                           protocol=pickle.HIGHEST_PROTOCOL)
    except pickle.PicklingError as e:
      raise ValueError(f"task {name!r}: its settings cannot be handed to the referee process "
                       f"({e}): define its settings dataclass at the top level of an importable "
                       "module.") from None
    referee = cls.__new__(cls)
    referee._connection = None  # a later process of a multi-process run has none: process 0's
    referee._finalizer = lambda: None  # referee answers for every process (`_call`)

    def built():  # on process 0 alone
      referee._spawn(build)
      return referee._reply(f"building task {name!r} in the referee")
    try:
      task, referee.world_id = processes.shared(built)
      task = _same_task(task)
      if referee._connection is not None:
        _write(referee._connection, rounds(task) if callable(rounds) else rounds)
    except BaseException:
      referee.close()
      raise
    return task, referee

  def _spawn(self, first: bytes) -> None:
    try:
      self._connection = forks.connect("amplify.truth.referee:serve", _PRELOAD)
    except OSError as e:
      raise RuntimeError(f"the referee process could not be started ({e}); the error of the "
                         "server it is forked from (amplify.truth.forks) is printed above"
                         ) from None
    # closing it ends the referee: it is waiting for the next request (they are synchronous)
    self._finalizer = weakref.finalize(self, self._connection.close)
    # the run's sys.path and environment now (the secret's path may have changed since the server
    # started); the child loads while the run goes on
    for frame in (pickle.dumps(list(sys.path)), pickle.dumps(dict(os.environ)), first):
      self._connection.send_bytes(frame)

  def _reply(self, doing: str):
    """The child's reply to `start`: the task (pickled) it built, or a ValueError with its error."""
    data = _read_bytes(self._connection)
    if data is None:
      raise RuntimeError(f"{doing}: the referee process has ended; its error is printed above")
    status, value = pickle.loads(data)
    if status == "error":
      self.close()
      raise ValueError(value)
    return value

  def _call(self, method: str, *args):
    """The referee's answer to `method(*args)`; in a multi-process run, process 0 asks and every
    process gets its answer."""
    return processes.shared(self._ask, method, args)

  def _ask(self, method: str, args):
    try:
      _write(self._connection, (method, args))
      data = _read_bytes(self._connection)
    except OSError:
      data = None
    if data is None:
      raise RuntimeError("the referee process (ground truth, scores, baselines) has ended; its "
                         "error is printed above")
    status, value = pickle.loads(data)
    if status == "error":
      # a baseline whose loss diverged keeps the error's kind: its message names the way out
      # (amplify.loop.run.failure), which the same command is not
      kind = FloatingPointError if "FloatingPointError: " in value else RuntimeError
      raise kind(f"the referee process failed: {value}")
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


def allowance(task, rounds: int, sizes: int = 0) -> dict[str, int]:
  """The most requests of each kind a run makes: z*'s accuracy once; per round the labels'
  accuracy (overall and by difficulty), pi's (overall, by difficulty, on unseen entities, and
  at each of the task's `sizes` smaller instance sizes); one start of the baselines and one
  line per baseline. Something besides the run that asks the referee (an oracle that found the
  handle) takes requests the run then lacks, and the run stops with an error saying so; where a
  run makes fewer (no unseen-entity score), such a caller can read at most one aggregate score
  per round."""
  baselines = 2 + len(getattr(task, "extra_baselines", ()))
  return {"z_accuracy": 1, "accuracy": (3 + sizes) * rounds,
          "accuracy_by_difficulty": 2 * rounds, "start_baselines": 1, "baseline": baselines}


def _error(e: Exception) -> str:
  first_line = (str(e).strip().splitlines() or [""])[0]
  return f"{type(e).__name__}: {first_line}"


def _build(plugin: bytes | str, settings, seed: int, name: str):
  """The task and its truth, in a world from the seed and this user's secret. plugin: pickled,
  or why it could not be (then it is found here by name)."""
  from amplify import registry  # pylint: disable=g-import-not-at-top
  from amplify.tasks import world_key  # pylint: disable=g-import-not-at-top (JAX: after the frames)
  if isinstance(plugin, bytes):
    plugin = pickle.loads(plugin)
  else:
    try:
      plugin = registry.task_plugin(name)
    except Exception:
      raise ValueError(f"task {name!r} cannot reach the referee process: it is registered in the "
                       f"run's process only, and its plug-in does not pickle ({plugin}); register "
                       "it from an importable module, with a top-level factory.") from None
  return plugin.make(settings, world_key(seed, read_secret()))


def world_id() -> str:
  """A one-way fingerprint of this user's secret (it tells worlds apart, and reveals nothing that
  rebuilds one): a workdir records it, so a resume in another secret's world is refused."""
  return hashlib.blake2b(b"amplify world id\0" + read_secret(), digest_size=8).hexdigest()


class _Reachable(Exception):
  pass


def _task_bytes(task, truth, name: str) -> bytes:
  """The task pickled for the run's process; a ValueError where its truth (or the true world) is
  reachable from it, since the pickle would carry it there."""
  world = getattr(truth, "world", None)
  held = {id(truth)} | ({id(world)} if hasattr(world, "shape") else set())

  class Pickler(pickle.Pickler):
    def persistent_id(self, obj):
      if id(obj) in held:
        raise _Reachable()

  buffer = io.BytesIO()
  try:
    Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(task)
  except _Reachable:
    raise ValueError(f"task {name!r}: its ground truth is reachable from the task, which the run's "
                     "process receives; the task must not keep a reference to its GroundTruth "
                     "(or to the true world).") from None
  except Exception as e:
    raise ValueError(f"task {name!r} cannot be sent from the referee process ({type(e).__name__}"
                     f": {e}): define the task's classes at the top level of an importable "
                     "module.") from None
  return buffer.getvalue()


def serve(connection) -> None:
  """A referee process (forked for a `Referee`): builds the task (or takes the one handed over),
  then one reply per request on `connection` until the run closes it."""
  frames = [_read_bytes(connection) for _ in range(3)]  # read at once: the run goes on
  if frames[-1] is None:
    return
  path, environment, first = frames
  sys.path[:] = pickle.loads(path)  # the run's: the task's modules import here as there
  os.environ.clear()  # the run's, as in a process it started (JAX read the server's at import)
  os.environ.update(pickle.loads(environment))
  os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"  # not the accelerator's memory of the run
  try:
    kind, *what = pickle.loads(first)
    del first
    if kind == "build":
      task, truth = _build(*what)
      _write(connection, ("ok", (_task_bytes(task, truth, what[-1]), world_id())))
      if (rounds := _read_bytes(connection)) is None:
        return
      rounds = pickle.loads(rounds)
    else:
      task, truth, rounds = what
  except Exception as e:  # the run's process raises it as a ValueError
    _write(connection, ("error", str(e).strip().splitlines()[0] if isinstance(e, ValueError)
                     else f"the referee process could not build the task: {_error(e)}"))
    return
  from amplify.truth.evaluator import Evaluator
  left = allowance(task, *rounds) if isinstance(rounds, tuple) else allowance(task, rounds)
  evaluator, training = Evaluator(task, truth), None
  while (data := _read_bytes(connection)) is not None:
    try:
      method, args = _RequestUnpickler(io.BytesIO(data)).load()
      if method not in _METHODS:
        raise ValueError(f"unknown request {method!r}")
      if left[method] <= 0:
        raise PermissionError(f"more {method!r} requests than a run makes: something besides the "
                              "run has asked the referee (an oracle reaching for the truth?)")
      left[method] -= 1
      if method == "start_baselines":
        from amplify.truth import baselines  # the networks load only for a run with baselines
        training = baselines.Training(task, truth, evaluator, *args)
        value = None
      elif method == "baseline":
        value = training.record(*args)
      else:
        value = getattr(evaluator, method)(*args)
      reply = ("ok", value)
    except Exception as e:
      reply = ("error", _error(e))
    try:
      _write(connection, reply)
    except OSError:
      break
  os._exit(0)  # the run has ended: a baseline still training goes with it
