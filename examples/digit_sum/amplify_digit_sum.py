"""A task written the way an outside user would, from docs/plugins.md alone: the sum of a list
of digits, which H halves.

The question is a list of n digits (1 <= n <= `length`, each 0..digits-1, PAD after the n);
the answer is their sum. H adds a list of one or two digits itself; a longer list it splits
into halves, asks pi for each half's sum and adds the two. Difficulty: n - 1. D (what prosaic ML
trains on) has lists of at most `d_length` digits, labelled with their sums.

Run it (from the repository root; the referee finds this module through sys.path):

  python examples/digit_sum/run.py --task=digit_sum --workdir=/tmp/runs/digit_sum
  python examples/digit_sum/run.py --preset=digit_sum_tiny --workdir=/tmp/runs/digit_sum_tiny

It sets only its size and budgets; everything else is the engine's defaults. Numbers, sums and
digits share the tokens FIRST_TOKEN + value.
"""
import dataclasses

import jax
import jax.numpy as jnp

from amplify.configs import base
from amplify.registry import TaskPlugin
from amplify.tasks.base import TokenText
from amplify.types import EPISODIC, FIRST_TOKEN, IDK, PAD, Inputs, Spec


@dataclasses.dataclass(frozen=True)
class DigitSumSettings:
  length: int = 8  # the longest list
  digits: int = 4  # digits are 0 .. digits - 1
  d_length: int = 2  # D's lists are at most this long

  def __post_init__(self):
    if not 2 <= self.d_length <= self.length:
      raise ValueError(f"--task.d_length={self.d_length}: choose 2..{self.length} "
                       "(--task.length).")
    if self.digits < 2:
      raise ValueError(f"--task.digits={self.digits}: choose at least 2.")


def _sums(questions):
  """The true sum of each list (PAD counts nothing)."""
  return jnp.sum(jnp.where(questions != PAD, questions - FIRST_TOKEN, 0), axis=1)


def _sum_answers(questions):
  """Each list's sum as an answer int32[B, 1] (D's labels and the truth)."""
  return (FIRST_TOKEN + _sums(questions))[:, None].astype(jnp.int32)


@dataclasses.dataclass(frozen=True)
class DigitSum(TokenText):
  length: int
  digits: int
  d_length: int
  name: str = "digit_sum"
  budget_needed = (2, 0)  # two halves asked of pi; nothing looked up
  extra_baselines = ()

  @property
  def max_sum(self) -> int:
    return (self.digits - 1) * self.length

  @property
  def ask_depth(self) -> int:  # halvings until a list is at most two long
    n, depth = self.length, 0
    while n > 2:
      n, depth = (n + 1) // 2, depth + 1
    return depth

  @property
  def spec(self):
    return Spec(vocab_size=FIRST_TOKEN + self.max_sum + 1, question_len=self.length,
                answer_len=1, fact_len=1, context_size=0, regime=EPISODIC,
                max_difficulty=self.length - 1)

  def _lists(self, key, n, longest):
    k_len, k_digits = jax.random.split(key)
    size = jax.random.randint(k_len, (n, 1), 1, longest + 1)
    digits = jax.random.randint(k_digits, (n, self.length), 0, self.digits)
    questions = jnp.where(jnp.arange(self.length) < size, FIRST_TOKEN + digits, PAD)
    return Inputs(jnp.zeros((n, 0, 1), jnp.int32), questions.astype(jnp.int32))

  def deployment_questions(self, key, n):
    return self._lists(key, n, self.length)

  evaluation_questions = deployment_questions

  def training_data(self, key, n):
    inputs = self._lists(key, n, self.d_length)
    return inputs, _sum_answers(inputs.questions)

  def difficulty(self, questions):
    return (jnp.sum(questions != PAD, axis=1) - 1).astype(jnp.int32)

  def _part(self, questions, start, size):
    """Each row's `size` digits from `start`, moved to the front."""
    index = jnp.clip(start[:, None] + jnp.arange(self.length), 0, self.length - 1)
    part = jnp.take_along_axis(questions, index, axis=1)
    return jnp.where(jnp.arange(self.length) < size[:, None], part, PAD).astype(jnp.int32)

  def human_answer(self, questions, tools):
    n = jnp.sum(questions != PAD, axis=1)
    small = n <= 2
    half = n // 2
    first_part = self._part(questions, jnp.zeros_like(n), half)
    first = tools.ask(first_part, where=~small)
    first_ok = self.valid_answers(first_part, first)
    second_part = self._part(questions, half, n - half)
    second = tools.ask(second_part, where=~small & first_ok)
    second_ok = self.valid_answers(second_part, second)
    total = jnp.where(small, _sums(questions),
                      first[:, 0] - FIRST_TOKEN + second[:, 0] - FIRST_TOKEN)
    ok = small | (first_ok & second_ok)
    return jnp.where(ok, FIRST_TOKEN + total, IDK)[:, None].astype(jnp.int32)

  def random_answers(self, key, n):
    return jax.random.randint(key, (n, 1), FIRST_TOKEN, FIRST_TOKEN + self.max_sum + 1,
                              jnp.int32)

  def augment(self, key, inputs, labels):
    return inputs, labels

  def valid_answers(self, questions, answers):
    """A sum of n digits lies in 0 .. (digits - 1) n (stricter than the token-id text a person
    types, which accepts any token: H refuses a half's sum that its digits cannot make)."""
    most = (self.digits - 1) * jnp.sum(questions != PAD, axis=1)
    value = answers[:, 0] - FIRST_TOKEN
    return (value >= 0) & (value <= most)


class DigitSumTruth:
  world = None

  def answers(self, inputs):
    return _sum_answers(inputs.questions)


def make_digit_sum(settings, key):
  del key  # every list is drawn afresh: no world to build
  return DigitSum(settings.length, settings.digits, settings.d_length), DigitSumTruth()


def get_config(variant: str = ""):
  """Only the task's size and budgets; the network and optimiser are the engine's."""
  config = base.get_config()
  config.task = base.block("digit_sum", DigitSumSettings)
  config.rounds = 5
  config.label.update(size=16384, max_asks=2, max_lookups=0)
  config.train.update(total_steps=2000, baseline_size=65536)
  if variant == "tiny":
    base.tiny(config)
  elif variant:
    raise ValueError(f"digit_sum: no variant {variant!r}; choose '' or 'tiny'.")
  return config


TASK = TaskPlugin(make_digit_sum, DigitSumSettings, config=get_config)
