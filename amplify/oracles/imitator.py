"""H''s network (`amplify.oracles.learned`): `StepImitator` predicts H's next step from the
question and the steps taken; a committee of MEMBERS of them is fitted together (`_train`) and
acts as one (`_act`: the first member's step, the least confidence any member gives it); it
learns from the steps `_Recorder` keeps of the real H, which `Transcripts` lays out as states and
steps. Its fits and steps split their rows over the devices (`amplify.learn.mesh`)."""
from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from amplify.learn.mesh import split_rows
from amplify.learn.mz import KEY_RADIX, fact_key
from amplify.learn.policy import Block
from amplify.types import PAD

ASK, LOOKUP, ANSWER = 0, 1, 2  # action kinds
MEMBERS = 2  # H' is a committee of this many networks (own initialisation, own minibatches)
FIT_ROWS = 4096  # a fit's examples are padded to at least this many (one program while fewer)
# Adam, its updates clipped: a committee member at a constant 3e-3 diverged now and then
_OPTIMIZER = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(3e-3))


class StepImitator(nnx.Module):
  """state int32[B, L] -> (kind logits [B, 3], token logits [B, P, L + V']): for each payload
  token, copy logits over the state's positions, then generate logits over the vocabulary.

  The state is a question of `question_len` tokens, then `steps` steps of (kind, `result`
  tokens). An answer has the layout of a subanswer (both are the task's answers), so the slot of
  answer token p also starts from token p of every step's result (a weight per step): adding or
  choosing between subanswers' tokens is then position by position, not a search over the state."""

  def __init__(self, vocab: int, question_len: int, steps: int, result: int, payload: int,
               width: int, *, rngs: nnx.Rngs):
    self.question_len, self.steps, self.result = question_len, steps, result
    self.embed = nnx.Embed(vocab, width, rngs=rngs)
    length = question_len + steps * (1 + result)
    self.position = nnx.Param(0.02 * jax.random.normal(rngs.params(), (length, width)))
    self.encoder = Block(width, 4, rngs=rngs)
    self.slots = nnx.Param(0.02 * jax.random.normal(rngs.params(), (1 + payload, width)))
    self.aligned = nnx.Param(jax.random.normal(rngs.params(), (steps, 1 + 1, width, width))
                             / math.sqrt(width * steps))  # per step: its kind, its result token
    self.cross = nnx.MultiHeadAttention(4, width, decode=False, rngs=rngs)
    self.decoder = Block(width, 4, rngs=rngs)
    self.kind = nnx.Linear(width, 3, rngs=rngs)
    self.generate = nnx.Linear(width, vocab, rngs=rngs)
    self.query = nnx.Linear(width, width, rngs=rngs)
    self.key = nnx.Linear(width, width, rngs=rngs)

  def __call__(self, state: jax.Array):
    tokens = self.embed(state)
    enc = self.encoder(tokens + self.position[...])
    steps = tokens[:, self.question_len:].reshape(state.shape[0], self.steps, 1 + self.result, -1)
    aligned = (jnp.einsum("bkw,kwv->bv", steps[:, :, 0], self.aligned[:, 0])[:, None]
               + jnp.einsum("bkrw,kwv->brv", steps[:, :, 1:], self.aligned[:, 1]))
    h = self.slots[...] + jnp.pad(aligned, ((0, 0), (1, self.slots.shape[0] - 1 - self.result),
                                            (0, 0)))
    h = self.decoder(h + self.cross(h, enc))
    copy = jnp.einsum("bpw,blw->bpl", self.query(h[:, 1:]), self.key(enc)) / math.sqrt(h.shape[-1])
    return self.kind(h[:, 0]), jnp.concatenate([copy, self.generate(h[:, 1:])], axis=-1)


