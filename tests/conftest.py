import atexit
import contextlib
import fcntl
import gc
import hashlib
import os
import shutil
import tempfile

import pytest

# Tests compile many small programs; XLA's optimisations cost more than they save here, and so do
# its CPU fusion emitters where they can be turned off (jaxlib 0.6-0.10; 0.11 has no such flag,
# and XLA aborts on a flag it does not know): the training step compiles 2.5x faster and runs
# 1.3x slower, the suite takes 229 s instead of 270 s (experiments/results/suite_time).
def _xla_flags() -> str:
  from importlib.metadata import version
  jaxlib = tuple(int(part) for part in version("jaxlib").split(".")[:2])
  return "--xla_backend_optimization_level=0" + (
      " --xla_cpu_use_fusion_emitters=false" if jaxlib < (0, 11) else "")


os.environ.setdefault("XLA_FLAGS", _xla_flags())

# Many tests build the same programs again: in a new process (the command-line tests), or with a
# new task object as a static argument (each run). One compilation cache for the session, which
# the subprocesses inherit through the environment, compiles each program once. XLA keys an entry
# on the program, the flags and the versions, so a hit runs what a fresh compile would build; the
# directory is new for each session and removed after it, so no run reads another's entries.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
  _CACHE = tempfile.mkdtemp(prefix="amplify-tests-jax-cache-")
  os.environ["JAX_COMPILATION_CACHE_DIR"] = _CACHE
  os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
  os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
else:
  _CACHE = None

# The referee's secret (amplify.truth.referee): one for the session, in its own directory, which
# the subprocesses and the xdist workers inherit (so a run one worker made is of the world the
# other's referee draws); the user's own secret file is never read or made by the tests. It is
# the same every session, so every session draws the same worlds: with a random one, one suite
# run of 13 drew a lexicon world where pi_0 was competent nowhere, and the type-2 gate test then
# could not tell the spoilt policy from it.
if "AMPLIFY_TESTS_SECRET_DIR" not in os.environ:
  _SECRET_DIR = tempfile.mkdtemp(prefix="amplify-tests-secret-")
  os.environ["AMPLIFY_TESTS_SECRET_DIR"] = _SECRET_DIR
  os.environ["AMPLIFY_SECRET_FILE"] = os.path.join(_SECRET_DIR, "referee_secret")
  with os.fdopen(os.open(os.environ["AMPLIFY_SECRET_FILE"], os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                         0o600), "wb") as _f:
    _f.write(hashlib.sha256(b"amplify tests").digest())
else:
  _SECRET_DIR = None


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
  """Each loaded program holds about 9 memory maps, and a worker that kept every one would pass
  the kernel's limit (vm.max_map_count: a segfault) before the suite ends; after a module that
  leaves the process above half the limit, drop what is loaded (a later module loads what it
  needs from the cache above). Dropping after every module costs more: each module would trace
  and load again what the last one did."""
  yield
  try:
    with open("/proc/self/maps") as maps, open("/proc/sys/vm/max_map_count") as limit:
      if sum(1 for _ in maps) < int(limit.read()) // 2:
        return
  except OSError:  # not Linux: no such limit to keep under
    return
  import jax
  jax.clear_caches()
  gc.collect()


def pytest_sessionfinish(session, exitstatus):
  if os.environ.get("PYTEST_XDIST_WORKER"):
    # A worker ends as soon as it has reported: JAX's exit handler would unload every program the
    # worker loaded, one by one (5-16 s at the end of the suite, while the other worker waits),
    # and the process's memory goes back to the kernel either way. Registered last, it runs
    # first, after xdist is done with the worker.
    atexit.register(os._exit, 0)
  if _CACHE is not None:
    shutil.rmtree(_CACHE, ignore_errors=True)
  if _SECRET_DIR is not None:
    shutil.rmtree(_SECRET_DIR, ignore_errors=True)


# -- finished runs shared by the session --------------------------------------------------------
# A whole run costs a referee process, its compilations and its rounds; many tests only read what
# a finished run left (or damage a copy of it). Each run below is made once per session, by
# whichever xdist worker asks first, under a lock in the directory the workers share; the other
# worker waits for it and reads the same workdir. A test that changes a workdir copies it first.

@contextlib.contextmanager
def _locked(path):
  with open(path, "a") as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(f, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory):
  """finished_run((preset, overrides)) -> (config, workdir, summary) of a finished run of
  `configs.get_config(preset, **overrides)` (the runs are named in tests/helpers.py), made once
  for the session; read it, or copy it (`helpers.copy_run`) before changing anything in it."""
  from amplify import configs
  from amplify.files import jsonio
  from amplify.loop import run as loop
  base = tmp_path_factory.getbasetemp()
  root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "shared-runs"
  root.mkdir(exist_ok=True)

  def get(which):
    preset, overrides = which
    config = configs.get_config(preset, **overrides)
    name = f"{preset}-{hashlib.sha256(configs.to_json(config).encode()).hexdigest()[:12]}"
    workdir = root / name
    with _locked(root / f"{name}.lock"):
      summary = jsonio.read_summary(str(workdir))
      if summary is None:
        summary = loop.run(config, str(workdir))
    return config, workdir, summary
  return get


@pytest.fixture(scope="module")
def permutation():
  """permutation_tiny's task, an untrained pi and competence everywhere: what a per-question
  oracle's tests label with (pi's answers are wrong, but served and counted)."""
  import jax
  import numpy as np

  from amplify import configs
  from amplify.learn.policy import make_policy
  from amplify.tasks import make_task
  config = configs.get_config("permutation_tiny")
  task, _ = make_task(config)
  policy = make_policy(task.spec, config.model, jax.random.key(1))
  return task, policy, np.ones(task.spec.max_difficulty + 1, bool)
