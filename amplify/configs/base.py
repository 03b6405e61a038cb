"""The shared defaults every task's config starts from, and the rules a config must meet.

A config is an `ml_collections.ConfigDict`, nested by what a field is about (`config.label.size`,
`config.train.total_steps`), as the flax examples and big_vision write theirs: one file per task
(`amplify/configs/NAME.py`), each a `get_config(variant)` that edits these defaults. The task's
and the oracle's own settings sit under `config.task` / `config.oracle` beside their `name`; they
are the fields of the settings dataclass their plug-in declares (`amplify.registry`).

  python -m amplify.main --config=amplify/configs/base.py  # lexicon, with these defaults
"""
from __future__ import annotations

import dataclasses
import math
import os

import ml_collections

from amplify import registry

# model.policy: pi reads Mz's entries at the keys a question names (amplify.learn.mz.MzView), or
# learns z*'s entries into an embedding row per key (the comparison arm; prosaic ML's network).
POLICIES = ("reads_mz", "memorises")

# The flags people type for the most used fields (amplify.configs.cli); every other field is
# --config.PATH. Error messages name a field by the flag that sets it.
SHORTHANDS = {"arm": "arm", "seed": "seed", "rounds": "rounds", "baselines": "baselines",
              "oracle_store": "oracle_store", "gate": "type2.gate"}


def block(name: str, settings) -> ml_collections.ConfigDict:
  """A task's or an oracle's sub-config: its `name` and the fields of its settings (a dataclass,
  or an instance of one: its values), in the dataclass's order."""
  if isinstance(settings, type):
    settings = settings()
  fields = {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)}
  if "name" in fields:  # --task.name / --oracle.name pick the plug-in
    raise ValueError(f"plug-in {name!r}: its settings have a field 'name', which is the block's "
                     "own (the plug-in's name): rename the field.")
  return ml_collections.ConfigDict({"name": name, **fields})


def paths(config, prefix: str = "") -> list[str]:
  """Every field's dotted path, in the config's order."""
  out = []
  for key, value in config.items():
    isdict = isinstance(value, ml_collections.ConfigDict)
    out += paths(value, f"{prefix}{key}.") if isdict else [f"{prefix}{key}"]
  return out


