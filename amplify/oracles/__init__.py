"""The built-in oracles, registered by name (`--oracle=NAME`; more through `amplify.registry`).

- `scripted`: the task's own decomposition (exact, batch first, jits with H^A).
- `noisy`: the scripted H slipping with probability `--oracle.noise_rate`.
- `sloppy`: the scripted H slipping systematically on large questions (the Goodhart experiment's
  flaw, `--oracle.from_difficulty`).
- `callable`: any Python function answering one rendered question with `ask` / `lookup`
  (`--oracle.fn=module:function`): the way to put a language model or a service in H's place.
- `interactive`: a person at the terminal (`amplify.oracles.interactive`).
- `replay`: answers only from the answer store (`--oracle_store`); IDK where it has none.
- `learned`: H', a network imitating the scripted H's steps, answering most questions while the
  real H answers a share adapted to H''s held-out agreement (`amplify.oracles.learned`).
"""
from __future__ import annotations

from amplify import registry
from amplify.oracles.base import Oracle, QuestionOracle, is_per_question
from amplify.oracles.learned import LearnedOracle, LearnedSettings
from amplify.oracles.per_question import CallableOracle, CallableSettings, ReplayOracle, \
    ReplaySettings
from amplify.oracles.scripted import NoisyOracle, NoisySettings, ScriptedFromD, ScriptedOracle, \
    SloppyOracle, SloppySettings

registry.register_oracle("scripted", lambda task, settings, human: human)
registry.register_oracle(
    "noisy", lambda task, settings, human: NoisyOracle(human, task, settings.noise_rate),
    NoisySettings)
registry.register_oracle(
    "sloppy", lambda task, settings, human: SloppyOracle(
        human, task, settings.from_difficulty or task.spec.max_difficulty // 2 + 1),
    SloppySettings)
registry.register_oracle("callable", lambda task, settings, human: CallableOracle.load(settings),
                         CallableSettings)
registry.register_oracle("learned", lambda task, settings, human: LearnedOracle(task, settings,
                                                                               human),
                         LearnedSettings)
registry.register_oracle("replay", lambda task, settings, human: ReplayOracle(settings.source),
                         ReplaySettings)


def _interactive(task, settings, human):
  from amplify.oracles.interactive import Interactive  # the terminal library loads only here
  return Interactive(settings)


def _interactive_settings():
  from amplify.oracles.interactive import InteractiveSettings
  return InteractiveSettings


registry.register_oracle("interactive", _interactive, _interactive_settings())


def _human(config, task, reads_raw_d: bool):
  return ScriptedFromD(task, max_lookups=config.max_lookups) if reads_raw_d else \
      ScriptedOracle(task)


def make_oracle(config, task, *, reads_raw_d: bool = False) -> Oracle | QuestionOracle:
  """H as `--oracle` names it, built from the task and the oracle's own settings;
  `reads_raw_d`: the scripted human reads D's raw rows instead of z* (the `raw_d` arm), and the
  oracle is built around that human."""
  plugin = registry.oracle_plugin(config.oracle)
  return plugin.make(task, config.oracle_config, _human(config, task, reads_raw_d))


def make_type2_oracle(config, task, oracle, *, reads_raw_d: bool = False) -> Oracle:
  """The H whose whole decomposition tree is type 2 (`amplify.type2`): `--type2_oracle` (with
  its default settings), or by default the run's own H when it is a batch-first jittable oracle,
  else the scripted H (behind H', or in place of a person, a callable or a replay: a tree of
  thousands of questions per round is no job for them). Raises ValueError for an oracle that
  cannot run as one compiled tree."""
  human = _human(config, task, reads_raw_d)
  if config.type2_oracle:
    plugin = registry.oracle_plugin(config.type2_oracle, "--type2_oracle")
    oracle = plugin.make(task, plugin.settings(), human)
    if is_per_question(oracle) or not getattr(oracle, "jittable", False):
      raise ValueError(f"--type2_oracle={config.type2_oracle}: type 2 runs H's whole tree as one "
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


def identity(config) -> str:
  """Who answers, as the answer store keys it: the oracle's name and its settings."""
  settings = ",".join(f"{k}={v}" for k, v in sorted(vars(config.oracle_config).items()))
  return config.oracle + (f"({settings})" if settings else "")
