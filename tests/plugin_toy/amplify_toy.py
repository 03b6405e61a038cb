"""A task and an oracle written outside amplify, as a user's package would ship them.

`doubling`: the question is an element x of 0..size-1, the answer 2x mod size; H answers it
directly. `toy_person`: a per-question oracle that reads the rendered question (token ids, from
amplify's TokenText) and types its answer back as text.
"""
import dataclasses

import jax
import jax.numpy as jnp

from amplify.registry import OraclePlugin, TaskPlugin
from amplify.types import EPISODIC, FIRST_TOKEN, Inputs, Spec
from amplify.tasks.base import TokenText, answers_in_range


@dataclasses.dataclass(frozen=True)
class DoublingSettings:
  size: int = 7


def _double(size, questions):
  return (FIRST_TOKEN + (2 * (questions[:, :1] - FIRST_TOKEN)) % size).astype(jnp.int32)


@dataclasses.dataclass(frozen=True)
class Doubling(TokenText):
  size: int
  name: str = "doubling"
  budget_needed = (0, 0)
  ask_depth = 0
  extra_baselines = ()

  @property
  def spec(self):
    return Spec(vocab_size=FIRST_TOKEN + self.size, question_len=1, answer_len=1, fact_len=1,
                context_size=0, regime=EPISODIC, max_difficulty=0)

  def deployment_questions(self, key, n):
    x = jax.random.randint(key, (n, 1), FIRST_TOKEN, FIRST_TOKEN + self.size, jnp.int32)
    return Inputs(jnp.zeros((n, 0, 1), jnp.int32), x)

  evaluation_questions = deployment_questions

  def training_data(self, key, n):
    inputs = self.deployment_questions(key, n)
    return inputs, _double(self.size, inputs.questions)

  def difficulty(self, questions):
    return jnp.zeros(questions.shape[0], jnp.int32)

  def human_answer(self, questions, tools):
    return _double(self.size, questions)

  def random_answers(self, key, n):
    return jax.random.randint(key, (n, 1), FIRST_TOKEN, FIRST_TOKEN + self.size, jnp.int32)

  def augment(self, key, inputs, labels):
    return inputs, labels

  def valid_answers(self, questions, answers):
    return answers_in_range(self.spec, answers)


class DoublingTruth:
  world = None

  def __init__(self, size):
    self._size = size

  def answers(self, inputs):
    return _double(self._size, inputs.questions)


def make_doubling(settings, key):
  return Doubling(settings.size), DoublingTruth(settings.size)


@dataclasses.dataclass(frozen=True)
class ToyPersonSettings:
  slips: bool = False  # answer x instead of 2x


class ToyPerson:
  name = "toy_person"
  in_flight = 8

  def __init__(self, task, settings):
    self.size, self.slips = task.size, settings.slips

  def answer_one(self, question, tools):
    x = int(question.text.split()[-1]) - FIRST_TOKEN
    return str(FIRST_TOKEN + (x if self.slips else 2 * x % self.size))


TASK = TaskPlugin(make_doubling, DoublingSettings)
ORACLE = OraclePlugin(lambda task, settings, human: ToyPerson(task, settings), ToyPersonSettings)
