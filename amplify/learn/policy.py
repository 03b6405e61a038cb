"""The policy pi: a Flax NNX transformer (context facts + question) -> answer-token logits.

One family serves distillation, prosaic ML and the supervised ceiling, so comparisons are fair.

In a latent world whose questions name Mz keys (lexicon's entities), pi reads Mz like H does
(`--config.model.policy=reads_mz`, the default): it is shown the question with each key replaced by Mz's
entry there (`amplify.learn.mz.MzView`), so it never embeds a key and its size does not grow with z*.
`--config.model.policy=memorises` is the comparison arm: every key is a token of its vocabulary, and z*'s
entries are learnt into the embedding from the labels (prosaic ML, which never reads z*, always
uses this one).

Depth is recurrent: one pre-norm block, applied `depth` times, told which iteration it is in by a
learned vector (a network that learnt to follow a pointer in one iteration can do it again in the
next, with a quarter of the parameters at depth 4). A task whose question is a count, like
permutation powering's k, has it fed one bit per iteration (`Spec.serial_question`), so that
iteration i decides whether to apply sigma^(2^i). Amplification's rounds impose a curriculum
(k < 2, then k < 4, k < 8, k < 16): with k's bits packed into one token a network learnt each new
range slowly and never caught up, even on right labels; fed serially it learnt each range in the
stage that brought it, though not from every initialisation (BUILD_NOTES.md).

The encoding is pointer-friendly (see ../shared/REFERENCES.md, the measured note on permutation
powering): one token table E is shared by every input token and by the output layer (logits =
h E^T). A fact [f_0, f_1, ...] becomes one token E[f_0] + sum_j W_j E[f_j], so a token holding E[x]
can attend to the fact whose key is x and copy its value straight into the output space.
A task with `Spec.packed_question` has its question packed the same way into one token, which is
also where the answer is read (one answer slot embedding added per answer position); with
`Spec.serial_question` only q_0 is packed and the rest of the question is added to that token one
position per iteration, for that iteration only. Otherwise each group of `Spec.question_group`
question positions is packed into a token (plus a learned position embedding) and answers are
read at La learned answer slots.

The answer in a fact's value slot, wherever the task allows it (2-token facts and a serially fed
question: permutation) and `--config.model.pointer_init` is off: the answer
token starts as W_1 E[x], where a fact (x, sigma(x)) holds sigma(x), and the output reads it
through W_1. The answer is then a fact without a key, so moving the answer by sigma^(2^i) and
doubling a fact (its value sigma^j(x) becoming sigma^2j(x)) are one operation of the shared block.
With the answer in the key slot (E[x]) a move applied to an answer that an earlier iteration had
already moved was learnt late in about half the runs (BUILD_NOTES.md, "The answer in a fact's
value slot").
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from amplify.types import Spec


class Block(nnx.Module):
  """Pre-norm transformer block."""

  def __init__(self, width: int, heads: int, *, pointer_init: bool = False, rngs: nnx.Rngs):
    self.norm1 = nnx.LayerNorm(width, rngs=rngs)
    self.attention = nnx.MultiHeadAttention(heads, width, decode=False, rngs=rngs)
    if pointer_init:
      # Queries and keys start as one orthogonal map, so from the first step a token attends to
      # tokens that share its symbol: a pointer. Over 64 facts a policy without it stays at
      # chance on the look-up itself (BUILD_NOTES.md, GPU figures, "Why `--config.model.pointer_init`").
      tied = nnx.initializers.orthogonal()(rngs.params(), (width, width))
      self.attention.query.kernel[...] = tied.reshape(self.attention.query.kernel.shape)
      self.attention.key.kernel[...] = tied.reshape(self.attention.key.kernel.shape)
    self.norm2 = nnx.LayerNorm(width, rngs=rngs)
    self.mlp_in = nnx.Linear(width, 4 * width, rngs=rngs)
    self.mlp_out = nnx.Linear(4 * width, width, rngs=rngs)

  def __call__(self, h: jax.Array) -> jax.Array:
    h = h + self.attention(self.norm1(h))
    return h + self.mlp_out(jax.nn.gelu(self.mlp_in(self.norm2(h))))


class PackedTokens(nnx.Module):
  """tokens int32[..., L] -> one vector E[t_0] + sum_{j>=1} W_j E[t_j] (E is shared). The W_j are
  one stacked parameter, so reading L tokens is one gather and one contraction (as L - 1 separate
  layers, colored digits' 64-pixel question made the training step a 13 s compile)."""

  def __init__(self, length: int, width: int, *, rngs: nnx.Rngs):
    init = nnx.initializers.lecun_normal()  # nnx.Linear's kernel initialiser, one key per slot
    # none for a single token (orbax does not save an empty array)
    self.kernels = nnx.Param(jnp.stack([init(rngs.params(), (width, width))
                                        for _ in range(length - 1)])) if length > 1 else None

  def __call__(self, embed: nnx.Embed, tokens: jax.Array) -> jax.Array:
    h = embed(tokens[..., 0])
    if self.kernels is not None:
      h = h + jnp.einsum("...jw,jwv->...v", embed(tokens[..., 1:]), self.kernels[...])
    return h


EMBED_ROWS = 1 << 20  # the most rows the token table has (a memorising policy's keys share past it)


class Policy(nnx.Module):
  """pi(context int32[B, C, Lf], questions int32[B, Lq]) -> logits float32[B, La, V]."""

  def __init__(self, spec: Spec, *, width: int, depth: int, heads: int, pointer_init: bool = False,
               answer_in_value_slot: bool = False, reads_mz: bool = False, rngs: nnx.Rngs):
    self.spec = spec
    if reads_mz and not spec.names_mz_keys:
      raise ValueError("a policy that reads Mz needs a task whose questions name Mz keys "
                       "(Spec.mz_key_positions); this task's policy reads the question alone.")
    if answer_in_value_slot and not value_slot_fits(spec, pointer_init):
      raise ValueError("the answer token takes the value slot of a (key, value) fact: the task "
                       "needs 2-token facts and a serially fed question (permutation), and no "
                       "pointer_init (whose tied query and key point a key slot at the keys).")
    self.answer_in_value_slot = answer_in_value_slot
    init = nnx.initializers.normal(0.02)
    # Reading Mz, the policy is shown Mz's entries in place of keys (amplify.learn.mz.MzView) and embeds
    # only the tokens below the keys: its size does not grow with z. Memorising, it embeds every
    # key and learns z*'s entries into those rows from its labels.
    # Past EMBED_ROWS tokens (lexicon_huge's 10^8 entities), keys share rows: key k reads row
    # mz_key_token + k mod (EMBED_ROWS - mz_key_token), the hashing trick (a row per key: 25 GB).
    vocab = spec.mz_key_token if reads_mz else min(spec.vocab_size, EMBED_ROWS)
    self.shared_rows = None if vocab == spec.vocab_size or reads_mz else (spec.mz_key_token, vocab)
    self.embed = nnx.Embed(vocab, width, rngs=rngs)
    if spec.context_size:
      self.fact = PackedTokens(spec.fact_len, width, rngs=rngs)
      self.fact_segment = nnx.Param(init(rngs.params(), (width,)))
    if spec.serial_question and depth < spec.question_len - 1:
      raise ValueError(f"depth={depth}: the policy reads one question position per iteration and "
                       f"this task's questions have {spec.question_len - 1} after the first; use "
                       f"--config.model.depth>={spec.question_len - 1}.")
    if spec.packed_question:
      self.question = PackedTokens(1 if spec.serial_question else spec.question_len, width,
                                   rngs=rngs)
    else:
      self.question = PackedTokens(spec.question_group, width, rngs=rngs)
      self.question_positions = nnx.Param(
          init(rngs.params(), (spec.question_len // spec.question_group, width)))
    self.answer_slots = nnx.Param(init(rngs.params(), (spec.answer_len, width)))
    self.block = Block(width, heads, pointer_init=pointer_init, rngs=rngs)
    self.norm = nnx.LayerNorm(width, rngs=rngs)
    # Answers are never keys: the tied output layer scores only the tokens below them (for the
    # memorising policy at 10^6 entities, full-vocabulary logits were most of a step's cost).
    self.answer_vocab = spec.mz_key_token if spec.names_mz_keys else vocab
    self.out_bias = nnx.Param(jnp.zeros((self.answer_vocab,)))
    self.depth = depth
    if depth > 1:  # with one iteration there is nothing to tell apart
      self.iterations = nnx.Param(init(rngs.params(), (depth, width)))
    if spec.serial_question:
      self.serial = nnx.Linear(width, width, use_bias=False, rngs=rngs)

  def __call__(self, context: jax.Array, questions: jax.Array) -> jax.Array:
    if self.shared_rows is not None:
      first, rows = self.shared_rows
      fold = lambda t: jnp.where(t >= rows, first + (t - first) % (rows - first), t)
      context, questions = fold(context), fold(questions)
    h = self.tokens(context, questions)
    for i in range(self.depth):
      read = self._read(i, questions, h)
      h = self.block(h) if read is None else self.block(h + read) - read
    return self.readout(h[:, -self.spec.answer_len:])

  def readout(self, h: jax.Array) -> jax.Array:
    """Answer tokens float32[B, La, width] -> logits over the vocabulary (the tied table E)."""
    h = self.norm(h)
    if self.answer_in_value_slot:  # the answer is held as W_1 E[y]: read it through W_1
      h = h @ self.fact.kernels[0].T
    return h @ self.embed.embedding[:self.answer_vocab].T + self.out_bias[...]

  def tokens(self, context: jax.Array, questions: jax.Array) -> jax.Array:
    """The input tokens float32[B, T, width]: the facts, then the question/answer tokens."""
    batch = questions.shape[0]
    parts = []
    if self.spec.context_size:
      parts.append(self.fact(self.embed, context) + self.fact_segment[...])
    if self.answer_in_value_slot:
      answer = self.embed(questions[:, 0]) @ self.fact.kernels[0]
      parts.append(answer[:, None] + self.answer_slots[...])
    elif self.spec.packed_question:
      parts.append(self.question(self.embed, questions)[:, None] + self.answer_slots[...])
    else:
      groups = questions.reshape(batch, -1, self.spec.question_group)
      parts.append(self.question(self.embed, groups) + self.question_positions[...])
      parts.append(jnp.broadcast_to(self.answer_slots[...], (batch,) + self.answer_slots.shape))
    return jnp.concatenate(parts, axis=1)

  def _read(self, i: int, questions: jax.Array, h: jax.Array) -> jax.Array | None:
    """What iteration i is given, for that iteration only (it is not kept in h): its index, when
    there are several, and with a serial question one question position, last first."""
    read = jnp.broadcast_to(self.iterations[i], h.shape) if self.depth > 1 else None
    if self.spec.serial_question and i < self.spec.question_len - 1:
      position = self.serial(self.embed(questions[:, -1 - i]))
      position = jnp.zeros_like(h).at[:, -self.spec.answer_len:].add(position[:, None])
      read = position if read is None else read + position
    return read


def reads_mz(spec: Spec, policy: str) -> bool:
  """Whether `config.model.policy` has pi read Mz: a task whose questions name no keys has one
  policy, which reads the question alone."""
  return policy == "reads_mz" and spec.names_mz_keys


def value_slot_fits(spec: Spec, pointer_init: bool) -> bool:
  """Whether the answer token can start in a fact's value slot: (key, value) facts, a question
  fed serially, and no pointer_init."""
  return spec.serial_question and spec.fact_len == 2 and not pointer_init


def make_policy(spec: Spec, model, key: jax.Array, *, reads_mz: bool = False) -> Policy:
  """`model`: the config's `model` block (width, depth, heads, pointer_init). The answer starts
  in a fact's value slot wherever that fits (`value_slot_fits`)."""
  return Policy(spec, width=model.width, depth=model.depth, heads=model.heads,
                pointer_init=model.pointer_init,
                answer_in_value_slot=value_slot_fits(spec, model.pointer_init), reads_mz=reads_mz,
                rngs=nnx.Rngs(params=key))
