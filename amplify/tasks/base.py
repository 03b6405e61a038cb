"""The Task seam: what a task states (its `Spec`) and what it offers the rest of amplify.

Every question, answer and fact is a fixed-shape int32 token array, batch first. Token 0 is PAD
and token 1 is IDK ("I don't know"); a task's own tokens start at `FIRST_TOKEN`.

Ground truth is not part of a Task: the task registry hands it out as a separate `GroundTruth`
object, which only the evaluator (`amplify.evaluator`) and the explicitly named baselines
(`amplify.baselines`) receive. A Task holds no reference to it, so an oracle or amplifier built
from a Task cannot reach it; `tests/test_isolation.py` checks this for every task.
"""
from __future__ import annotations

import dataclasses
from typing import NamedTuple, Protocol

import jax

PAD = 0
IDK = 1
FIRST_TOKEN = 2

EPISODIC = "episodic"
LATENT = "latent"


@dataclasses.dataclass(frozen=True)
class Spec:
  """Shapes and vocabulary of a task's token arrays."""
  vocab_size: int
  question_len: int
  answer_len: int
  fact_len: int
  context_size: int  # facts per example; 0 in a latent world
  regime: str  # EPISODIC or LATENT
  max_difficulty: int  # Task.difficulty lies in [0, max_difficulty]
  # True: the policy reads the whole question as one token, E[q_0] + sum_j W_j E[q_j], and
  # answers at that token (pointer-friendly; permutation powering needs it to learn at all).
  # False: one token per question position, answers read at separate answer slots.
  packed_question: bool = False


class Inputs(NamedTuple):
  """What H, H^A and the policy may see of a batch of examples.

  context: int32[B, C, Lf], the example's facts (C = 0 in a latent world).
  questions: int32[B, Lq].
  """
  context: jax.Array
  questions: jax.Array


class Tools(Protocol):
  """What H may use while answering: the policy (`ask`) and Mz (`lookup`). See amplify.oracles."""

  def ask(self, subquestions: jax.Array, where: jax.Array) -> jax.Array:
    ...

  def lookup(self, keys: jax.Array, where: jax.Array) -> jax.Array:
    ...


class Task(Protocol):
  """A task: samplers for D and D*, difficulties, H's decomposition, and ground truth."""
  name: str
  spec: Spec

  def training_data(self, key: jax.Array, n: int) -> tuple[Inputs, jax.Array]:
    """D: n observed examples and their observed labels int32[n, La] (the data, not the truth of D*)."""

  def deployment_questions(self, key: jax.Array, n: int) -> Inputs:
    """D*: n questions (with their episodic context), no labels."""

  def difficulty(self, questions: jax.Array) -> jax.Array:
    """int32[B]: the difficulty of each question, for per-difficulty metrics."""

  def human_answer(self, questions: jax.Array, tools: Tools) -> jax.Array:
    """H's decomposition, written for a whole batch: int32[B, La] answers (IDK where H can't)."""

  def random_answers(self, key: jax.Array, n: int) -> jax.Array:
    """int32[n, La]: uniformly random well-formed answers (a noisy human's slips)."""

  def augment(self, key: jax.Array, inputs: Inputs, labels: jax.Array) -> tuple[Inputs, jax.Array]:
    """A random symmetry of the task applied to labelled rows (identity where it has none). The
    distiller applies it afresh every few steps, for amplification and baselines alike."""


class GroundTruth(Protocol):
  """The world as it is. Only the evaluator and the named baselines hold one."""

  def answers(self, inputs: Inputs) -> jax.Array:
    """int32[B, La]: the true answers to a batch of questions."""
