"""Experiment configs: nested `ml_collections.ConfigDict`s, one file per task (flax, big_vision).

  config = configs.get_config("lexicon_tiny", rounds=1, **{"oracle.noise_rate": 0.5},
                              oracle="noisy", num_entities=64)

`get_config` is the Python API (tests, notebooks); `amplify.configs.cli` is the command line
(`--config=amplify/configs/lexicon.py:tiny --config.train.total_steps=3000`). Both start from a
task's config file (`base.py` for what they share), switch the task or the oracle where asked,
apply overrides, then validate and lock the result (no new fields). The task's and the oracle's
factories receive `settings(config.task)` / `settings(config.oracle)`, their dataclasses.
"""
from __future__ import annotations

import json

import ml_collections

from amplify import registry
from amplify.configs import base, load
from amplify.configs.base import POLICIES, heldout_rows, replay_rows
from amplify.configs.load import settings

__all__ = ["PRESETS", "BENCHMARK_2018", "FLAT", "POLICIES", "CONFIG_VERSION", "get_config", "start", "override",
           "resolve", "describe", "validate", "replace", "heldout_rows", "replay_rows", "settings", "to_dict", "to_json",
           "check_version", "from_dict"]

# The five tasks of Christiano, Shlegeris and Amodei 2018 (experiments/reproduce_2018.py)
BENCHMARK_2018 = ("permutation", "assignments", "wildcard", "shortest_path", "union_find")

# The presets people type (`--preset=NAME`) -> (task, variant of the task's config file).
PRESETS = {
    "lexicon": ("lexicon", ""), "lexicon_tiny": ("lexicon", "tiny"),
    "lexicon_large": ("lexicon", "large"), "lexicon_huge": ("lexicon", "huge"),
    "permutation": ("permutation", ""), "permutation_tiny": ("permutation", "tiny"),
    "permutation_paper": ("permutation", "paper"),
    "colored_digits": ("colored_digits", ""), "colored_digits_tiny": ("colored_digits", "tiny"),
    # the other four tasks of the 2018 benchmark, each with a default (CPU), tiny and paper size
    **{task + suffix: (task, suffix[1:]) for task in BENCHMARK_2018[1:]
       for suffix in ("", "_tiny", "_paper")},
}

# The flat names of the config before it was nested -> their paths; still accepted as overrides.
# (Its task_config and oracle_config are `config.task` and `config.oracle` but for their name.)
FLAT = {
    "task": "task.name", "oracle": "oracle.name", "arm": "arm", "seed": "seed",
    "rounds": "rounds", "baselines": "baselines", "oracle_store": "oracle_store",
    "eval_size": "eval_size",
    "label_size": "label.size", "heldout_fraction": "label.heldout_fraction",
    "max_asks": "label.max_asks", "max_lookups": "label.max_lookups",
    "competence": "label.competence",
    **{name: f"model.{name}" for name in ("policy", "width", "depth", "heads", "pointer_init")},
    **{name: f"train.{name}" for name in ("total_steps", "batch_size", "learning_rate",
                                          "warmup_steps", "weight_decay", "steps_per_call",
                                          "idk_share", "warm_start", "augment",
                                          "baseline_size")},
    "prior_steps": "prior.steps", "prior_learning_rate": "prior.learning_rate",
    "type2_size": "type2.size", "type2_oracle": "type2.oracle", "gate": "type2.gate",
    "type2_tolerance": "type2.tolerance",
}

CONFIG_VERSION = 2  # config.json's layout: 2 is this nested one; the flat Config had no version


def start(preset: str | None = None, task: str | None = None, oracle: str | None = None,
          file: str | None = None) -> ml_collections.ConfigDict:
  """The config before overrides: a preset's, a config file's (`path.py:variant`) or the task's
  (default lexicon). `task` and `oracle` then switch those: the task's settings become the new
  task's defaults, the oracle's the new oracle's, the rest (rounds, model, ...) is kept."""
  if preset is not None and file is not None:
    raise ValueError(f"--preset={preset} and --config={file}: give one of them.")
  if preset is not None:
    config = load.task_config(*_preset(preset))
  elif file is not None:
    config = load.from_file(file)
  else:
    config = load.task_config(task or "lexicon")
  return _switch(config, task, oracle)


