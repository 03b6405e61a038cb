"""What a per-question oracle sees: a `Question`, `Reply`s from its tools, the handle holding them.

No JAX here, nor anything that imports it: this module is all a per-question oracle's worker
process loads of amplify (`amplify.oracles.worker`), so the worker starts in a fraction of a
second and holds nothing of the run.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Callable

import numpy as np


@dataclasses.dataclass(frozen=True)
class Question:
  """One question as a per-question oracle sees it: rendered by the task, with its tokens."""
  text: str
  tokens: np.ndarray  # int32[Lq]
  difficulty: int
  index: int  # its row in the batch being labelled
  max_asks: int
  max_lookups: int


@dataclasses.dataclass(frozen=True)
class Reply:
  """What `ask` or `lookup` returns: the task's rendering, the tokens, and whether it is known
  (False: IDK, an ask outside pi's competence or past the budget, a key Mz lacks)."""
  text: str
  tokens: np.ndarray
  known: bool


SKIP, UNDO, QUIT = "<skip>", "<undo>", "<quit>"  # control returns of an interactive oracle


class OracleError(RuntimeError):
  """An oracle failed or gave an answer the task cannot read: names the oracle and question."""


class Stopped(Exception):
  """The person quit (q, Ctrl-C, end of input): every answer given so far is in the store."""


@functools.cache
def _handle_class(names: tuple[str, ...]) -> type:
  return type("OracleTools", (), {
      "__slots__": names, "__doc__": "What an oracle holds: " + ", ".join(names) + ".",
      "__repr__": lambda self: f"<tools: {', '.join(names)}>"})


def handle(**functions: Callable) -> object:
  """An object offering exactly `functions` (plain functions: a bound method would name the
  object behind it) and no other attribute, not even a `__dict__`. Python's introspection of a
  function's closure (or the garbage collector) can still find what is behind them: in process
  the ledger itself records every call it serves, and a per-question oracle of a user's runs in
  a worker process where what is behind them is only a channel to that ledger."""
  tools = _handle_class(tuple(functions))()
  for name, fn in functions.items():
    setattr(tools, name, fn)
  return tools
