"""Simulated humans written as programs: the scripted H and a noisy H that sometimes slips."""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from amplify import registry
from amplify.oracles.base import Oracle
from amplify.oracles.tools import handle
from amplify.types import IDK, Inputs, Task, Tools


@dataclasses.dataclass(frozen=True)
class ScriptedOracle:
  """H as the task's own decomposition (`Task.human_answer`): exact, never tired."""
  task: Task
  name: str = "scripted"
  jittable: bool = True

  def answer(self, questions: jax.Array, tools: Tools, key: jax.Array) -> jax.Array:
    del key
    return self.task.human_answer(questions, tools)

  # The human's model, for learning the prior (latent-world tasks only).
  def log_prior(self, lookup, keys: jax.Array) -> jax.Array:
    return self.task.human_log_prior(lookup, keys)

  def log_likelihood(self, inputs: Inputs, labels: jax.Array, lookup) -> jax.Array:
    return self.task.human_log_likelihood(inputs, labels, lookup)


@dataclasses.dataclass(frozen=True)
class ScriptedFromD(ScriptedOracle):
  """H reading D's raw rows instead of z* (the `raw_d` arm): the task's `human_answer_from_d`,
  which spends up to `max_lookups` look-ups a question on rows of D ("observation j of entity
  i") and combines them by H's own model. Believes what the scripted H believes."""
  max_lookups: int = 0
  name: str = "scripted_from_d"

  def answer(self, questions: jax.Array, tools: Tools, key: jax.Array) -> jax.Array:
    del key
    return self.task.human_answer_from_d(questions, tools, self.max_lookups)


@dataclasses.dataclass(frozen=True)
class NoisySettings:
  noise_rate: float = 0.1  # the probability that an answer H gives is replaced by a random one

  def __post_init__(self):
    if not 0 <= self.noise_rate <= 1:
      raise ValueError(f"--oracle.noise_rate={self.noise_rate}: a probability, must lie in "
                       "[0, 1].")


class _Slips:
  """An H that slips when answering but believes what the H it wraps (`base`) believes: its model
  of the world, for learning the prior."""

  def log_prior(self, lookup, keys: jax.Array) -> jax.Array:
    return self.base.log_prior(lookup, keys)

  def log_likelihood(self, inputs: Inputs, labels: jax.Array, lookup) -> jax.Array:
    return self.base.log_likelihood(inputs, labels, lookup)


REDRAWS = 128  # at most, NoisyOracle's draws again of a slip its task refuses for the question


@dataclasses.dataclass(frozen=True)
class NoisyOracle(_Slips):
  """Wraps another oracle; each answer it would give is replaced, with probability `error_rate`,
  by a uniformly random well-formed answer to its question. IDK stays IDK (a noisy human still
  knows when it doesn't know). A task's `random_answers` does not see the questions, so a draw
  its `valid_answers` refuses for the question (shortest path: a vertex for a distance; union
  find: a depth for a label; lexicon: counts not adding up to the set's size) is drawn again, up
  to `REDRAWS` times: a slip is a wrong answer a person could type, not one that H's parse turns
  into IDK."""
  base: Oracle
  task: Task
  error_rate: float
  name: str = "noisy"
  jittable: bool = True

  def answer(self, questions: jax.Array, tools: Tools, key: jax.Array) -> jax.Array:
    k_base, k_slip, k_wrong = jax.random.split(key, 3)
    answers = self.base.answer(questions, tools, k_base)
    slip = jax.random.bernoulli(k_slip, self.error_rate, (questions.shape[0],))
    slip &= jnp.all(answers != IDK, axis=1)
    return jnp.where(slip[:, None], self._well_formed(questions, k_wrong), answers)

  def _well_formed(self, questions: jax.Array, key: jax.Array) -> jax.Array:
    """Rejection: the first draw (so a task whose every draw is well-formed slips as it always
    did), then draws again where the task refuses it, until none is refused or after REDRAWS
    more; the draw accepted is uniform over the question's answers among the task's draws."""
    n = questions.shape[0]
    refused = lambda wrong: ~self.task.valid_answers(questions, wrong)

    def redraw(carry):  # (draws so far, the answers, which of them the task refuses)
      i, wrong, no = carry
      wrong = jnp.where(no[:, None], self.task.random_answers(jax.random.fold_in(key, i), n),
                        wrong)
      return i + 1, wrong, refused(wrong)
    first = self.task.random_answers(key, n)
    return jax.lax.while_loop(lambda c: (c[0] <= REDRAWS) & jnp.any(c[2]), redraw,
                              (1, first, refused(first)))[1]


@dataclasses.dataclass(frozen=True)
class SloppySettings:
  from_difficulty: int = 0  # H slips on questions of this difficulty and above (0: upper half)

  def __post_init__(self):
    if self.from_difficulty < 0:
      raise ValueError(f"--oracle.from_difficulty={self.from_difficulty}: a difficulty, >= 0 "
                       "(0: the upper half of the task's difficulties).")


@dataclasses.dataclass(frozen=True)
class SloppyOracle(_Slips):
  """Wraps another oracle and slips on large questions (difficulty >= `from_difficulty`): where
  it answers one, it answers with its first subanswer instead, as if the first half of its
  decomposition were the whole (the counts of a set's first half; sigma^(k//2)(x)). The slip is
  systematic and well formed, so a policy can imitate it and type-1 agreement rewards it; the
  exact H's whole tree (`--config.type2.oracle=scripted`) does not make it. The Goodhart experiment's
  flaw (experiments/goodhart.py)."""
  base: Oracle
  task: Task
  from_difficulty: int
  name: str = "sloppy"
  jittable: bool = True

  def answer(self, questions: jax.Array, tools: Tools, key: jax.Array) -> jax.Array:
    first = []  # the first subanswers the wrapped H got

    def ask(subquestions, where):
      answers = tools.ask(subquestions, where)
      first.append(answers)
      return answers

    answers = self.base.answer(questions, handle(ask=ask, lookup=tools.lookup), key)
    if not first:  # H asked nothing: nothing to slip on
      return answers
    slip = ((self.task.difficulty(questions) >= self.from_difficulty)
            & jnp.all(answers != IDK, axis=1) & jnp.all(first[0] != IDK, axis=1))
    return jnp.where(slip[:, None], first[0], answers).astype(jnp.int32)


SCRIPTED = registry.OraclePlugin(lambda task, settings, human: human)
NOISY = registry.OraclePlugin(
    lambda task, settings, human: NoisyOracle(human, task, settings.noise_rate), NoisySettings)
SLOPPY = registry.OraclePlugin(
    lambda task, settings, human: SloppyOracle(
        human, task, settings.from_difficulty or task.spec.max_difficulty // 2 + 1),
    SloppySettings)
