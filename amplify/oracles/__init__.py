"""Oracle registry: `--oracle=NAME` picks the human H."""
from __future__ import annotations

from amplify.oracles.base import Oracle
from amplify.oracles.scripted import NoisyOracle, ScriptedOracle

ORACLES = {
    "scripted": lambda task, c: ScriptedOracle(task),
    "noisy": lambda task, c: NoisyOracle(ScriptedOracle(task), task, c.noise_rate),
}


def make_oracle(config, task) -> Oracle:
  if config.oracle not in ORACLES:
    raise ValueError(f"unknown oracle {config.oracle!r} (--oracle); choose one of "
                     f"{sorted(ORACLES)}.")
  return ORACLES[config.oracle](task, config)
