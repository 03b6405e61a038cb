"""What several test files share: the finished runs tests/conftest.py's `finished_run` makes once
per session, reading a workdir's lines, and a kill -9 inside a write (as experiments/kill9.py does
at random points), and the set-up of labelling tests (a task, its Mz, an untrained pi, H^A). A
helper module, not a test file: test files import it, never each other."""
import gc
import json
import os
import shutil
import signal
import subprocess
import sys
import types

import jax
import ml_collections
import numpy as np

from amplify.views import report

# The end-to-end runs: the tiny presets with their baselines, without type 2 (tests/test_type2.py
# runs it); the same lexicon rounds without baselines. These shapes are the ones most tests
# compile, so a run of them mostly loads its programs from the session's compilation cache:
# a smaller run would compile programs of its own and cost more.
LEXICON = ("lexicon_tiny", {"type2_size": 0})
LEXICON_ROUNDS = ("lexicon_tiny", {"type2_size": 0, "baselines": False})
PERMUTATION = ("permutation_tiny", {"type2_size": 0})
PERMUTATION_ROUNDS = ("permutation_tiny", {"type2_size": 0, "baselines": False})
COLORED_DIGITS = ("colored_digits_tiny", {"type2_size": 0})
# Many entities, few labels: a good share of the evaluation's entities is in no training question.
SPARSE = ("lexicon_tiny", {"type2_size": 0, "baselines": False, "num_entities": 4096,
                           "observations": 8, "label_size": 1024, "eval_size": 1024,
                           "replay_rounds": 2})
# The size curriculum stepping up every round (threshold 0: any agreement with H^A), 2 -> 3 -> 4
# elements; in the 2018 form at k < 4, H answers every question by look-ups.
CURRICULUM = ("permutation_tiny", {"type2_size": 0, "baselines": False, "task.form": "2018",
                                   "curriculum.on": True, "curriculum.start": 2,
                                   "curriculum.threshold": 0.0})
# A summary's fields that differ between two runs of the same config.
VOLATILE = ("wall_seconds", "peak_memory_mb")


def config_leaves(config, prefix=""):
  """(dotted path, value) for every field of a nested config."""
  for key, value in config.items():
    if isinstance(value, ml_collections.ConfigDict):
      yield from config_leaves(value, f"{prefix}{key}.")
    else:
      yield f"{prefix}{key}", value


def engine_fields_set(config) -> set[str]:
  """The paths of `config` (a preset) that differ from the engine's defaults, beyond its task's
  and oracle's own settings."""
  from amplify.configs import base  # pylint: disable=g-import-not-at-top
  preset = dict(config_leaves(config))
  return {path for path, value in config_leaves(base.get_config())
          if not path.startswith(("task.", "oracle.")) and preset[path] != value}


def copy_run(workdir, to):
  """A copy of a finished run's workdir at `to`, for a test to change."""
  shutil.copytree(workdir, to)
  return to


def lines(workdir, phase=None) -> list[dict]:
  """metrics.jsonl's lines (of one phase)."""
  return [r for r in report.read_metrics(str(workdir)) if phase is None or r["phase"] == phase]


def evals(workdir) -> list[dict]:
  return lines(workdir, "eval")


def same_summary(a: dict, b: dict) -> bool:
  """Two summaries agree on every field but wall time and memory."""
  drop = lambda s: {k: v for k, v in s.items() if k not in VOLATILE}
  return drop(a) == drop(b)


def reachable(root, depth=12) -> list:
  """Every object reachable from root by references (modules and classes not followed)."""
  seen, frontier = {id(root): root}, [root]
  for _ in range(depth):
    nxt = []
    for obj in frontier:
      refs = list(gc.get_referents(obj))
      if hasattr(obj, "__wrapped__"):
        refs.append(obj.__wrapped__)
      for ref in refs:
        if isinstance(ref, (types.ModuleType, type)) or id(ref) in seen:
          continue
        seen[id(ref)] = ref
        nxt.append(ref)
    frontier = nxt
  return list(seen.values())


# `amplify` killing itself inside a write: the script experiments/kill9.py runs too.
KILLED_INSIDE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                             "experiments", "killed_inside.py")


