"""The Oracle seam: the human H, batch first, or one question at a time.

`answer(questions, tools, key) -> answers` answers a batch; `tools.ask` goes to the policy and
`tools.lookup` to Mz (see `amplify.oracles.tools`). An oracle never sees ground truth: it gets the
questions, the tools and an RNG key, nothing else.
"""
from __future__ import annotations

from typing import Protocol

import jax
import numpy as np

from amplify.oracles.question import QUIT, SKIP, UNDO, Question, Reply  # noqa: F401 (re-exported)
from amplify.types import IDK, Inputs, Spec, Tools


class Oracle(Protocol):
  name: str
  jittable: bool  # pure array code: H^A compiles to one program

  def answer(self, questions: jax.Array, tools: Tools, key: jax.Array) -> jax.Array:
    """questions int32[B, Lq] -> answers int32[B, La], IDK where H cannot answer."""

  # For learning the prior (latent worlds): the human's model, reading z only through `lookup`
  # (keys -> each entry's distribution over values); see amplify.tasks.base.HumanModel.
  def log_prior(self, lookup, keys: jax.Array) -> jax.Array:
    """log P_H of z's entries `keys` (all of z's, or a block's), a scalar."""

  def log_likelihood(self, inputs: Inputs, labels: jax.Array, lookup) -> jax.Array:
    """log P_H(y | x, z) per row of D: float32[B]."""


# -- per-question oracles: a person, a remote model, any Python function ----------------------

class QuestionTools(Protocol):
  """The tools a per-question oracle holds while answering one question (`tools.handle`: these
  functions and no other attribute). A person's screen also reads `asks_left()`,
  `lookups_left()`, `parse_answer(text)` (the task's reading) and keeps `note(text)`."""

  def ask(self, subquestion: str | np.ndarray) -> Reply:
    """pi's answer to a subquestion: text the task parses, or question tokens."""

  def lookup(self, key: str | int) -> Reply:
    """Mz's entry at a key: text the task parses (e.g. "c", "e17"), or the key itself."""


class QuestionOracle(Protocol):
  """H answering one question at a time in plain Python. amplify runs up to `in_flight`
  questions at once and batches pi's work across their asks (`amplify.oracles.per_question`).
  A user's (a callable, a plug-in) runs in a worker process of its own, pickled there, holding
  only the channel to its tools, `timeout_s` seconds a question at most (60 if it sets none);
  only built-in, trusted ones (a person at this terminal) set `in_process = True`."""
  name: str
  in_flight: int  # questions answered concurrently (1 for a person)

  def answer_one(self, question: Question, tools: QuestionTools) -> str | np.ndarray | None:
    """The answer: text the task parses, answer tokens, or None for IDK. A person's oracle may
    also return SKIP (the rest of the batch is not answered now), UNDO (reopen the question
    before this one) or QUIT (stop; what was answered is kept)."""


def is_per_question(oracle) -> bool:
  """One question at a time (`answer_one`), or a batch put before people (`label_batch`)."""
  return hasattr(oracle, "answer_one") or hasattr(oracle, "label_batch")


def answer_problem(answers, rows: int, spec: Spec, first_row: int = 0) -> str | None:
  """What is wrong with an oracle's answers to `rows` questions, numbered from `first_row` (None:
  nothing): they must be an integer array [rows, answer_len], every token IDK or one of the
  task's answer tokens. Reads after "the oracle gave ..."."""
  try:
    a = np.asarray(answers)
  except Exception as e:  # an object numpy cannot read
    return f"answers numpy cannot read as an array ({type(e).__name__}: {e})"
  if a.shape != (rows, spec.answer_len):
    return (f"answers of shape {a.shape}; the task needs ({rows}, {spec.answer_len}): one row per "
            f"question, {spec.answer_len} token(s) each")
  if a.dtype.kind not in "iu":
    nan = " (NaN among them)" if a.dtype.kind == "f" and np.isnan(a).any() else ""
    return f"answers of dtype {a.dtype}{nan}; answers are integer tokens"
  lo, hi = spec.answer_range
  bad = np.argwhere((a != IDK) & ((a < lo) | (a >= hi)))
  if len(bad):
    row, col = bad[0]
    return (f"token {a[row, col]} in its answer to question {first_row + row}, neither IDK ({IDK}) "
            f"nor an answer token ({lo}..{hi - 1})")
  return None
