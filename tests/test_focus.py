"""The focused draw (amplify.loop.phases.focus): each round's training rows drawn again, those at
a difficulty where pi already imitates H^A less often, the less it still disagrees there."""
import jax
import numpy as np
import pytest

import helpers
from amplify.learn.distill import LabelledSet
from amplify.loop.phases import FOCUS_KEPT, focus
from amplify.types import Inputs
from amplify.views import report

MASTERED = 0.975


def _rows(difficulty):
  """Row i: question (i, its difficulty), label 7 i, loss weight i."""
  n = len(difficulty)
  questions = np.stack([np.arange(n), difficulty], axis=1).astype(np.int32)
  return LabelledSet(Inputs(np.zeros((n, 1, 2), np.int32), questions),
                     7 * np.arange(n)[:, None], np.arange(n, dtype=np.float32))


def _focus(difficulty, agreement, seed=0, mastered=MASTERED):
  """focus() with pi agreeing on a share agreement[d] of difficulty d's rows."""
  difficulty = np.asarray(difficulty)
  agrees = np.zeros(len(difficulty), bool)
  for d, share in enumerate(agreement):
    here = np.flatnonzero(difficulty == d)
    agrees[here[:int(round(share * len(here)))]] = True
  return focus(_rows(difficulty), difficulty, lambda index: agrees[index], mastered,
               jax.random.key(seed), probe_rows=len(difficulty))[:2]


def test_steps_go_to_what_pi_has_not_learnt_and_what_it_has_is_kept():
  difficulty = np.repeat([0, 1, 2, 3], 4000)
  drawn, by_difficulty = _focus(difficulty, [1.0, 0.99, 0.9, 0.2])
  assert by_difficulty == pytest.approx({0: 1.0, 1: 0.99, 2: 0.9, 3: 0.2})
  index = drawn.inputs.questions[:, 0]
  assert len(index) == len(difficulty)
  share = np.bincount(difficulty[index], minlength=4) / len(index)
  # weights 0.1 (none left to learn), 0.4 (0.01 of the 0.025 the bar leaves), 1 and 1 (under it)
  expected = np.array([FOCUS_KEPT, 0.4, 1, 1]) / (2.4 + FOCUS_KEPT)
  np.testing.assert_allclose(share, expected, atol=0.02)
  # each row keeps its own label and loss weight
  np.testing.assert_array_equal(drawn.labels[:, 0], 7 * index)
  np.testing.assert_array_equal(drawn.weights, index)


def test_where_every_difficulty_weighs_alike_the_rows_stay_as_they_were():
  for difficulty, agreement in ((np.zeros(1000, int), [0.7]), (np.repeat([0, 1], 500), [1, 1]),
                                (np.repeat([0, 1], 500), [0.5, 0.9]),
                                (np.repeat([0, 1], 500), [0.99, 0.99]),  # both 0.4
                                (np.repeat([0, 1], 1000), [0.9, 0.975])):  # both 1: at the bar
    drawn, _ = _focus(difficulty, agreement)
    np.testing.assert_array_equal(drawn.inputs.questions, _rows(difficulty).inputs.questions)


def test_a_bar_of_1_keeps_only_what_pi_has_entirely():
  difficulty = np.repeat([0, 1], 4000)
  drawn, _ = _focus(difficulty, [1.0, 0.99], mastered=1.0)
  share = np.bincount(difficulty[drawn.inputs.questions[:, 0]], minlength=2) / len(difficulty)
  np.testing.assert_allclose(share, [FOCUS_KEPT / (1 + FOCUS_KEPT), 1 / (1 + FOCUS_KEPT)],
                             atol=0.02)


def test_the_draw_comes_from_the_key():
  difficulty = np.repeat([0, 1], 4000)
  first, _ = _focus(difficulty, [1.0, 0.5])
  again, _ = _focus(difficulty, [1.0, 0.5])
  other, _ = _focus(difficulty, [1.0, 0.5], seed=1)
  np.testing.assert_array_equal(first.inputs.questions, again.inputs.questions)
  assert not np.array_equal(first.inputs.questions, other.inputs.questions)


def test_a_run_with_it_records_pis_agreement_each_round_and_learns(finished_run):
  """lexicon_tiny draws focused (the tiny variants built on `configs.base.tiny` do not: their
  network forgot what the draw kept a tenth of), and still learns its sets."""
  config, workdir, _ = finished_run(helpers.LEXICON_ROUNDS)
  assert config.train.focus
  distills = [r for r in report.read_metrics(str(workdir)) if r["phase"] == "distill"]
  assert distills[0]["focus_agreement"] is None  # round 0: no pi to measure
  assert all(set(map(int, d["focus_agreement"])) >= {1, 2} for d in distills[1:])
  evals = helpers.evals(workdir)
  assert evals[-1]["policy_accuracy"] > evals[0]["policy_accuracy"] + 0.3


