"""H', the learned imitation of H (amplify.oracles.learned), trained and checked against the
scripted H."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import helpers
from amplify import configs as config_lib
from amplify.learn.amplifier import Amplifier, Budget
from amplify.oracles import learned
from amplify.oracles.make import make_oracle
from amplify.oracles.tools import BatchTools
from amplify.tasks.permutation import PermutationTruth
from amplify.types import IDK, Inputs


def test_learned_h_answers_most_questions_as_the_real_h_would():
  config, task, mz, policy, competent = helpers.setup_task("permutation")
  inputs = task.deployment_questions(jax.random.key(5), 2048)
  scripted = helpers.amplifier(config, task, mz).label(inputs, policy, competent, jax.random.key(2))
  learned_config = config_lib.get_config("permutation_tiny", oracle="learned",
                                         **{"oracle.steps": 60})
  learner = helpers.amplifier(learned_config, task, mz)
  labels = learner.label(inputs, policy, competent, jax.random.key(2))
  counts = labels.cost()
  assert counts["real_h_calls"] + counts["learned_calls"] == 2048
  assert counts["real_h_calls"] <= 2048 // 2 and counts["learned_agreement"] >= 0.99
  agree = np.all(np.asarray(labels.answers) == np.asarray(scripted.answers), axis=1)
  assert agree.mean() >= 0.95  # H' never saw these questions' answers
  assert counts["learned_fits"] >= 1 and counts["learned_fit_steps"] >= 60
  assert counts["learned_agreement_fresh"] is None  # no H' carried in to the first batch

  # the next batch: where the H' in hand, checked on the new held-out rows, settles every
  # difficulty, it answers without fitting again, still as the real H would
  more = task.deployment_questions(jax.random.key(6), 2048)
  again = learner.label(more, policy, competent, jax.random.key(4))
  expected = helpers.amplifier(config, task, mz).label(more, policy, competent, jax.random.key(4))
  assert again.cost()["learned_fit_steps"] == 0 and again.cost()["real_h_calls"] <= 2048 // 4
  # the H' carried in, on the new batch's held-out rows where it is as sure as it was trusted
  assert again.cost()["learned_agreement_fresh_rows"] >= 20
  assert again.cost()["learned_agreement_fresh"] >= 0.95
  agree = np.all(np.asarray(again.answers) == np.asarray(expected.answers), axis=1)
  assert agree.mean() >= 0.95

  # a row H' is less sure of than its threshold stops before its first step: unanswered (the
  # real H takes it), no ask or look-up spent on it; the other rows are answered as without one
  n, h_prime = 64, learner._oracle
  sub = Inputs(inputs.context[:n], inputs.questions[:n])

  def imitate(threshold):
    def lookup(keys):
      match = sub.context[:, :, 0] == keys[:, None]
      value = jnp.sum(jnp.where(match, sub.context[:, :, 1], 0), axis=1)
      return jnp.where(jnp.any(match, axis=1), value, IDK).astype(jnp.int32)
    tools = BatchTools(lambda q: PermutationTruth().answers(Inputs(sub.context, q)), lookup, n,
                       max_asks=4, max_lookups=4)
    answers, unsure = h_prime._imitate(sub.questions, tools.handle(), jnp.ones(n, bool),
                                       threshold)
    used = tools.transcript(sub.questions, task.spec.answer_len)
    return (np.asarray(answers), unsure,
            np.asarray(used.asked).any(axis=1) | np.asarray(used.looked_up).any(axis=1))

  doubted = np.arange(n) < n // 2
  answers, unsure, spent = imitate(np.where(doubted, 2., 0.))  # confidence is at most 1
  sure_answers, sure_unsure, _ = imitate(np.zeros(n))
  assert np.array_equal(unsure, doubted) and not sure_unsure.any()
  assert np.all(answers[doubted] == IDK) and not spent[doubted].any() and spent[~doubted].all()
  assert np.array_equal(answers[~doubted], sure_answers[~doubted])

  # H' is a committee: the first member picks each step, and the step's confidence is the least
  # probability any member gives it, so a member that disagrees makes H' unsure
  params = h_prime.params
  first = jax.tree.map(lambda p: jnp.stack([p[0]] * learned.MEMBERS), params)
  layout = h_prime.layout
  fresh = nnx.split(layout.network(h_prime.settings.width, jax.random.key(7)),
                    nnx.Param, ...)[1]  # a member that has learned nothing
  stranger = jax.tree.map(lambda p, q: p.at[1].set(q), first, fresh)
  state = jnp.asarray(layout.state(np.asarray(sub.questions),
                                   np.full((n, layout.steps_max), -1, np.int32),
                                   np.zeros((n, layout.steps_max, layout.result), np.int32),
                                   np.zeros(n, np.int64)))
  act = lambda p: [np.asarray(a) for a in learned._act(h_prime.graphdef, layout.widths, p,
                                                       h_prime.rest, state)]
  kind, payload, confidence = act(first)
  kind_s, payload_s, confidence_s = act(stranger)
  assert np.array_equal(kind, kind_s) and np.array_equal(payload, payload_s)
  assert np.all(confidence_s <= confidence + 1e-6) and confidence.mean() > 0.9
  assert np.all(confidence_s < learned.THRESHOLDS[0])  # below every threshold H' is trusted at

  # an answer of H''s that the task would not accept from a person goes to the real H, with the
  # whole budget H''s steps on it spent: with a task that accepts none, and H^A's budget just what
  # H needs, the real H answers every row as the scripted H did, past no budget
  class Refusing:
    def __getattr__(self, name):
      return getattr(task, name)

    def valid_answers(self, questions, answers):
      return jnp.zeros(questions.shape[0], bool)

  h_prime.task = Refusing()
  budget = Budget(*task.budget_needed)
  labels = Amplifier(h_prime, mz, task, budget).label(inputs, policy, competent, jax.random.key(3))
  exact = Amplifier(make_oracle(config, task), mz, task, budget).label(inputs, policy, competent,
                                                                       jax.random.key(3))
  counts = labels.cost()
  assert counts["learned_calls"] == 0 and counts["real_h_calls"] == 2048
  assert counts["learned_malformed"] > 1024 and counts["budget_overruns"] == 0
  np.testing.assert_array_equal(labels.answers, exact.answers)


@pytest.mark.parametrize("field, value", [("min_fraction", 0), ("agreement", 1.5), ("steps", 0),
                                          ("width", 30), ("width", 0)])
def test_settings_h_prime_cannot_learn_with_are_refused_naming_the_flag(field, value):
  with pytest.raises(ValueError, match=rf"^--oracle\.{field}={value}: "):
    learned.LearnedSettings(**{field: value})


def test_a_row_h_prime_steps_through_without_answering_goes_to_the_real_h(monkeypatch):
  """A row on which H' takes as many steps as H ever may, none of them its answer, is handed to
  the real H (unsure), not labelled IDK by H'."""
  config, task, _, _, _ = helpers.setup_task("permutation")
  h_prime = learned.LearnedOracle(task, learned.LearnedSettings(), make_oracle(config, task))
  n, width = 8, h_prime.layout.payload
  monkeypatch.setattr(learned, "_act", lambda graphdef, widths, params, rest, state: (
      jnp.full(state.shape[0], learned.ASK), jnp.zeros((state.shape[0], width), jnp.int32),
      jnp.ones(state.shape[0])))  # always sure, always another ask
  tools = BatchTools(lambda q: jnp.full((q.shape[0], task.spec.answer_len), IDK, jnp.int32),
                     lambda keys: jnp.full(keys.shape, IDK, jnp.int32), n, max_asks=99,
                     max_lookups=99)
  questions = task.deployment_questions(jax.random.key(5), n).questions
  answers, unsure = h_prime._imitate(questions, tools.handle(), jnp.ones(n, bool), np.zeros(n))
  assert unsure.all() and np.all(np.asarray(answers) == IDK)
