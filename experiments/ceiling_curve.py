"""The supervised ceiling's learning curve: how its accuracy on D*, by difficulty, grows with its
steps (is a task's ceiling limited by its step budget, or by what the network can learn?).

  python experiments/ceiling_curve.py --preset=assignments --config.train.total_steps=12000
Seeds: --seeds (the figures: 0). Machine: the project's 2-core CPU
(results/ceiling_curve/README.md).

For each preset and seed (a task whose policy reads no Mz: the script fits no z*): the seed's
world (no secret: this script is its own evaluator), the preset's policy network trained as a
run's ceiling is (`amplify.truth.baselines`, the same keys): `baseline_size` ground-truth D* rows,
`train.total_steps` steps on the preset's schedule, its augmentation; every --every steps, its
accuracy on the run's `eval_size` D* questions, overall and by difficulty. A task whose instances
come from the seed alone (the 2018 tasks) ends where a run's ceiling does.
Writes RESULTS/ceiling_curve/ceiling_curve.{json,md}.
"""
from __future__ import annotations

import time

from absl import flags

import common

_EVERY = flags.DEFINE_integer("every", 1000, "Score the policy every this many steps.",
                              lower_bound=1)


def curve(preset: str, seed: int) -> dict:
  # pylint: disable=g-import-not-at-top (after --help)
  import jax
  from amplify.learn.distill import Distiller, LabelledSet, predict
  from amplify.learn.policy import reads_mz
  from amplify.loop.state import BASELINE, EVAL
  from amplify.tasks import make_task
  from amplify.truth.evaluator import Evaluator
  config = common.config_for(common.argv_for(preset, seed))
  task, truth = make_task(config)
  if reads_mz(task.spec, config.model.policy):  # the ceiling would read a fitted z*: not here
    raise SystemExit(f"error: --preset={preset}: its ceiling reads Mz (a fitted z*), which this "
                     "script does not fit; use a task whose policy reads no Mz, or "
                     "--config.model.policy=memorises.")
  evaluator, run_key = Evaluator(task, truth), jax.random.key(seed)
  key = jax.random.fold_in(run_key, BASELINE + 1)  # the ceiling's, as a run's (prosaic ML's + 1)
  inputs = task.deployment_questions(jax.random.fold_in(key, 2), config.train.baseline_size)
  data = LabelledSet.of(inputs, truth.answers(inputs))
  eval_inputs = task.evaluation_questions(jax.random.fold_in(run_key, EVAL), config.eval_size)
  policy = common.make_policy(task.spec, config.model, jax.random.fold_in(key, 0), reads_mz=False)
  steps = config.train.total_steps
  distiller = Distiller(policy, config.train, steps,
                        augment=task.augment if config.train.augment else None)
  start, points = time.time(), []

  def score() -> bool:
    if distiller.steps_run % _EVERY.value == 0 or distiller.steps_run == steps:
      answers = predict(policy, eval_inputs)
      points.append({"steps": distiller.steps_run,
                     "accuracy": evaluator.accuracy(eval_inputs, answers),
                     "by_difficulty": evaluator.accuracy_by_difficulty(eval_inputs, answers),
                     "seconds": round(time.time() - start)})
      print(points[-1], flush=True)
    return False

  distiller.fit(data, steps, jax.random.fold_in(key, 1), until=score)
  score()
  return {"preset": preset, "seed": seed, "depth": config.model.depth, "points": points}


def main(argv):
  del argv
  runs = [curve(preset, seed) for preset in common.presets(["assignments"])
          for seed in common.seeds()]
  rows = []
  for run in runs:
    for p in run["points"]:
      by = " ".join(f"{d}:{a:.2f}" for d, a in sorted(p["by_difficulty"].items(),
                                                      key=lambda item: int(item[0])))
      rows.append([run["preset"], run["seed"], run["depth"], p["steps"], f"{p['accuracy']:.3f}",
                   by, p["seconds"]])
  table = common.markdown(["preset", "seed", "depth", "steps", "accuracy", "by difficulty",
                           "seconds"], rows)
  common.write_results("The supervised ceiling's learning curve", table, [], per_seed=runs)


if __name__ == "__main__":
  common.main(main)