def kill_inside(workdir, where: str, argv: list[str]) -> None:
  """Runs `amplify ARGV` into `workdir` in a process group of its own (the run and its referee),
  which SIGKILLs itself inside the write `where` ("metrics": half-way through the third metrics
  line; "checkpoint": inside round 1's checkpoint save, not committed): what a power cut does."""
  os.makedirs(workdir, exist_ok=True)
  process = subprocess.run([sys.executable, KILLED_INSIDE, where, *argv,
                            f"--workdir={workdir}"], capture_output=True, text=True,
                           start_new_session=True, timeout=600)
  assert process.returncode == -signal.SIGKILL, (
      f"the {where} kill did not land:\n{process.stderr[-2000:]}")


def read_json(path) -> dict:
  with open(path) as f:
    return json.load(f)


class Keys:
  """A console whose input is a list of lines, then end of input: a person at the interactive
  oracle's screen, typing `lines` (an exception among them: what reading that line raises)."""

  def __init__(self, lines, width: int):
    from rich.console import Console  # pylint: disable=g-import-not-at-top
    import io  # pylint: disable=g-import-not-at-top
    self.console = Console(file=io.StringIO(), width=width)
    self.lines = list(lines)
    self.console.input = lambda prompt="": self._next()

  def _next(self):
    if not self.lines:
      raise EOFError
    line = self.lines.pop(0)
    if isinstance(line, Exception):  # what reading the line raised
      raise line
    return line

  def headers(self) -> list[str]:
    """The screen's question headers so far."""
    return [line.strip(" ─") for line in self.console.file.getvalue().splitlines()
            if "question " in line and " of " in line and "IDK" in line]


def setup_task(task_name, **overrides):
  """(config, task, Mz, an untrained pi, every difficulty competent) for labelling tests of the
  task's tiny preset: Mz is the exact index (episodic) or z* fitted to D (latent)."""
  from amplify import configs
  from amplify.learn import prior
  from amplify.learn.mz import ExactIndex, Table
  from amplify.learn.policy import make_policy
  from amplify.oracles.make import human_model, make_oracle
  from amplify.tasks import make_task
  config = configs.get_config(f"{task_name}_tiny", **overrides)
  task, _ = make_task(config)
  mz = ExactIndex() if task.spec.context_size else prior.fit(
      human_model(make_oracle(config, task), task), Table(task.spec), prior.blocks(task),
      steps=100, learning_rate=0.3)[0]
  policy = make_policy(task.spec, config.model, jax.random.key(1))
  competent = np.ones(task.spec.max_difficulty + 1, bool)
  return config, task, mz, policy, competent


def amplifier(config, task, mz, store=None, identity="scripted"):
  """H^A with the config's oracle and a budget of 4 asks and 4 look-ups."""
  from amplify.learn.amplifier import Amplifier, Budget
  from amplify.oracles.make import make_oracle
  return Amplifier(make_oracle(config, task), mz, task, Budget(4, 4), store=store,
                   identity=identity)


def mz_answers(config, task, mz, policy, competent, inputs) -> dict:
  """What reads Mz, as numpy, for `inputs`: H^A's labels with pi reading Mz, pi's predictions
  through its view, and type 2's answers (tests that two Mz answer alike)."""
  from amplify.learn import distill
  from amplify.learn.amplifier import Amplifier, Budget
  from amplify.learn.mz import MzView
  from amplify.learn.type2 import Type2
  from amplify.oracles.make import make_oracle
  view = MzView.of(mz, task.spec)
  return {name: np.asarray(a) for name, a in (
      ("labels", Amplifier(make_oracle(config, task), mz, task, Budget(4, 4), view=view).label(
          inputs, policy, competent, jax.random.key(2)).answers),
      ("predictions", distill.predict(policy, inputs, view)),
      ("type2", Type2(make_oracle(config, task), task, mz).answers(inputs,
                                                                    jax.random.key(6))[0]))}


def make_lexicon_on_disk(settings, key):
  """lexicon with its D on disk past 256 rows, in blocks of 16 entities (a task factory: a run
  registers it, and its referee process imports it from here)."""
  from amplify.tasks import lexicon
  return lexicon.make_lexicon(settings, key, memory_rows=256, block=16)
