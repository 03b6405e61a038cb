"""The built-in oracles, registered by name (`--oracle=NAME`; more through `amplify.registry`).

- `scripted`: the task's own decomposition (exact, batch first, jits with H^A).
- `noisy`: the scripted H slipping with probability `--oracle.noise_rate`.
- `callable`: any Python function answering one rendered question with `ask` / `lookup`
  (`--oracle.fn=module:function`): the way to put a language model or a service in H's place.
- `interactive`: a person at the terminal (`amplify.oracles.interactive`).
- `replay`: answers only from the answer store (`--oracle_store`); IDK where it has none.
- `learned`: H', a network imitating the scripted H's steps, answering most questions while the
  real H answers a share adapted to H''s held-out agreement (`amplify.oracles.learned`).
"""
from __future__ import annotations

from amplify import registry
from amplify.oracles.base import Oracle, QuestionOracle
from amplify.oracles.learned import LearnedOracle, LearnedSettings
from amplify.oracles.per_question import CallableOracle, CallableSettings, ReplayOracle, \
    ReplaySettings
from amplify.oracles.scripted import NoisyOracle, NoisySettings, ScriptedFromD, ScriptedOracle

registry.register_oracle("scripted", lambda task, settings, human: human)
registry.register_oracle(
    "noisy", lambda task, settings, human: NoisyOracle(human, task, settings.noise_rate),
    NoisySettings)
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


def make_oracle(config, task, *, reads_raw_d: bool = False) -> Oracle | QuestionOracle:
  """H as `--oracle` names it, built from the task and the oracle's own settings;
  `reads_raw_d`: the scripted human reads D's raw rows instead of z* (the `raw_d` arm), and the
  oracle is built around that human."""
  plugin = registry.oracle_plugin(config.oracle)
  human = ScriptedFromD(task, max_lookups=config.max_lookups) if reads_raw_d else \
      ScriptedOracle(task)
  return plugin.make(task, config.oracle_config, human)


def human_model(oracle, task):
  """The model of H that learning the prior fits z* to: the oracle's own (scripted, noisy), or,
  for an oracle with none (a person, a callable, a replay), the task's scripted H's."""
  return oracle if hasattr(oracle, "log_prior") else ScriptedOracle(task)


def identity(config) -> str:
  """Who answers, as the answer store keys it: the oracle's name and its settings."""
  settings = ",".join(f"{k}={v}" for k, v in sorted(vars(config.oracle_config).items()))
  return config.oracle + (f"({settings})" if settings else "")
