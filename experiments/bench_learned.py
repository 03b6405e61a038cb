"""Learned H' labelling a batch with pi compiled (as H^A does it) against pi run op by op (as it
did before `b00f4f1`): same oracle, same policy, same questions, same keys.

  python experiments/bench_learned.py --preset=permutation --batch=4096
Seeds: --seeds (the figures: 0; the policy's, the questions' and H''s keys). Machine: the
project's 2-core CPU (results/bench_learned/README.md).

H' (`--oracle=learned`) is not compiled whole, so the Amplifier hands it pi and Mz as compiled
functions; before, they were traced op by op on every ask. Each side labels the batch with a
fresh H' (fitted from scratch, `--fit_steps` steps a fit, the same on both sides), after an
untimed warm-up on another fresh H' that compiles both sides' programs. The policy is untrained
and H may ask it at every difficulty, so every question's decomposition reaches pi. Both must
give the same labels on at least 99% of rows (the two sides' sums may round apart, tipping a row
whose confidence sits at a threshold); the script prints both times and their ratio, and writes
them to RESULTS/bench_learned/bench_learned.{json,md}.
"""
from __future__ import annotations

import functools
import time

from absl import flags
import jax
import numpy as np

from amplify.learn import amplifier as amplifier_lib
from amplify.learn.mz import ExactIndex
from amplify.oracles.make import make_oracle
from amplify.tasks import make_task
import common

_BATCH = flags.DEFINE_integer("batch", 4096, "D* questions labelled.", lower_bound=1)
_FIT_STEPS = flags.DEFINE_integer("fit_steps", 50, "Training steps of each fit of H'.",
                                 lower_bound=1)


def bench(preset: str, seed: int) -> dict:
  config = common.config_for(common.argv_for(
      preset, seed, variant=["--oracle=learned", f"--oracle.steps={_FIT_STEPS.value}"]))
  task, _ = make_task(config)  # the seed's world: only the questions' shape matters here
  budget = amplifier_lib.Budget(config.label.max_asks, config.label.max_lookups)
  competent = np.ones(task.spec.max_difficulty + 1, bool)
  policy = common.make_policy(task.spec, config.model, jax.random.key(seed))
  inputs = task.deployment_questions(jax.random.key(seed + 1), _BATCH.value)
  key = jax.random.key(seed + 2)

  def labeller(op_by_op: bool):
    amplifier = amplifier_lib.Amplifier(make_oracle(config, task), ExactIndex(), task, budget)
    if op_by_op:  # the path before b00f4f1: pi and Mz traced anew on every call
      amplifier._label = functools.partial(  # pylint: disable=protected-access
          amplifier_lib._amplified_answers, amplifier._oracle, task.spec, budget,  # pylint: disable=protected-access
          task.difficulty)
    return lambda: amplifier.label(inputs, policy, competent, key)

  def timed(op_by_op: bool):
    jax.block_until_ready(labeller(op_by_op)().answers)  # warm-up: compile
    label = labeller(op_by_op)
    start = time.perf_counter()
    labels = label()
    jax.block_until_ready(labels.answers)
    return time.perf_counter() - start, np.asarray(labels.answers), labels.counts

  t_compiled, compiled, counts = timed(False)
  t_eager, eager, _ = timed(True)
  same = float(np.mean(np.all(compiled == eager, axis=1)))
  if same < 0.99:
    raise SystemExit(f"the two sides' labels agree on only {same:.4f} of rows: the benchmark is "
                     "not comparing like with like")
  print(f"{common.label(preset)}, seed {seed}: batch {_BATCH.value}, {counts['learned_calls']} "
        f"answered by H' ({counts['learned_fits']} fits of {_FIT_STEPS.value} steps), labels "
        f"agree on {same:.4f} of rows; pi compiled {t_compiled:.1f} s, op by op {t_eager:.1f} s, "
        f"speed-up {t_eager / t_compiled:.2f}x", flush=True)
  return {"preset": common.label(preset), "seed": seed, "batch": _BATCH.value,
          "learned_calls": counts["learned_calls"], "fits": counts["learned_fits"],
          "fit_steps": _FIT_STEPS.value, "agreement": same, "compiled_s": round(t_compiled, 2),
          "op_by_op_s": round(t_eager, 2), "speed_up": round(t_eager / t_compiled, 2)}


def main(argv):
  del argv
  rows = [bench(preset, seed) for preset in common.presets(["permutation"])
          for seed in common.seeds()]
  table = common.markdown(
      ["preset", "seed", "batch", "answered by H'", "fits", "labels agree", "pi compiled",
       "pi op by op", "speed-up"],
      [[r["preset"], r["seed"], r["batch"], r["learned_calls"],
        f"{r['fits']} x {r['fit_steps']} steps", f"{r['agreement']:.4f}", f"{r['compiled_s']} s",
        f"{r['op_by_op_s']} s", f"**{r['speed_up']:.2f}x**"] for r in rows])
  common.write_results("Learned H' with pi compiled against pi op by op", table, rows)


if __name__ == "__main__":
  common.main(main)