def _loss(model, widths, state, kind, payload):
  """Cross-entropy of the step's kind, plus the mean over the payload tokens the kind uses
  (`widths`[kind] of them: a look-up's one key, an answer's answer_len tokens)."""
  kind_logits, logits = model(state)
  length = state.shape[1]
  logp = jax.nn.log_softmax(logits, -1)
  match = state[:, None, :] == payload[:, :, None]  # copying any position holding the token
  copy = jax.nn.logsumexp(jnp.where(match, logp[..., :length], -jnp.inf), axis=-1)
  generate = jnp.take_along_axis(logp[..., length:], payload[..., None], -1)[..., 0]
  used = jnp.arange(payload.shape[1]) < jnp.asarray(widths)[kind][:, None]
  token_loss = -jnp.sum(jnp.where(used, jnp.logaddexp(copy, generate), 0.)) / jnp.sum(used)
  kind_loss = optax.softmax_cross_entropy_with_integer_labels(kind_logits, kind).mean()
  return kind_loss + token_loss


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _train(graphdef, optimizer, widths, params, rest, opt_state, states, kinds, payloads, batches):
  """Optimiser steps for each committee member (params, opt_state and `batches` int[members,
  steps, batch] with a leading member axis) over its minibatches of the data (on device): one
  compiled program, a scan per member, no Python between steps (a vmap over the members took
  1.1-1.3x as long on CPU)."""

  def step(carry, rows):
    params, opt_state = carry
    batch = split_rows((states[rows], kinds[rows], payloads[rows]))
    loss, grads = jax.value_and_grad(lambda p: _loss(nnx.merge(graphdef, p, rest), widths,
                                                     *batch))(params)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return (optax.apply_updates(params, updates), opt_state), loss

  def member(params, opt_state, batches):
    (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), batches)
    return params, opt_state, losses[-1]

  out = [member(*jax.tree.map(lambda x: x[m], (params, opt_state, batches)))
         for m in range(batches.shape[0])]
  return jax.tree.map(lambda *x: jnp.stack(x), *out)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _act(graphdef, widths, params, rest, state):
  """The committee's action: the first member's most likely kind int32[B] and payload int32[B, P]
  (each token copied from its most likely position or generated, whichever is more likely), and
  H''s confidence in it float[B]: the least probability any member gives the kind or a used
  payload token (copied from any position holding it, or generated)."""
  state = split_rows(state)
  kind_logits, logits = jax.vmap(lambda p: nnx.merge(graphdef, p, rest)(state))(params)
  length = state.shape[1]
  first = logits[0]
  copy_at = jnp.argmax(first[..., :length], -1)
  copied = jnp.take_along_axis(state, copy_at, axis=1)
  generated = jnp.argmax(first[..., length:], -1)
  use_copy = jnp.max(first[..., :length], -1) > jnp.max(first[..., length:], -1)
  kind = jnp.argmax(kind_logits[0], -1)
  payload = jnp.where(use_copy, copied, generated).astype(jnp.int32)
  p = jax.nn.softmax(logits, -1)  # [members, B, P, L + V']
  token_p = (jnp.sum(jnp.where(state[:, None, :] == payload[..., None], p[..., :length], 0.), -1)
             + jnp.take_along_axis(p[..., length:], payload[None, ..., None], -1)[..., 0])
  kind_p = jnp.take_along_axis(jax.nn.softmax(kind_logits, -1), kind[None, :, None], -1)[..., 0]
  used = jnp.arange(payload.shape[1]) < jnp.asarray(widths)[kind][:, None]
  confidence = jnp.minimum(jnp.min(kind_p, 0), jnp.min(jnp.where(used, token_p, 1.), (0, 2)))
  return kind, payload, confidence


def _padded(a: np.ndarray, least: int = 1) -> np.ndarray:
  """`a` with zero rows appended up to a power of two of rows, and to at least `least` rows: one
  compiled shape per doubling of the data, not one per call."""
  size = max(least, 1 << (len(a) - 1).bit_length())
  return np.concatenate([a, np.zeros((size - len(a),) + a.shape[1:], a.dtype)])