def get_config() -> ml_collections.ConfigDict:
  """The defaults: the lexicon task answered by the scripted H."""
  config = ml_collections.ConfigDict()
  # what to run; arm: the comparison (amplify.loop.arms): ltp, no_prior, raw_d, imitate_on_d, joint
  config.arm = "ltp"
  config.seed = 0
  config.rounds = 5
  config.baselines = True  # also train prosaic ML and the supervised ceiling (false: IDA alone)
  config.oracle_store = ""  # the answer store (amplify.files.store), SQLite; "" for none
  # fresh D* questions for ground-truth accuracy (and D rows for agreement on D)
  config.eval_size = 4096
  # the task's and the oracle's own settings (--task.FIELD / --oracle.FIELD)
  config.task = block("lexicon", registry.task_plugin("lexicon").settings)
  config.oracle = block("scripted", registry.oracle_plugin("scripted").settings)
  # amplification: the labels H^A gives each round
  config.label = ml_collections.ConfigDict()
  config.label.size = 16384  # D* questions H^A labels per round
  # of each round's labels, kept out of training for the IID check
  config.label.heldout_fraction = 0.25
  config.label.max_asks = 4  # per-question budget of H's subquestions to pi
  config.label.max_lookups = 4  # per-question budget of H's look-ups in Mz
  # H asks pi only at difficulties where pi's held-out agreement >= this
  config.label.competence = 0.95
  # policy (the same network for amplification, prosaic ML and the ceiling)
  config.model = ml_collections.ConfigDict()
  config.model.policy = "reads_mz"  # lexicon: pi reads Mz at the question's keys, or "memorises" z*
  config.model.width = 64
  config.model.depth = 6  # the 2018 authors' (one shared block, applied this many times)
  config.model.heads = 4
  # queries and keys start tied, so tokens attend to equal symbols
  config.model.pointer_init = False
  # distillation
  config.train = ml_collections.ConfigDict()
  # amplification spreads these over its rounds; each baseline gets all
  config.train.total_steps = 1500
  # every task's CPU preset learns with these (experiments/results/engine_defaults/: at depth 6,
  # batch 256 at 3e-3 was within a point of each task's own settings or above them; permutation's
  # 2018 form needed twice its steps in one seed of three)
  config.train.batch_size = 256
  config.train.learning_rate = 3e-3
  config.train.warmup_steps = 100
  config.train.weight_decay = 0.01
  config.train.steps_per_call = 200  # optimiser steps per jitted call
  # with several devices: split parameters and optimiser state over them, not a copy on each
  config.train.shard_params = False
  # earlier rounds' answered labels replayed: the newest, at most this many rounds' worth of
  # rows (x label.size; 0: none), so a task's replay scales with its rounds
  config.train.replay_rounds = 1
  # at most this share of a round's training rows are IDK labels (1: all)
  config.train.idk_share = 0.0
  config.train.warm_start = True  # pi_r starts from pi_{r-1}
  # each round's training rows drawn again, those at a difficulty where pi_{r-1} already
  # imitates H^A less often, the less it disagrees there (amplify.loop.phases.focus); false: alike
  config.train.focus = True
  config.train.augment = True  # train on the task's symmetries (Task.augment), in every arm alike
  # labelled examples for prosaic ML (D) and for the ceiling (D*)
  config.train.baseline_size = 65536
  # learning the prior (latent worlds)
  config.prior = ml_collections.ConfigDict()
  config.prior.steps = 300  # full-batch Adam steps on the human's objective
  config.prior.learning_rate = 0.3
  # the size curriculum (amplify.loop.curriculum), for a task with an instance size: round 0's
  # D* at `start`, one larger after each round whose pi agrees with H^A on more than
  # `threshold` of the held-out rows H^A answered (once it answered half) and the gate deploys
  # it, up to the full size
  config.curriculum = ml_collections.ConfigDict()
  config.curriculum.on = False
  config.curriculum.start = 8
  config.curriculum.threshold = 0.85
  # type-2 feedback (amplify.learn.type2): H's whole decomposition tree on a sample of each
  # round's held-out questions, and the gate it decides
  config.type2 = ml_collections.ConfigDict()
  config.type2.size = 128  # held-out questions type 2 answers per round (at most all; 0: none)
  config.type2.oracle = ""  # whose tree: an oracle's name ("": the run's H, see make_type2_oracle)
  # deploy pi_r only if its type-2 score is not worse than the deployed one's
  config.type2.gate = True
  config.type2.tolerance = 0.02  # ... by more than this (net score, see amplify.learn.type2)
  return config


def variant(config, variants: dict, name: str, file: str):
  """`config` edited by the variant `name` of a config file (`file.py:name`); a ValueError naming
  the file's variants for a name it has not."""
  if name not in variants:
    raise ValueError(f"{os.path.basename(file)}: no variant {name!r}; choose one of "
                     f"{sorted(variants)} (--config=FILE.py:VARIANT, '' the file's default).")
  variants[name](config)
  return config


def tiny(config) -> None:
  """A task's `tiny` variant beyond its own sizes: seconds on a CPU, for tests (the 2018 tasks'
  tiny runs share these shapes, so the suite compiles fewer programs; lexicon's and colored
  digits' set their own)."""
  config.rounds, config.eval_size = 3, 512
  config.label.size = 2048
  config.model.update(width=32, depth=2, heads=2)
  config.train.update(total_steps=600, batch_size=64, replay_rounds=2, baseline_size=4096,
                      steps_per_call=100)
  # with this network and 250-step rounds the focused draw made permutation_tiny forget k = 1,
  # its competence lost in round 1 (experiments/results/focused_draw/README.md)
  config.train.focus = False


def replay_rows(config) -> int:
  """The most rows the replay buffer keeps: `train.replay_rounds` rounds' labels."""
  return config.train.replay_rounds * config.label.size


