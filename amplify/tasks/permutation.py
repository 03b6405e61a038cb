"""Permutation powering (Christiano, Shlegeris and Amodei 2018), an episodic task.

Each example carries its own permutation sigma of N elements as N facts (x, sigma(x)), in a random
order. The question is an element x and a power k, written in binary; the answer is sigma^k(x).

Tokens: PAD, IDK, then the N elements, then the two bit tokens.
Question: [x, bit_{b-1}, ..., bit_0] (most significant bit first), so the policy sees k.
Fact: [x, sigma(x)]. Answer: [sigma^k(x)].

Two forms (`--task.form`): "amplify" draws k uniformly from 1..2**k_bits - 1, one question per
permutation, and H asks pi every sigma^h it needs; "2018" is the authors' code's: k's bit length
uniform in 2..k_bits and k uniform within it (so k >= 2 and each bit length is an equal share,
which makes plain accuracy their per-bit-length average), a question's difficulty its bit length
(the metrics' accuracy by difficulty is theirs by bit length), one question per element of each
permutation, and H looks up every sigma^1 instead of asking pi (../shared/REFERENCES.md).
"""
from __future__ import annotations

import dataclasses
import functools
import re

import jax
import jax.numpy as jnp
import numpy as np

from amplify import registry
from amplify.types import EPISODIC, FIRST_TOKEN, IDK, PAD, Inputs, Spec, Tools
from amplify.tasks.base import answers_in_range, letter_name, parse_letter_name


FORMS = ("amplify", "2018")


@dataclasses.dataclass(frozen=True)
class PermutationSettings:
  """`--task.FIELD`: N elements, powers k < 2**k_bits, D's powers k < prosaic_max_k, and the form
  (the module's docstring)."""
  num_elements: int = 8
  k_bits: int = 4
  prosaic_max_k: int = 4
  form: str = "amplify"

  def __post_init__(self):  # the task checks the same, naming its own fields
    PermutationPowering(self.num_elements, self.k_bits, self.prosaic_max_k, self.form)


