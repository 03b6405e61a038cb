"""Colored digits, a latent world: the Colored MNIST protocol (Arjovsky et al. 2019) on the 8x8
digits that scikit-learn ships inside its package (1,797 images, intensities 0..16; nothing is
downloaded).

Each image's class is 1 if its digit is < 5, else 0; the observed label is that class flipped with
probability LABEL_FLIP. The ink is drawn in a colour (red 0 / green 1) that agrees with the
observed label with probability COLOUR_AGREEMENT of the image's environment: two training
environments (together D, with their observed labels) and a test environment (D*), where the
colour mostly disagrees. A colour-blind rule can reach 1 - LABEL_FLIP = 75% of observed labels
anywhere; a rule that reads colour does better in D and far worse in D*.

z is the rule from (digit, colour) to class: entry 2 * digit + colour holds a class token. In
the true world the class ignores colour. The human H has seen a separate set of grayscale images
with their digits (the reader set), from which it learnt a grayscale reader R (a tiny network,
trained at world generation); H believes, all but certainly, that the ink's colour does not
decide a digit's class (`human_log_prior`), and knows the label noise rate. Fitting z* to D
therefore recovers the colour-blind rule although colour predicts D's labels better than shape.
H's decomposition: read the digit with R, the colour from the tokens, and look the rule up in Mz.

Tokens: PAD, IDK, the two class tokens (class 0, class 1), then the pixels: one token for a blank
pixel, red ink of intensity 1..16, green ink of intensity 1..16. Question: the 64 pixel tokens
(row-major). Answer: [class token]. Difficulty: always 0 (H answers every question in one
look-up). Ground truth (`ColoredDigitsTruth`): the observed (noisy) label of each D* image, which
is what Arjovsky et al. score against; so no rule exceeds about 75% on D* without reading colour.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import math
import os
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from amplify import registry
from amplify.types import FIRST_TOKEN, IDK, LATENT, Inputs, Spec, Tools
from amplify.tasks.base import answers_in_range

# The protocol of Arjovsky et al. 2019 (Colored MNIST).
LABEL_FLIP = 0.25  # the observed label is the class flipped this often, in every environment
# P(colour == observed label): training environments 1 and 2 (D), and the test environment (D*)
COLOUR_AGREEMENT = (0.9, 0.8, 0.1)
# The 1,797 images, shuffled by the world's key, split into disjoint parts (the rest: evaluation).
# Reader 400: R reaches ~95% digit accuracy (~97% on the class) and more images buy little.
# Environments 350 + 350 = D: ~35 images per (digit, environment), enough for the likelihood to
# pin each (digit, majority colour) entry. Labelling pool 450: what H^A labels for pi (its only
# training data). The evaluation pool keeps the remaining 247 (a standard error near 3 points).
READER_SIZE, ENV_SIZES, LABEL_POOL_SIZE = 400, (350, 350), 450
NUM_DIGITS, NUM_COLOURS, MAX_INTENSITY = 10, 2, 16
RED, GREEN = 0, 1
# log P_H(z): the colours of a digit give it different classes with probability DELTA, "all but
# certainly not". Following colour for one digit gains up to ~22 nats of likelihood in D (measured
# over six worlds; 60-100 nats for all ten digits), so DELTA = 1e-3 (6.9 nats) still lets colour
# win for several digits; 1e-20 costs 46 nats per digit, twice the largest gain. Without the prior
# the fit follows colour for every digit (tests/test_colored_digits.py).
DELTA = 1e-20
READER_HIDDEN, READER_STEPS, READER_LEARNING_RATE, READER_WEIGHT_DECAY = 32, 500, 0.05, 1e-3


@dataclasses.dataclass(frozen=True, eq=False)  # eq=False: hashed by identity (it holds arrays)
class ColoredDigits:
  reader: dict  # R's parameters: 64 grayscale intensities / 16 -> 10 digit logits
  d_inputs: Inputs  # D: environments 1 and 2, in that order
  d_labels: jax.Array  # D's observed labels, int32[n, 1] class tokens
  label_pool: Inputs  # D* questions for H^A to label (no labels here)
  eval_pool: Inputs  # D* questions for the evaluator only
  # The policy's encoding: the whole image packed into one token (an MLP-like reading). Measured
  # against rows of 8 pixels packed into 8 tokens (question_group=8), the packed reading learnt
  # the grayscale digits better (~63% against ~58% on D* for the grayscale oracle, seeds 10-12).
  packed_question: bool = True
  name: str = "colored_digits"
  budget_needed = (0, 1)  # one look-up of the rule
  ask_depth = 0  # H never asks
  extra_baselines = ("grayscale",)  # named baselines beside prosaic and ceiling (baselines.EXTRA)
  examples = {"answer": "1", "lookup": "3 red"}

  # -- tokens --------------------------------------------------------------------------------
  class0 = FIRST_TOKEN  # class 0 (digit >= 5), then class 1 (digit < 5)
  blank = FIRST_TOKEN + 2  # intensity 0; red ink of intensity k is blank + k
  green0 = FIRST_TOKEN + 2 + MAX_INTENSITY  # green ink of intensity k is green0 + k

  @property
  def spec(self) -> Spec:
    return Spec(vocab_size=self.green0 + MAX_INTENSITY + 1, question_len=64, answer_len=1,
                fact_len=1, context_size=0, regime=LATENT, max_difficulty=0,
                packed_question=self.packed_question,
                z_entries=NUM_DIGITS * NUM_COLOURS, z_values=2, z_first_token=self.class0,
                answer_tokens=(self.class0, self.class0 + 2))

  def colour(self, questions: jax.Array) -> jax.Array:
    """int32[B]: the ink's colour (an image is inked in one colour; green if any pixel is)."""
    return jnp.any(questions > self.green0, axis=1).astype(jnp.int32)

  def intensities(self, questions: jax.Array) -> jax.Array:
    """float32[B, 64]: the grayscale image, intensities / 16."""
    ink = jnp.where(questions > self.green0, questions - self.green0, questions - self.blank)
    return ink.astype(jnp.float32) / MAX_INTENSITY

  def grayscale(self, inputs: Inputs) -> Inputs:
    """The same images with the colour removed (green ink becomes red ink of its intensity)."""
    q = inputs.questions
    return Inputs(inputs.context, jnp.where(q > self.green0, q - MAX_INTENSITY, q))

  def read_digits(self, questions: jax.Array) -> jax.Array:
    """float32[B, 10]: R's digit probabilities for each image's grayscale."""
    return jax.nn.softmax(_reader_logits(self.reader, self.intensities(questions)), axis=-1)

  # -- sampling ------------------------------------------------------------------------------
  def _take(self, key: jax.Array, n: int, inputs: Inputs) -> tuple[Inputs, jax.Array]:
    order = jax.random.permutation(key, inputs.questions.shape[0])[:n]
    return jax.tree.map(lambda a: a[order], inputs), order

  def training_data(self, key: jax.Array, n: int) -> tuple[Inputs, jax.Array]:
    """D is a fixed sample: n of its rows, at random (all of them if n exceeds it)."""
    inputs, order = self._take(key, n, self.d_inputs)
    return inputs, self.d_labels[order]

  def observations(self) -> tuple[Inputs, jax.Array]:
    return self.d_inputs, self.d_labels

  def deployment_questions(self, key: jax.Array, n: int) -> Inputs:
    """n rows of the D* labelling pool, shuffled (the whole pool if n exceeds it)."""
    return self._take(key, n, self.label_pool)[0]

  def evaluation_questions(self, key: jax.Array, n: int) -> Inputs:
    """n rows of the D* evaluation pool, shuffled (the whole pool if n exceeds it)."""
    return self._take(key, n, self.eval_pool)[0]

  def difficulty(self, questions: jax.Array) -> jax.Array:
    return jnp.zeros(questions.shape[0], jnp.int32)

  def augment(self, key: jax.Array, inputs: Inputs, labels: jax.Array) -> tuple[Inputs, jax.Array]:
    del key  # no symmetry is assumed (a colour swap would hard-code the answer into pi)
    return inputs, labels

  def random_answers(self, key: jax.Array, n: int) -> jax.Array:
    return (self.class0 + jax.random.randint(key, (n, 1), 0, 2)).astype(jnp.int32)

  def valid_answers(self, questions: jax.Array, answers: jax.Array) -> jax.Array:
    return answers_in_range(self.spec, answers)

  # -- the human's model (learning the prior) ------------------------------------------------
  def human_log_prior(self, lookup, keys: jax.Array) -> jax.Array:
    """Ink colour does not decide a digit's class: the two colours of a digit give it the same
    class with probability 1 - DELTA; otherwise every rule is equally likely (a constant)."""
    q = lookup(keys).reshape(NUM_DIGITS, NUM_COLOURS, 2)  # one block: keys are all of z's
    same = jnp.sum(q[:, RED] * q[:, GREEN], axis=-1)  # P(both colours give the same class)
    return jnp.sum(same * math.log1p(-DELTA) + (1 - same) * math.log(DELTA))

  def human_log_likelihood(self, inputs: Inputs, labels: jax.Array, lookup) -> jax.Array:
    """P(class 1 | x, z) = sum_d R(d | gray x) z(d, colour x)[class 1]; the observed label is
    that class flipped with the known probability LABEL_FLIP."""
    questions = inputs.questions
    digits = self.read_digits(questions)  # [B, 10]
    keys = 2 * jnp.arange(NUM_DIGITS)[None, :] + self.colour(questions)[:, None]  # [B, 10]
    q = lookup(keys.reshape(-1)).reshape(keys.shape + (2,))  # [B, 10, 2]
    p_one = jnp.sum(digits * q[..., 1], axis=1)
    p_obs_one = (1 - LABEL_FLIP) * p_one + LABEL_FLIP * (1 - p_one)
    observed_one = labels[:, 0] == self.class0 + 1
    return jnp.log(jnp.where(observed_one, p_obs_one, 1 - p_obs_one))

  # -- text for a person ----------------------------------------------------------------------
  # The image in shades of ink (" .:-=+*#%@", light to dark) with its colour; an answer is class
  # 0 or 1 (1: digit < 5); a key is a digit and a colour, "3 red", reading z*'s rule for them.
  def render_question(self, question: np.ndarray) -> str:
    q = np.asarray(question)
    ink = np.asarray(self.intensities(jnp.asarray(q)[None]))[0].reshape(8, 8)
    shades = " .:-=+*#%@"
    rows = ["|" + "".join(shades[int(round(v * (len(shades) - 1)))] * 2 for v in row) + "|"
            for row in ink]
    colour = ("red", "green")[int(self.colour(jnp.asarray(q)[None])[0])]
    return f"the class of this {colour} digit (1: digit < 5, 0: digit >= 5)?\n" + "\n".join(rows)

  def render_answer(self, answer: np.ndarray) -> str:
    return "IDK" if int(answer[0]) == IDK else f"class {int(answer[0]) - self.class0}"

  def parse_answer(self, text: str, question: np.ndarray) -> np.ndarray:
    word = text.strip().removeprefix("class").strip()
    if word not in ("0", "1"):
      raise ValueError(f"{text!r}: type the class, 0 or 1 (1: digit < 5).")
    return np.asarray([self.class0 + int(word)], np.int32)

  def parse_question(self, text: str, parent: np.ndarray) -> np.ndarray:
    raise ValueError("colored digits has no subquestions: look the rule up (a digit and a "
                     "colour, e.g. 3 red), then answer.")

  def parse_key(self, text: str, parent: np.ndarray) -> int:
    words = text.replace(",", " ").split()
    if (len(words) != 2 or not words[0].isdigit() or int(words[0]) >= NUM_DIGITS
        or words[1] not in ("red", "green")):
      raise ValueError(f"{text!r}: type a digit and a colour, e.g. 3 red.")
    return 2 * int(words[0]) + ("red", "green").index(words[1])

  def render_lookup(self, key: int, value: int) -> str:
    rule = f"digit {key // 2}, {('red', 'green')[key % 2]}: "
    return rule + ("not found" if value == IDK else f"class {int(value) - self.class0}")

  # -- H's decomposition ---------------------------------------------------------------------
  def human_answer(self, questions: jax.Array, tools: Tools) -> jax.Array:
    """Read the digit (R's most likely one) and the colour; look the rule up in Mz."""
    digit = jnp.argmax(self.read_digits(questions), axis=1)
    rule = 2 * digit + self.colour(questions)
    answer = tools.lookup(rule.astype(jnp.int32), where=jnp.ones(questions.shape[0], bool))
    return answer[:, None]  # an IDK from Mz (a key it lacks) stays IDK


