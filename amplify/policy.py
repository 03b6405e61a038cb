"""The policy pi: a Flax NNX transformer (context facts + question) -> answer-token logits.

One family serves distillation, prosaic ML and the supervised ceiling, so comparisons are fair.

The encoding is pointer-friendly (see ../shared/REFERENCES.md, the measured note on permutation
powering): one token table E is shared by every input token and by the output layer (logits =
h E^T). A fact [f_0, f_1, ...] becomes one token E[f_0] + sum_j W_j E[f_j], so a token holding E[x]
can attend to the fact whose key is x and copy its value straight into the output space.
A task with `Spec.packed_question` has its question packed the same way into one token, which is
also where the answer is read (one answer slot embedding added per answer position); otherwise
each group of `Spec.question_group` question positions is packed into a token (plus a learned
position embedding) and answers are read at La learned answer slots.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from amplify.tasks.base import Spec


class Block(nnx.Module):
  """Pre-norm transformer block."""

  def __init__(self, width: int, heads: int, *, rngs: nnx.Rngs):
    self.norm1 = nnx.LayerNorm(width, rngs=rngs)
    self.attention = nnx.MultiHeadAttention(heads, width, decode=False, rngs=rngs)
    self.norm2 = nnx.LayerNorm(width, rngs=rngs)
    self.mlp_in = nnx.Linear(width, 4 * width, rngs=rngs)
    self.mlp_out = nnx.Linear(4 * width, width, rngs=rngs)

  def __call__(self, h: jax.Array) -> jax.Array:
    h = h + self.attention(self.norm1(h))
    return h + self.mlp_out(jax.nn.gelu(self.mlp_in(self.norm2(h))))


class PackedTokens(nnx.Module):
  """tokens int32[..., L] -> one vector E[t_0] + sum_{j>=1} W_j E[t_j] (E is shared)."""

  def __init__(self, length: int, width: int, *, rngs: nnx.Rngs):
    self.slots = nnx.List(
        [nnx.Linear(width, width, use_bias=False, rngs=rngs) for _ in range(length - 1)])

  def __call__(self, embed: nnx.Embed, tokens: jax.Array) -> jax.Array:
    h = embed(tokens[..., 0])
    for j, slot in enumerate(self.slots, start=1):
      h = h + slot(embed(tokens[..., j]))
    return h


class Policy(nnx.Module):
  """pi(context int32[B, C, Lf], questions int32[B, Lq]) -> logits float32[B, La, V]."""

  def __init__(self, spec: Spec, *, width: int, depth: int, heads: int, rngs: nnx.Rngs):
    self.spec = spec
    init = nnx.initializers.normal(0.02)
    self.embed = nnx.Embed(spec.vocab_size, width, rngs=rngs)
    if spec.context_size:
      self.fact = PackedTokens(spec.fact_len, width, rngs=rngs)
      self.fact_segment = nnx.Param(init(rngs.params(), (width,)))
    if spec.packed_question:
      self.question = PackedTokens(spec.question_len, width, rngs=rngs)
    else:
      self.question = PackedTokens(spec.question_group, width, rngs=rngs)
      self.question_positions = nnx.Param(
          init(rngs.params(), (spec.question_len // spec.question_group, width)))
    self.answer_slots = nnx.Param(init(rngs.params(), (spec.answer_len, width)))
    self.blocks = nnx.List([Block(width, heads, rngs=rngs) for _ in range(depth)])
    self.norm = nnx.LayerNorm(width, rngs=rngs)
    self.out_bias = nnx.Param(jnp.zeros((spec.vocab_size,)))

  def __call__(self, context: jax.Array, questions: jax.Array) -> jax.Array:
    batch = questions.shape[0]
    parts = []
    if self.spec.context_size:
      parts.append(self.fact(self.embed, context) + self.fact_segment[...])
    if self.spec.packed_question:
      parts.append(self.question(self.embed, questions)[:, None] + self.answer_slots[...])
    else:
      groups = questions.reshape(batch, -1, self.spec.question_group)
      parts.append(self.question(self.embed, groups) + self.question_positions[...])
      parts.append(jnp.broadcast_to(self.answer_slots[...], (batch,) + self.answer_slots.shape))
    h = jnp.concatenate(parts, axis=1)
    for block in self.blocks:
      h = block(h)
    h = self.norm(h[:, -self.spec.answer_len:])
    return self.embed.attend(h) + self.out_bias[...]


def make_policy(spec: Spec, config, key: jax.Array) -> Policy:
  return Policy(spec, width=config.width, depth=config.depth, heads=config.heads,
                rngs=nnx.Rngs(params=key))
