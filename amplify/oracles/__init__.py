"""Oracle registry: `--oracle=NAME` picks the human H."""
from __future__ import annotations

from amplify.oracles.base import Oracle
from amplify.oracles.scripted import NoisyOracle, ScriptedFromD, ScriptedOracle

# name -> (the scripted human, task, config) -> H
ORACLES = {
    "scripted": lambda human, task, c: human,
    "noisy": lambda human, task, c: NoisyOracle(human, task, c.noise_rate),
}


def make_oracle(config, task, *, reads_raw_d: bool = False) -> Oracle:
  """H as `--oracle` names it; `reads_raw_d`: the scripted human reads D's raw rows instead of
  z* (the `raw_d` arm), and the oracle is built around that human."""
  if config.oracle not in ORACLES:
    raise ValueError(f"unknown oracle {config.oracle!r} (--oracle); choose one of "
                     f"{sorted(ORACLES)}.")
  human = ScriptedFromD(task, max_lookups=config.max_lookups) if reads_raw_d else \
      ScriptedOracle(task)
  return ORACLES[config.oracle](human, task, config)
