"""Sequential assignments (Christiano, Shlegeris and Amodei 2018), an episodic task.

Each example is a program of N variables x0 .. x{N-1} over the values 1..V: the first floor(sqrt N)
are constants, and each later x_i := f(x_y, x_z) with y, z < i drawn uniformly, for one function
f: {1..V}^2 -> {1..V} of the example. The question is a variable; the answer is its value. The
facts are the program and f's table at the pairs the program uses (the authors give an entry of f
the first time a pair is used):

  [x, CONST, v]  x is the constant v          [x, y, z]  x := f(y, z)          [a, b, f(a, b)]

so H reads "x's definition" as two look-ups, fact_key(x) -> y (or CONST) and fact_key(x, y) -> z
(or v), and f's entry as fact_key(a, b).

Variables are named in the order they are defined, so a variable's index is its difficulty: every
variable H asks about while evaluating x_i comes before it. The curriculum grows the number of
variables (an instance of s < N variables is the program's first s, its other facts PAD).

Tokens: PAD, IDK, CONST, the N variables, the V values. Question: [x]. Answer: [value].
"""
from __future__ import annotations

import dataclasses
import functools
import math
import re

import jax
import jax.numpy as jnp
import numpy as np

from amplify import registry
from amplify.learn.mz import KEY_RADIX, fact_key, key_tokens
from amplify.tasks.base import answers_in_range
from amplify.types import EPISODIC, FIRST_TOKEN, IDK, PAD, Inputs, Spec, Tools

CONST = FIRST_TOKEN


@dataclasses.dataclass(frozen=True)
class AssignmentsSettings:
  """`--task.FIELD`: N variables over V values; D (prosaic ML) asks only about the first
  `prosaic_variables` variables."""
  num_variables: int = 16
  num_values: int = 8
  prosaic_variables: int = 6

  def __post_init__(self):  # the task checks the same, naming its own fields
    SequentialAssignments(self.num_variables, self.num_values, self.prosaic_variables)