def heldout_rows(config) -> int:
  """Of each round's `label.size` labels, the rows kept out of training for the IID check."""
  return int(round(config.label.size * config.label.heldout_fraction))


def flag(path: str) -> str:
  """The flag a user types to set the field at `path`: a shorthand where there is one."""
  shorthand = {v: k for k, v in SHORTHANDS.items()}.get(path)
  if shorthand:
    return f"--{shorthand}"
  if path.startswith(("task.", "oracle.")):
    return f"--{path}"
  return f"--config.{path}"


def _value(config, path: str):
  for part in path.split("."):
    config = config[part]
  return config


MAX_INT = 2**31 - 1  # sizes and budgets: JAX's int32 indices, XLA's shapes


def validate(config):
  """`config` if its fields make a run; else a ValueError naming the flag to change. The task's
  and the oracle's settings are checked by their dataclasses (`amplify.configs.settings`)."""
  get = lambda path: _value(config, path)
  positive = ["rounds", "label.size", "eval_size", "model.width", "model.depth", "prior.steps",
              "model.heads", "train.total_steps", "train.batch_size", "train.steps_per_call",
              "train.baseline_size"]
  for path in positive:
    if not 1 <= get(path) <= MAX_INT:
      raise ValueError(f"{flag(path)}={get(path)}: must be a positive integer, at most {MAX_INT}.")
  for path in ["label.max_asks", "label.max_lookups", "train.warmup_steps",
               "train.replay_rounds", "type2.size"]:
    if not 0 <= get(path) <= MAX_INT:
      raise ValueError(f"{flag(path)}={get(path)}: must be >= 0, at most {MAX_INT}.")
  if not 0 <= config.seed < 2**32:  # JAX's keys read a seed modulo 2**32
    raise ValueError(f"--seed={config.seed}: must be >= 0 and below 2**32.")
  label = config.label
  if not 0 < label.heldout_fraction < 1:
    raise ValueError(f"--config.label.heldout_fraction={label.heldout_fraction}: the share of "
                     "each round's labels kept out of training; choose one strictly between 0 "
                     "and 1.")
  rows = heldout_rows(config)
  if not 1 <= rows <= label.size - 1:
    raise ValueError(f"--config.label.heldout_fraction={label.heldout_fraction} of "
                     f"--config.label.size={label.size} leaves {rows} held-out rows: both the "
                     "train and the held-out part need rows; choose a fraction strictly between 0 "
                     "and 1 (and a label size of at least 2).")
  if config.curriculum.start < 2:
    raise ValueError(f"--config.curriculum.start={config.curriculum.start}: an instance needs "
                     "at least 2 elements.")
  for path in ["label.competence", "train.idk_share", "curriculum.threshold"]:
    if not 0 <= get(path) <= 1:
      raise ValueError(f"{flag(path)}={get(path)}: a rate or a share, must lie in [0, 1].")
  if not config.type2.tolerance >= 0:
    raise ValueError(f"--config.type2.tolerance={config.type2.tolerance}: must be >= 0.")
  for path in ["prior.learning_rate", "train.learning_rate"]:
    if not 0 < get(path) < math.inf:
      raise ValueError(f"{flag(path)}={get(path)}: must be > 0 and finite.")
  if not 0 <= config.train.weight_decay < math.inf:
    raise ValueError(f"--config.train.weight_decay={config.train.weight_decay}: must be >= 0 "
                     "and finite.")
  model = config.model
  if model.width % model.heads:
    raise ValueError(f"--config.model.width={model.width} is not divisible by "
                     f"--config.model.heads={model.heads}: choose a width that is a multiple of "
                     "the head count.")
  if model.policy not in POLICIES:
    raise ValueError(f"--config.model.policy={model.policy!r}: choose one of {POLICIES}.")
  if config.train.total_steps < config.rounds:
    raise ValueError(f"--config.train.total_steps={config.train.total_steps} < --rounds="
                     f"{config.rounds}: each round needs at least one distillation step.")
  return config
