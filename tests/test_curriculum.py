"""The size curriculum (amplify.loop.curriculum): D* questions drawn small, one size larger after
each round whose pi agrees with H^A on the held-out rows, up to the task's full size; evaluation
at the full size; resumed from the metrics (tests/test_resume.py); off when told."""
import jax
import numpy as np

import helpers
from amplify import configs as config_lib
from amplify.loop import curriculum
from amplify.tasks import make_task
from amplify.types import FIRST_TOKEN, PAD
from amplify.views import report


def test_the_curriculum_steps_up_each_round_and_the_report_shows_the_size(finished_run):
  config, workdir, summary = finished_run(helpers.CURRICULUM)
  evals = helpers.evals(workdir)
  assert [e["size"] for e in evals] == [2, 3, 4]
  assert [e["next_size"] for e in evals] == [3, 4, 4]  # the full size: no further
  assert all(0 < e["size_agreement"] <= 1 for e in evals)
  for e in evals:  # pi scored at every size from the start up, each round; the full size is
    by_size = e["policy_accuracy_by_size"]  # the evaluation's own score
    assert list(by_size) == ["2", "3", "4"] and by_size["4"] == e["policy_accuracy"]
    assert e["policy_accuracy_at_size"] == by_size[str(e["size"])]
    assert all(0 <= a <= 1 for a in by_size.values())
  assert summary["final_policy_accuracy_by_size"] == evals[-1]["policy_accuracy_by_size"]
  for e in evals:  # each round's questions are about its instance's elements only
    questions = np.load(workdir / "transcripts" / f"round_{e['round']}.npz")["questions"]
    assert questions[:, 0].max() == FIRST_TOKEN + e["size"] - 1
  table = report.format_table(str(workdir))
  assert table.splitlines()[0].split()[:2] == ["round", "size"] and "acc at size" in table
  assert "accuracy by size: 2:" in table


def test_the_step_up_rule_and_where_the_curriculum_is_off():
  config = config_lib.get_config("permutation_tiny", **{"task.num_elements": 12,
                                                        "curriculum.on": True})
  task, _ = make_task(config)
  assert curriculum.first_size(config, task) == 8  # the authors' start
  threshold = config.curriculum.threshold
  assert curriculum.next_size(config, task, 8, threshold) == 8  # must exceed it
  assert curriculum.next_size(config, task, 8, threshold + 0.01) == 9
  assert curriculum.next_size(config, task, 12, 1.0) == 12  # the full size
  # on the rows H^A answered (an IDK label is no target), once it answered half of them
  held = np.array([True, True, False, True])
  assert curriculum.agreement(held, np.array([True, False, False, True]), 0.5) == 2 / 3
  assert curriculum.agreement(held, np.ones(4, bool), 0.8) is None  # too few answered
  assert curriculum.next_size(config, task, 8, None) == 8
  # the evaluation's questions are of the full size, whatever the round's
  assert (np.asarray(task.evaluation_questions(jax.random.key(0), 64).context) != PAD).all()
  off = config_lib.replace(config, **{"curriculum.on": False})
  assert curriculum.first_size(off, task) is None  # questions as the task draws them
  assert curriculum.eval_sizes(off, task) == [8, 9, 10, 11]  # scored by size, on or off
  on = {"curriculum.on": True}
  small = config_lib.get_config("permutation_tiny", **on)  # 4 elements: nothing to grow
  assert curriculum.first_size(small, make_task(small)[0]) is None
  lexicon = config_lib.get_config("lexicon_tiny", **on)
  assert curriculum.first_size(lexicon, make_task(lexicon)[0]) is None  # no instance size
  assert curriculum.eval_sizes(lexicon, make_task(lexicon)[0]) == []
  assert curriculum.eval_sizes(small, make_task(small)[0]) == []