@dataclasses.dataclass(frozen=True)
class Transcripts:
  """How the real H's transcripts become H''s examples: a state shows the question and each step's
  kind and result, not its payload (a deterministic H's payloads are functions of the question
  and the earlier results, and this keeps the state short); a step's payload is a subquestion, a
  look-up's key, or the answer."""
  question_len: int
  answer_len: int
  steps_max: int  # the most steps H's decomposition takes
  key_width: int  # a key: one token past the task's (latent) or the fact tokens it is made of
  key_token: int
  special: int  # state tokens for ASK, LOOKUP, and an empty step

  @classmethod
  def of(cls, task) -> "Transcripts":
    spec = task.spec
    return cls(spec.question_len, spec.answer_len, sum(task.budget_needed),
               spec.fact_len - 1 if spec.context_size else 1,
               spec.mz_key_token if spec.names_mz_keys else 0, spec.vocab_size)

  @property
  def payload(self) -> int:
    return max(self.question_len, self.answer_len, self.key_width)

  @property
  def result(self) -> int:
    return self.answer_len

  def network(self, width: int, key: jax.Array) -> StepImitator:
    """A fresh member of H''s committee for these transcripts."""
    return StepImitator(self.special + 3, self.question_len, self.steps_max, self.result,
                        self.payload, width, rngs=nnx.Rngs(key))

  @property
  def widths(self) -> tuple[int, int, int]:
    """The payload tokens each kind uses: an ask's question, a look-up's key, an answer."""
    return self.question_len, self.key_width, self.answer_len

  def steps(self, log, rows: np.ndarray):
    """The steps each of `rows` took (a `_Recorder`'s log), in order: kinds int32[n, K] (-1
    none), payloads int32[n, K, P], results int32[n, K, R]."""
    n, k = len(rows), self.steps_max
    kinds = np.full((n, k), -1, np.int32)
    payloads = np.zeros((n, k, self.payload), np.int32)
    results = np.zeros((n, k, self.result), np.int32)
    count = np.zeros(n, np.int64)
    for kind, *arrays in log:
      payload, result, where = (np.asarray(a)[rows] for a in arrays)
      active = np.flatnonzero(where & (count < k))
      at = count[active]
      kinds[active, at] = kind
      if kind == ASK:
        payloads[active, at, :payload.shape[1]] = payload[active]
        results[active, at, :result.shape[1]] = result[active]
      else:
        payloads[active, at, :self.key_width] = self.key_payload(payload[active])
        results[active, at, 0] = result[active]
      count[active] += 1
    return kinds, payloads, results, count

  def key_payload(self, keys: np.ndarray) -> np.ndarray:
    """int[n] look-up keys -> int32[n, key_width] payload tokens (`key` inverts it)."""
    if self.key_width == 1:
      return (keys + self.key_token)[:, None]
    return np.stack([(keys // KEY_RADIX**j) % KEY_RADIX for j in range(self.key_width)], axis=1)

  def key(self, payload: np.ndarray) -> np.ndarray:
    return (payload[:, 0] - self.key_token if self.key_width == 1 else
            np.asarray(fact_key(*payload[:, :self.key_width].astype(np.int64).T)))

  def state(self, questions: np.ndarray, kinds, results, upto: np.ndarray):
    """The state before step `upto` of each row: its question, and the kind and result of each
    of its first `upto` steps."""
    n = len(questions)
    k = self.steps_max
    shown = np.arange(k)[None, :] < upto[:, None]
    kind_token = np.where(shown & (kinds >= 0), self.special + np.maximum(kinds, 0),
                          self.special + 2)
    steps = np.concatenate([kind_token[..., None], np.where(shown[..., None], results, PAD)],
                           axis=-1)
    return np.concatenate([questions, steps.reshape(n, -1)], axis=1).astype(np.int32)

  def examples(self, questions, answers, log, rows):
    """(state, kind, payload) for every step of the real H on `rows`, and its answer; and the
    position in `rows` of each example's row."""
    kinds, payloads, results, count = self.steps(log, rows)
    q = np.asarray(questions)[rows]
    states, kind_out, payload_out, row_out = [], [], [], []
    for t in range(self.steps_max + 1):
      at = np.flatnonzero(count >= t)
      if not len(at):
        break
      states.append(self.state(q[at], kinds[at], results[at], np.full(len(at), t)))
      final = count[at] == t
      kind_out.append(np.where(final, ANSWER, kinds[at, min(t, self.steps_max - 1)]))
      answer = np.zeros((len(at), self.payload), np.int32)
      answer[:, :self.result] = np.asarray(answers)[rows][at]
      step = payloads[at, min(t, self.steps_max - 1)]
      payload_out.append(np.where(final[:, None], answer, step))
      row_out.append(at)
    return (np.concatenate(states), np.concatenate(kind_out), np.concatenate(payload_out),
            np.concatenate(row_out))

  def step_index(self, states: np.ndarray) -> np.ndarray:
    """int[N]: how many steps each state shows."""
    kind_tokens = states[:, self.question_len::1 + self.result]
    return np.sum(kind_tokens != self.special + 2, axis=1)


class _Recorder:
  """The batch's tools restricted to some rows (the real H's share), keeping the steps taken
  through them, in order: (kind, payload, result, where) per call."""

  def __init__(self, tools, rows: jax.Array):
    self._tools, self._rows = tools, rows
    self.log: list[tuple[int, jax.Array, jax.Array, jax.Array]] = []

  def ask(self, subquestions, where):
    where = where & self._rows
    answers = self._tools.ask(subquestions, where)
    self.log.append((ASK, subquestions, answers, where))
    return answers

  def lookup(self, keys, where):
    where = where & self._rows
    values = self._tools.lookup(keys, where)
    self.log.append((LOOKUP, keys, values, where))
    return values
