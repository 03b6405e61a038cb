"""Type 2 (issue 13): H's whole tree is exact and its cost is counted apart; the gate refuses a
policy made worse and deploys a better one; a systematically flawed H opens a type-1 / type-2 gap."""
import shutil
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from amplify import configs as config_lib
from amplify.views import report
from amplify.loop import run as loop
from amplify.learn.distill import Distiller
from amplify.learn.mz import ExactIndex, TableMz, fact_key
from amplify.oracles.scripted import ScriptedOracle
from amplify.tasks import make_task
from amplify.types import IDK, PAD
from amplify.learn.type2 import Type2, net_score, tree_answers, tree_depth


def _lexicon_nodes(size: int) -> int:
  """H calls in the tree of a lexicon set of `size`: sets of <= 2 are looked up, larger ones
  halved (amplify.tasks.lexicon.human_answer)."""
  return 1 if size <= 2 else 1 + _lexicon_nodes(size // 2) + _lexicon_nodes(size - size // 2)


def _permutation_nodes(k: int) -> int:
  """sigma^k: one look-up for k = 1, else sigma^(k//2) asked twice (and a look-up if k is odd)."""
  return 1 if k == 1 else 1 + 2 * _permutation_nodes(k // 2)


@pytest.mark.parametrize("preset", ["lexicon", "permutation"])
def test_the_tree_on_the_true_world_is_exact_and_counts_its_nodes(preset):
  """With Mz = the true world (here, in a test, which may read ground truth), H's whole tree
  answers every D* question right, and spends one H call per node of its decomposition."""
  config = config_lib.get_config(preset)
  task, truth = make_task(config)
  inputs = task.deployment_questions(jax.random.key(1), 256)
  if preset == "lexicon":
    mz = TableMz(jnp.asarray(truth.world, jnp.int32), task.spec.z_values, task.spec.z_first_token)
    nodes = [_lexicon_nodes(int(s)) for s in task.difficulty(inputs.questions)]
  else:
    mz = ExactIndex()
    nodes = [_permutation_nodes(int(task.decode(inputs.questions)[1][i])) for i in range(256)]
  answers, calls = Type2(ScriptedOracle(task), task, mz).answers(inputs, jax.random.key(0))
  assert np.array_equal(answers, np.asarray(truth.answers(inputs)))
  assert calls == sum(nodes)
  assert max(nodes) > 2 ** task.ask_depth - 1  # the deepest questions need every level


def test_a_tree_cut_one_level_short_cannot_answer_the_largest_questions():
  """The depth the task declares is needed: one level less, and the largest sets get IDK."""
  config = config_lib.get_config("lexicon")
  task, truth = make_task(config)
  inputs = task.deployment_questions(jax.random.key(1), 256)
  mz = TableMz(jnp.asarray(truth.world, jnp.int32), task.spec.z_values, task.spec.z_first_token)
  answers, _ = tree_answers(ScriptedOracle(task), task.ask_depth - 1, task.spec.answer_len, mz,
                            inputs, jax.random.key(0))
  answers = np.asarray(answers)
  large = np.asarray(task.difficulty(inputs.questions)) > 2 ** task.ask_depth
  assert large.any() and np.all(answers[large] == IDK)


def test_net_score_counts_right_wrong_and_idk():
  reference = np.array([[2], [3], [4], [IDK]])
  # right, wrong, IDK, and an answer the reference cannot judge
  assert net_score(np.array([[2], [5], [IDK], [7]]), reference) == pytest.approx((1 - 1) / 4)
  assert net_score(np.full((4, 1), IDK), reference) == 0.0
  assert net_score(np.array([[2], [3], [IDK], [7]]), reference) == pytest.approx(2 / 4)
  assert net_score(np.full((4, 1), 6), reference) == pytest.approx(-3 / 4)
  assert net_score(np.array([[2, 6]]), np.array([[2, 5]])) == -1.0  # every token must agree


def _evals(workdir):
  return [r for r in report.read_metrics(str(workdir)) if r["phase"] == "eval"]


def test_the_gate_refuses_a_policy_made_worse_and_deploys_a_better_one(tmp_path_factory,
                                                                      monkeypatch):
  """Round 1's pi is trained, then its weights perturbed: its type-2 score falls below pi_0's and
  the gate keeps pi_0 (its weights, competence, and accuracy). Round 2 trains on from pi_0 and
  is deployed. The eval lines say so, and type 2's calls are not type 1's."""
  config = config_lib.get_config("lexicon_tiny", baselines=False)
  fit, calls = Distiller.fit, []

  def fit_then_spoil_round_1(self, *args, **kwargs):
    calls.append(None)
    loss = fit(self, *args, **kwargs)
    if len(calls) == 2:
      params = self.state[0]
      noisy = jax.tree.map(lambda p: p + 3.0 * jax.random.normal(jax.random.key(7), p.shape,
                                                                  p.dtype), params)
      self.load_state((noisy, self.state[1]))
    return loss

  monkeypatch.setattr(Distiller, "fit", fit_then_spoil_round_1)
  tmp_path = tmp_path_factory.mktemp("gate") / "run"
  summary = loop.run(config, str(tmp_path))
  evals = _evals(tmp_path)
  assert [e["promoted"] for e in evals] == [True, False, True]
  spoilt = evals[1]
  assert spoilt["type2_score"] < spoilt["type2_score_deployed"] - config.type2.tolerance
  assert "the deployed policy stays" in spoilt["gate"]
  # pi_0 kept: the same answers on the evaluation, and H may ask it what it could before
  assert spoilt["policy_accuracy_by_difficulty"] == evals[0]["policy_accuracy_by_difficulty"]
  assert spoilt["competent_difficulties"] == evals[0]["competent_difficulties"]
  assert evals[2]["type2_score"] > evals[2]["type2_score_deployed"]
  assert summary["refused_rounds"] == [1] and summary["promotions"] == 2
  # type 2's H calls are counted apart: the label lines count the labelled questions only
  labels = [r for r in report.read_metrics(str(tmp_path)) if r["phase"] == "label"]
  assert all(r["oracle_calls"] == config.label.size for r in labels)
  assert summary["oracle_calls"] == config.label.size * config.rounds
  assert summary["type2_calls"] == sum(e["type2_calls"] for e in evals)
  assert summary["type2_share_of_h_calls"] == summary["type2_calls"] / summary["oracle_calls"]
  # a resume after the refused round (its checkpoint holds pi_0 again) gives the same run
  shutil.copytree(tmp_path, tmp_path.parent / "resumed")
  shutil.rmtree(tmp_path.parent / "resumed" / "checkpoints" / "round_2")
  resumed = loop.run(config, str(tmp_path.parent / "resumed"))
  assert {k: v for k, v in resumed.items() if k not in ("wall_seconds", "peak_memory_mb")} == \
      {k: v for k, v in summary.items() if k not in ("wall_seconds", "peak_memory_mb")}
  for e in evals:
    assert e["type2_questions"] == config.type2.size
    assert e["type2_calls"] == pytest.approx(e["type2_calls_per_question"] * config.type2.size)
    assert e["type2_calls"] >= config.type2.size  # at least the root of every tree


def test_a_flawed_h_opens_a_gap_that_type_2_catches(tmp_path):
  """The sloppy H answers sigma^k(x) for k >= 2 with its first subanswer, sigma^(k//2)(x): pi
  imitates it (type 1 high), the scripted H's tree disagrees (type 2 low), so the gap is
  positive and the gate refuses that policy."""
  config = config_lib.get_config("permutation_tiny", baselines=False, oracle="sloppy",
                                 type2_oracle="scripted")
  summary = loop.run(config, str(tmp_path))
  evals = _evals(tmp_path)
  assert max(e["type1_type2_gap"] for e in evals) > 0.5
  assert summary["largest_type1_type2_gap"]["gap"] > 0.5
  assert summary["refused_rounds"]
  assert all(e["type2_oracle"] == "scripted" for e in evals)
  last = evals[-1]
  assert summary["final_type2_score"] == (last["type2_score"] if last["promoted"]
                                          else last["type2_score_deployed"])


def test_the_unrolled_tree_holds_at_most_64_copies_of_h():
  """Type 2's program grows like asks**depth: a deep task's tree is cut where it would pass 64
  copies of H (its deeper questions go unjudged), a shallow one's is whole."""
  task = lambda asks, depth: types.SimpleNamespace(budget_needed=(asks, 2), ask_depth=depth)
  assert [tree_depth(task(2, d)) for d in (0, 3, 6, 11)] == [0, 3, 6, 6]
  assert tree_depth(task(4, 4)) == 3 and tree_depth(task(0, 0)) == 0
  assert tree_depth(task(2, 5)) == 5  # permutation's deepest preset (k < 64) is whole


def test_exact_index_reads_a_fact_by_its_first_tokens():
  """Mz(fact_key(t_0..t_{m-1})) is the next token of the first fact starting so; IDK where no
  fact does, or where that token is PAD."""
  context = jnp.asarray([[[5, 6, 7], [8, 9, PAD], [5, 3, 4], [PAD, PAD, PAD]]] * 6, jnp.int32)
  keys = jnp.asarray([5, fact_key(5, 6), fact_key(5, 3), fact_key(8, 9), 6, fact_key(6, 7)])
  assert ExactIndex().lookup(keys, context).tolist() == [6, 7, 4, IDK, IDK, IDK]
