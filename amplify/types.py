"""The shared types every part of amplify speaks: tokens, a task's `Spec`, a batch's `Inputs`, and
the protocols of the seams (`Task`, `Tools`, `Text`, `HumanModel`, `GroundTruth`).

Every question, answer and fact is a fixed-shape int32 token array, batch first. Token 0 is PAD
and token 1 is IDK ("I don't know"); a task's own tokens start at `FIRST_TOKEN`.

Ground truth is not part of a Task: a task's factory hands it out as a separate `GroundTruth`
object, which only the referee process (`amplify.truth`) receives. A Task holds no reference to
it, so an oracle or amplifier built from a Task cannot reach it; `tests/test_isolation.py`
checks this for every task.
"""
from __future__ import annotations

import dataclasses
from typing import NamedTuple, Protocol

import jax
import numpy as np

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
  # False: the question is read as tokens of `question_group` consecutive positions, each packed
  # the same way (e.g. an (entity, background) pair), and answers at separate answer slots.
  packed_question: bool = False
  question_group: int = 1
  # With packed_question, True packs only q_0 into the answer token and feeds q_1 .. q_{Lq-1} to
  # it one per iteration of the policy's shared block, last position first (permutation powering:
  # one bit of k per iteration, least significant first). The policy needs depth >= Lq - 1.
  serial_question: bool = False
  # A latent world's z: z_entries entries (Mz's keys are 0 .. z_entries - 1), each one of the
  # z_values tokens z_first_token, z_first_token + 1, ... (all 0 in an episodic task).
  z_entries: int = 0
  z_values: int = 0
  z_first_token: int = 0
  # A latent world whose questions name the Mz keys they refer to (lexicon: a set's entities):
  # the question positions that may hold a key, and the token of key 0. Key i is token
  # mz_key_token + i; keys are the last tokens of the vocabulary, so a policy that reads Mz
  # (amplify.learn.mz.MzView) embeds only the tokens below mz_key_token, whatever the size of z.
  # () where questions name no keys (colored digits: H finds its key by reading the image).
  mz_key_positions: tuple[int, ...] = ()
  mz_key_token: int = 0
  # The tokens an answer may hold besides IDK: first, last + 1 ((0, 0): any from FIRST_TOKEN).
  # Every oracle's answers are checked against it (amplify.oracles.base.answer_problem).
  answer_tokens: tuple[int, int] = (0, 0)

  @property
  def names_mz_keys(self) -> bool:
    return bool(self.mz_key_positions)

  @property
  def answer_range(self) -> tuple[int, int]:
    return self.answer_tokens if self.answer_tokens != (0, 0) else (FIRST_TOKEN, self.vocab_size)


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


class Text(Protocol):
  """How a task shows its questions, answers and facts to a person and reads what one types.
  Every parse_* raises ValueError with a message a person can act on ("c4 is not a class;
  classes are c0-c3"). Optionally `examples`: what a person types for "answer", "ask" and
  "lookup" ({"answer": "e", "ask": "sigma^6(c)", "lookup": "c"}; no "ask" where H never asks),
  shown beside the terminal's and the web page's fields."""

  def render_question(self, question: np.ndarray) -> str:
    """int32[Lq] -> e.g. "sigma^13(c) = ?"."""

  def render_answer(self, answer: np.ndarray) -> str:
    """int32[La] -> e.g. "e" ("IDK" for an IDK answer)."""

  def parse_answer(self, text: str, question: np.ndarray) -> np.ndarray:
    """A typed answer to `question` -> int32[La]."""

  def parse_question(self, text: str, parent: np.ndarray) -> np.ndarray:
    """A typed subquestion of `parent` -> int32[Lq]."""

  def parse_key(self, text: str, parent: np.ndarray) -> int:
    """A typed Mz key (e.g. "c", "e17") -> the key Mz reads."""

  def render_lookup(self, key: int, value: int) -> str:
    """One fact read through Mz: e.g. "sigma(c) = e" ("not found" where it is IDK)."""


