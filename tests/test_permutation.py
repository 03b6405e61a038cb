"""Permutation powering: encoding, and H's decomposition is exact given a perfect policy."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from hypothesis import given, settings, strategies as st

from amplify import configs as config_lib
from amplify.learn.mz import ExactIndex
from amplify.oracles.tools import BatchTools
from amplify.learn.policy import Policy, make_policy, value_slot_fits
from amplify.tasks import make_task
from amplify.types import FIRST_TOKEN, IDK, PAD, Inputs
from amplify.tasks.permutation import FORMS, PermutationPowering, PermutationTruth


def _sigma_power(context, x, k):
  """Reference: follow the facts k times in plain Python."""
  table = {int(a): int(b) for a, b in context}
  for _ in range(k):
    x = table[x]
  return x


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(2, 12), bits=st.integers(1, 5))
def test_truth_and_encoding_match_reference(seed, n, bits):
  task = PermutationPowering(num_elements=n, k_bits=bits, prosaic_max_k=2)
  # 64 rows, as the tests below draw: a shape one of them compiled is not compiled again
  inputs = task.deployment_questions(jax.random.key(seed), 64)
  x, k = task.decode(inputs.questions)
  assert np.array_equal(task.encode(x, k), inputs.questions)
  assert int(k.min()) >= 1 and int(k.max()) < 2**bits
  truth = PermutationTruth().answers(inputs)
  for row in range(64):
    assert int(truth[row, 0]) == _sigma_power(np.asarray(inputs.context[row]), int(x[row]),
                                              int(k[row]))


def _exact_with_a_perfect_policy(task, inputs):
  """H's answers with a perfect pi equal the truth, within the task's budget and at most 3
  steps a question; returns the transcript and pi's calls (the subquestions of each ask slot)."""
  asked = []

  def perfect_policy(q):
    asked.append(np.asarray(q))
    return PermutationTruth().answers(Inputs(inputs.context, q))

  asks, lookups = task.budget_needed  # the paper's decomposition needs no more
  tools = BatchTools(perfect_policy, lambda keys: ExactIndex().lookup(keys, inputs.context),
                     inputs.questions.shape[0], max_asks=asks, max_lookups=lookups)
  answers = task.human_answer(inputs.questions, tools)
  assert np.array_equal(answers, PermutationTruth().answers(inputs))
  t = tools.transcript(inputs.questions, 1)
  assert np.all(t.asked.sum(1) + t.looked_up.sum(1) <= 3)  # at most 3 steps per question
  return t, asked


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(2, 12), bits=st.integers(1, 5))
def test_scripted_decomposition_is_exact_with_a_perfect_policy(seed, n, bits):
  task = PermutationPowering(num_elements=n, k_bits=bits, prosaic_max_k=2)
  _exact_with_a_perfect_policy(task, task.deployment_questions(jax.random.key(seed), 64))


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.sampled_from([2, 8]), bits=st.sampled_from([2, 4]))
def test_the_2018_form_is_exact_with_a_perfect_policy_and_never_asks_sigma_1(seed, n, bits):
  """Random instances of the 2018 form (a few sizes, each compiled once): the truth follows the
  facts, H with a perfect pi equals it, and pi is asked only about powers of 2 or more (k = 2, 3
  by look-ups alone)."""
  task = PermutationPowering(num_elements=n, k_bits=bits, prosaic_max_k=2, form="2018")
  inputs = task.deployment_questions(jax.random.key(seed), 64)
  x, k = (np.asarray(a) for a in task.decode(inputs.questions))
  assert k.min() >= 2 and k.max() < 2**bits
  truth = np.asarray(PermutationTruth().answers(inputs))
  assert all(truth[row, 0] == _sigma_power(np.asarray(inputs.context[row]), x[row], k[row])
             for row in range(64))
  t, asked = _exact_with_a_perfect_policy(task, inputs)
  where = np.asarray(t.asked)
  powers = [np.asarray(task.decode(q)[1]) for q in asked]
  assert all(np.all(p[where[:, i]] >= 2) for i, p in enumerate(powers))
  assert np.all(where[k < 4].sum(1) == 0)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), size=st.integers(2, 8), form=st.sampled_from(FORMS))
def test_a_smaller_instance_is_a_permutation_of_the_first_elements_padded(seed, size, form):
  """The curriculum's sizes (amplify.types.Sized): an instance of `size` of the 8 elements is a
  permutation of the first `size`, the other facts PAD, questions about its elements only; the
  truth follows its facts and H with a perfect pi equals it."""
  task = PermutationPowering(num_elements=8, k_bits=4, prosaic_max_k=2, form=form)
  assert task.full_size == 8
  inputs = task.deployment_questions(jax.random.key(seed), 64, size=size)
  context, (x, k) = np.asarray(inputs.context), (np.asarray(a) for a in task.decode(
      inputs.questions))
  assert context.shape == (64, 8, 2)  # the full size's shapes
  real = context[:, :, 0] != PAD
  assert np.all(real.sum(1) == size) and np.all(context[~real] == PAD)
  first = FIRST_TOKEN + np.arange(size)
  for row in range(64):
    facts = context[row][real[row]]
    assert np.array_equal(np.sort(facts[:, 0]), first)
    assert np.array_equal(np.sort(facts[:, 1]), first)
  assert np.all((x >= FIRST_TOKEN) & (x < FIRST_TOKEN + size))
  truth = np.asarray(PermutationTruth().answers(inputs))
  assert all(truth[row, 0] == _sigma_power(context[row][real[row]], x[row], k[row])
             for row in range(64))
  _exact_with_a_perfect_policy(task, inputs)
  with pytest.raises(ValueError, match="sizes lie in 2..8"):
    task.deployment_questions(jax.random.key(seed), 4, size=9)