@dataclasses.dataclass(frozen=True)
class PermutationPowering:
  """Questions sigma^k(x) with k < 2**k_bits; D (for prosaic ML) has k < prosaic_max_k."""
  num_elements: int = 8
  k_bits: int = 4
  prosaic_max_k: int = 4
  form: str = "amplify"
  name: str = "permutation"
  extra_baselines = ()
  examples = {"answer": "e", "ask": "sigma^6(c)", "lookup": "c"}

  @property
  def authors(self) -> bool:
    """The 2018 authors' form."""
    return self.form == "2018"

  @property
  def budget_needed(self) -> tuple[int, int]:
    """(asks, look-ups): sigma^h asked twice and one look-up; in the authors' form sigma^1 is
    looked up, so k = 2 or 3 takes up to three look-ups."""
    return (2, 3) if self.authors else (2, 1)

  @property
  def ask_depth(self) -> int:
    """Halving k < 2**k_bits until it is 1 (which H looks up), or 2 or 3 (the authors' form)."""
    return max(self.k_bits - 2, 0) if self.authors else self.k_bits - 1

  def __post_init__(self):
    if self.num_elements < 2:
      raise ValueError(f"--task.num_elements={self.num_elements}: a permutation needs at least 2 "
                       "elements.")
    if self.k_bits < 1:
      raise ValueError(f"--task.k_bits={self.k_bits}: k needs at least one bit.")
    if self.form not in FORMS:
      raise ValueError(f"--task.form={self.form!r}: the forms are {list(FORMS)}.")
    if self.authors and self.k_bits < 2:
      raise ValueError(f"--task.k_bits={self.k_bits}: the 2018 form draws k >= 2, which needs "
                       "k_bits >= 2.")
    if not 2 <= self.prosaic_max_k <= 2**self.k_bits:
      raise ValueError(f"--task.prosaic_max_k={self.prosaic_max_k}: D's powers are 1 <= k < "
                       f"prosaic_max_k, so it must lie in [2, {2**self.k_bits}] for k_bits="
                       f"{self.k_bits}.")

  @property
  def bit0(self) -> int:
    return FIRST_TOKEN + self.num_elements

  @property
  def full_size(self) -> int:
    """The instance size the curriculum grows (amplify.types.Sized): the elements."""
    return self.num_elements

  @property
  def spec(self) -> Spec:
    return Spec(vocab_size=self.bit0 + 2, question_len=1 + self.k_bits, answer_len=1, fact_len=2,
                context_size=self.num_elements, regime=EPISODIC,
                max_difficulty=self.k_bits if self.authors else 2**self.k_bits - 1,
                packed_question=True,
                serial_question=True,
                answer_tokens=(FIRST_TOKEN, FIRST_TOKEN + self.num_elements))

  # -- encoding ------------------------------------------------------------------------------
  def encode(self, x: jax.Array, k: jax.Array) -> jax.Array:
    """x: int32[B] element tokens, k: int32[B] -> questions int32[B, 1 + k_bits]."""
    shifts = jnp.arange(self.k_bits - 1, -1, -1)
    bits = (k[:, None] >> shifts) & 1
    return jnp.concatenate([x[:, None], self.bit0 + bits], axis=1).astype(jnp.int32)

  def decode(self, questions: jax.Array) -> tuple[jax.Array, jax.Array]:
    """questions int32[B, 1 + k_bits] -> (x int32[B], k int32[B])."""
    bits = questions[:, 1:] - self.bit0
    k = jnp.sum(bits << jnp.arange(self.k_bits - 1, -1, -1), axis=1)
    return questions[:, 0], k.astype(jnp.int32)

  # -- sampling ------------------------------------------------------------------------------
  @functools.partial(jax.jit, static_argnums=(0, 2, 3, 4))
  def _sample(self, key: jax.Array, n: int, max_k: int | None = None,
              size: int | None = None) -> Inputs:
    """n questions: powers 1 <= k < max_k, one per permutation; None: D*'s, in the task's form.
    `size` < N: permutations of the first `size` elements, the other N - size facts PAD."""
    size = self.num_elements if size is None else size
    if not 2 <= size <= self.num_elements:
      raise ValueError(f"a permutation instance of {size} elements: sizes lie in 2.."
                       f"{self.num_elements} (--task.num_elements).")
    k_perm, k_order, k_x, k_k = jax.random.split(key, 4)
    per = size if self.authors and max_k is None else 1  # questions a permutation
    m = -(-n // per)
    elements = FIRST_TOKEN + jnp.arange(self.num_elements, dtype=jnp.int32)
    if size == self.num_elements:
      sigma = jax.vmap(lambda kk: jax.random.permutation(kk, elements))(
          jax.random.split(k_perm, m))
      keys = jnp.broadcast_to(elements, sigma.shape)
    else:  # the first `size` sort first (a random order of them), the rest keep their place
      inside = jnp.arange(self.num_elements) < size
      draw = jnp.where(inside, jax.random.uniform(k_perm, (m, self.num_elements)), 2.)
      sigma = jnp.where(inside, FIRST_TOKEN + jnp.argsort(draw, axis=1), PAD).astype(jnp.int32)
      keys = jnp.broadcast_to(jnp.where(inside, elements, PAD), sigma.shape)
    facts = jnp.stack([keys, sigma], axis=-1)  # [m, N, 2]
    order = jax.vmap(lambda kk: jax.random.permutation(kk, self.num_elements))(
        jax.random.split(k_order, m))
    context = jnp.take_along_axis(facts, order[:, :, None], axis=1)
    if per > 1:  # each element of each permutation asked about once
      context = jnp.repeat(context, per, axis=0)[:n]
      x = jnp.tile(elements[:size], m)[:n]
    else:
      x = jax.random.randint(k_x, (n,), FIRST_TOKEN, FIRST_TOKEN + size, jnp.int32)
    if max_k is not None:
      k = jax.random.randint(k_k, (n,), 1, max_k, jnp.int32)
    elif self.authors:  # the bit length, then k within it
      k_length, k_within = jax.random.split(k_k)
      low = 1 << (jax.random.randint(k_length, (n,), 2, self.k_bits + 1, jnp.int32) - 1)
      k = low + jax.random.randint(k_within, (n,), 0, low, jnp.int32)
    else:
      k = jax.random.randint(k_k, (n,), 1, 2**self.k_bits, jnp.int32)
    return Inputs(context=context, questions=self.encode(x, k))

  def training_data(self, key: jax.Array, n: int) -> tuple[Inputs, jax.Array]:
    """D: powers 1 <= k < prosaic_max_k, labelled by following the example's facts (in an
    episodic task the facts are the data, so D's labels are exact)."""
    inputs = self._sample(key, n, self.prosaic_max_k)
    return inputs, _follow(inputs)

  def deployment_questions(self, key: jax.Array, n: int, size: int | None = None) -> Inputs:
    """D*: powers k < 2**k_bits, drawn as the form draws them, of `size` elements (None: N)."""
    return self._sample(key, n, size=size)

  def evaluation_questions(self, key: jax.Array, n: int) -> Inputs:
    return self._sample(key, n)

  def difficulty(self, questions: jax.Array) -> jax.Array:
    """k; in the authors' form k's bit length (they report accuracy per bit length)."""
    k = self.decode(questions)[1]
    return (32 - jax.lax.clz(k)).astype(jnp.int32) if self.authors else k

  def augment(self, key: jax.Array, inputs: Inputs, labels: jax.Array) -> tuple[Inputs, jax.Array]:
    """The task's symmetry: rename the elements of each row by a random bijection pi. Facts become
    (pi x, pi sigma x), questions (pi x, k), answers pi sigma^k x: the same relation, relabelled."""
    n = labels.shape[0]
    renamed = jnp.argsort(jax.random.uniform(key, (n, self.num_elements)), axis=1) + FIRST_TOKEN
    table = jnp.concatenate([jnp.broadcast_to(jnp.arange(FIRST_TOKEN), (n, FIRST_TOKEN)), renamed,
                             jnp.broadcast_to(self.bit0 + jnp.arange(2), (n, 2))], axis=1)
    rename = lambda t: jnp.take_along_axis(table, t.reshape(n, -1), axis=1).reshape(t.shape)
    return Inputs(rename(inputs.context), rename(inputs.questions)), rename(labels)

  def random_answers(self, key: jax.Array, n: int) -> jax.Array:
    return jax.random.randint(key, (n, 1), FIRST_TOKEN, FIRST_TOKEN + self.num_elements, jnp.int32)

  def valid_answers(self, questions: jax.Array, answers: jax.Array) -> jax.Array:
    return answers_in_range(self.spec, answers)

  # -- text for a person ----------------------------------------------------------------------
  # Elements are letters a, b, c, ... (x0, x1, ... beyond 26); a question reads "sigma^13(c)".
  def element_name(self, token: int) -> str:
    return letter_name(int(token) - FIRST_TOKEN, self.num_elements)

  def _element(self, text: str) -> int:
    return parse_letter_name(text, FIRST_TOKEN, self.num_elements, "element", "elements")

  def render_question(self, question: np.ndarray) -> str:
    q = np.asarray(question)  # numpy, not the batch decode: one row, shown to a person
    k = int("".join(str(int(t) - self.bit0) for t in q[1:]), 2)
    return f"sigma^{k}({self.element_name(q[0])}) = ?"

  def render_answer(self, answer: np.ndarray) -> str:
    return "IDK" if int(answer[0]) == IDK else self.element_name(answer[0])

  def parse_answer(self, text: str, question: np.ndarray) -> np.ndarray:
    return np.asarray([self._element(text)], np.int32)

  def parse_question(self, text: str, parent: np.ndarray) -> np.ndarray:
    """"sigma^6(c)" (or "c 6")."""
    match = re.fullmatch(r"\s*sigma\^(\d+)\s*\(\s*(\w+)\s*\)\s*(=\s*\??)?\s*", text) or \
        re.fullmatch(r"\s*(?P<x>\w+)\s+(?P<k>\d+)\s*", text)
    if match is None:
      raise ValueError(f"{text!r}: type a subquestion as sigma^K(X), e.g. sigma^6(c).")
    k, x = (match["k"], match["x"]) if "k" in match.groupdict() else (match[1], match[2])
    if not 1 <= int(k) < 2**self.k_bits:
      raise ValueError(f"sigma^{k}: the power must lie in 1..{2**self.k_bits - 1}.")
    bits = [self.bit0 + int(b) for b in format(int(k), f"0{self.k_bits}b")]
    return np.asarray([self._element(x)] + bits, np.int32)

  def parse_key(self, text: str, parent: np.ndarray) -> int:
    """An element: looking it up reads sigma(element) among the example's facts."""
    return self._element(text.strip().removeprefix("sigma(").removesuffix(")"))

  def render_lookup(self, key: int, value: int) -> str:
    return f"sigma({self.element_name(key)}) = " + (
        "not found" if value == IDK else self.element_name(value))

  # -- H's decomposition ---------------------------------------------------------------------
  def human_answer(self, questions: jax.Array, tools: Tools) -> jax.Array:
    """sigma(x) by a look-up; else y = sigma^h(x), y = sigma^h(y) with h = k // 2, then one more
    look-up if k is odd. sigma^h is asked of pi (in the authors' form sigma^1 is looked up
    instead). At most 2 asks and 1 look-up (authors' form: 3 look-ups); any IDK along the way
    gives IDK, and so does a subanswer that names no element (H checks each, as in the 2018
    authors' code)."""
    x, k = self.decode(questions)
    one = k == 1
    direct = tools.lookup(x, where=one)
    h = k // 2
    spec = self.spec
    element = lambda a: jnp.where(answers_in_range(spec, a), a[:, 0], IDK)  # the answers' check
    if self.authors:
      looked = h == 1  # sigma^1 read from the facts, never asked of pi

      def sigma_h(y, where):
        asked = element(tools.ask(self.encode(y, h), where=where & ~looked))
        return jnp.where(looked, tools.lookup(y, where=where & looked), asked)
    else:
      sigma_h = lambda y, where: element(tools.ask(self.encode(y, h), where=where))
    y = sigma_h(x, ~one)
    y = sigma_h(y, ~one & (y != IDK))
    odd = ~one & (k % 2 == 1) & (y != IDK)
    y = jnp.where(odd, tools.lookup(y, where=odd), y)
    return jnp.where(one, direct, y)[:, None]


class PermutationTruth:
  """Ground truth of permutation powering: sigma^k(x), following the example's own facts."""
  world = None  # episodic: no latent world

  def answers(self, inputs: Inputs) -> jax.Array:
    return _follow(inputs)


@jax.jit
def _follow(inputs: Inputs) -> jax.Array:
  """sigma^k(x) by following the facts k times: int32[B, 1]."""
  context, questions = inputs
  n = context.shape[1]
  k_bits = questions.shape[1] - 1
  bit0 = FIRST_TOKEN + n
  k = jnp.sum((questions[:, 1:] - bit0) << jnp.arange(k_bits - 1, -1, -1), axis=1)
  # table[b, e - FIRST_TOKEN] = sigma(e) for the example's own permutation
  table = jnp.zeros((context.shape[0], n), jnp.int32)
  at = jnp.where(context[:, :, 0] == PAD, n, context[:, :, 0] - FIRST_TOKEN)  # PAD facts: dropped
  table = jax.vmap(lambda t, i, f: t.at[i].set(f[:, 1], mode="drop"))(table, at, context)

  def step(i, y):
    nxt = jnp.take_along_axis(table, (y - FIRST_TOKEN)[:, None], axis=1)[:, 0]
    return jnp.where(i < k, nxt, y)

  y = jax.lax.fori_loop(0, 2**k_bits, step, questions[:, 0])
  return y[:, None]


def make_permutation(settings: PermutationSettings, key: jax.Array):
  """The task and its (stateless) truth; every example draws its own permutation."""
  return (PermutationPowering(settings.num_elements, settings.k_bits, settings.prosaic_max_k,
                              settings.form), PermutationTruth())


PLUGIN = registry.TaskPlugin(make_permutation, PermutationSettings)
