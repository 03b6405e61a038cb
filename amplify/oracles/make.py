"""Which H a run gets: the oracle `--oracle` names, type 2's, and the model of H that learning the
prior fits."""
from __future__ import annotations

from amplify import registry
from amplify.configs import settings
from amplify.oracles.base import Oracle, QuestionOracle, is_per_question
from amplify.oracles.scripted import ScriptedFromD, ScriptedOracle


def _human(config, task, reads_raw_d: bool):
  return ScriptedFromD(task, max_lookups=config.label.max_lookups) if reads_raw_d else \
      ScriptedOracle(task)


def make_oracle(config, task, *, reads_raw_d: bool = False) -> Oracle | QuestionOracle:
  """H as `--oracle` names it, built from the task and the oracle's own settings;
  `reads_raw_d`: the scripted human reads D's raw rows instead of z* (the `raw_d` arm), and the
  oracle is built around that human."""
  plugin = registry.oracle_plugin(config.oracle.name)
  return plugin.make(task, settings(config.oracle, "oracle"), _human(config, task, reads_raw_d))


def make_type2_oracle(config, task, oracle, *, reads_raw_d: bool = False) -> Oracle:
  """The H whose whole decomposition tree is type 2 (`amplify.learn.type2`): `--config.type2.oracle` (with
  its default settings), or by default the run's own H when it is a batch-first jittable oracle,
  else the scripted H (behind H', or in place of a person, a callable or a replay: a tree of
  thousands of questions per round is no job for them). Raises ValueError for an oracle that
  cannot run as one compiled tree."""
  human = _human(config, task, reads_raw_d)
  if config.type2.oracle:
    plugin = registry.oracle_plugin(config.type2.oracle, "--config.type2.oracle")
    oracle = plugin.make(task, plugin.settings(), human)
    if is_per_question(oracle) or not getattr(oracle, "jittable", False):
      raise ValueError(f"--config.type2.oracle={config.type2.oracle}: type 2 runs H's whole tree as one "
                       "compiled program, which needs a batch-first jittable oracle (scripted, "
                       "noisy, sloppy); drop the flag to use the scripted H.")
    return oracle
  if not is_per_question(oracle) and getattr(oracle, "jittable", False):
    return oracle
  return human


def human_model(oracle, task):
  """The model of H that learning the prior fits z* to: the oracle's own (scripted, noisy), or,
  for an oracle with none (a person, a callable, a replay), the task's scripted H's."""
  return oracle if hasattr(oracle, "log_prior") else ScriptedOracle(task)


def serving(config) -> tuple[str, ...]:
  """The oracle's settings that say where and how it is served, not who answers (its settings
  class's `serving`, e.g. the web oracle's port): left out of the answer store's identity and of
  the workdir's check that a resumed run has the same config."""
  return tuple(getattr(registry.oracle_plugin(config.oracle.name).settings, "serving", ()))


def identity(config) -> str:
  """Who answers, as the answer store keys it: the oracle's name and its settings but `serving`
  ones."""
  own, left_out = vars(settings(config.oracle, "oracle")), serving(config)
  written = ",".join(f"{k}={v}" for k, v in sorted(own.items()) if k not in left_out)
  return config.oracle.name + (f"({written})" if written else "")