@dataclasses.dataclass(frozen=True)
class SequentialAssignments:
  """The value of a variable of a straight-line program (the module's docstring)."""
  num_variables: int = 16
  num_values: int = 8
  prosaic_variables: int = 6
  name: str = "assignments"
  extra_baselines = ()
  examples = {"answer": "4", "ask": "x3", "lookup": "x7, x7 x3, x7 const or f(3, 5)"}
  budget_needed = (2, 3)  # the values of x's two arguments; x's definition (two) and f's entry

  def __post_init__(self):
    if self.num_variables < 2:
      raise ValueError(f"--task.num_variables={self.num_variables}: a program needs at least 2 "
                       "variables (a constant and one defined from it).")
    if self.num_values < 2:
      raise ValueError(f"--task.num_values={self.num_values}: choose at least 2 values.")
    if self.value0 + self.num_values > KEY_RADIX:
      raise ValueError(f"--task.num_variables={self.num_variables} with --task.num_values="
                       f"{self.num_values}: at most {KEY_RADIX - FIRST_TOKEN - 1} tokens in all.")
    if not 1 <= self.prosaic_variables <= self.num_variables:
      raise ValueError(f"--task.prosaic_variables={self.prosaic_variables}: D asks about the "
                       f"first 1..{self.num_variables} variables (--task.num_variables).")

  @property
  def var0(self) -> int:
    return CONST + 1

  @property
  def value0(self) -> int:
    return self.var0 + self.num_variables

  @property
  def ask_depth(self) -> int:
    """The longest chain of asks: each variable from the one before it, down to the constants."""
    return self.num_variables - math.isqrt(self.num_variables)

  @property
  def full_size(self) -> int:
    """The instance size the curriculum grows (amplify.types.Sized): the variables."""
    return self.num_variables

  @property
  def context_size(self) -> int:
    """A fact per variable and one of f's entries per defined variable (PAD where repeated)."""
    return 2 * self.num_variables - math.isqrt(self.num_variables)

  @property
  def spec(self) -> Spec:
    return Spec(vocab_size=self.value0 + self.num_values, question_len=1, answer_len=1,
                fact_len=3, context_size=self.context_size, regime=EPISODIC,
                max_difficulty=self.num_variables - 1, packed_question=True,
                answer_tokens=(self.value0, self.value0 + self.num_values))

  # -- sampling ------------------------------------------------------------------------------
  @functools.partial(jax.jit, static_argnums=(0, 2, 3, 4))
  def _sample(self, key: jax.Array, n: int, size: int | None = None,
              ask_below: int | None = None) -> Inputs:
    """n programs of `size` variables (None: N), a question each about one of the first
    `ask_below` variables (None: any of them)."""
    size = self.num_variables if size is None else size
    if not 2 <= size <= self.num_variables:
      raise ValueError(f"a program of {size} variables: sizes lie in 2..{self.num_variables} "
                       "(--task.num_variables).")
    k_const, k_args, k_f, k_order, k_x = jax.random.split(key, 5)
    big, consts = self.num_variables, math.isqrt(size)
    index = jnp.arange(big)
    constant = jax.random.randint(k_const, (n, big), 0, self.num_values)
    # arguments y, z < i, uniform (for the constants and the absent variables: unused)
    args = jnp.floor(jax.random.uniform(k_args, (n, big, 2)) * jnp.maximum(index, 1)[:, None])
    args = args.astype(jnp.int32)
    f = jax.random.randint(k_f, (n, self.num_values, self.num_values), 0, self.num_values)
    rows = jnp.arange(n)
    values = jnp.zeros((n, big), jnp.int32)  # 0-based values, in definition order
    for i in range(size):
      a, b = values[rows, args[:, i, 0]], values[rows, args[:, i, 1]]
      values = values.at[:, i].set(constant[:, i] if i < consts else f[rows, a, b])
    is_const, present = index < consts, index < size
    var = self.var0 + index
    first = jnp.where(is_const, CONST, self.var0 + args[..., 0])
    second = jnp.where(is_const, self.value0 + constant, self.var0 + args[..., 1])
    program = jnp.stack([jnp.broadcast_to(var, (n, big)), first, second], axis=-1)
    program = jnp.where(present[None, :, None], program, PAD)
    # f's entry at each defined variable's pair, the first time the pair is used
    pair_a = values[rows[:, None], args[..., 0]]
    pair_b = values[rows[:, None], args[..., 1]]
    defined = present & ~is_const
    same = (pair_a[:, :, None] == pair_a[:, None, :]) & (pair_b[:, :, None] == pair_b[:, None, :])
    earlier = same & defined[None, None, :] & (index[None, :] < index[:, None])[None]
    fresh = defined[None, :] & ~jnp.any(earlier, axis=2)
    entry = jnp.stack([self.value0 + pair_a, self.value0 + pair_b,
                       self.value0 + f[rows[:, None], pair_a, pair_b]], axis=-1)
    slots = slice(consts, consts + big - math.isqrt(big))  # the defined variables' (and PAD)
    entry = jnp.where(fresh[..., None], entry, PAD)[:, slots]
    facts = jnp.concatenate([program, entry], axis=1)
    order = jnp.argsort(jax.random.uniform(k_order, facts.shape[:2]), axis=1)
    context = jnp.take_along_axis(facts, order[:, :, None], axis=1).astype(jnp.int32)
    below = size if ask_below is None else min(ask_below, size)
    x = self.var0 + jax.random.randint(k_x, (n, 1), 0, below, jnp.int32)
    return Inputs(context=context, questions=x)

  def training_data(self, key: jax.Array, n: int) -> tuple[Inputs, jax.Array]:
    """D: questions about the first `prosaic_variables` variables only, labelled by evaluating
    the example's own program (in an episodic task the facts are the data)."""
    inputs = self._sample(key, n, ask_below=self.prosaic_variables)
    return inputs, _evaluate(inputs, self.num_variables, self.num_values)

  def deployment_questions(self, key: jax.Array, n: int, size: int | None = None) -> Inputs:
    return self._sample(key, n, size=size)

  def evaluation_questions(self, key: jax.Array, n: int) -> Inputs:
    return self._sample(key, n)

  def difficulty(self, questions: jax.Array) -> jax.Array:
    """The variable's index: H asks only about variables before it."""
    return jnp.clip(questions[:, 0] - self.var0, 0, self.num_variables - 1).astype(jnp.int32)

  def augment(self, key: jax.Array, inputs: Inputs, labels: jax.Array) -> tuple[Inputs, jax.Array]:
    """The task's symmetry: rename the values of each row by a random bijection (constants, f's
    table and the answer alike)."""
    n = labels.shape[0]
    renamed = jnp.argsort(jax.random.uniform(key, (n, self.num_values)), axis=1) + self.value0
    table = jnp.concatenate([jnp.broadcast_to(jnp.arange(self.value0), (n, self.value0)),
                             renamed], axis=1)
    rename = lambda t: jnp.take_along_axis(table, t.reshape(n, -1), axis=1).reshape(t.shape)
    return Inputs(rename(inputs.context), inputs.questions), rename(labels)

  def random_answers(self, key: jax.Array, n: int) -> jax.Array:
    return jax.random.randint(key, (n, 1), self.value0, self.value0 + self.num_values, jnp.int32)

  def valid_answers(self, questions: jax.Array, answers: jax.Array) -> jax.Array:
    return answers_in_range(self.spec, answers)

  # -- text for a person ----------------------------------------------------------------------
  # Variables are x0, x1, ...; values 1..V; a question reads "x7 = ?".
  def _variable(self, text: str) -> int:
    match = re.fullmatch(r"\s*x(\d+)\s*", text)
    if match is None or int(match[1]) >= self.num_variables:
      raise ValueError(f"{text.strip()!r} is not a variable; the variables are x0 to "
                       f"x{self.num_variables - 1}.")
    return self.var0 + int(match[1])

  def _value(self, text: str) -> int:
    if not re.fullmatch(r"\s*\d+\s*", text) or not 1 <= int(text) <= self.num_values:
      raise ValueError(f"{text.strip()!r} is not a value; the values are 1 to "
                       f"{self.num_values}.")
    return self.value0 + int(text) - 1

  def _name(self, token: int) -> str:
    token = int(token)
    if token == CONST:
      return "const"
    if self.var0 <= token < self.value0:
      return f"x{token - self.var0}"
    return str(token - self.value0 + 1)

  def render_question(self, question: np.ndarray) -> str:
    return f"{self._name(question[0])} = ?"

  def render_answer(self, answer: np.ndarray) -> str:
    return "IDK" if int(answer[0]) == IDK else self._name(answer[0])

  def parse_answer(self, text: str, question: np.ndarray) -> np.ndarray:
    return np.asarray([self._value(text)], np.int32)

  def parse_question(self, text: str, parent: np.ndarray) -> np.ndarray:
    """"x3" (or "x3 = ?")."""
    return np.asarray([self._variable(re.sub(r"=\s*\??\s*$", "", text))], np.int32)

  def parse_key(self, text: str, parent: np.ndarray) -> int:
    """"x7" (x7's definition: its first argument, or "const"), "x7 x3" (its second argument
    after x3), "x7 const" (its constant value), "f(3, 5)" (f's entry)."""
    words = text.replace(",", " ").split()
    match = re.fullmatch(r"\s*f\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)\s*", text)
    if match is not None:
      return int(fact_key(self._value(match[1]), self._value(match[2])))
    if len(words) == 1:
      return int(self._variable(words[0]))
    if len(words) == 2:
      second = CONST if words[1] == "const" else self._variable(words[1])
      return int(fact_key(self._variable(words[0]), second))
    raise ValueError(f"{text!r}: look up a definition as x7, its second part as x7 x3 (or x7 "
                     "const), or f's table as f(3, 5).")

  def render_lookup(self, key: int, value: int) -> str:
    parts = [self._name(t) for t in key_tokens(key)]
    found = "not found" if value == IDK else self._name(value)
    if len(parts) == 1:
      return f"{parts[0]}: " + ("a constant" if value == CONST else
                                f"{parts[0]} := f({found}, ...)" if value != IDK else found)
    if parts[1] == "const":
      return f"{parts[0]} = {found}"
    if parts[0].startswith("x"):
      return f"{parts[0]} := f({parts[1]}, {found})"
    return f"f({parts[0]}, {parts[1]}) = {found}"

  # -- H's decomposition ---------------------------------------------------------------------
  def human_answer(self, questions: jax.Array, tools: Tools) -> jax.Array:
    """Look up x's definition. A constant's value is read from it; otherwise x := f(y, z): ask
    pi the values of y and z, then look up f at them. At most 2 asks and 3 look-ups; any IDK
    gives IDK, and so does a part that names no variable or value (H checks each)."""
    x = questions[:, 0]
    first = tools.lookup(x, where=jnp.ones_like(x, bool))
    constant = first == CONST
    is_var = (first >= self.var0) & (first < self.value0)
    second = tools.lookup(fact_key(x, first), where=constant | is_var)
    is_value = lambda t: (t >= self.value0) & (t < self.value0 + self.num_values)
    defined = is_var & (second >= self.var0) & (second < self.value0)
    a = tools.ask(first[:, None], where=defined)[:, 0]
    b = tools.ask(second[:, None], where=defined & is_value(a))[:, 0]
    both = defined & is_value(a) & is_value(b)
    value = tools.lookup(fact_key(a, b), where=both)
    answer = jnp.where(constant, second, jnp.where(both, value, IDK))
    return jnp.where(is_value(answer), answer, IDK)[:, None].astype(jnp.int32)


