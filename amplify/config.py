"""Experiment configuration: the run's settings, the task's and the oracle's, presets, validation.

Every field of `Config` is an absl flag of the same name (`amplify.main`), so any of them can be
overridden on the command line: `python -m amplify.main --task=permutation --rounds=6`. The task
and the oracle own their settings (`Config.task_config`, `Config.oracle_config`: dataclasses the
plug-in declares, `amplify.registry`), set as `--task.num_entities=1000` / `--oracle.noise_rate=
0.05`. Each built-in task has a preset of the same name (the defaults `--task=NAME` starts from),
a `NAME_tiny` preset for tests, and permutation also `permutation_paper`.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from amplify import registry
from amplify.tasks.lexicon import LexiconSettings
from amplify.tasks.permutation import PermutationSettings


@dataclasses.dataclass
class Config:
  # what to run
  task: str = "lexicon"
  oracle: str = "scripted"
  arm: str = "ltp"  # the comparison to run (amplify.loop.arms): ltp, no_prior, raw_d, imitate_on_d, joint
  policy: str = "reads_mz"  # lexicon: pi reads Mz at the question's keys, or "memorises" z*
  rounds: int = 5
  seed: int = 0
  oracle_store: str = ""  # the answer store (amplify.files.store), SQLite; "" for none
  # the task's and the oracle's own settings (dataclasses their plug-ins declare); None: their
  # defaults. Set them as --task.FIELD / --oracle.FIELD.
  task_config: Any = None
  oracle_config: Any = None
  # learning the prior (latent worlds)
  prior_steps: int = 300  # full-batch Adam steps on the human's objective
  prior_learning_rate: float = 0.3
  # amplification
  label_size: int = 16384  # D* questions H^A labels per round
  heldout_fraction: float = 0.25  # of each round's labels, kept out of training for the IID check
  eval_size: int = 4096  # fresh D* questions for ground-truth accuracy (and D rows for agreement on D)
  max_asks: int = 4  # per-question budget of H's subquestions to pi
  max_lookups: int = 4  # per-question budget of H's look-ups in Mz
  competence: float = 0.95  # H asks pi only at difficulties where pi's held-out agreement >= this
  idk_share: float = 0.0  # at most this share of a round's training rows are IDK labels (1: all)
  replay_size: int = 16384  # rows of earlier rounds' answered labels replayed (newest kept; 0: none)
  warm_start: bool = True  # pi_r starts from pi_{r-1}
  augment: bool = True  # train on the task's symmetries (Task.augment), in every arm alike
  baselines: bool = True  # also train prosaic ML and the supervised ceiling (false: IDA alone)
  # type-2 feedback (amplify.learn.type2): H's whole decomposition tree on a sample of each round's
  # held-out questions, and the gate it decides
  type2_size: int = 128  # held-out questions type 2 answers per round (at most all; 0: none)
  type2_oracle: str = ""  # whose tree: an oracle's name ("": the run's H, see make_type2_oracle)
  gate: bool = True  # deploy pi_r only if its type-2 score is not worse than the deployed one's
  type2_tolerance: float = 0.02  # ... by more than this (net score, see amplify.learn.type2)
  # policy (the same network for amplification, prosaic ML and the ceiling)
  width: int = 64
  depth: int = 1
  heads: int = 4
  pointer_init: bool = False  # queries and keys start tied, so tokens attend to equal symbols
  answer_in_value_slot: bool = False  # permutation: the answer token is a fact's value slot
  # distillation
  total_steps: int = 1500  # amplification spreads these over its rounds; each baseline gets all
  batch_size: int = 128
  learning_rate: float = 2e-3
  warmup_steps: int = 100
  weight_decay: float = 0.01
  steps_per_call: int = 200  # optimiser steps per jitted call
  baseline_size: int = 65536  # labelled examples for prosaic ML (D) and for the ceiling (D*)

  @property
  def heldout_rows(self) -> int:
    return int(round(self.label_size * self.heldout_fraction))

  def validate(self) -> "Config":
    positive = ["rounds", "label_size", "eval_size", "width", "depth", "prior_steps",
                "heads", "total_steps", "batch_size", "steps_per_call", "baseline_size"]
    for name in positive:
      if getattr(self, name) < 1:
        raise ValueError(f"--{name}={getattr(self, name)}: must be a positive integer.")
    for name in ["max_asks", "max_lookups", "warmup_steps", "seed", "replay_size"]:
      if getattr(self, name) < 0:
        raise ValueError(f"--{name}={getattr(self, name)}: must be >= 0.")
    if not 1 <= self.heldout_rows <= self.label_size - 1:
      raise ValueError(f"--heldout_fraction={self.heldout_fraction} of --label_size="
                       f"{self.label_size} leaves {self.heldout_rows} held-out rows: both the train "
                       "and the held-out part need rows; choose a fraction strictly between 0 and 1 "
                       "(and a label_size of at least 2).")
    if not 0 <= self.competence <= 1:
      raise ValueError(f"--competence={self.competence}: an agreement rate, must lie in [0, 1].")
    if self.type2_size < 0:
      raise ValueError(f"--type2_size={self.type2_size}: held-out questions per round, >= 0.")
    if not self.type2_tolerance >= 0:
      raise ValueError(f"--type2_tolerance={self.type2_tolerance}: must be >= 0.")
    if not 0 <= self.idk_share <= 1:
      raise ValueError(f"--idk_share={self.idk_share}: a share, must lie in [0, 1].")
    if not self.prior_learning_rate > 0:
      raise ValueError(f"--prior_learning_rate={self.prior_learning_rate}: must be > 0.")
    if not self.learning_rate > 0:
      raise ValueError(f"--learning_rate={self.learning_rate}: must be > 0.")
    if self.width % self.heads:
      raise ValueError(f"--width={self.width} is not divisible by --heads={self.heads}: "
                       "choose a width that is a multiple of the head count.")
    if self.policy not in POLICIES:
      raise ValueError(f"--policy={self.policy!r}: choose one of {POLICIES}.")
    if self.total_steps < self.rounds:
      raise ValueError(f"--total_steps={self.total_steps} < --rounds={self.rounds}: each round "
                       "needs at least one distillation step.")
    return self


# --policy: pi reads Mz's entries at the keys a question names (amplify.learn.mz.MzView), or learns
# z*'s entries into an embedding row per key (the comparison arm; prosaic ML's network).
POLICIES = ("reads_mz", "memorises")

_PERMUTATION = Config(task="permutation", task_config=PermutationSettings(), rounds=6, label_size=65536, replay_size=65536,
                      total_steps=4000, depth=4, batch_size=256, learning_rate=3e-3,
                      idk_share=0.1, baseline_size=262144, answer_in_value_slot=True)

_COLORED_DIGITS = Config(task="colored_digits", rounds=1, label_size=450, eval_size=247,
                         baseline_size=65536, width=32, depth=1, heads=2, total_steps=150,
                         batch_size=256, learning_rate=1e-3, warmup_steps=50, steps_per_call=150,
                         prior_steps=100)

PRESETS = {
    # The default experiment: learn the prior, then amplify; about 3 minutes on 2 CPU cores.
    "lexicon": Config(task_config=LexiconSettings()),
    # z* of a million entries (issue 10): D is 16 M observations, and most entities of D* are in
    # no question pi trains on. pi reads Mz, so it is the default's network; prosaic ML's
    # memorising network has an embedding row per entity (64 M parameters).
    "lexicon_large": Config(task_config=LexiconSettings(num_entities=10**6)),
    "lexicon_tiny": Config(task_config=LexiconSettings(num_entities=32, max_set_size=4,
                                                       observations=12), rounds=3,
                           label_size=2048, eval_size=512, total_steps=600, batch_size=64,
                           width=32, heads=2, baseline_size=4096, steps_per_call=100,
                           learning_rate=3e-3, prior_steps=100),
    # Permutation powering (issue 2's default); minutes on 2 CPU cores.
    "permutation": _PERMUTATION,
    # The size of Christiano et al. 2018: 64 elements, k < 64. Needs an accelerator.
    # One bit of k per iteration (depth 6); rounds 0-5 bring k's six ranges, 6-7 are slack.
    # The answer token keeps its key slot: --pointer_init, which the look-up over 64 facts needs
    # (BUILD_NOTES.md), points key slots at keys.
    "permutation_paper": dataclasses.replace(
        _PERMUTATION, task_config=PermutationSettings(num_elements=64, k_bits=6, prosaic_max_k=4),
        rounds=8, width=128, depth=6,
        heads=4, pointer_init=True, answer_in_value_slot=False, total_steps=12000,
        learning_rate=2e-3, eval_size=8192),
    # Seconds, for tests.
    "permutation_tiny": dataclasses.replace(
        _PERMUTATION, task_config=PermutationSettings(num_elements=4, k_bits=2, prosaic_max_k=2),
        rounds=3, width=32, depth=2,
        heads=2, total_steps=600, batch_size=64, label_size=2048, replay_size=4096, eval_size=512,
        baseline_size=4096, steps_per_call=100, learning_rate=3e-3),
    # Colored MNIST (Arjovsky et al. 2019) on scikit-learn's 8x8 digits; under a minute on 2 CPU
    # cores. One round: H answers every D* question in round 0 by applying z*, so later rounds
    # add nothing. label_size and eval_size are the D* pools' sizes (amplify.tasks.colored_digits)
    # and baseline_size exceeds D (700 rows): the samplers return whole pools. The network is
    # small and trained briefly: it memorises D's 25% flipped labels within a few hundred steps.
    "colored_digits": _COLORED_DIGITS,
    "colored_digits_tiny": dataclasses.replace(_COLORED_DIGITS, width=16, total_steps=60,
                                               warmup_steps=20, steps_per_call=60),
}


def get_config(preset: str | None = None, **overrides) -> Config:
  """The preset's config with `overrides`. No preset: the one named after the task (default
  lexicon), so `--task=permutation` starts from the permutation defaults; a task without a preset
  of its name starts from `Config`'s defaults and its settings' defaults.

  An override names a field of `Config`, or of the task's or the oracle's settings, either as
  `task.FIELD` / `oracle.FIELD` or, where the name is not ambiguous, as FIELD alone
  (`get_config("lexicon_tiny", num_entities=64)`)."""
  if preset is not None and preset not in PRESETS:
    raise ValueError(f"unknown preset {preset!r} (--preset); choose one of {sorted(PRESETS)}.")
  base = PRESETS.get(preset or overrides.get("task") or Config.task, Config())
  top = {f.name for f in dataclasses.fields(Config)}
  config = dataclasses.replace(base, **{k: v for k, v in overrides.items() if k in top})
  if config.task != base.task or config.task_config is None:
    config.task_config = registry.task_plugin(config.task).settings()
  if config.oracle != base.oracle or config.oracle_config is None:
    config.oracle_config = registry.oracle_plugin(config.oracle).settings()
  owned = {"task": config.task_config, "oracle": config.oracle_config}
  changes = {"task": {}, "oracle": {}}
  for name, value in overrides.items():
    if name in top:
      continue
    owner, _, field = name.rpartition(".")
    owners = [owner] if owner else [o for o, s in owned.items()
                                    if field in {f.name for f in dataclasses.fields(s)}]
    if owner and owner not in owned:
      raise ValueError(f"--{name}: only --task.FIELD and --oracle.FIELD name a plug-in's setting.")
    if len(owners) != 1 or field not in {f.name for f in dataclasses.fields(owned[owners[0]])}:
      raise ValueError(_unknown_setting(config, name, field, owners))
    changes[owners[0]][field] = value
  config.task_config = dataclasses.replace(config.task_config, **changes["task"])
  config.oracle_config = dataclasses.replace(config.oracle_config, **changes["oracle"])
  return config.validate()


def _unknown_setting(config: Config, name: str, field: str, owners: list[str]) -> str:
  if len(owners) > 1:
    return f"{name!r} is a setting of both the task and the oracle: write task.{field} or oracle.{field}."
  settings = lambda o: sorted(f.name for f in dataclasses.fields(getattr(config, f"{o}_config")))
  return (f"--{name}: no such setting (task {config.task!r} has {settings('task') or 'none'}, "
          f"oracle {config.oracle!r} has {settings('oracle') or 'none'}, as --task.FIELD / "
          "--oracle.FIELD).")