def _reader_logits(params: dict, x: jax.Array) -> jax.Array:
  return jnp.tanh(x @ params["w1"] + params["b1"]) @ params["w2"] + params["b2"]


@jax.jit
def _train_reader(key: jax.Array, images: jax.Array, digits: jax.Array) -> dict:
  """R: a 64-32-10 tanh network fitted by full-batch Adam (with weight decay) to the reader set."""
  k1, k2 = jax.random.split(key)
  params = {"w1": jax.random.normal(k1, (64, READER_HIDDEN)) / 8, "b1": jnp.zeros(READER_HIDDEN),
            "w2": jax.random.normal(k2, (READER_HIDDEN, NUM_DIGITS)) / math.sqrt(READER_HIDDEN),
            "b2": jnp.zeros(NUM_DIGITS)}

  def loss(p):
    cross_entropy = optax.softmax_cross_entropy_with_integer_labels(
        _reader_logits(p, images), digits).mean()
    return cross_entropy + READER_WEIGHT_DECAY * (jnp.sum(p["w1"]**2) + jnp.sum(p["w2"]**2))

  tx = optax.adam(READER_LEARNING_RATE)

  def step(carry, _):
    p, state = carry
    updates, state = tx.update(jax.grad(loss)(p), state, p)
    return (optax.apply_updates(p, updates), state), None

  return jax.lax.scan(step, (params, tx.init(params)), None, length=READER_STEPS)[0][0]


