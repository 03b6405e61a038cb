"""pi reads Mz, and every arm (amplify.loop.arms) runs end to end on a tiny preset.

pi's answers come from Mz (change an entry of z*, the answer about that entity changes), its size
does not grow with z*, and it answers about entities no question it trained on named. `no_prior`
cannot read z*, `imitate_on_d` never trains on a D* label, and a finished workdir is not run
again (tests/test_resume.py).
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import helpers
from amplify.loop import arms
from amplify.files import checkpoint
from amplify.views import report
from amplify.loop import run as loop
from amplify.loop.setup import begin
from amplify import configs as config_lib
from amplify.learn.distill import Distiller, predict
from amplify.learn.mz import EmptyMz, MzView, Table, TableMz
from amplify.learn.policy import make_policy
from amplify.tasks import make_task
from amplify.truth.referee import read_secret
from amplify.types import IDK, Inputs
from amplify.tasks.lexicon import Lexicon

@pytest.fixture(scope="module")
def sparse_run(finished_run):
  """Many entities, few labels (tests/helpers.py): a share of the evaluation's entities is in no
  training question."""
  return finished_run(helpers.SPARSE)


def _final_policy(config, workdir):
  """pi of the last round, restored from its checkpoint, and the fitted z*."""
  task, _ = make_task(config)
  policy = make_policy(task.spec, config.model, jax.random.key(0), reads_mz=True)
  distiller = Distiller(policy, config.train, config.train.total_steps)
  _, _, seen = checkpoint.restore(str(workdir), config.rounds - 1, distiller)
  z_star = Table(task.spec).freeze(checkpoint.restore_prior(str(workdir), (task.num_entities,)))
  return task, distiller.policy, z_star, seen


def test_pi_reads_its_answer_about_an_entity_from_mz(sparse_run):
  config, workdir, _ = sparse_run
  task, policy, z_star, _ = _final_policy(config, workdir)
  entity = jnp.arange(64)
  question = task.encode(jnp.ones(64, jnp.int32), jnp.pad(entity[:, None], ((0, 0), (0, 3))),
                         jnp.zeros((64, 4), jnp.int32))
  inputs = Inputs(jnp.zeros((64, 0, 1), jnp.int32), question)
  counts = lambda mz: np.asarray(predict(policy, inputs, MzView.of(mz, task.spec))) - task.count0
  before = counts(z_star)
  np.testing.assert_array_equal(np.argmax(before, 1), np.asarray(z_star.entries[:64]) - task.class0)
  moved = (z_star.entries - task.class0 + 1) % task.num_classes + task.class0  # every entry changed
  after = counts(TableMz(moved, z_star.z_values, z_star.z_first_token))
  np.testing.assert_array_equal(np.argmax(after, 1), np.asarray(moved[:64]) - task.class0)
  assert np.all(after.sum(1) == 1)  # still one entity counted once


def _parameters(num_entities: int, policy: str) -> int:
  spec = Lexicon(num_entities, 4, 16, 0.2, None, None, None).spec
  config = config_lib.get_config("lexicon", num_entities=num_entities, policy=policy)
  # the abstract network (shapes only): a count needs no 64 M-entry table drawn
  model = nnx.eval_shape(lambda: make_policy(spec, config.model, jax.random.key(0),
                                             reads_mz=policy == "reads_mz"))
  return sum(p.size for p in jax.tree.leaves(nnx.state(model, nnx.Param)))


def test_pi_that_reads_mz_has_as_many_parameters_at_a_million_entities_as_at_a_thousand():
  assert _parameters(10**3, "reads_mz") == _parameters(10**6, "reads_mz")
  # the memorising policy is the one that grows: a row of its embedding per entity
  assert _parameters(10**6, "memorises") - _parameters(10**3, "memorises") == (10**6 - 10**3) * 64


def test_entities_pi_never_trained_on_are_answered_right(sparse_run):
  config, workdir, summary = sparse_run
  final = [r for r in report.read_metrics(str(workdir)) if r["phase"] == "eval"][-1]
  assert summary["unseen_entity_fraction"] > 0.1  # the evaluation does hold such entities
  assert final["unseen_rows"] >= 20  # and questions made only of them
  assert summary["policy_accuracy_unseen"] >= 0.9
  assert summary["policy"] == "reads_mz" and summary["final_policy_accuracy"] >= 0.9


@pytest.mark.parametrize("arm", sorted(arms.ARMS))
def test_every_arm_runs_end_to_end_on_lexicon(arm, tmp_path, monkeypatch, finished_run):
  """Two short rounds of each arm; ltp's: the session's lexicon rounds (tests/helpers.py)."""
  trained_on, fit = [], Distiller.fit

  def recording_fit(self, data, steps, *args, **kwargs):
    trained_on.append(np.asarray(data.inputs.questions))
    return fit(self, data, steps, *args, **kwargs)

  if arm == "ltp":
    config, workdir, summary = finished_run(helpers.LEXICON_ROUNDS)
  else:
    workdir = tmp_path
    config = config_lib.get_config("lexicon_tiny", arm=arm, rounds=2, total_steps=100,
                                   baselines=False, type2_size=0)
    monkeypatch.setattr(Distiller, "fit", recording_fit)
    summary = loop.run(config, str(workdir))
  records = report.read_metrics(str(workdir))
  evals = [r for r in records if r["phase"] == "eval"]
  assert summary["arm"] == arm and len(evals) == summary["rounds"]
  assert summary["distillation_steps"] <= config.train.total_steps
  assert summary["policy"] == ("memorises" if arm == "raw_d" else "reads_mz")
  label_accuracy = [e["label_accuracy"] for e in evals]
  if arm == "no_prior":  # H reads nothing and its uniform prior decides nothing
    assert [e["idk_fraction"] for e in evals] == [1.0, 1.0]
  else:  # H answers from what it reads, and rightly where z* (or D's majority) is right
    assert label_accuracy[0] > 0.2 and summary["lookups"] > 0
  if arm == "raw_d":  # H spends its look-ups on D's rows: up to 4 a set, not 1 per entity
    assert summary["lookups"] > 1.5 * evals[0]["oracle_calls"] * (1 - evals[0]["idk_fraction"])
  if arm == "joint":  # D's rows join the training set
    distills = [r for r in records if r["phase"] == "distill"]
    assert distills[0]["train_rows"] > (1 - evals[0]["idk_fraction"]) * config.label.size
  if arm == "imitate_on_d":  # pi imitates H on D's questions, and never trains on a D* label
    task, _ = make_task(config, secret=read_secret())  # the run's world: the referee's
    all_of_d = task.training_data(jax.random.key(0), 10**9)[0].questions  # D's own questions
    d_rows = {row.tobytes() for row in np.asarray(all_of_d)}
    assert len(trained_on) == 1  # round 0 only: round 1 labels D* and trains on nothing
    assert all(row.tobytes() in d_rows for row in trained_on[0])  # D's own questions, every row
    distills = [r for r in records if r["phase"] == "distill"]
    assert [d["steps"] > 0 for d in distills] == [True, False]
    assert summary["rounds"] == 2


COLORED_DIGITS_ARMS = ["ltp", "no_prior", "imitate_on_d", "joint"]


def test_colored_digits_has_every_arm_but_raw_d():
  task, _ = make_task(config_lib.get_config("colored_digits_tiny"))
  assert arms.arms_for(task) == COLORED_DIGITS_ARMS


@pytest.mark.parametrize("arm", COLORED_DIGITS_ARMS)
def test_every_arm_that_applies_runs_on_colored_digits(arm, finished_run):
  """ltp: the session's colored_digits run (tests/test_colored_digits.py reads its baselines)."""
  preset, overrides = helpers.COLORED_DIGITS
  if arm != "ltp":
    overrides = dict(overrides, arm=arm, baselines=False)
  summary = finished_run((preset, overrides))[2]
  assert summary["arm"] == arm and summary["policy"] == "question"  # it names no Mz keys


def test_raw_d_is_refused_where_the_task_cannot_index_d():
  config = config_lib.get_config("colored_digits_tiny", arm="raw_d")
  with pytest.raises(ValueError, match="does not apply to task 'colored_digits'"):
    loop.check(config, "/nonexistent")


def test_no_prior_cannot_read_z_star(tmp_path):
  config = config_lib.get_config("lexicon_tiny", arm="no_prior", rounds=1, total_steps=100,
                                 baselines=False, type2_size=0)
  checked = loop.check(config, str(tmp_path))
  run, _ = begin(config, str(tmp_path), checked)
  checked.close()
  assert isinstance(run.view.mz, EmptyMz)
  reachable = helpers.reachable(run.amplifier)
  assert not any(isinstance(o, TableMz) for o in reachable)  # z* was fitted, but H can't reach it
  inputs = run.task.deployment_questions(jax.random.key(0), 512)
  answers = np.asarray(run.amplifier.label(inputs, None, None, jax.random.key(1)).answers)
  assert np.all(answers == IDK)  # a uniform prior decides nothing
