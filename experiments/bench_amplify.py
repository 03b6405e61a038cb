"""Batched H^A against a per-question loop in the style of the 2018 code: same policy, same
questions (permutation powering).

  python experiments/bench_amplify.py --preset=permutation --batch=1024
Seeds: --seeds (the figures: 0; the policy's and the questions' keys). Machine: the project's
2-core CPU and a lent H100 (results/bench_amplify/README.md).

The per-question baseline runs one Python generator per question (H's decomposition of a
permutation question written for a single question, as in the authors' code) and one policy call
per subquestion (batch of 1, jitted once, compiled before timing). The batched Amplifier labels
the whole batch in one compiled program. Both must give the same labels; the script prints both
times (best of --repeats, each after a warm-up) and their ratio, and writes them to
RESULTS/bench_amplify/bench_amplify.{json,md}. The policy's size is the preset's, or run flags'
(`--config.model.width=16 --config.model.depth=4`).
"""
from __future__ import annotations

import time

from absl import flags
from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np

from amplify.learn.amplifier import Amplifier, Budget
from amplify.learn.mz import ExactIndex
from amplify.oracles.make import make_oracle
from amplify.tasks import make_task
from amplify.types import IDK
import common

_BATCH = flags.DEFINE_integer("batch", 1024, "D* questions labelled.", lower_bound=1)
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed repetitions of each side (best is reported).",
                                lower_bound=1)
_MIN_AGREEMENT = 0.99


def human_for_one_question(x: int, k: int, elements: range):
  """H's decomposition for one question, as a generator: yields ("ask", (x, k)) or
  ("lookup", key) and receives the answer; returns H's answer. A subanswer that is not in
  `elements` (the element tokens) counts as IDK."""
  if k == 1:
    return (yield ("lookup", x))
  h = k // 2
  y = yield ("ask", (x, h))
  if y not in elements:
    return IDK
  y = yield ("ask", (y, h))
  if y not in elements:
    return IDK
  if k % 2 == 0:
    return y
  return (yield ("lookup", y))


def label_one_at_a_time(task, ask_one, inputs) -> np.ndarray:
  contexts, questions = np.asarray(inputs.context), np.asarray(inputs.questions)
  bit_tokens = task.bit0 + np.arange(2)
  elements = range(*task.spec.answer_range)
  answers = []
  for context, question in zip(contexts, questions):
    facts = {int(a): int(b) for a, b in context}
    x = int(question[0])
    k = int(sum(int(b - task.bit0) << i for i, b in enumerate(question[:0:-1])))
    human = human_for_one_question(x, k, elements)
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


def bench(preset: str, seed: int) -> dict:
  config = common.config_for(common.argv_for(preset, seed))
  task, _ = make_task(config)  # the seed's world: only the questions' shape matters here
  amplifier = Amplifier(make_oracle(config, task), ExactIndex(), task,
                        Budget(config.label.max_asks, config.label.max_lookups))
  # H may ask pi at every difficulty, so both sides do the whole decomposition.
  competent = np.ones(task.spec.max_difficulty + 1, bool)
  policy = common.make_policy(task.spec, config.model, jax.random.key(seed))
  graphdef, params = nnx.split(policy, nnx.Param)
  policy_one = jax.jit(lambda c, q: jnp.argmax(nnx.merge(graphdef, params)(c, q), -1)[0, 0])
  inputs = task.deployment_questions(jax.random.key(seed + 1), _BATCH.value)
  key = jax.random.key(seed + 2)

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
  size = sum(x.size for x in jax.tree.leaves(nnx.state(policy, nnx.Param)))
  print(f"{common.label(preset)}, seed {seed}: policy width {config.model.width} depth "
        f"{config.model.depth} ({size} parameters), batch {_BATCH.value}, labels agree on "
        f"{same:.4f} of rows; batched H^A {t_batched * 1e3:.2f} ms, per-question loop "
        f"{t_looped * 1e3:.2f} ms, speed-up {t_looped / t_batched:.1f}x", flush=True)
  return {"preset": common.label(preset), "seed": seed, "width": config.model.width,
          "depth": config.model.depth, "parameters": int(size), "batch": _BATCH.value,
          "agreement": same, "batched_ms": round(t_batched * 1e3, 2),
          "looped_ms": round(t_looped * 1e3, 2), "speed_up": round(t_looped / t_batched, 2)}


def main(argv):
  del argv
  rows = [bench(preset, seed) for preset in common.presets(["permutation"])
          for seed in common.seeds()]
  table = common.markdown(
      ["preset", "seed", "policy", "batch", "labels agree", "batched H^A", "per-question loop",
       "speed-up"],
      [[r["preset"], r["seed"], f"width {r['width']}, depth {r['depth']} ({r['parameters']:,} "
        "parameters)", r["batch"], f"{r['agreement']:.4f}", f"{r['batched_ms']} ms",
        f"{r['looped_ms']} ms", f"**{r['speed_up']:.1f}x**"] for r in rows])
  common.write_results(f"Batched H^A against a per-question loop ({jax.devices()[0].device_kind})",
                       table, rows)


if __name__ == "__main__":
  common.main(main)
