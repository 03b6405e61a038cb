"""A tiny run end to end: later rounds label and answer more than round 0; reruns reproduce
(resumes: tests/test_resume.py)."""
import json
import shutil

import numpy as np
import pytest

import helpers
from amplify import configs as config_lib
from amplify.views import report
from amplify.loop import run as loop
from amplify.learn.distill import Distiller
from amplify.loop.arms import RoundPlan
from amplify.loop.phases import steps_for_round, stop_bar
from amplify.views import transcript_tree
from amplify.types import IDK

EVAL_KEYS = {"label_accuracy", "idk_fraction", "train_agreement", "heldout_agreement", "iid_gap",
             "policy_accuracy", "policy_accuracy_by_difficulty", "oracle_calls", "asks", "lookups",
             "seconds"}
SUMMARY_KEYS = {"final_policy_accuracy", "prosaic_accuracy", "ceiling_accuracy", "gap_recovered",
                "rounds", "wall_seconds", "seed", "z_accuracy"}
PRIOR_KEYS = {"log_prior", "log_likelihood", "z_accuracy", "mz_parameters", "seconds"}


@pytest.fixture(scope="module", params=["lexicon", "permutation"])
def tiny_run(request, finished_run):
  """The tiny preset's run with its baselines (tests/helpers.py), shared by the session."""
  return finished_run({"lexicon": helpers.LEXICON, "permutation": helpers.PERMUTATION}[
      request.param])


def _evals(workdir):
  return helpers.evals(workdir)


def test_workdir_holds_config_metrics_and_summary(tiny_run):
  config, workdir, summary = tiny_run
  assert json.loads((workdir / "config.json").read_text())["seed"] == config.seed
  evals = _evals(workdir)
  assert [e["round"] for e in evals] == list(range(config.rounds))
  distilled = {r["round"]: r["seconds"] for r in report.read_metrics(str(workdir))
               if r["phase"] == "distill"}
  for e in evals:
    assert EVAL_KEYS <= set(e)
    assert e["iid_gap"] == pytest.approx(e["train_agreement"] - e["heldout_agreement"])
    # the round's time by phase: distillation alone (its own line's, but for that line's
    # write), then the split, IID check and type 2 as the checks, adding up to the round's
    phases = e["seconds_by_phase"]
    assert set(phases) == {"label", "distill", "checks", "eval"} and min(phases.values()) >= 0
    assert phases["distill"] >= distilled[e["round"]] - 0.01  # (no upper bound: wall time)
    assert phases["checks"] >= (e.get("type2_seconds") or 0) - 0.01
    assert sum(phases.values()) == pytest.approx(e["seconds"], abs=0.01)
  assert SUMMARY_KEYS <= set(summary)
  assert json.loads((workdir / "summary.json").read_text()) == summary
  baselines = {r["baseline"] for r in report.read_metrics(str(workdir)) if r["phase"] == "baseline"}
  assert baselines == {"prosaic", "ceiling"}
  priors = [r for r in report.read_metrics(str(workdir)) if r["phase"] == "prior"]
  if config.task.name == "lexicon":  # a latent world: z* is fitted before round 0
    assert len(priors) == 1 and PRIOR_KEYS <= set(priors[0])
    assert priors[0]["z_accuracy"] == summary["z_accuracy"] > 0.9
  else:
    assert not priors and summary["z_accuracy"] is None


def test_later_rounds_label_and_answer_more_than_round_zero(tiny_run):
  _, workdir, _ = tiny_run
  evals = _evals(workdir)
  first, last = evals[0], evals[-1]
  assert first["idk_fraction"] > 0.4  # unaided H answers only k = 1, or sets of size <= 2
  assert last["idk_fraction"] < first["idk_fraction"] - 0.3
  assert last["label_accuracy"] > first["label_accuracy"] + 0.3
  assert last["policy_accuracy"] > first["policy_accuracy"] + 0.3
  assert first["asks"] > 0 and first["lookups"] > 0