def test_the_2018_form_draws_bit_lengths_evenly_and_asks_about_every_element():
  """k's bit length is uniform in 2..k_bits (so k = 1 never occurs) and is the difficulty, and
  the questions come in runs of N about one permutation, each element once; the amplify form
  draws k uniformly."""
  task = PermutationPowering(num_elements=8, k_bits=6, form="2018")
  inputs = task.deployment_questions(jax.random.key(0), 8 * 1000)
  x, k = (np.asarray(a) for a in task.decode(inputs.questions))
  length = np.floor(np.log2(k)).astype(int) + 1
  assert np.array_equal(task.difficulty(inputs.questions), length)  # the difficulty: bit length
  assert task.spec.max_difficulty == 6
  lengths = np.bincount(length, minlength=7)[2:]
  assert np.all(np.abs(lengths / len(k) - 1 / 5) < 0.02), lengths  # 1,600 each (s.d. 36)
  context = np.asarray(inputs.context).reshape(1000, 8, 8, 2)
  assert np.all(context == context[:, :1])  # one permutation per run of 8 questions
  assert np.all(np.sort(x.reshape(1000, 8), axis=1) == FIRST_TOKEN + np.arange(8))
  today = PermutationPowering(num_elements=8, k_bits=6)
  k_amplify = np.asarray(today.difficulty(today.deployment_questions(jax.random.key(0),
                                                                      8000).questions))
  assert abs(np.mean(k_amplify < 8) - 7 / 63) < 0.02  # uniform on 1..63: 11% below 8, not 40%
  with pytest.raises(ValueError, match="k_bits >= 2"):
    PermutationPowering(num_elements=8, k_bits=1, form="2018")
  with pytest.raises(ValueError, match="the forms are"):
    PermutationPowering(form="1999")


def test_unaided_human_answers_only_k_equal_one():
  task = PermutationPowering(num_elements=8, k_bits=4)
  inputs = task.deployment_questions(jax.random.key(0), 256)
  idk_policy = lambda q: jnp.full((q.shape[0], 1), IDK, jnp.int32)
  tools = BatchTools(idk_policy, lambda keys: ExactIndex().lookup(keys, inputs.context), 256,
                     max_asks=4, max_lookups=4)
  answers = task.human_answer(inputs.questions, tools)[:, 0]
  k = task.difficulty(inputs.questions)
  assert np.all((answers != IDK) == (k == 1))
  truth = PermutationTruth().answers(inputs)[:, 0]
  assert np.array_equal(answers[k == 1], truth[k == 1])


def test_a_subanswer_that_names_no_element_gives_idk():
  """A subanswer that is no element's token (here a bit token) is never passed on: H answers
  IDK, or the truth where the subanswers it used were right."""
  task = PermutationPowering(num_elements=8, k_bits=4)
  inputs = task.deployment_questions(jax.random.key(0), 256)
  truth = lambda q: PermutationTruth().answers(Inputs(inputs.context, q))
  malformed = lambda q: jnp.full((q.shape[0], 1), task.bit0, jnp.int32)
  flaky = lambda q: jnp.where(q[:, :1] % 2 == 0, truth(q), task.bit0)  # right on even tokens
  k = np.asarray(task.difficulty(inputs.questions))
  expected = np.asarray(PermutationTruth().answers(inputs))
  for policy in (malformed, flaky):
    tools = BatchTools(policy, lambda keys: ExactIndex().lookup(keys, inputs.context), 256,
                       max_asks=4, max_lookups=4)
    answers = np.asarray(task.human_answer(inputs.questions, tools))
    assert np.all(task.valid_answers(inputs.questions, answers))
    assert np.all((answers == expected) | (answers == IDK))
    answered_hard = (answers[:, 0] != IDK) & (k > 1)
    assert answered_hard.any() == (policy is flaky)  # the flaky pi's right subanswers are used


def test_budget_turns_spent_rows_into_idk():
  task = PermutationPowering(num_elements=8, k_bits=4)
  inputs = task.deployment_questions(jax.random.key(1), 256)
  perfect_policy = lambda q: PermutationTruth().answers(Inputs(inputs.context, q))
  tools = BatchTools(perfect_policy, lambda keys: ExactIndex().lookup(keys, inputs.context), 256,
                     max_asks=1, max_lookups=4)
  answers = task.human_answer(inputs.questions, tools)[:, 0]
  k = task.difficulty(inputs.questions)
  assert np.all((answers == IDK) == (k >= 2))  # the second ask is over budget
  assert int(tools.transcript(inputs.questions, 1).asked.sum(1).max()) == 1


