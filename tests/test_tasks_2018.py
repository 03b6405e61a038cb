"""The 2018 benchmark's other four tasks, end to end: a tiny run of each goes through both rounds,
and in round 0 (H alone) every label H gives is right by the referee's truth. Each task's own
tests (test_assignments.py, ...) check its sampler, H, truth and text; the baselines' path is the
same for every task (tests/test_end_to_end.py runs it)."""
import pytest

import helpers
from amplify import configs as config_lib

TINY = {"rounds": 2, "total_steps": 100, "label_size": 512, "eval_size": 128,
        "baselines": False, "type2_size": 0}


@pytest.mark.parametrize("task", config_lib.BENCHMARK_2018[1:])
def test_a_tiny_run_goes_through_its_rounds(task, finished_run):
  _, workdir, summary = finished_run((f"{task}_tiny", TINY))
  evals = helpers.evals(workdir)
  assert [e["round"] for e in evals] == [0, 1]
  # H alone is exact: each label it gives is right, the rest IDK
  assert evals[0]["label_accuracy"] + evals[0]["idk_fraction"] == pytest.approx(1)
  assert 0 < evals[0]["idk_fraction"] < 1
  assert summary["final_policy_accuracy"] == evals[-1]["policy_accuracy"]  # the last round's pi