def test_rounds_keep_within_the_step_budget_and_stop_early_only_when_imitating(tiny_run):
  """Paced rounds: no run uses more than total_steps; a round that stopped short of its budget
  did so because pi imitated H^A on its training rows (the agreement the IID check then reports
  on held-out rows is near it), and the steps it saved went to later rounds' budgets."""
  config, workdir, _ = tiny_run
  records = report.read_metrics(str(workdir))
  distills = [r for r in records if r["phase"] == "distill"]
  evals = {r["round"]: r for r in records if r["phase"] == "eval"}
  assert sum(d["steps"] for d in distills) <= config.train.total_steps
  used = 0
  for d in distills:
    plan = [RoundPlan()] * config.rounds
    assert d["step_budget"] == steps_for_round(config, plan, d["round"], used)
    assert 0 < d["steps"] <= d["step_budget"]
    if d["steps"] < d["step_budget"]:
      assert evals[d["round"]]["train_agreement"] >= stop_bar(config.label.competence) - 0.05
    used += d["steps"]


def test_report_prints_one_row_per_round_and_the_baselines(tiny_run):
  config, workdir, _ = tiny_run
  table = report.format_table(str(workdir))
  assert "prosaic" in table and "ceiling" in table and "held-out agr" in table
  rows = [line for line in table.splitlines() if line.split() and line.split()[0].isdigit()]
  assert len(rows) == config.rounds


def test_rerun_gives_the_same_numbers(tiny_run, finished_run):
  """The same rounds run again (here without baselines, in a run of its own) give the same
  numbers; the resumed runs (tests/test_resume.py) are held to the same."""
  config, workdir, _ = tiny_run
  again = finished_run((config.task.name + "_tiny", {"type2_size": 0, "baselines": False}))[1]
  for again, first in zip(_evals(again), _evals(workdir), strict=True):
    for key in ["label_accuracy", "idk_fraction", "train_agreement", "heldout_agreement",
                "policy_accuracy", "asks", "lookups", "competent_difficulties"]:
      assert again[key] == first[key], key


def test_a_cold_round_whose_fresh_network_failed_keeps_the_previous_policy(tmp_path, monkeypatch):
  """--config.train.warm_start=false: a round whose fresh network does not learn (here: round 1's fit is
  skipped) keeps pi_0, which then answers the evaluation exactly as it did a round earlier; a
  resume after that round matches the uninterrupted run (its round's fresh network rebuilt on the
  schedule it trained on)."""
  # 100 steps a round, as in the test above: pi_0 is competent at k = 1 after them
  config = config_lib.get_config("permutation_tiny", warm_start=False, total_steps=300,
                                 baselines=False, type2_size=0)
  fit, calls = Distiller.fit, []

  def fit_but_not_in_round_1(self, *args, **kwargs):
    calls.append(None)
    return float("nan") if len(calls) == 2 else fit(self, *args, **kwargs)

  monkeypatch.setattr(Distiller, "fit", fit_but_not_in_round_1)
  workdir, copy = tmp_path / "a", tmp_path / "b"
  summary = loop.run(config, str(workdir))
  evals = _evals(workdir)
  assert evals[0]["competent_difficulties"]  # pi_0 had learnt something worth keeping
  assert [e["kept_previous_policy"] for e in evals[:2]] == [False, True]
  # pi_0 never trained on round 1's rows: no train agreement, no IID gap, for that round
  assert evals[1]["train_agreement"] is evals[1]["iid_gap"] is None
  assert evals[1]["policy_accuracy"] == evals[0]["policy_accuracy"]
  assert evals[1]["policy_accuracy_by_difficulty"] == evals[0]["policy_accuracy_by_difficulty"]
  assert "round(s) 1 kept the previous" in report.format_table(str(workdir))
  shutil.copytree(workdir, copy)
  shutil.rmtree(copy / "checkpoints" / "round_2")  # resume from the round that kept pi_0
  (copy / "summary.json").unlink()  # else the finished run is returned as it is
  assert loop.run(config, str(copy))["final_policy_accuracy"] == summary["final_policy_accuracy"]
  assert _evals(copy)[-1]["label_accuracy"] == evals[-1]["label_accuracy"]


def test_a_workdir_with_another_config_is_refused(tiny_run):
  config, workdir, _ = tiny_run
  before = (workdir / "metrics.jsonl").read_text()
  with pytest.raises(ValueError, match="different config"):
    loop.run(config_lib.replace(config, seed=config.seed + 1), str(workdir))
  assert (workdir / "metrics.jsonl").read_text() == before


