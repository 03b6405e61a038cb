import gc
import os
import shutil
import tempfile

import pytest

# Tests compile many small programs; XLA's optimisations cost more than they save here.
os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0")

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
# the subprocesses inherit; the user's own secret file is never read or made by the tests.
_SECRET_DIR = tempfile.mkdtemp(prefix="amplify-tests-secret-")
os.environ["AMPLIFY_SECRET_FILE"] = os.path.join(_SECRET_DIR, "referee_secret")


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
  """Each loaded program holds about 9 memory maps, and the session's one process would pass
  the kernel's limit (vm.max_map_count, 65530: a segfault) before the suite ends; after each
  module, drop what is loaded (a later module loads what it needs from the cache above)."""
  yield
  import jax
  jax.clear_caches()
  gc.collect()


def pytest_sessionfinish(session, exitstatus):
  if _CACHE is not None:
    shutil.rmtree(_CACHE, ignore_errors=True)
  shutil.rmtree(_SECRET_DIR, ignore_errors=True)