def test_a_difficulty_probed_on_a_few_rows_or_none_counts_as_still_learning():
  """Difficulty 2 has 19 rows, all agreed on (fewer than MIN_ROWS_FOR_COMPETENCE: it weighs 1), and
  a probe of 64 of 4,010 rows misses difficulty 3 (4 rows) often: its agreement then reads 0."""
  difficulty = np.concatenate([np.repeat([0, 1], 2000), [2] * 19])
  drawn, by_difficulty = _focus(difficulty, [1.0, 0.3, 1.0])
  assert by_difficulty[2] == 1.0
  counts = np.bincount(difficulty[drawn.inputs.questions[:, 0]], minlength=3)
  # weights 0.1 (2,000 rows), 1 (2,000 rows), 1 (19 rows): about 34 draws of difficulty 2, where
  # at 0.1 it would get about 3.4
  assert counts[2] >= 15
  np.testing.assert_allclose(counts[0] / len(difficulty), 200 / 2219, atol=0.02)
  difficulty = np.concatenate([np.repeat([0, 1], 2003), [3] * 4])
  rows, agrees = _rows(difficulty), np.ones(len(difficulty), bool)
  missed = 0
  for seed in range(8):
    _, by_difficulty, _ = focus(rows, difficulty, lambda index: agrees[index], MASTERED,
                                jax.random.key(seed), probe_rows=64)
    assert set(by_difficulty) == {0, 1, 3}
    missed += by_difficulty[3] == 0.0
  assert missed  # a probe that missed difficulty 3's rows reads it as unlearnt


def test_pi_trains_on_the_rows_drawn_and_its_train_agreement_reads_them(monkeypatch, tmp_path):
  """distil hands Distiller.fit the focused draw's rows, not the rows before it (round 1 of a
  tiny run; round 0 has no pi to measure and draws nothing); the IID check's train agreement is
  on the round's answered rows the draw took, not on those it left out (held-out rows for pi)."""
  from amplify import configs as config_lib
  from amplify.learn import distill
  from amplify.loop import phases
  from amplify.loop import run as loop
  fitted, drawn, means, checked = [], [], [], []
  real_fit, real_focus, real_mean = distill.Distiller.fit, phases.focus, phases._mean

  def fit(self, rows, *args, **kwargs):
    fitted.append(np.asarray(rows.inputs.questions))
    return real_fit(self, rows, *args, **kwargs)

  def spy(rows, *args, **kwargs):
    out = real_focus(rows, *args, **kwargs)
    drawn.append((np.asarray(rows.inputs.questions), np.asarray(out[0].inputs.questions)))
    return out

  def check(run, state, r, parts, trained):
    means.clear()
    out = real_check(run, state, r, parts, trained)
    checked.append((parts, [m for m in means if len(m) == len(parts.train_answered)], out[0]))
    return out
  real_check = loop.iid_check
  monkeypatch.setattr(distill.Distiller, "fit", fit)
  monkeypatch.setattr(phases, "focus", spy)
  monkeypatch.setattr(phases, "_mean", lambda values, where: means.append(np.asarray(where))
                      or real_mean(values, where))
  monkeypatch.setattr(loop, "iid_check", check)
  config = config_lib.get_config("permutation_tiny", **{"train.focus": True, "rounds": 2,
                                                         "baselines": False})
  loop.run(config, str(tmp_path / "w"))
  assert len(fitted) == 2 and len(drawn) == 1
  before, after = drawn[0]
  assert not np.array_equal(before, after)  # the draw did change the rows
  np.testing.assert_array_equal(fitted[1], after)
  # round 0 (no draw): every answered training row; round 1: only those among the rows drawn
  (parts0, [mask0], _), (parts1, [mask1], record1) = checked
  np.testing.assert_array_equal(mask0, parts0.train_answered)
  taken = {q.tobytes() for q in after}
  in_draw = np.asarray([q.tobytes() in taken for q in np.asarray(parts1.train.inputs.questions)])
  assert not np.any(mask1 & ~(parts1.train_answered & in_draw))
  assert 0 < mask1.sum() < parts1.train_answered.sum()  # the draw left answered rows out
  assert record1["train_agreement"] is not None
