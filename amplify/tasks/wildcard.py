"""Wildcard search (Christiano, Shlegeris and Amodei 2018), an episodic task.

Each example carries a function f from the strings of length L over {a, b} to {-1, 0, +1}: the
facts list the strings present, each with its value +1 or -1; every other string counts 0. The
question is a pattern of L positions, each a, b or the wildcard *; the answer is the sum of f
over the strings the pattern matches, clipped to +-C with C = 2**(L-1) (the authors clip at 32
for L = 6). A pattern with w wildcards matches 2**w strings, so only the all-wildcard pattern can
reach past C, and no subanswer H adds is ever clipped.

Tokens: PAD, IDK, the letters a, b and the wildcard *, then one token per string (2**L, the
facts' keys; string "abab" is number 0101 in binary, a = 0), then the values -C..C.
Question: [L tokens, each a, b or *]. Fact: [string, value +1 or -1]. Answer: [value].

The curriculum grows the number of strings present: an instance of s < N strings has s distinct
strings, a random subset of all 2**L, and its other N - s facts PAD.
"""
from __future__ import annotations

import dataclasses
import functools
import re

import jax
import jax.numpy as jnp
import numpy as np

from amplify import registry
from amplify.learn.mz import KEY_RADIX
from amplify.tasks.base import answers_in_range
from amplify.types import EPISODIC, FIRST_TOKEN, IDK, PAD, Inputs, Spec, Tools

LETTER_A, LETTER_B, WILDCARD = FIRST_TOKEN, FIRST_TOKEN + 1, FIRST_TOKEN + 2
STRING0 = FIRST_TOKEN + 3  # the token of string aa...a
SYMBOLS = "ab*"


@dataclasses.dataclass(frozen=True)
class WildcardSettings:
  """`--task.FIELD`: strings of `length` letters, `num_strings` of them present at full size, D's
  patterns with 1..`prosaic_max_wildcards` wildcards."""
  length: int = 4
  num_strings: int = 12
  prosaic_max_wildcards: int = 1

  def __post_init__(self):  # the task checks the same, naming its own fields
    WildcardSearch(self.length, self.num_strings, self.prosaic_max_wildcards)


