"""The curriculum amplification imposes on permutation powering, with right labels: can the policy
learn each new range of k in a round's worth of steps?

  python experiments/permutation_curriculum.py --stages=2:667,4:667,8:667,16:2000

Each stage `max_k:steps` trains the permutation preset's policy (one network, warm, on one
schedule of the stages' total steps, as amplification's rounds do; `--preset` and every Config
field's flag work as in `amplify.main`) on ground-truth labels of a
fresh sample of `--rows` D* questions with the rows k >= max_k dropped (or labelled IDK, `--idk`,
as H^A labels them before the policy is competent there), then prints its accuracy by k on a
fresh D* sample. Round r of amplification can at best label k < 2^(r+1); `--stages=16:4000` is the
supervised ceiling. A diagnostic: it reads ground truth by design, like the ceiling.
"""
from __future__ import annotations

import json
import time

import jax
import jax.numpy as jnp
from absl import app, flags

from amplify.learn.distill import Distiller, LabelledSet, predict
from amplify.truth.evaluator import Evaluator
from amplify.main import config_from_flags  # also defines --preset and a flag per Config field
from amplify.learn.policy import make_policy
from amplify.loop.state import policy_key
from amplify.tasks import make_task
from amplify.types import IDK

_STAGES = flags.DEFINE_list("stages", ["2:667", "4:667", "8:667", "16:2000"],
                            "max_k:steps per stage; rows with k >= max_k are dropped (or IDK).")
_ROWS = flags.DEFINE_integer("rows", 262144, "D* questions drawn per stage, before dropping.")
_SCHEDULE = flags.DEFINE_integer("schedule_steps", None, "Steps of the learning-rate schedule "
                                 "(default: the stages' total).")
_IDK = flags.DEFINE_bool("idk", False, "Label rows with k >= max_k IDK instead of dropping them.")
flags.FLAGS.set_default("task", "permutation")


def main(argv):
  del argv
  try:
    stages = [tuple(int(v) for v in stage.split(":")) for stage in _STAGES.value]
    assert all(len(stage) == 2 for stage in stages)
  except (ValueError, AssertionError):
    raise app.UsageError(f"--stages={','.join(_STAGES.value)}: write max_k:steps,max_k:steps,... "
                         "(e.g. 2:667,4:667,8:667,16:2000).")
  config = config_from_flags()
  if config.task != "permutation":
    raise app.UsageError(f"--task={config.task}: this diagnostic is for --task=permutation.")
  task, truth = make_task(config)
  key = jax.random.key(config.seed)
  policy = make_policy(task.spec, config, policy_key(key, 0))  # amplify.main's pi_0 of this seed
  distiller = Distiller(policy, config, _SCHEDULE.value or sum(steps for _, steps in stages),
                        task.augment)
  eval_inputs = task.evaluation_questions(jax.random.fold_in(key, 3), config.eval_size)
  evaluator = Evaluator(task, truth)
  start = time.time()
  for i, (max_k, steps) in enumerate(stages):
    inputs = task.deployment_questions(jax.random.fold_in(key, 10 + i), _ROWS.value)
    hard = task.difficulty(inputs.questions) >= max_k
    data = LabelledSet.of(inputs, jnp.where(hard[:, None], IDK, truth.answers(inputs)))
    if not _IDK.value:
      data = data.take(jnp.nonzero(~hard)[0])
    loss = distiller.fit(data, steps, jax.random.fold_in(key, 100 + i))
    by_k = evaluator.accuracy_by_difficulty(eval_inputs, predict(policy, eval_inputs))
    print(json.dumps({"stage": i, "max_k": max_k, "idk": _IDK.value, "rows": len(data),
                      "steps": steps, "loss": round(loss, 4),
                      "seconds": round(time.time() - start, 1),
                      "accuracy_by_k": {k: round(v, 3) for k, v in by_k.items()}}), flush=True)


if __name__ == "__main__":
  app.run(main)
