"""Union find's text for a person (amplify.tasks.union_find): how a question, an answer and a
look-up read, and how what a person types is parsed. Its tokens are defined here, where both
modules read them."""
from __future__ import annotations

import re

import numpy as np

from amplify.learn.mz import fact_key, key_tokens
from amplify.tasks.base import letter_name, parse_letter_name
from amplify.types import FIRST_TOKEN, IDK

VALUE, PARENT, DEPTH, LABEL = FIRST_TOKEN, FIRST_TOKEN + 1, FIRST_TOKEN + 2, FIRST_TOKEN + 3
VAR0 = FIRST_TOKEN + 4  # the first variable's token
TYPES = {"value": VALUE, "parent": PARENT, "depth": DEPTH}


class UnionFindText:
  """The `Text` methods of `UnionFind`, which supplies num_variables, label0, depth0, far and
  max_depth."""
  examples = {"answer": "L2, e, 2 or far", "ask": "depth(c) within 2",
              "lookup": "label c, c or c a"}

  # -- text for a person ----------------------------------------------------------------------
  # Variables are letters a, b, c, ... (x0, x1, ... beyond 26), labels L0, L1, ...; a question
  # reads "value(c) within 3 = ?".
  def variable_name(self, token: int) -> str:
    return letter_name(int(token) - VAR0, self.num_variables)

  def _variable(self, text: str) -> int:
    return parse_letter_name(text, VAR0, self.num_variables, "variable", "variables")

  def _name(self, token: int) -> str:
    """Any answer token as a person reads it."""
    token = int(token)
    if token == IDK:
      return "IDK"
    if token == self.far:
      return "far"
    if VAR0 <= token < self.label0:
      return self.variable_name(token)
    if self.label0 <= token < self.depth0:
      return f"L{token - self.label0}"
    if self.depth0 <= token < self.far:
      return str(token - self.depth0)
    return f"<token {token}>"

  def render_question(self, question: np.ndarray) -> str:
    q = np.asarray(question)
    kind = {t: name for name, t in TYPES.items()}.get(int(q[0]), f"<type {int(q[0])}>")
    return f"{kind}({self.variable_name(q[1])}) within {int(q[2]) - self.depth0} = ?"

  def render_answer(self, answer: np.ndarray) -> str:
    return self._name(answer[0])

  def parse_answer(self, text: str, question: np.ndarray) -> np.ndarray:
    """"far", or by the question's type a label ("L2"), a variable ("e"), a depth ("2")."""
    word, kind, k = text.strip(), int(question[0]), int(question[2]) - self.depth0
    if word.lower() == "far":
      return np.asarray([self.far], np.int32)
    if kind == VALUE:
      match = re.fullmatch(r"L(\d+)", word)
      if match is None or int(match[1]) >= self.num_labels:
        raise ValueError(f"{word!r} is not a label; answer a value with L0 to "
                         f"L{self.num_labels - 1}, or far.")
      return np.asarray([self.label0 + int(match[1])], np.int32)
    if kind == PARENT:
      return np.asarray([self._variable(word)], np.int32)
    if not word.isdigit() or int(word) > k:
      raise ValueError(f"{word!r} is not a depth within {k}; answer with a number 0 to {k}, or "
                       "far.")
    return np.asarray([self.depth0 + int(word)], np.int32)

  def parse_question(self, text: str, parent: np.ndarray) -> np.ndarray:
    """"depth(c) within 2" (or "depth c 2")."""
    match = re.fullmatch(r"\s*(\w+)\s*\(\s*(\w+)\s*\)\s*within\s+(\d+)\s*(=\s*\??)?\s*", text) or \
        re.fullmatch(r"\s*(\w+)\s+(\w+)\s+(\d+)\s*", text)
    if match is None:
      raise ValueError(f"{text!r}: type a subquestion as TYPE(X) within K, e.g. depth(c) within "
                       "2.")
    kind, x, k = match[1].lower(), match[2], int(match[3])
    if kind not in TYPES:
      raise ValueError(f"{match[1]!r} is not a question type; the types are {list(TYPES)}.")
    if k > self.max_depth:
      raise ValueError(f"within {k}: the bound must lie in 0..{self.max_depth}.")
    return np.asarray([TYPES[kind], self._variable(x), self.depth0 + k], np.int32)

  def parse_key(self, text: str, parent: np.ndarray) -> int:
    """"label c" reads c's label (given only for a root); "c" its first neighbour, "c a" the one
    after a, "c a f" the one after f."""
    words = text.replace("(", " ").replace(")", " ").split()
    if len(words) == 2 and words[0].lower() == "label":
      return fact_key(LABEL, self._variable(words[1]))
    if not 1 <= len(words) <= 3:
      raise ValueError(f"{text!r}: type a key as 'label X' (X's label), 'X' (X's first "
                       "neighbour), 'X A' (the one after A) or 'X A B' (the one after B).")
    return fact_key(*(self._variable(w) for w in words))

  def render_lookup(self, key: int, value: int) -> str:
    tokens = key_tokens(key)
    if tokens[0] == LABEL:
      return f"label({self.variable_name(tokens[1])}) = " + (
          "not found" if value == IDK else self._name(value))
    x, after = self.variable_name(tokens[0]), [self.variable_name(t) for t in tokens[1:]]
    where = f" (after {after[-1]})" if after else ""
    if value == IDK:
      return f"{x} -- not found{where}"
    return f"{x} -- {self.variable_name(value)}{where}"
