"""What the answer store adds to the labelling phase with the scripted oracle (issue 11's target:
at most 10%).

  python experiments/bench_store.py [--preset=lexicon] [--repeats=7]

Labels one round's D* questions (`--label_size` of the preset) with H^A = the scripted H + a
policy + z*: without a store; with a fresh store (every answer written, one transaction per
batch, by the store's background thread: the measured span ends when labelling returns, and the
write is flushed before the next measurement); and from a filled store (every answer reused).
Each side runs once to compile, then `--repeats` times, the sides interleaved; the figure is the
ratio of the medians, measured in one process.
"""
from __future__ import annotations

import statistics
import tempfile
import time

import jax
import numpy as np
from absl import app, flags

from amplify import config as config_lib
from amplify.learn import prior
from amplify.learn.amplifier import Amplifier, Budget
from amplify.learn.mz import ExactIndex, Table
from amplify.oracles.make import human_model, make_oracle
from amplify.learn.policy import make_policy, reads_mz
from amplify.learn.mz import MzView
from amplify.files.store import AnswerStore
from amplify.tasks import make_task

_PRESET = flags.DEFINE_string("preset", "lexicon", "The preset whose round is labelled.")
_REPEATS = flags.DEFINE_integer("repeats", 7, "Timed repeats of each side.")


def main(argv):
  del argv
  config = config_lib.get_config(_PRESET.value)
  task, _ = make_task(config)
  oracle = make_oracle(config, task)
  mz = ExactIndex() if task.spec.context_size else prior.fit(
      human_model(oracle, task), Table(task.spec), *task.observations(), steps=50,
      learning_rate=0.3)[0]
  view = MzView.of(mz, task.spec) if reads_mz(task.spec, config) else None
  policy = make_policy(task.spec, config, jax.random.key(1), reads_mz=view is not None)
  competent = np.ones(task.spec.max_difficulty + 1, bool)
  inputs = task.deployment_questions(jax.random.key(2), config.label_size)
  budget = Budget(config.max_asks, config.max_lookups)

  def once(amplifier) -> float:
    t0 = time.perf_counter()
    jax.block_until_ready(amplifier.label(inputs, policy, competent, jax.random.key(3)).answers)
    return time.perf_counter() - t0

  with tempfile.TemporaryDirectory() as tmp:
    count = iter(range(1000))
    fresh = lambda: AnswerStore(f"{tmp}/s{next(count)}.db", {"task": config.task})
    plain = Amplifier(oracle, mz, task, budget, view=view)
    writing = Amplifier(oracle, mz, task, budget, view=view, store=fresh(), identity="scripted")
    reusing = Amplifier(oracle, mz, task, budget, view=view, store=fresh(), identity="scripted")
    for amplifier in (plain, writing, reusing):  # compile; fill the reusing side's store
      once(amplifier)
    times = {"plain": [], "writing": [], "reusing": []}
    for _ in range(_REPEATS.value):  # interleaved, so drifts in machine speed hit all sides
      times["plain"].append(once(plain))
      writing._store = fresh()
      times["writing"].append(once(writing))
      writing._store.flush()  # the write finishes in the background (in a run: while pi trains)
      times["reusing"].append(once(reusing))
  plain, writing, reusing = (statistics.median(times[k]) for k in ("plain", "writing", "reusing"))
  print(f"{config.label_size} questions ({_PRESET.value}), median of {_REPEATS.value}: "
        f"no store {plain:.3f}s, writing every answer {writing:.3f}s ({writing / plain:.2f}x), "
        f"reusing every answer {reusing:.3f}s ({reusing / plain:.2f}x)")


if __name__ == "__main__":
  app.run(main)