@dataclasses.dataclass(frozen=True)
class AssignmentsTruth:
  """Ground truth of sequential assignments: the program run on its own facts."""
  num_variables: int
  num_values: int
  world = None  # episodic: no latent world

  def answers(self, inputs: Inputs) -> jax.Array:
    return _evaluate(inputs, self.num_variables, self.num_values)


@functools.partial(jax.jit, static_argnums=(1, 2))
def _evaluate(inputs: Inputs, num_variables: int, num_values: int) -> jax.Array:
  """The questioned variable's value token, int32[B, 1], by running the row's program: every
  variable's arguments come before it, so N passes settle all of them."""
  context, questions = inputs
  var0 = CONST + 1
  value0 = var0 + num_variables
  vocab = value0 + num_values
  head, first, second = context[..., 0], context[..., 1], context[..., 2]
  program = (head >= var0) & (head < value0)
  constant = program & (first == CONST)
  defined = program & (first >= var0) & (first < value0)
  entry = head >= value0
  rows = jnp.arange(context.shape[0])[:, None]
  f = jnp.zeros((context.shape[0], vocab, vocab), jnp.int32)
  f = f.at[rows, jnp.where(entry, head, vocab), first].set(second, mode="drop")
  value = jnp.zeros((context.shape[0], vocab), jnp.int32)
  value = value.at[rows, jnp.where(constant, head, vocab)].set(second, mode="drop")

  def step(_, value):
    a = jnp.take_along_axis(value, jnp.where(defined, first, 0), axis=1)
    b = jnp.take_along_axis(value, jnp.where(defined, second, 0), axis=1)
    return value.at[rows, jnp.where(defined, head, vocab)].set(f[rows, a, b], mode="drop")

  value = jax.lax.fori_loop(0, num_variables, step, value)
  return jnp.take_along_axis(value, questions[:, :1], axis=1).astype(jnp.int32)


def make_assignments(settings: AssignmentsSettings, key: jax.Array):
  """The task and its (stateless) truth; every example draws its own program."""
  fields = dataclasses.astuple(settings)
  return SequentialAssignments(*fields), AssignmentsTruth(settings.num_variables,
                                                          settings.num_values)


PLUGIN = registry.TaskPlugin(make_assignments, AssignmentsSettings)