class World(NamedTuple):
  """One draw of the world: for each part (PARTS: reader, env1, env2, label pool, eval pool) its
  images int[n, 64] (intensities 0..16), digits, observed labels (0/1) and colours int[n]. The
  reader set's observed labels and colours are unused: H sees its images in grayscale, with
  their digits."""
  images: tuple
  digits: tuple
  observed: tuple
  colours: tuple


PARTS = ("reader", "env1", "env2", "label_pool", "eval_pool")


def load_images() -> tuple[np.ndarray, np.ndarray]:
  """scikit-learn's bundled 8x8 digits (read from a file inside the package): (images int[1797,
  64] in 0..16, digits int[1797]). The file is read without importing scikit-learn (1.6 s of
  every referee of this task), through its loader where the file is not where it was."""
  spec = importlib.util.find_spec("sklearn")  # finds the package without importing it
  path = spec and os.path.join(os.path.dirname(spec.origin), "datasets", "data", "digits.csv.gz")
  if path and os.path.exists(path):  # rows of 64 pixels and the digit, as load_digits reads them
    table = np.loadtxt(path, delimiter=",").astype(np.int32)
    images, target = table[:, :-1], table[:, -1]
  else:
    from sklearn.datasets import load_digits  # pylint: disable=g-import-not-at-top
    digits = load_digits()
    images, target = digits.data.astype(np.int32), digits.target
  if len(np.unique(images, axis=0)) != len(images):  # the truth finds a question by its pixels
    raise ValueError("scikit-learn's digits hold two identical images; colored_digits needs "
                     "every image distinct.")
  return images, target.astype(np.int32)


