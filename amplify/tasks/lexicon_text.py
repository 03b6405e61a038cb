"""Lexicon's text for a person (`amplify.types.Text`): entities e0, e1, ..., backgrounds b0..,
classes c0..; a question lists its set's entities with their backgrounds, "count by class:
e17[b2] e5[b0]", and an answer is "c0=1 c1=0 c2=1 c3=0"."""
from __future__ import annotations

import numpy as np

from amplify.types import IDK


class LexiconText:
  """Mixed into `amplify.tasks.lexicon.Lexicon`: reads its tokens (count0, class0, ...)."""
  examples = {"answer": "c0=2 c2=1", "ask": "e17 e5", "lookup": "e17"}

  def _question_entities(self, question: np.ndarray) -> tuple[list[int], list[int]]:
    q = np.asarray(question)  # numpy, not the batch decode: one row, shown to a person
    size = int(q[0]) - self.count0
    return ([int(e) - self.entity0 for e in q[2:2 + 2 * size:2]],
            [int(b) - self.background0 for b in q[3:3 + 2 * size:2]])

  def render_question(self, question: np.ndarray) -> str:
    entities, backgrounds = self._question_entities(question)
    return "count by class: " + " ".join(f"e{e}[b{b}]" for e, b in zip(entities, backgrounds))

  def render_answer(self, answer: np.ndarray) -> str:
    if np.any(np.asarray(answer) == IDK):
      return "IDK"
    return " ".join(f"c{c}={int(t) - self.count0}" for c, t in enumerate(answer))

  def parse_answer(self, text: str, question: np.ndarray) -> np.ndarray:
    """"c0=1 c2=2" (classes not named count 0) or the C counts in order, "1 0 2 0"."""
    size = len(self._question_entities(question)[0])
    words = text.replace(",", " ").split()
    counts = [0] * self.num_classes
    try:
      if words and all("=" in w for w in words):
        for w in words:
          name, value = w.split("=", 1)
          c = self._index(name, "c", self.num_classes, "a class", "classes")
          counts[c] = int(value) if value.isdigit() else -1
      elif len(words) == self.num_classes and all(w.isdigit() for w in words):
        counts = [int(w) for w in words]
      else:
        raise ValueError
    except ValueError as e:
      raise ValueError(str(e) if str(e) else
                       f"{text!r}: type the count of each class, e.g. c0=1 c2=2 (classes not "
                       f"named count 0) or {self.num_classes} numbers.") from None
    if any(n < 0 for n in counts) or sum(counts) != size:
      raise ValueError(f"{text!r}: the counts must be >= 0 and add up to the set's {size} "
                       "entities.")
    return np.asarray([self.count0 + n for n in counts], np.int32)

  def _index(self, word: str, prefix: str, n: int, a_what: str, whats: str) -> int:
    word = word.strip()
    if not (word.startswith(prefix) and word[len(prefix):].isdigit()
            and int(word[len(prefix):]) < n):
      raise ValueError(f"{word!r} is not {a_what}; the {whats} are {prefix}0-{prefix}{n - 1}.")
    return int(word[len(prefix):])

  def parse_question(self, text: str, parent: np.ndarray) -> np.ndarray:
    """Entities of the parent's set, "e17 e5": the question about those, backgrounds as there
    (the rendered form, "count by class: e17[b2] e5[b0]", reads the same)."""
    entities, backgrounds = self._question_entities(parent)
    text = text.strip().removeprefix("count by class:")
    named = [w.partition("[") for w in text.replace(",", " ").split()]
    picked = [self._index(w, "e", self.num_entities, "an entity", "entities") for w, _, _ in named]
    if not picked or len(set(picked)) != len(picked):
      raise ValueError(f"{text!r}: name one or more distinct entities of this set, e.g. "
                       f"{' '.join(f'e{e}' for e in entities[:2])}.")
    missing = [f"e{e}" for e in picked if e not in entities]
    if missing:
      raise ValueError(f"{' '.join(missing)} not in this set; ask about entities of "
                       f"{' '.join(f'e{e}' for e in entities)}.")
    background = dict(zip(entities, backgrounds))
    for e, (_, bracket, typed) in zip(picked, named):
      if bracket and typed != f"b{background[e]}]":
        raise ValueError(f"e{e} is e{e}[b{background[e]}] in this set, not e{e}[{typed}")
    q = np.zeros(self.spec.question_len, np.int32)  # PAD after the picked pairs
    q[0] = self.count0 + len(picked)
    q[2:2 + 2 * len(picked):2] = [self.entity0 + e for e in picked]
    q[3:3 + 2 * len(picked):2] = [self.background0 + background[e] for e in picked]
    return q

  def parse_key(self, text: str, parent: np.ndarray) -> int:
    """An entity, "e17": looking it up reads its class in z*."""
    return self._index(text, "e", self.num_entities, "an entity", "entities")

  def render_lookup(self, key: int, value: int) -> str:
    return f"e{key}: " + ("not found" if value == IDK else f"c{int(value) - self.class0}")
