"""How many programs one run lowers and compiles, and the seconds that takes (the cost a test
suite of many short runs pays again and again).

  python experiments/compiles.py --root=/tmp/compiles --preset=lexicon_tiny,permutation_tiny \
      --config.type2.size=0  # a --root without these runs: a finished run is not run again
Seeds: --seeds (the figures: 0). Machine: the project's 2-core CPU (results/compiles/README.md).

Each preset runs once, in this process, with no persistent compilation cache; JAX's monitoring
events count what the run's own process lowers to MLIR and what XLA compiles (the referee
process, which trains the baselines, is not counted). Counts, not times, are the figure: they
are the same on any machine. Writes RESULTS/compiles/compiles.{json,md}.
"""
from __future__ import annotations

import collections
import time

import jax
from jax import monitoring

import common

_EVENTS = {"/jax/core/compile/jaxpr_to_mlir_module_duration": "lowered",
           "/jax/core/compile/backend_compile_duration": "compiled"}
_SEEN: collections.Counter = collections.Counter()
_SECONDS: collections.Counter = collections.Counter()


def _listen(event: str, seconds: float, **kwargs) -> None:
  del kwargs
  if event in _EVENTS:
    _SEEN[_EVENTS[event]] += 1
    _SECONDS[_EVENTS[event]] += seconds


def count(preset: str, seed: int) -> dict:
  jax.config.update("jax_enable_compilation_cache", False)
  jax.clear_caches()
  _SEEN.clear()
  _SECONDS.clear()
  start = time.perf_counter()
  run = common.run(common.label(preset), preset, seed)
  row = {"preset": common.label(preset), "seed": seed, **dict(_SEEN),
         **{f"{k}_seconds": round(v, 2) for k, v in _SECONDS.items()},
         "run_seconds": round(time.perf_counter() - start, 1),
         "final": run["summary"].get("final_policy_accuracy")}
  print(f"{row['preset']}, seed {seed}: {row.get('lowered', 0)} programs lowered "
        f"({row.get('lowered_seconds', 0)} s), {row.get('compiled', 0)} compiled "
        f"({row.get('compiled_seconds', 0)} s), run {row['run_seconds']} s", flush=True)
  return row


def main(argv):
  del argv
  monitoring.register_event_duration_secs_listener(_listen)
  rows = [count(preset, seed) for preset in common.presets(["lexicon_tiny", "permutation_tiny"])
          for seed in common.seeds()]
  table = common.markdown(
      ["preset", "seed", "programs lowered", "programs compiled", "compile seconds", "run seconds"],
      [[r["preset"], r["seed"], r.get("lowered", 0), r.get("compiled", 0),
        r.get("compiled_seconds", 0), r["run_seconds"]] for r in rows])
  common.write_results("Programs one run lowers and compiles (this process only)", table, rows)


if __name__ == "__main__":
  common.main(main)