@dataclasses.dataclass(frozen=True)
class WildcardSearch:
  """Sums of f over the strings a pattern matches (the module's docstring); D (for prosaic ML)
  has at most `prosaic_max_wildcards` wildcards a pattern."""
  length: int = 4
  num_strings: int = 12
  prosaic_max_wildcards: int = 1
  name: str = "wildcard"
  extra_baselines = ()
  examples = {"answer": "-2", "ask": "a*b*", "lookup": "abab"}
  # (asks, look-ups): the two subpatterns, each asked of pi, or looked up where it is a string
  budget_needed = (2, 2)

  def __post_init__(self):
    if not 1 <= self.length <= 8:
      raise ValueError(f"--task.length={self.length}: strings have 1..8 letters (2**length "
                       f"string tokens and as many values must stay below {KEY_RADIX}).")
    if not 1 <= self.num_strings <= 2**self.length:
      raise ValueError(f"--task.num_strings={self.num_strings}: between 1 and the "
                       f"{2**self.length} strings of --task.length={self.length}.")
    if not 1 <= self.prosaic_max_wildcards <= self.length:
      raise ValueError(f"--task.prosaic_max_wildcards={self.prosaic_max_wildcards}: D's "
                       f"patterns have 1..{self.length} wildcards (--task.length).")

  @property
  def ask_depth(self) -> int:
    """Each ask removes one wildcard; a pattern of one wildcard is answered by look-ups."""
    return self.length - 1

  @property
  def clip(self) -> int:
    """C: answers lie in -C..C."""
    return 2**(self.length - 1)

  @property
  def value0(self) -> int:
    """The token of the value -C."""
    return STRING0 + 2**self.length

  @property
  def zero(self) -> int:
    """The token of the value 0."""
    return self.value0 + self.clip

  @property
  def full_size(self) -> int:
    """The instance size the curriculum grows (amplify.types.Sized): the strings present."""
    return self.num_strings

  @property
  def spec(self) -> Spec:
    return Spec(vocab_size=self.value0 + 2 * self.clip + 1, question_len=self.length,
                answer_len=1, fact_len=2, context_size=self.num_strings, regime=EPISODIC,
                max_difficulty=self.length, packed_question=True,
                answer_tokens=(self.value0, self.value0 + 2 * self.clip + 1))

  # -- sampling ------------------------------------------------------------------------------
  @functools.partial(jax.jit, static_argnums=(0, 2, 3, 4))
  def _sample(self, key: jax.Array, n: int, max_wildcards: int | None = None,
              size: int | None = None) -> Inputs:
    """n patterns of 1..max_wildcards wildcards (None: L), the count uniform, at uniformly
    random positions, each on its own f of `size` strings present (None: N)."""
    size = self.num_strings if size is None else size
    if not 1 <= size <= self.num_strings:
      raise ValueError(f"a wildcard instance of {size} strings: sizes lie in 1.."
                       f"{self.num_strings} (--task.num_strings).")
    k_strings, k_values, k_order, k_count, k_where, k_letters = jax.random.split(key, 6)
    big = self.num_strings
    strings = jnp.argsort(jax.random.uniform(k_strings, (n, 2**self.length)), axis=1)[:, :big]
    values = jnp.where(jax.random.bernoulli(k_values, 0.5, (n, big)), 1, -1)
    facts = jnp.stack([STRING0 + strings, self.zero + values], axis=-1)
    facts = jnp.where((jnp.arange(big) < size)[None, :, None], facts, PAD)
    order = jnp.argsort(jax.random.uniform(k_order, (n, big)), axis=1)
    context = jnp.take_along_axis(facts, order[:, :, None], axis=1).astype(jnp.int32)
    top = self.length if max_wildcards is None else max_wildcards
    count = jax.random.randint(k_count, (n, 1), 1, top + 1)
    rank = jnp.argsort(jax.random.uniform(k_where, (n, self.length)), axis=1)  # a permutation
    letters = LETTER_A + jax.random.randint(k_letters, (n, self.length), 0, 2)
    questions = jnp.where(rank < count, WILDCARD, letters).astype(jnp.int32)
    return Inputs(context=context, questions=questions)

  def training_data(self, key: jax.Array, n: int) -> tuple[Inputs, jax.Array]:
    """D: patterns of 1..prosaic_max_wildcards wildcards, labelled by summing the example's own
    facts (in an episodic task the facts are the data, so D's labels are exact)."""
    inputs = self._sample(key, n, self.prosaic_max_wildcards)
    return inputs, _sums(inputs)

  def deployment_questions(self, key: jax.Array, n: int, size: int | None = None) -> Inputs:
    """D*: patterns of 1..L wildcards, on f's of `size` strings present (None: N)."""
    return self._sample(key, n, size=size)

  def evaluation_questions(self, key: jax.Array, n: int) -> Inputs:
    return self._sample(key, n)

  def difficulty(self, questions: jax.Array) -> jax.Array:
    """The wildcards: H's tree below a pattern of w wildcards is w - 1 asks deep."""
    return jnp.sum(questions == WILDCARD, axis=1).astype(jnp.int32)

  def augment(self, key: jax.Array, inputs: Inputs, labels: jax.Array) -> tuple[Inputs, jax.Array]:
    """The task's symmetries, drawn afresh for each row: permute the positions, swap a and b at
    some of them (in the strings and the patterns alike), and negate every value. Each maps the
    matches of a pattern onto the matches of its image, so the sums stay true (negated)."""
    n, length = labels.shape[0], self.length
    k_order, k_flip, k_sign = jax.random.split(key, 3)
    order = jnp.argsort(jax.random.uniform(k_order, (n, length)), axis=1)
    flip = jax.random.bernoulli(k_flip, 0.5, (n, length)).astype(jnp.int32)
    sign = jnp.where(jax.random.bernoulli(k_sign, 0.5, (n, 1)), -1, 1)
    shifts = jnp.arange(length - 1, -1, -1)
    strings, values = inputs.context[:, :, 0], inputs.context[:, :, 1]
    bits = (strings - STRING0)[:, :, None] >> shifts & 1  # [n, N, L]
    bits = jnp.take_along_axis(bits, order[:, None, :], axis=2) ^ flip[:, None, :]
    real = strings != PAD
    context = jnp.stack([jnp.where(real, STRING0 + jnp.sum(bits << shifts, axis=2), PAD),
                         jnp.where(real, self.zero + sign * (values - self.zero), PAD)], axis=-1)
    questions = jnp.take_along_axis(inputs.questions, order, axis=1)
    letter = questions != WILDCARD
    questions = jnp.where(letter, LETTER_A + ((questions - LETTER_A) ^ flip), questions)
    signed = jnp.where(labels >= self.value0, self.zero + sign * (labels - self.zero), labels)
    return (Inputs(context.astype(jnp.int32), questions.astype(jnp.int32)),
            signed.astype(jnp.int32))

  def random_answers(self, key: jax.Array, n: int) -> jax.Array:
    return jax.random.randint(key, (n, 1), self.value0, self.value0 + 2 * self.clip + 1,
                              jnp.int32)

  def valid_answers(self, questions: jax.Array, answers: jax.Array) -> jax.Array:
    """IDK or a value in -C..C: every pattern's answer is a sum."""
    return answers_in_range(self.spec, answers)

  # -- text for a person ----------------------------------------------------------------------
  # A question reads "sum over a*b* = ?"; an answer "+3", "-2" or "0"; a look-up "f(abab) = +1".
  def _pattern(self, tokens) -> str:
    return "".join(SYMBOLS[int(t) - LETTER_A] if LETTER_A <= int(t) <= WILDCARD else "?"
                   for t in tokens)

  def _string_name(self, token: int) -> str:
    index = int(token) - STRING0
    return "".join("ab"[(index >> (self.length - 1 - j)) & 1] for j in range(self.length))

  def _value_text(self, token: int) -> str:
    value = int(token) - self.zero
    return f"{value:+d}" if value else "0"

  def _symbols(self, text: str, allowed: str, what: str) -> np.ndarray:
    """`text`: L characters of `allowed` -> their tokens; a ValueError naming what is wrong."""
    example = ("ab*b" * self.length)[:self.length] if "*" in allowed else \
        ("abba" * self.length)[:self.length]
    if len(text) != self.length:
      raise ValueError(f"{text!r}: {what} is {self.length} characters, each {' or '.join(allowed)}"
                       f" (e.g. {example}).")
    for ch in text:
      if ch not in allowed:
        raise ValueError(f"{ch!r} in {text!r} is not {' or '.join(allowed)}: {what} is "
                         f"{self.length} of them (e.g. {example}).")
    return np.asarray([LETTER_A + SYMBOLS.index(ch) for ch in text], np.int32)

  def render_question(self, question: np.ndarray) -> str:
    return f"sum over {self._pattern(np.asarray(question))} = ?"

  def render_answer(self, answer: np.ndarray) -> str:
    return "IDK" if int(answer[0]) == IDK else self._value_text(answer[0])

  def parse_answer(self, text: str, question: np.ndarray) -> np.ndarray:
    """"+3", "3", "-2" or "0": a whole number in -C..C."""
    match = re.fullmatch(r"\s*([+-]?)\s*(\d+)\s*", text)
    if match is None or int(match[2]) > self.clip:
      raise ValueError(f"{text.strip()!r} is not a sum; type a whole number from -{self.clip} "
                       f"to +{self.clip}, e.g. +3 or -2.")
    value = -int(match[2]) if match[1] == "-" else int(match[2])
    return np.asarray([self.zero + value], np.int32)

  def parse_question(self, text: str, parent: np.ndarray) -> np.ndarray:
    """"a*b*" (or "sum over a*b* = ?"): a pattern with at least one wildcard; a full string is
    a look-up, never a question for pi."""
    pattern = re.sub(r"^\s*sum\s+over\s+|\s*=\s*\??\s*$", "", text).strip()
    tokens = self._symbols(pattern, SYMBOLS, "a pattern")
    if not np.any(tokens == WILDCARD):
      raise ValueError(f"{pattern!r} has no wildcard: it is a string, so look it up "
                       f"(f({pattern})) rather than asking.")
    return tokens

  def parse_key(self, text: str, parent: np.ndarray) -> int:
    """A string, "abab" (or "f(abab)"): looking it up reads its value among the facts."""
    string = re.sub(r"^\s*f\s*\(\s*|\s*\)\s*$", "", text).strip()
    tokens = self._symbols(string, "ab", "a look-up's string")
    return int(STRING0 + np.sum((tokens - LETTER_A) << np.arange(self.length - 1, -1, -1)))

  def render_lookup(self, key: int, value: int) -> str:
    string = self._string_name(key) if STRING0 <= key < self.value0 else f"key {key}"
    return f"f({string}) = " + ("0 (absent)" if value == IDK else self._value_text(value))

  # -- H's decomposition ---------------------------------------------------------------------
  def human_answer(self, questions: jax.Array, tools: Tools) -> jax.Array:
    """A pattern with no wildcard is a string: look it up (not found: absent, 0). Otherwise
    replace the leftmost wildcard by a and by b; each subpattern is looked up where it is a
    string (one wildcard), else asked of pi; add the two and clip to +-C. At most 2 asks or 2
    look-ups; an IDK from pi gives IDK, and so does a subanswer that is no value (H checks
    each)."""
    wild = questions == WILDCARD
    count = jnp.sum(wild, axis=1)
    first = jnp.argmax(wild, axis=1)
    at = (jnp.arange(self.length)[None, :] == first[:, None]) & wild
    with_a = jnp.where(at, LETTER_A, questions)
    with_b = jnp.where(at, LETTER_B, questions)
    shifts = jnp.arange(self.length - 1, -1, -1)
    string = lambda q: STRING0 + jnp.sum(jnp.clip(q - LETTER_A, 0, 1) << shifts, axis=1)
    value = lambda t: t - self.zero
    is_value = lambda t: (t >= self.value0) & (t <= self.zero + self.clip)
    read = lambda t: jnp.where(t == IDK, 0, value(t))  # a string not among the facts counts 0
    leaf = count <= 1  # the question itself, or its subpatterns, are strings
    looked_a = tools.lookup(string(with_a), where=leaf)
    looked_b = tools.lookup(string(with_b), where=count == 1)
    asked_a = tools.ask(with_a, where=~leaf)[:, 0]
    asked_b = tools.ask(with_b, where=~leaf & is_value(asked_a))[:, 0]
    looked_ok = (is_value(looked_a) | (looked_a == IDK)) & (
        is_value(looked_b) | (looked_b == IDK) | (count == 0))
    total = jnp.where(count == 0, read(looked_a),
                      jnp.where(leaf, read(looked_a) + read(looked_b),
                                value(asked_a) + value(asked_b)))
    ok = jnp.where(leaf, looked_ok, is_value(asked_a) & is_value(asked_b))
    answer = self.zero + jnp.clip(total, -self.clip, self.clip)
    return jnp.where(ok, answer, IDK)[:, None].astype(jnp.int32)


