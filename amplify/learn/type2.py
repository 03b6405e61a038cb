"""Type-2 feedback: the expensive evaluation that decides whether a trained policy is deployed.

Type 1 is what distillation trains on: H^A's labels. Type 2 answers the same questions with H
alone, recursing through its own subquestions down to look-ups (`tree_answers`): no policy in the
loop, so an exact H's answers are exact with respect to what it reads (z* in a latent world; a
flawed H's tree repeats its flaw: `--config.type2.oracle` names another judge), and a question
costs as many H calls as its decomposition tree has nodes. It runs once per round on a small
sample (`--config.type2.size` of the round's held-out questions), as one compiled program: the recursion
is unrolled to the depth the task declares (`Task.ask_depth`), rows that need fewer levels masked.
Each level holds one copy of H per ask of the level above, so a program holds about asks**depth
copies of H: the depth is capped at TREE_LIMIT copies (`tree_depth`), and a question whose tree is
deeper than that gets IDK from type 2, which leaves it unjudged. No permutation, lexicon or
colored-digits preset reaches the cap.

A policy is scored as H^A would use it: its answer where it is competent (the IID check's
difficulties), IDK elsewhere. `net_score` against a reference counts +1 for an answer equal to
the reference's, -1 for any other answer, 0 for IDK (and for a row the reference leaves IDK),
over every sample row: a wrong subanswer passed on to H costs a label, an IDK only a round's
coverage. `type1_score` is pi_r's net score against H^A's labels, `type2_score` against the
tree's answers, on the same rows; their gap is what imitation rewards and the expensive check
does not (negative where H^A's labels carry pi_{r-1}'s slips and pi_r does not repeat them).

The gate (`--gate`) promotes pi_r only if its type-2 score is not below the deployed policy's by
more than `--config.type2.tolerance`; otherwise the run keeps the deployed policy, its competence and the
keys it was trained on, and the eval line says why.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from amplify.learn.amplifier import bind
from amplify.learn.mesh import split_rows, whole
from amplify.oracles.tools import handle
from amplify.types import IDK, Inputs


def tree_answers(oracle, depth: int, answer_len: int, mz, inputs: Inputs,
                 key: jax.Array) -> tuple[jax.Array, jax.Array]:
  """H (`oracle`) answers `inputs` with every ask answered by H itself, recursively, down to
  `depth` levels of asks (an ask deeper than that gets IDK), look-ups read in `mz`. Returns
  (answers int32[B, La], H calls int32[B]: the nodes of each question's tree). Array code: jit
  it with the oracle and depth static (`Type2.answers`)."""
  inputs = split_rows(inputs)  # each device judges its share of the sample
  context = inputs.context

  def solve(level, questions, rows, key):
    calls = [rows.astype(jnp.int32)]

    def ask(subquestions, where):
      where = where & rows
      if level == 0:
        return jnp.full((subquestions.shape[0], answer_len), IDK, jnp.int32)
      answers, below = solve(level - 1, subquestions, where, jax.random.fold_in(key, len(calls)))
      calls.append(below)
      return jnp.where(where[:, None], answers, IDK)

    def lookup(keys, where):
      return jnp.where(where & rows, mz.lookup(keys, context), IDK)

    answers = oracle.answer(questions, handle(ask=ask, lookup=lookup), key)
    return jnp.where(rows[:, None], answers, IDK), sum(calls)

  n = inputs.questions.shape[0]
  return whole(solve(depth, inputs.questions, jnp.ones(n, bool), key))


TREE_LIMIT = 64  # the most copies of H one type-2 program unrolls


def tree_depth(task) -> int:
  """The levels of asks type 2 unrolls: the task's ask_depth, capped so that asks**depth <=
  TREE_LIMIT (asks: the most H makes per question, `Task.budget_needed`)."""
  asks, depth = max(task.budget_needed[0], 2), 0
  while depth < task.ask_depth and asks**(depth + 1) <= TREE_LIMIT:
    depth += 1
  return depth


class Type2:
  """The type-2 evaluator of a run: H (a batch-first jittable oracle), what it reads (Mz), and
  the task's decomposition depth; `answers` is one compiled program per sample shape."""

  def __init__(self, oracle, task, mz):
    self.name = getattr(oracle, "name", type(oracle).__name__)
    self._mz = mz
    self._answers = bind(tree_answers, 3, oracle, tree_depth(task), task.spec.answer_len)

  def answers(self, inputs: Inputs, key: jax.Array) -> tuple[np.ndarray, int]:
    """The tree's answers to `inputs` and the H calls it spent."""
    answers, calls = self._answers(self._mz, inputs, key)
    return np.asarray(answers), int(jnp.sum(calls))


def as_deployed(answers: jax.Array, difficulty: np.ndarray, competent: np.ndarray | None):
  """A policy's answers as H^A would take them: IDK where it is not competent (everywhere for
  `competent` None: no policy deployed yet)."""
  answers = np.asarray(answers)
  if competent is None:
    return np.full_like(answers, IDK)
  return np.where(np.asarray(competent)[difficulty][:, None], answers, IDK)


def net_score(answers: np.ndarray, reference: np.ndarray) -> float:
  """Mean over rows of +1 (an answer equal to the reference's), -1 (another answer), 0 (IDK, or
  a row the reference does not answer: it cannot judge it)."""
  judged = np.all(answers != IDK, axis=1) & np.all(reference != IDK, axis=1)
  right = judged & np.all(answers == reference, axis=1)
  return float(np.mean(right.astype(float) - (judged & ~right)))