def draw_world(key: jax.Array) -> World:
  """Shuffles the images into the disjoint parts, flips labels, draws each image's colour."""
  images, digits = load_images()
  k_order, k_flip, k_colour = jax.random.split(key, 3)
  order = np.asarray(jax.random.permutation(k_order, len(images)))
  sizes = (READER_SIZE,) + ENV_SIZES + (LABEL_POOL_SIZE,)
  bounds = np.cumsum((0,) + sizes + (len(images) - sum(sizes),))
  flip = np.asarray(jax.random.bernoulli(k_flip, LABEL_FLIP, (len(images),)))
  uniform = np.asarray(jax.random.uniform(k_colour, (len(images),)))
  agreement = np.array([0.0] + [COLOUR_AGREEMENT[0], COLOUR_AGREEMENT[1]]
                       + [COLOUR_AGREEMENT[2]] * 2)  # per part (the reader's is unused)
  parts = []
  for p in range(len(PARTS)):
    rows = order[bounds[p]:bounds[p + 1]]
    observed = (digits[rows] < 5).astype(np.int32) ^ flip[rows]
    colour = np.where(uniform[rows] < agreement[p], observed, 1 - observed).astype(np.int32)
    parts.append((images[rows], digits[rows], observed, colour))
  return World(*(tuple(column) for column in zip(*parts)))


