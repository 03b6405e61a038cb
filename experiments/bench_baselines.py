"""The named baselines trained side by side (each in a thread of the referee) against one after
the other, the way the referee trained them before.

  python experiments/bench_baselines.py --preset=lexicon,wildcard --steps=300
Seeds: --seeds (the figures: 0; the world's, z*'s and the baselines' keys). Machine: the
project's 2-core CPU (results/bench_baselines/README.md).

For each preset: the world of its seed (no secret: any world times the same), z* from a short
prior fit where the ceiling reads Mz, then prosaic ML, the ceiling and the task's extra
baselines, each trained for --steps (the preset's own budget when 0). One untimed pass compiles
every program; then the two ways run in turn, side by side first, and each is timed from the
start to the last baseline's line. Both must give the same lines (loss and accuracies): the
threads change when a baseline runs, not what it computes. Writes
RESULTS/bench_baselines/bench_baselines.{json,md}.
"""
from __future__ import annotations

import time

from absl import flags
import jax

from amplify.learn import prior
from amplify.learn.mz import MzView, Table
from amplify.learn.policy import reads_mz
from amplify.oracles.make import human_model, make_oracle
from amplify.tasks import make_task
from amplify.truth.baselines import Training
from amplify.truth.evaluator import Evaluator
import common

_STEPS = flags.DEFINE_integer("steps", 300, "Steps of each baseline (0: the preset's budget).")
# what two runs of one baseline must share; "seconds" is what differs
_SAME = ("loss", "accuracy", "accuracy_by_difficulty", "agreement_on_d", "steps")


def bench(preset: str, seed: int) -> dict:
  config = common.config_for(common.argv_for(preset, seed))
  if _STEPS.value:
    config.train.total_steps = _STEPS.value
  task, truth = make_task(config)
  view = None
  if reads_mz(task.spec, config.model.policy):
    oracle = make_oracle(config, task)
    z_star = prior.fit(human_model(oracle, task), Table(task.spec), prior.blocks(task),
                       steps=50, learning_rate=0.3)[0]
    view = MzView.of(z_star, task.spec)
  key = jax.random.key(seed)
  eval_inputs = task.evaluation_questions(jax.random.fold_in(key, 1), config.eval_size)
  d_sample = task.training_data(jax.random.fold_in(key, 2), config.eval_size)
  names = ("prosaic", "ceiling", *task.extra_baselines)
  named = [(name, jax.random.key_data(jax.random.fold_in(key, 10 + i)))
           for i, name in enumerate(names)]
  evaluator = Evaluator(task, truth)

  def train(groups) -> tuple[float, list[dict]]:
    start, lines = time.perf_counter(), []
    for group in groups:
      baselines = Training(task, truth, evaluator, group, eval_inputs, d_sample, config, view)
      lines += [baselines.record(i) for i in range(len(group))]
    return time.perf_counter() - start, lines

  one_after_another = [[pair] for pair in named]
  train(one_after_another)  # compiles every program; untimed
  side_s, side = train([named])
  seq_s, seq = train(one_after_another)
  for a, b in zip(side, seq):
    if any(a[k] != b[k] for k in _SAME):
      raise SystemExit(f"error: {preset}: the {a['baseline']} baseline differs side by side "
                       f"({ {k: a[k] for k in _SAME} } against { {k: b[k] for k in _SAME} }).")
  return {"preset": preset, "seed": seed, "baselines": list(names),
          "steps": config.train.total_steps, "side_by_side_s": round(side_s, 1),
          "one_after_another_s": round(seq_s, 1), "ratio": round(seq_s / side_s, 2),
          "each_s": {line["baseline"]: line["seconds"] for line in seq}}


def main(argv):
  del argv
  rows = [bench(preset, seed) for preset in common.presets(["lexicon", "wildcard"])
          for seed in common.seeds()]
  table = common.markdown(
      ["preset", "seed", "baselines", "steps each", "one after another s", "side by side s",
       "ratio"],
      [[r["preset"], r["seed"], ", ".join(r["baselines"]), r["steps"], r["one_after_another_s"],
        r["side_by_side_s"], f"{r['ratio']}x"] for r in rows])
  common.write_results("The baselines side by side against one after another", table, [],
                       per_seed=rows)


if __name__ == "__main__":
  common.main(main)