def _switch(config, task: str | None, oracle: str | None):
  """`config` with another task's or oracle's settings (their defaults) where one is named; a
  task's prior settings (read by latent-world tasks alone) come with it."""
  if task is not None and task != config.task.name:
    new = load.task_config(task)
    config.task, config.prior = new.task, new.prior
  if oracle is not None and oracle != config.oracle.name:
    config.oracle = load.oracle_block(oracle)
  return config


def _switches(overrides: dict) -> tuple[str | None, str | None]:
  """The task and the oracle `overrides` name (taken out of it)."""
  task = overrides.pop("task.name", overrides.pop("task", None))
  return task, overrides.pop("oracle.name", overrides.pop("oracle", None))


def _finish(config, overrides: dict) -> ml_collections.ConfigDict:
  """`config` with `overrides` applied, validated and locked."""
  for name, value in overrides.items():
    override(config, resolve(config, name), value)
  validate(config)
  config.lock()
  return config


def _preset(name: str) -> tuple[str, str]:
  """(task, variant) of `--preset=name`: a built-in preset, a task's own name, or TASK_VARIANT
  for a task (a plug-in's too) whose config has that variant."""
  if name in PRESETS:
    return PRESETS[name]
  tasks = registry.names(registry.TASK_GROUP)
  if name in tasks:
    return name, ""
  for task in sorted(tasks, key=len, reverse=True):
    if name.startswith(task + "_"):
      return task, name[len(task) + 1:]
  raise ValueError(f"unknown preset {name!r} (--preset); choose one of {sorted(PRESETS)}, or "
                   "TASK_VARIANT for a task whose config has that variant.")


def describe(config) -> str:
  """Every field's path, compactly: `arm, seed, ..., label.{size, heldout_fraction, ...}`."""
  groups: dict[str, list[str]] = {}
  for path in base.paths(config):
    head, _, leaf = path.rpartition(".")
    groups.setdefault(head, []).append(leaf)
  return ", ".join(", ".join(leaves) if not head else f"{head}.{{{', '.join(leaves)}}}"
                   for head, leaves in groups.items())


def resolve(config, name: str) -> str:
  """The path `name` sets: an old flat name (FLAT), a path (`train.total_steps`), or a field's
  own name where only one field has it (`total_steps`, `num_entities`)."""
  if name in FLAT:
    return FLAT[name]
  paths = base.paths(config)
  if name in paths:
    return name
  matches = [p for p in paths if p.rpartition(".")[2] == name]
  if len(matches) == 1:
    return matches[0]
  if matches:
    raise ValueError(f"{name!r} is the name of {matches}: write the path.")
  raise ValueError(f"{name!r}: no such setting (task {config.task.name!r}, oracle "
                   f"{config.oracle.name!r}); the config has {describe(config)}.")


def override(config, path: str, value) -> None:
  """Sets the field at `path`; a ValueError where the value's type is not the field's."""
  *parents, leaf = path.split(".")
  parent = config
  for part in parents:
    parent = parent[part]
  try:
    setattr(parent, leaf, value)
  except TypeError:
    raise ValueError(f"{base.flag(path)}={value!r}: the field's type is "
                     f"{type(parent[leaf]).__name__}, not {type(value).__name__}.") from None


def validate(config) -> ml_collections.ConfigDict:
  """`config` if it makes a run (`base.validate`'s rules, and the task's and the oracle's
  settings as their dataclasses check them); else a ValueError naming the flag to change."""
  base.validate(config)
  settings(config.task, "task")
  settings(config.oracle, "oracle")
  return config