class Task(Text, Protocol):
  """A task: samplers for D and D*, difficulties, H's decomposition, the text a person reads and
  types (`Text`), and ground truth (handed out apart, see the module's docstring).

  A latent-world task also offers `HumanModel` (what learning the prior fits z* to); a task
  that offers `raw_observations` and `human_answer_from_d` also runs the `raw_d` arm; a task
  with an instance size offers `Sized` (the loop's size curriculum)."""
  name: str
  spec: Spec
  budget_needed: tuple[int, int]  # (asks, look-ups) H's decomposition may use per question
  ask_depth: int  # the longest chain of asks in H's decomposition (type 2 recurses this deep)
  extra_baselines: tuple[str, ...]  # baselines beside prosaic and ceiling (amplify.truth.baselines.EXTRA)

  def training_data(self, key: jax.Array, n: int) -> tuple[Inputs, jax.Array]:
    """D: n observed examples and their observed labels int32[n, La] (the data, not the truth of D*)."""

  def deployment_questions(self, key: jax.Array, n: int) -> Inputs:
    """D*: n questions (with their episodic context), no labels."""

  def evaluation_questions(self, key: jax.Array, n: int) -> Inputs:
    """D* questions that no label or training ever sees, for the evaluator. A generated task
    returns a fresh D* sample; a task with a finite pool returns its evaluation split.
    (A finite task returns at most its pool's rows from every sampler.)"""

  def difficulty(self, questions: jax.Array) -> jax.Array:
    """int32[B]: the difficulty of each question, for per-difficulty metrics."""

  def human_answer(self, questions: jax.Array, tools: Tools) -> jax.Array:
    """H's decomposition, written for a whole batch: int32[B, La] answers (IDK where H can't)."""

  def random_answers(self, key: jax.Array, n: int) -> jax.Array:
    """int32[n, La]: uniformly random well-formed answers (a noisy human's slips)."""

  def valid_answers(self, questions: jax.Array, answers: jax.Array) -> jax.Array:
    """bool[B]: each answer is IDK or one the task accepts for its question (what `parse_answer`
    accepts from a person, for a batch; lexicon: counts adding up to the set's size). The learned
    H' gives the real H a row whose answer fails this (`learned_malformed`)."""

  def augment(self, key: jax.Array, inputs: Inputs, labels: jax.Array) -> tuple[Inputs, jax.Array]:
    """A random symmetry of the task applied to labelled rows (identity where it has none). The
    distiller applies it afresh every few steps, for amplification and baselines alike."""


class HumanModel(Protocol):
  """What a latent-world task adds: all of D, and its model of the human, which learning the prior maximises over z
  (`amplify.learn.prior`). Both read z only through `lookup`: keys int32[K] -> float32[K, z_values],
  a distribution over each entry's values (one-hot for a fitted z*, soft while fitting)."""

  def observations(self) -> tuple[Inputs, jax.Array]:
    """All of D (a latent world's D is a fixed sample of it): what z* is fitted to, in the form
    the task's human model reads (lexicon: one compact row per observation)."""

  def human_log_prior(self, lookup, keys: jax.Array) -> jax.Array:
    """log P_H of z's entries `keys`, int32[K]: a scalar. keys are all of z's entries, or, for a
    task whose D comes in blocks (`observation_blocks`, `amplify.learn.prior`), a block's: such
    a task's prior is a sum over its blocks."""

  def human_log_likelihood(self, inputs: Inputs, labels: jax.Array, lookup) -> jax.Array:
    """log P_H(y | x, z) for each row of D: float32[B]."""


class Sized(Protocol):
  """What a task with an instance size (permutation: its elements) adds: the size curriculum
  (amplify.loop.curriculum) draws each round's D* questions at a size it grows up to `full_size`.
  Shapes stay those of the full size (a smaller instance pads its facts with PAD), so every size
  runs the same compiled programs; evaluation, D and the baselines stay at the full size."""
  full_size: int

  def deployment_questions(self, key: jax.Array, n: int, size: int | None = None) -> Inputs:
    """n D* questions of instances of `size` (None: the full size)."""


class GroundTruth(Protocol):
  """The world as it is. Only the evaluator and the named baselines hold one."""
  # A latent world's true z as tokens, int[z_entries], for z*'s accuracy (None: episodic).
  world: jax.Array | None

  def answers(self, inputs: Inputs) -> jax.Array:
    """int32[B, La]: the true answers to a batch of questions."""