class WildcardTruth:
  """Ground truth of wildcard search: f summed over the example's own facts."""
  world = None  # episodic: no latent world

  def answers(self, inputs: Inputs) -> jax.Array:
    return _sums(inputs)


@jax.jit
def _sums(inputs: Inputs) -> jax.Array:
  """The clipped sum of the values of the facts whose string the pattern matches: int32[B, 1]."""
  context, questions = inputs
  length = questions.shape[1]
  clip = 2**(length - 1)
  zero = STRING0 + 2**length + clip
  index = context[:, :, 0] - STRING0  # [B, N]
  bits = (index[:, :, None] >> jnp.arange(length - 1, -1, -1)) & 1  # [B, N, L], a = 0
  symbol = (questions - LETTER_A)[:, None, :]  # 0 a, 1 b, 2 *
  matches = jnp.all((symbol == 2) | (symbol == bits), axis=2) & (context[:, :, 0] != PAD)
  total = jnp.sum(jnp.where(matches, context[:, :, 1] - zero, 0), axis=1)
  return (zero + jnp.clip(total, -clip, clip))[:, None].astype(jnp.int32)


def make_wildcard(settings: WildcardSettings, key: jax.Array):
  """The task and its (stateless) truth; every example draws its own f."""
  return (WildcardSearch(settings.length, settings.num_strings, settings.prosaic_max_wildcards),
          WildcardTruth())


PLUGIN = registry.TaskPlugin(make_wildcard, WildcardSettings)