def get_config(preset: str | None = None, **overrides) -> ml_collections.ConfigDict:
  """The preset's config (default: the task's, `task=NAME`, else lexicon's) with `overrides`,
  validated and locked. An override is a path (`"train.total_steps"`), a field's own name where
  unambiguous (`total_steps`), or an old flat name (`label_size`, FLAT); `task=` and `oracle=`
  switch the task or the oracle first, with their settings' defaults."""
  task, oracle = _switches(overrides)
  return _finish(start(preset, task=task, oracle=oracle), overrides)


def replace(config, **overrides) -> ml_collections.ConfigDict:
  """A copy of `config` with `overrides` (named as `get_config` names them), validated and
  locked; `config` itself is left as it is."""
  task, oracle = _switches(overrides)
  return _finish(_switch(ml_collections.ConfigDict(config.to_dict()), task, oracle), overrides)


def to_dict(config) -> dict:
  """What workdir/config.json holds: the fields as JSON gives them back, and the layout's
  version (so a workdir of an older layout is refused, not misread)."""
  return {"config_version": CONFIG_VERSION, **json.loads(config.to_json())}


def to_json(config) -> str:
  return json.dumps(to_dict(config), indent=2)


def check_version(saved: dict, workdir: str) -> dict:
  """A ValueError, in one line, for a config.json of another layout than this amplify's; else
  the saved config with the blocks added to this layout since (`_ADDED`)."""
  version = saved.get("config_version")
  if version is None:
    raise ValueError(f"workdir {workdir} was made by an older amplify (flat config): use a new "
                     "--workdir")
  if version != CONFIG_VERSION:
    raise ValueError(f"workdir {workdir} was made by another amplify (config_version "
                     f"{version!r}, this one reads {CONFIG_VERSION!r}): use a new --workdir")
  try:
    saved = _renamed(json.loads(json.dumps(saved)), workdir)
  except (AttributeError, TypeError, KeyError, ZeroDivisionError):  # a block not of its shape
    raise ValueError(f"workdir {workdir}: its config.json is damaged (its blocks are not a "
                     "config's): put back the config.json it was run with, or use a new "
                     "--workdir") from None
  return {**{name: default() for name, default in _ADDED.items() if name not in saved}, **saved}


def _renamed(saved: dict, workdir: str) -> dict:
  """Fields of layout 2 renamed or removed after workdirs were written in it, read as today's:
  `train.replay_size` rows as `train.replay_rounds` rounds of `label.size`; `model.
  answer_in_value_slot`, which the policy now derives (`amplify.learn.policy.value_slot_fits`),
  dropped unless it asked for the key slot where the value slot fits (no longer offered);
  `train.shard_params`, added since, as its default (a copy of the parameters on each device);
  `train.focus`, added since, as off (the draw such a run was started with)."""
  train, model = saved.get("train", {}), saved.get("model", {})
  train.setdefault("shard_params", False)
  train.setdefault("focus", False)
  if "replay_size" in train:
    rows, size = train.pop("replay_size"), saved["label"]["size"]
    if rows % size:
      raise ValueError(f"workdir {workdir} replays {rows} rows, not a whole number of rounds of "
                       f"{size} labels (train.replay_rounds): use a new --workdir")
    train["replay_rounds"] = rows // size
  if (model.pop("answer_in_value_slot", None) is False and not model.get("pointer_init")
      and saved.get("task", {}).get("name") == "permutation"):
    raise ValueError(f"workdir {workdir} was run with the answer in the key slot, which this "
                     "amplify no longer offers: use a new --workdir")
  return saved


# Blocks added to layout 2 after workdirs were written in it, read as their defaults: the size
# curriculum (an older run resumed goes on at the full size: its rounds' lines name no next size).
_ADDED = {"curriculum": lambda: base.get_config().curriculum.to_dict()}


def from_dict(saved: dict, workdir: str) -> ml_collections.ConfigDict:
  """The locked config a workdir's config.json holds (after `check_version`)."""
  saved = check_version(saved, workdir)
  config = ml_collections.ConfigDict({k: v for k, v in saved.items() if k != "config_version"})
  config.lock()
  return config