def test_bad_sizes_are_refused():
  import pytest
  with pytest.raises(ValueError, match="num_elements"):
    PermutationPowering(num_elements=1)
  with pytest.raises(ValueError, match="prosaic_max_k"):
    PermutationPowering(num_elements=8, k_bits=2, prosaic_max_k=9)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(2, 12), bits=st.integers(1, 5))
def test_augmentation_is_a_symmetry(seed, n, bits):
  """Renaming the elements keeps every label true, and does rename them."""
  task = PermutationPowering(num_elements=n, k_bits=bits, prosaic_max_k=2)
  inputs = task.deployment_questions(jax.random.key(seed), 64)
  labels = PermutationTruth().answers(inputs)
  renamed, renamed_labels = task.augment(jax.random.key(seed + 1), inputs, labels)
  assert np.array_equal(PermutationTruth().answers(renamed), renamed_labels)
  assert np.array_equal(task.decode(renamed.questions)[1], task.decode(inputs.questions)[1])
  if n > 3:
    assert not np.array_equal(renamed.context, inputs.context)


def test_policy_reads_every_position_of_the_question():
  """The policy is fed k one bit per iteration: flipping any one bit changes its logits (a bit
  that no iteration reads would fail this)."""
  config = config_lib.get_config("permutation_tiny", k_bits=3, depth=3)
  task = PermutationPowering(num_elements=4, k_bits=3, prosaic_max_k=2)
  policy = make_policy(task.spec, config.model, jax.random.key(0))
  inputs = task.deployment_questions(jax.random.key(1), 32)
  base = policy(inputs.context, inputs.questions)
  for position in range(1, task.spec.question_len):
    flipped = inputs.questions.at[:, position].set(2 * task.bit0 + 1 - inputs.questions[:, position])
    assert float(jnp.abs(policy(inputs.context, flipped) - base).max()) > 1e-4, position


def test_pointer_init_points_the_answer_token_at_its_fact():
  """With --config.model.pointer_init the untrained policy's first attention, scores summed over heads and
  compared among the facts, already ranks the fact whose key is the answer token's x first (a
  pointer); without it that fact is ranked first about as often as chance (1 in N)."""
  task = PermutationPowering(num_elements=64, k_bits=6, prosaic_max_k=4)
  inputs = task.deployment_questions(jax.random.key(1), 256)
  target = jnp.argmax(inputs.context[:, :, 0] == inputs.questions[:, :1], axis=1)

  def hit_rate(pointer_init):
    config = config_lib.get_config("permutation_paper", pointer_init=pointer_init)
    policy = make_policy(task.spec, config.model, jax.random.key(0))
    attention = policy.block.attention
    h = policy.block.norm1(policy.tokens(inputs.context, inputs.questions))
    q = attention.query(h[:, -1])  # [B, heads, head_dim]: the answer token
    k = attention.key(h[:, :task.spec.context_size])  # [B, facts, heads, head_dim]
    scores = jnp.einsum("bhd,bfhd->bf", q, k)
    return float(jnp.mean(jnp.argmax(scores, axis=1) == target))

  assert hit_rate(True) > 0.9
  assert hit_rate(False) < 0.2


def test_answer_in_value_slot_is_read_back_through_the_value_slot():
  """The answer in the value slot (permutation's policy): the answer token holds W_1 E[x] and the
  output reads it through W_1, so the untrained readout of the input tokens already names x;
  read through the table E alone, as in the key slot, W_1 E[x] names x no more often than
  chance."""
  task = PermutationPowering(num_elements=8, k_bits=4)
  inputs = task.deployment_questions(jax.random.key(1), 256)
  policy = make_policy(task.spec, config_lib.get_config("permutation").model, jax.random.key(0))
  assert policy.answer_in_value_slot
  answer = policy.tokens(inputs.context, inputs.questions)[:, -1:]
  x = inputs.questions[:, 0]
  assert float(jnp.mean(jnp.argmax(policy.readout(answer)[:, 0], -1) == x)) > 0.9
  through_e = policy.embed.attend(policy.norm(answer))[:, 0]
  assert float(jnp.mean(jnp.argmax(through_e, -1) == x)) < 0.3


def test_the_answer_takes_the_value_slot_only_where_it_fits():
  """Only with (key, value) facts, a serial question and no pointer_init (whose tied query and
  key point a key slot at the keys): permutation's preset, not its paper preset or another task;
  a policy asked for it elsewhere is refused."""
  task = PermutationPowering(num_elements=8, k_bits=4)
  paper = config_lib.get_config("permutation_paper").model
  assert not make_policy(task.spec, paper, jax.random.key(0)).answer_in_value_slot
  lexicon, _ = make_task(config_lib.get_config("lexicon_tiny"))
  assert not value_slot_fits(lexicon.spec, False) and value_slot_fits(task.spec, False)
  with pytest.raises(ValueError, match="the answer token takes the value slot"):
    Policy(task.spec, width=32, depth=4, heads=2, pointer_init=True, answer_in_value_slot=True,
           rngs=nnx.Rngs(0))
