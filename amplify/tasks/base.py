"""Helpers a task may use: the range check of its answers and a token-id `Text` for a task that
has no rendering of its own."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from amplify.learn.mz import named_keys
from amplify.types import FIRST_TOKEN, IDK, Spec

def answers_in_range(spec: Spec, answers: jax.Array) -> jax.Array:
  """bool[B]: each answer is IDK or all the task's answer tokens (`Spec.answer_tokens`); a task
  whose every such answer is well formed returns this as its `valid_answers`."""
  first, stop = spec.answer_range
  return (jnp.all(answers == IDK, axis=1)
          | jnp.all((answers >= first) & (answers < stop), axis=1))


def random_counts(key: jax.Array, n: int, most: int, parts: int) -> jax.Array:
  """int32[n, parts]: n totals drawn uniformly from 1..most, each shared out among the parts
  uniformly over the ways to (parts - 1 bars among total + parts - 1 slots, chosen uniformly)."""
  k_total, k_bars = jax.random.split(key)
  slots = jnp.arange(most + parts - 1)
  total = jax.random.randint(k_total, (n, 1), 1, most + 1)
  order = jnp.where(slots < total + parts - 1, jax.random.uniform(k_bars, (n, slots.size)), 2.0)
  bars = jnp.sort(jnp.argsort(order, axis=1)[:, :parts - 1], axis=1)
  edges = jnp.concatenate([jnp.full((n, 1), -1), bars, total + parts - 1], axis=1)
  return (jnp.diff(edges, axis=1) - 1).astype(jnp.int32)


def letter_name(index: int, count: int) -> str:
  """The name a person reads for the index-th of `count` names: a, b, c, ... (x0, x1, ... where
  there are more than 26)."""
  return chr(ord("a") + index) if count <= 26 else f"x{index}"


def parse_letter_name(text: str, first_token: int, count: int, what: str, whats: str) -> int:
  """The token of a name `letter_name` gives (token first_token + index); a ValueError naming
  the names there are for any other text ("'q' is not a vertex; the vertices are a to l.")."""
  names = {letter_name(i, count): first_token + i for i in range(count)}
  if text.strip() not in names:
    article = "an" if what[0] in "aeiou" else "a"
    raise ValueError(f"{text.strip()!r} is not {article} {what}; the {whats} are "
                     f"{letter_name(0, count)} to {letter_name(count - 1, count)}.")
  return names[text.strip()]


class TokenText:
  """`Text` in token ids, for a task that has no rendering of its own (a plug-in's first draft):
  questions and answers are shown and typed as space-separated token ids."""

  def render_question(self, question: np.ndarray) -> str:
    return "question " + " ".join(str(int(t)) for t in question)

  def render_answer(self, answer: np.ndarray) -> str:
    return "IDK" if np.any(np.asarray(answer) == IDK) else " ".join(str(int(t)) for t in answer)

  def _ids(self, text: str, length: int, what: str) -> np.ndarray:
    try:
      ids = [int(t) for t in text.split()]
    except ValueError:
      raise ValueError(f"{text!r}: type {what} as {length} token ids separated by spaces.") \
          from None
    if len(ids) != length or not all(FIRST_TOKEN <= t < self.spec.vocab_size for t in ids):
      raise ValueError(f"{text!r}: {what} is {length} token ids in [{FIRST_TOKEN}, "
                       f"{self.spec.vocab_size}).")
    return np.asarray(ids, np.int32)

  def parse_answer(self, text: str, question: np.ndarray) -> np.ndarray:
    return self._ids(text, self.spec.answer_len, "an answer")

  def parse_question(self, text: str, parent: np.ndarray) -> np.ndarray:
    return self._ids(text, self.spec.question_len, "a question")

  def parse_key(self, text: str, parent: np.ndarray) -> int:
    try:
      return int(text)
    except ValueError:
      raise ValueError(f"{text!r}: type a key as a number.") from None

  def render_lookup(self, key: int, value: int) -> str:
    return f"Mz({key}) = " + ("not found" if value == IDK else str(int(value)))


class KeyCoverage:
  """A task hook (`Task.key_coverage`) for a task whose questions name Mz keys: which keys a
  question pi trained on named (bool[z entries], kept in the run's state and checkpoints), and
  pi's accuracy on the evaluation questions none of whose keys pi ever trained on."""

  def __init__(self, spec: Spec):
    self.spec = spec

  def _keys(self, questions: jax.Array) -> tuple[np.ndarray, np.ndarray]:
    keys, named = named_keys(self.spec.mz_key_positions, self.spec.mz_key_token, questions)
    return np.asarray(keys), np.asarray(named)

  def mark(self, seen: np.ndarray, questions: jax.Array, fresh: bool) -> np.ndarray:
    """`seen` with the keys `questions` name added (to none where `fresh`: a new policy)."""
    keys, named = self._keys(questions)
    seen = np.zeros_like(seen) if fresh else seen.copy()
    seen[keys[named]] = True
    return seen

  def metrics(self, seen: np.ndarray, inputs, accuracy) -> dict:
    """The share of the evaluation's distinct keys that no question pi trained on named, and
    `accuracy(rows)` on the evaluation questions all of whose keys are such (None: there are
    none)."""
    keys, named = self._keys(inputs.questions)
    distinct = np.unique(keys[named])
    rows = np.flatnonzero(np.all(~named | ~seen[keys], axis=1) & named.any(axis=1))
    score = accuracy(jax.tree.map(lambda a: a[rows], inputs)) if len(rows) else None
    return {"unseen_entity_fraction": float(np.mean(~seen[distinct])),
            "policy_accuracy_unseen": score, "unseen_rows": int(len(rows))}


def key_coverage(task) -> KeyCoverage | None:
  """The task's `key_coverage` hook; by default a `KeyCoverage` for a task whose questions name Mz
  keys (a plug-in's too), and None for one whose questions name none."""
  hook = getattr(task, "key_coverage", None)
  return hook if hook is not None else KeyCoverage(task.spec) if task.spec.names_mz_keys else None