def test_noisy_oracle_slips_show_in_label_accuracy(tmp_path):
  config = config_lib.get_config("permutation_tiny", oracle="noisy", **{"oracle.noise_rate": 0.5},
                                 rounds=1, baselines=False, type2_size=0)
  loop.run(config, str(tmp_path))
  first = _evals(tmp_path)[0]
  answered = 1 - first["idk_fraction"]
  # half of H's answers are replaced by random ones, right 1 time in 4: 0.625 of answers right
  # (about 660 answered rows, so the standard error is about 0.02)
  assert 0.5 < first["label_accuracy"] / answered < 0.75


def test_a_saved_transcript_renders_as_hs_decomposition(tiny_run):
  """A set of 4 from the last round, as `report --tree` draws it from what the run saved: the
  question, then H's two asks, its halves (the first size // 2 entities, then the rest), as the
  task renders them."""
  config, workdir, _ = tiny_run
  if config.task.name != "lexicon":
    pytest.skip("the halving decomposition is lexicon's")
  task = transcript_tree.load_task(str(workdir))
  saved = np.load(workdir / "transcripts" / f"round_{config.rounds - 1}.npz")
  sizes = np.asarray(task.difficulty(saved["questions"]))
  row = int(np.flatnonzero((sizes == 4) & np.all(saved["answers"] != IDK, axis=1))[0])
  question = saved["questions"][row]
  words = task.render_question(question).split(": ")[1].split()
  lines = transcript_tree.render(str(workdir), f"{config.rounds - 1}:{row}").splitlines()
  assert lines[1].startswith(f"{task.render_question(question)} -> ")
  asks = [line for line in lines[2:] if line.lstrip("│├└─ ").startswith("ask: ")]
  assert [a.lstrip("│├└─ ").split(" -> ")[0] for a in asks[:2]] == [
      "ask: count by class: " + " ".join(words[:2]), "ask: count by class: " + " ".join(words[2:])]


def test_the_held_out_rows_are_never_trained_on():
  """`split`: the first heldout_fraction of a round's rows are held out, and neither its train
  part nor what pi trains on (answered rows, replay, capped IDK rows) holds any of them, so the
  IID check's held-out agreement is measured on rows pi never saw. Row i's label is i."""
  from types import SimpleNamespace  # pylint: disable=g-import-not-at-top
  from amplify.learn.distill import LabelledSet  # pylint: disable=g-import-not-at-top
  from amplify.loop.phases import split  # pylint: disable=g-import-not-at-top
  from amplify.loop.state import Batch  # pylint: disable=g-import-not-at-top
  rows = 40
  ids = np.arange(rows)
  answers = np.where(ids % 3 == 0, IDK, ids)[:, None]  # every third row IDK, held out or not
  batch = Batch({"id": ids}, SimpleNamespace(answers=answers), answers[:, 0] != IDK, 0.0)
  run = SimpleNamespace(plan=[RoundPlan()], config=SimpleNamespace(
      label=SimpleNamespace(heldout_fraction=0.25), train=SimpleNamespace(idk_share=0.2)))
  replay = LabelledSet.of({"id": np.arange(100, 104)}, np.arange(100, 104)[:, None])
  parts = split(run, SimpleNamespace(replay=replay), 0, batch)
  assert parts.n_heldout == 10
  assert parts.heldout.inputs["id"].tolist() == list(range(10))
  assert parts.heldout_answered.tolist() == (answers[:10, 0] != IDK).tolist()
  assert parts.train.inputs["id"].tolist() == list(range(10, 40))
  trained = set(parts.train_set.inputs["id"].tolist())
  assert not trained & set(range(10))
  answered_train = {i for i in range(10, 40) if i % 3}
  replayed = set(range(100, 104))
  assert answered_train | replayed <= trained <= set(range(10, 40)) | replayed
  assert (parts.train_set.labels[:, 0] == parts.train_set.inputs["id"]).sum() == len(
      answered_train) + 4  # each answered row with its own label; IDK rows with IDK