def make_colored_digits(key: jax.Array) -> tuple[ColoredDigits, "ColoredDigitsTruth"]:
  """Draws the world from `key` (the split, the label flips, the colours), and trains H's reader
  R on the reader set. The protocol's sizes and rates are this module's constants."""
  world = draw_world(key)
  reader = _train_reader(jax.random.fold_in(key, 1),
                         jnp.asarray(world.images[0], jnp.float32) / MAX_INTENSITY,
                         jnp.asarray(world.digits[0]))
  task = ColoredDigits(reader, None, None, None, None)
  encode = lambda p: Inputs(jnp.zeros((len(world.images[p]), 0, 1), jnp.int32),
                            jnp.asarray(_pixel_tokens(task, world.images[p], world.colours[p])))
  env = Inputs(*(jnp.concatenate(parts) for parts in zip(encode(1), encode(2))))
  labels = task.class0 + np.concatenate(world.observed[1:3])[:, None]
  task = dataclasses.replace(task, d_inputs=env, d_labels=jnp.asarray(labels, jnp.int32),
                             label_pool=encode(3), eval_pool=encode(4))
  # D's images too: the imitate_on_d arm labels D's own questions, and the evaluator scores them
  truth = ColoredDigitsTruth(
      [task.label_pool.questions, task.eval_pool.questions, env.questions],
      [task.class0 + world.observed[3], task.class0 + world.observed[4], labels[:, 0]],
      world=task.class0 + np.array([int(d < 5) for d in range(NUM_DIGITS)
                                    for _ in range(NUM_COLOURS)], np.int32))
  return task, truth


def _pixel_tokens(task: ColoredDigits, images: np.ndarray, colours: np.ndarray) -> np.ndarray:
  ink = np.where(colours[:, None] == GREEN, task.green0, task.blank) + images
  return np.where(images == 0, task.blank, ink).astype(np.int32)


class ColoredDigitsTruth:
  """The observed (noisy) label of every D and D* image, found by its tokens, and the true rule
  z."""

  def __init__(self, questions: list, labels: list, world: np.ndarray):
    self._labels = {}
    for q, y in zip(questions, labels):
      for row, label in zip(np.asarray(q, np.int32), np.asarray(y)):
        self._labels[row.tobytes()] = int(label)  # images are distinct (load_images checks)
    self.world = jnp.asarray(world, jnp.int32)  # z as tokens, for z accuracy

  def answers(self, inputs: Inputs) -> jax.Array:
    return _stored_labels(self._labels, inputs.questions)


def _stored_labels(labels: dict, questions: jax.Array) -> jax.Array:
  rows = np.asarray(questions, np.int32)
  missing = [i for i, row in enumerate(rows) if row.tobytes() not in labels]
  if missing:
    raise ValueError(f"colored_digits ground truth: {len(missing)} of {len(rows)} questions "
                     f"(first: row {missing[0]}) are not images of D or the D* pools; only those "
                     "have a stored label.")
  return jnp.asarray([[labels[row.tobytes()]] for row in rows], jnp.int32).reshape(-1, 1)


PLUGIN = registry.TaskPlugin(lambda settings, key: make_colored_digits(key))