def test_a_workdir_from_before_the_curriculum_reads_as_one_with_its_defaults(finished_run,
                                                                             tmp_path):
  """config.json written before the curriculum block existed: the same command goes on with it
  (the block read as its defaults), and a changed block is still refused."""
  import json

  import pytest

  from amplify.loop.workdir import check_workdir
  config, workdir, _ = finished_run(helpers.LEXICON_ROUNDS)
  workdir = helpers.copy_run(workdir, tmp_path / "run")
  saved = json.loads((workdir / "config.json").read_text())
  del saved["curriculum"]
  (workdir / "config.json").write_text(json.dumps(saved))
  check_workdir(config, str(workdir))
  with pytest.raises(ValueError, match=r"differs in \['curriculum.on'\]"):
    check_workdir(config_lib.replace(config, **{"curriculum.on": True}), str(workdir))
  # replay in rows and the answer-slot flag, as they were written then, and no shard_params or
  # focus: read as today's fields (focus as off: the draw the run was started with)
  del saved["train"]["replay_rounds"], saved["train"]["shard_params"], saved["train"]["focus"]
  saved["train"]["replay_size"] = config.train.replay_rounds * config.label.size
  saved["model"]["answer_in_value_slot"] = False
  (workdir / "config.json").write_text(json.dumps(saved))
  check_workdir(config_lib.replace(config, **{"train.focus": False}), str(workdir))
  # the error names the flag that resumes it, and that flag does
  with pytest.raises(ValueError, match=r"differs in \['train.focus'\]\); .*to resume \(here: "
                                       r"--config.train.focus=False\)\.$"):
    check_workdir(config, str(workdir))
  from amplify.configs import cli
  assert not cli.config_from_flags(["amplify", "--preset=lexicon_tiny",
                                    "--config.train.focus=False"]).train.focus
  saved["train"]["replay_size"] += 1
  (workdir / "config.json").write_text(json.dumps(saved))
  with pytest.raises(ValueError, match="not a whole number of rounds"):
    check_workdir(config, str(workdir))


def test_competence_needs_most_of_a_difficultys_rows_answered():
  """pi is trusted at a difficulty only where H^A answered at least half its held-out rows: the
  answered few of a difficulty are its easy rows (a union-find root at any bound), and agreeing
  on them says nothing of the rest."""
  from amplify.loop.phases import competent_difficulties  # pylint: disable=g-import-not-at-top
  difficulty = np.repeat([0, 1], 100)
  answered = np.r_[np.ones(100, bool), np.arange(100) < 40]
  agrees = np.ones(200, bool)
  assert competent_difficulties(difficulty, answered, agrees, 1, 0.95).tolist() == [True, False]
  answered[100:160] = True
  assert competent_difficulties(difficulty, answered, agrees, 1, 0.95).tolist() == [True, True]
  agrees[:10] = False
  assert competent_difficulties(difficulty, answered, agrees, 1, 0.95).tolist() == [False, True]


def test_a_round_the_gate_refuses_leaves_the_size_where_it_was():
  """The curriculum steps up on pi_r's agreement; the gate refusing pi_r puts back the deployed
  policy and this round's size with it (round 0's fresh pi_0 likewise), so the next round is
  not drawn larger for a policy never judged there."""
  import types

  from amplify.loop import gate
  from amplify.loop.state import State

  class Deployed:  # the distiller of the policy H^A used this round
    steps_run = 0

    def load_state(self, state):
      self.loaded = state

  kept = Deployed()
  stepped = State(distiller=types.SimpleNamespace(schedule_steps=600),
                  competent=np.ones(3, bool), size=9)
  before = gate.Deployed(kept, "its weights", 100, np.zeros(3, bool), None, None, size=8)
  restored = gate._restore(None, 1, stepped, before)  # pylint: disable=protected-access
  assert restored.size == 8 and restored.distiller is kept and kept.loaded == "its weights"
  assert kept.steps_run == 100 and not restored.competent.any()
  run = types.SimpleNamespace(new_distiller=lambda r, steps: ("fresh pi_0", r, steps))
  first = gate.Deployed(None, None, 0, None, None, None, size=8)
  restored = gate._restore(run, 0, stepped, first)  # pylint: disable=protected-access
  assert restored.size == 8 and restored.distiller == ("fresh pi_0", 0, 600)
