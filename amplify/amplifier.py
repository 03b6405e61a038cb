"""H^A, the amplified human: the oracle H + the last distilled policy pi + Mz.

`Amplifier.label` labels a whole batch of D* questions: H's decomposition runs as array
code over the batch, each subquestion slot is one batched policy call, and each look-up slot one
batched Mz call. With a jittable oracle the whole of H^A is one compiled program.
Round 0 has no policy: every ask is answered IDK, so H answers only what look-ups settle.
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
from flax import nnx

from amplify.mz import IndexedModel, shown
from amplify.oracles.base import Oracle
from amplify.oracles.tools import BatchTools, Transcript
from amplify.tasks.base import IDK, Inputs, Spec


@dataclasses.dataclass(frozen=True)
class Budget:
  max_asks: int
  max_lookups: int


@dataclasses.dataclass
class Labels:
  """answers int32[B, La] (IDK where H^A can't answer), the transcript, and per-row costs."""
  answers: jax.Array
  transcript: Transcript

  def cost(self) -> dict[str, int]:
    return {"oracle_calls": int(self.answers.shape[0]),
            "asks": int(self.transcript.asked.sum()),
            "lookups": int(self.transcript.looked_up.sum())}


jax.tree_util.register_dataclass(Labels, data_fields=["answers", "transcript"], meta_fields=[])


def _amplified_answers(oracle: Oracle, spec: Spec, budget: Budget, difficulty, graphdef,
                       mz: IndexedModel, view, params, competent: jax.Array, inputs: Inputs,
                       key: jax.Array) -> Labels:
  batch = inputs.questions.shape[0]
  if graphdef is None:  # round 0: no policy yet
    ask_fn = lambda q: jnp.full((q.shape[0], spec.answer_len), IDK, jnp.int32)
  else:
    policy = nnx.merge(graphdef, params)

    def ask_fn(q):
      seen = shown(view, Inputs(inputs.context, q))
      answers = jnp.argmax(policy(seen.context, seen.questions), -1).astype(jnp.int32)
      return jnp.where(competent[difficulty(q)][:, None], answers, IDK)

  tools = BatchTools(ask_fn, lambda keys: mz.lookup(keys, inputs.context), batch,
                     max_asks=budget.max_asks, max_lookups=budget.max_lookups)
  answers = oracle.answer(inputs.questions, tools, key)
  return Labels(answers, tools.transcript(inputs.questions, spec.answer_len))


CHUNK = 4096  # questions H^A labels per compiled call


class Amplifier:
  """Binds H (oracle), Mz, a budget and the task's difficulty function; `label(inputs, policy,
  competent, key)` runs H^A on a batch.

  H asks pi only about subquestions of a difficulty pi is competent at: `competent` is a bool
  array indexed by difficulty, set from the IID check of the round that trained pi (its held-out
  agreement with H^A at that difficulty). Other asks come back IDK. A guess passed on as a
  subanswer becomes a wrong label, and a policy trained on labels built from its own guesses
  learns to repeat them (measured in BUILD_NOTES.md).
  """

  def __init__(self, oracle: Oracle, mz: IndexedModel, spec: Spec, budget: Budget, difficulty,
               view=None):
    """view: what the policy is shown of a subquestion (an `amplify.mz.MzView` for a policy that
    reads Mz; None: the subquestion itself)."""
    fn = functools.partial(_amplified_answers, oracle, spec, budget, difficulty)
    self._label = jax.jit(fn, static_argnums=0) if oracle.jittable else fn
    self._mz, self._view = mz, view  # arguments of the compiled program, not constants in it

  def label(self, inputs: Inputs, policy: nnx.Module | None, competent: jax.Array | None,
            key: jax.Array) -> Labels:
    """inputs: a batch of D* questions (and episodic context); policy: pi_{r-1}, or None in
    round 0; competent: bool[max_difficulty + 1], the difficulties H may ask pi about."""
    if policy is None:
      graphdef, params, competent = None, None, None
    else:
      graphdef, params = nnx.split(policy, nnx.Param)
      competent = jnp.asarray(competent)
    # Fixed-size chunks: one compiled program for any batch, and memory that does not grow with it
    # (a whole 32k batch at once ran ~5x slower per row on 2 CPU cores than 4k chunks).
    n = inputs.questions.shape[0]
    chunks = [self._label(graphdef, self._mz, self._view, params, competent,
                          jax.tree.map(lambda a: a[i:i + CHUNK], inputs),
                          jax.random.fold_in(key, i)) for i in range(0, n, CHUNK)]
    return jax.tree.map(lambda *parts: jnp.concatenate(parts, axis=0), *chunks)
