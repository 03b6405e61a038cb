"""The run's summary (workdir/summary.json): the final policy beside prosaic ML and the ceiling,
the costs, and how type 1 and type 2 drifted apart."""
from __future__ import annotations

import os
import resource
import time

from amplify import processes
from amplify.files.jsonio import write_json
from amplify.loop import arms as arms_lib
from amplify.loop.state import Run


def gap_recovered(final: float, prosaic: float | None, ceiling: float | None) -> dict:
  """The share of the gap between prosaic ML and the supervised ceiling that the final policy
  closes; null, with the reason, where there is no gap (the ceiling does not exceed prosaic ML) or
  no baselines ran."""
  if prosaic is None or ceiling is None:
    return {"gap_recovered": None, "gap_recovered_reason": "no baselines (--baselines=false)"}
  if ceiling <= prosaic:
    return {"gap_recovered": None,
            "gap_recovered_reason": f"the ceiling ({ceiling:.3f}) does not exceed prosaic ML "
                                    f"({prosaic:.3f}): no gap to recover"}
  return {"gap_recovered": (final - prosaic) / (ceiling - prosaic), "gap_recovered_reason": None}


def deployed_type2_score(record: dict) -> float:
  """The type-2 score of the policy H^A uses after a round's gate (an eval line with type 2):
  the deployed policy's where the gate refused pi_r, else pi_r's."""
  return (record["type2_score_deployed"] if record["promoted"] is False
          else record["type2_score"])


def _type2_summary(evals: list[dict], h_calls: int) -> dict:
  """The rounds whose pi_r was deployed, those the gate refused, the largest type-1 - type-2 gap
  (signed: where type 1 overstates type 2 the most; a run without type 2: none), the final
  deployed policy's type-2 score, and type 2's H calls, also as a share of labelling's
  (`h_calls`)."""
  gated = [rec for rec in evals if "type2_score" in rec]
  if not gated:
    return {"promotions": None, "refused_rounds": [], "largest_type1_type2_gap": None,
            "final_type2_score": None, "type2_calls": 0, "type2_share_of_h_calls": None}
  type2_calls = sum(rec["type2_calls"] for rec in gated)
  largest = max(gated, key=lambda rec: rec["type1_type2_gap"])
  return {"promotions": sum(rec["promoted"] is True for rec in gated),
          "refused_rounds": [rec["round"] for rec in gated if rec["promoted"] is False],
          "largest_type1_type2_gap": {"round": largest["round"],
                                      "gap": largest["type1_type2_gap"]},
          "final_type2_score": deployed_type2_score(gated[-1]),
          "type2_calls": type2_calls,
          "type2_share_of_h_calls": type2_calls / h_calls if h_calls else None}


def summarise(run: Run, finished: dict[str, dict]) -> dict:
  """Writes and returns workdir/summary.json. `finished`: the baselines' metrics lines."""
  records = run.metrics.records
  evals = [rec for rec in records if rec["phase"] == "eval"]
  labels = [rec for rec in records if rec["phase"] == "label"]
  final = evals[-1]
  accuracy = lambda name: finished[name]["accuracy"] if name in finished else None
  prosaic, ceiling = accuracy("prosaic"), accuracy("ceiling")
  deployment = [rec for rec, p in zip(labels, run.plan) if p.questions == arms_lib.DEPLOYMENT]
  real_h = (sum(rec.get("real_h_calls", rec["oracle_calls"]) for rec in labels)
            if any("real_h_calls" in rec for rec in labels) else None)
  summary = {
      "arm": run.arm.name,
      "policy": "reads_mz" if run.reads_mz else "memorises" if run.task.spec.names_mz_keys
                else "question",
      "final_policy_accuracy": final["policy_accuracy"],
      "final_policy_accuracy_by_difficulty": final["policy_accuracy_by_difficulty"],
      "final_policy_accuracy_by_size": final.get("policy_accuracy_by_size"),
      "prosaic_accuracy": prosaic,
      "ceiling_accuracy": ceiling,
      **gap_recovered(final["policy_accuracy"], prosaic, ceiling),
      "z_accuracy": run.z_accuracy,
      "unseen_entity_fraction": final.get("unseen_entity_fraction"),
      "policy_accuracy_unseen": final.get("policy_accuracy_unseen"),
      **{k: sum(rec[k] for rec in labels) for k in ("oracle_calls", "asks", "lookups")},
      "real_h_calls": real_h,  # the real H's share of them, beside a learned H' (None: all)
      "lookups_per_deployment_question": (  # per question H answered (none: all reused)
          sum(rec["lookups"] for rec in deployment) / asked
          if (asked := sum(rec["oracle_calls"] for rec in deployment)) else None),
      "distillation_steps": sum(rec["steps"] for rec in records if rec["phase"] == "distill"),
      **_type2_summary(evals, sum(rec["oracle_calls"] for rec in labels) if real_h is None
                       else real_h),
      "rounds": len(run.plan),
      "peak_memory_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
      "wall_seconds": round(time.time() - run.start, 2),
      "seed": run.config.seed,
  }
  if processes.writes():
    write_json(os.path.join(run.workdir, "summary.json"), summary)
  return summary
