"""What the answer store adds to the labelling phase with the scripted oracle (issue 11's target:
at most 10%).

  python experiments/bench_store.py --preset=lexicon,permutation --repeats=7
Seeds: --seeds (the figures: 0; the world's, the policy's and the questions' keys). Machine: the
project's 2-core CPU (results/bench_store/README.md).

Labels one round's D* questions (`label.size` of the preset) with H^A = the scripted H + a policy
+ z*: without a store; with a fresh store (every answer written, one transaction per batch, by
the store's background thread: the measured span ends when labelling returns, and the write is
flushed before the next measurement); and from a filled store (every answer reused). Each side
runs once to compile, then `--repeats` times, the sides interleaved; the figure is the ratio of
the medians, measured in one process. Writes RESULTS/bench_store/bench_store.{json,md}.
"""
from __future__ import annotations

import statistics
import tempfile
import time

from absl import flags
import jax
import numpy as np

from amplify.files.store import AnswerStore
from amplify.learn import prior
from amplify.learn.amplifier import Amplifier, Budget
from amplify.learn.mz import ExactIndex, MzView, Table
from amplify.learn.policy import reads_mz
from amplify.oracles.make import human_model, make_oracle
from amplify.tasks import make_task
import common

_REPEATS = flags.DEFINE_integer("repeats", 7, "Timed repeats of each side.", lower_bound=1)


def bench(preset: str, seed: int) -> dict:
  config = common.config_for(common.argv_for(preset, seed))
  task, _ = make_task(config)  # the seed's world: any world times the same
  oracle = make_oracle(config, task)
  mz = ExactIndex() if task.spec.context_size else prior.fit(
      human_model(oracle, task), Table(task.spec), prior.blocks(task), steps=50,
      learning_rate=0.3)[0]
  view = MzView.of(mz, task.spec) if reads_mz(task.spec, config.model.policy) else None
  policy = common.make_policy(task.spec, config.model, jax.random.key(seed + 1),
                              reads_mz=view is not None)
  competent = np.ones(task.spec.max_difficulty + 1, bool)
  inputs = task.deployment_questions(jax.random.key(seed + 2), config.label.size)
  budget = Budget(config.label.max_asks, config.label.max_lookups)

  def once(amplifier) -> float:
    t0 = time.perf_counter()
    jax.block_until_ready(amplifier.label(inputs, policy, competent,
                                          jax.random.key(seed + 3)).answers)
    return time.perf_counter() - t0

  with tempfile.TemporaryDirectory() as tmp:
    count = iter(range(1000))
    fresh = lambda: AnswerStore(f"{tmp}/s{next(count)}.db", {"task": config.task.name})
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
  medians = {k: statistics.median(v) for k, v in times.items()}
  print(f"{common.label(preset)}, seed {seed}: {config.label.size} questions, median of "
        f"{_REPEATS.value}: no store {medians['plain']:.3f}s, writing every answer "
        f"{medians['writing']:.3f}s ({medians['writing'] / medians['plain']:.2f}x), reusing every "
        f"answer {medians['reusing']:.3f}s ({medians['reusing'] / medians['plain']:.2f}x)",
        flush=True)
  return {"preset": common.label(preset), "seed": seed, "labels": config.label.size,
          "repeats": _REPEATS.value, **{f"{k}_seconds": round(v, 4) for k, v in medians.items()},
          "times": times}


def main(argv):
  del argv
  rows = [bench(preset, seed) for preset in common.presets(["lexicon", "permutation"])
          for seed in common.seeds()]
  ratio = lambda r, side: (f"{r[f'{side}_seconds']:.3f} s "
                           f"({r[f'{side}_seconds'] / r['plain_seconds']:.2f}x)")
  table = common.markdown(
      ["preset", "seed", "labels", "no store", "writing every answer", "reusing every answer"],
      [[r["preset"], r["seed"], f"{r['labels']:,}", f"{r['plain_seconds']:.3f} s",
        ratio(r, "writing"), ratio(r, "reusing")] for r in rows])
  common.write_results("What the answer store costs in labelling (medians of interleaved repeats)",
                       table, rows)


if __name__ == "__main__":
  common.main(main)
