"""The 2018 benchmark's other four tasks, end to end: a tiny run of each goes through both rounds
and its baselines, and in round 0 (H alone) every label H gives is right by the referee's truth.
Each task's own tests (test_assignments.py, ...) check its sampler, H, truth and text."""
import pytest

import helpers
from amplify import configs as config_lib

TINY = {"rounds": 2, "total_steps": 200, "label_size": 1024, "eval_size": 256,
        "baseline_size": 2048, "type2_size": 0}


@pytest.mark.parametrize("task", config_lib.BENCHMARK_2018[1:])
def test_a_tiny_run_goes_through_its_rounds_and_baselines(task, finished_run):
  _, workdir, summary = finished_run((f"{task}_tiny", TINY))
  evals = helpers.evals(workdir)
  assert [e["round"] for e in evals] == [0, 1]
  # H alone is exact: each label it gives is right, the rest IDK
  assert evals[0]["label_accuracy"] + evals[0]["idk_fraction"] == pytest.approx(1)
  assert 0 < evals[0]["idk_fraction"] < 1
  for name in ("final_policy_accuracy", "ceiling_accuracy", "prosaic_accuracy"):
    assert 0 <= summary[name] <= 1, name
