"""Batched H^A vs a per-question loop in the style of the 2018 code, same policy, same questions.

  python experiments/bench_amplify.py [--batch=1024] [--repeats=3]

The per-question baseline runs one Python generator per question (H's decomposition written for a
single question, as in the authors' code) and one policy call per subquestion (batch of 1, jitted
once, compiled before timing). The batched Amplifier labels the whole batch in one compiled
program. Both must give the same labels; the script prints both times (best of --repeats, each
after a warm-up) and their ratio.
"""
from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags
from flax import nnx

from amplify import config as config_lib
from amplify.learn.amplifier import Amplifier, Budget
from amplify.learn.mz import ExactIndex
from amplify.oracles.make import make_oracle
from amplify.learn.policy import make_policy
from amplify.tasks import make_task
from amplify.types import IDK

_BATCH = flags.DEFINE_integer("batch", 1024, "D* questions labelled.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed repetitions of each side (best is reported).")
_PRESET = flags.DEFINE_string("preset", "permutation",
                              "Config preset for task and policy sizes.")
_WIDTH = flags.DEFINE_integer("width", None, "Override the preset's policy width.")
_DEPTH = flags.DEFINE_integer("depth", None, "Override the preset's policy depth.")
_MIN_AGREEMENT = 0.99


def human_for_one_question(x: int, k: int):
  """H's decomposition for one question, as a generator: yields ("ask", (x, k)) or
  ("lookup", key) and receives the answer; returns H's answer."""
  if k == 1:
    return (yield ("lookup", x))
  h = k // 2
  y = yield ("ask", (x, h))
  if y == IDK:
    return IDK
  y = yield ("ask", (y, h))
  if y == IDK or k % 2 == 0:
    return y
  return (yield ("lookup", y))


def label_one_at_a_time(task, ask_one, inputs) -> np.ndarray:
  contexts, questions = np.asarray(inputs.context), np.asarray(inputs.questions)
  bit_tokens = task.bit0 + np.arange(2)
  answers = []
  for context, question in zip(contexts, questions):
    facts = {int(a): int(b) for a, b in context}
    x = int(question[0])
    k = int(sum(int(b - task.bit0) << i for i, b in enumerate(question[:0:-1])))
    human = human_for_one_question(x, k)
    try:
      kind, arg = next(human)
      while True:
        if kind == "ask":
          sub_x, sub_k = arg
          bits = [bit_tokens[(sub_k >> i) & 1] for i in range(task.k_bits - 1, -1, -1)]
          subquestion = np.array([[sub_x, *bits]], np.int32)
          reply = int(ask_one(context[None], subquestion))
        else:
          reply = facts.get(arg, IDK)
        kind, arg = human.send(reply)
    except StopIteration as done:
      answers.append(done.value)
  return np.asarray(answers)[:, None]


def best_time(fn, repeats):
  jax.block_until_ready(fn())  # warm-up: compile
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - start)
  return min(times)


def main(argv):
  del argv
  overrides = {name: flag.value for name, flag in [("width", _WIDTH), ("depth", _DEPTH)]
               if flag.value is not None}
  config = config_lib.get_config(_PRESET.value, **overrides)
  task, _ = make_task(config)
  amplifier = Amplifier(make_oracle(config, task), ExactIndex(), task,
                        Budget(config.max_asks, config.max_lookups))
  # H may ask pi at every difficulty, so both sides do the whole decomposition.
  competent = np.ones(task.spec.max_difficulty + 1, bool)
  policy = make_policy(task.spec, config, jax.random.key(0))
  graphdef, params = nnx.split(policy, nnx.Param)
  policy_one = jax.jit(lambda c, q: jnp.argmax(nnx.merge(graphdef, params)(c, q), -1)[0, 0])
  inputs = task.deployment_questions(jax.random.key(1), _BATCH.value)
  key = jax.random.key(2)

  label_batched = lambda: amplifier.label(inputs, policy, competent, key).answers
  label_looped = lambda: label_one_at_a_time(task, policy_one, inputs)
  # On CPU the two agree exactly. On a GPU, float reductions depend on the batch size, and an
  # untrained policy's near-tied logits can then pick another argmax for a few rows.
  same = float(np.mean(np.asarray(label_batched()) == label_looped()))
  if same < _MIN_AGREEMENT:
    raise SystemExit(f"batched and per-question labels agree on only {same:.4f} of rows: the "
                     "benchmark is not comparing like with like")

  t_batched = best_time(label_batched, _REPEATS.value)
  t_looped = best_time(label_looped, _REPEATS.value)
  params = sum(x.size for x in jax.tree.leaves(nnx.state(policy, nnx.Param)))
  print(f"device: {jax.devices()[0].device_kind}  jax {jax.__version__}  preset {_PRESET.value}  "
        f"policy width {config.width} depth {config.depth} ({params} parameters)  "
        f"batch {_BATCH.value}  labels agree on {same:.4f} of rows")
  print(f"batched H^A:        {t_batched * 1e3:9.2f} ms")
  print(f"per-question loop:  {t_looped * 1e3:9.2f} ms")
  print(f"speed-up:           {t_looped / t_batched:9.1f}x")


if __name__ == "__main__":
  app.run(main)
