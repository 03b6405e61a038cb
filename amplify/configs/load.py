"""Where a config comes from (a config file, a task's own config) and what the task's and the
oracle's factories receive from it (their settings dataclass).

A task's config is, in this order: its plug-in's `config` (a module path "pkg.mod" or a callable
`get_config(variant)`, `amplify.registry.TaskPlugin`); a built-in's `amplify/configs/NAME.py`;
else the shared defaults (`base.get_config`) with the task's settings' defaults under `task`. So a
plug-in task needs no config of its own, and can ship one as a built-in does.
"""
from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import os
import pathlib

import ml_collections

from amplify import registry
from amplify.configs import base

_HERE = pathlib.Path(__file__).parent


def from_file(spec: str) -> ml_collections.ConfigDict:
  """`path.py` or `path.py:variant`, config_flags' syntax: the file's `get_config(variant)`."""
  path, has_variant, variant = spec.partition(":")
  if not os.path.isfile(path) or not path.endswith(".py"):
    what = "no such file" if not os.path.isfile(path) else "not a Python file:"
    raise ValueError(f"--config={spec}: {what} {path!r}; name a config file, e.g. "
                     f"--config=amplify/configs/lexicon.py:tiny (the built-in ones: "
                     f"{sorted(p.name for p in _task_files())}).")
  module_spec = importlib.util.spec_from_file_location(
      f"amplify_config_{pathlib.Path(path).stem}", path)
  module = importlib.util.module_from_spec(module_spec)
  try:
    module_spec.loader.exec_module(module)
    if not callable(getattr(module, "get_config", None)):
      raise ValueError(f"--config={spec}: {path} defines no get_config().")
    config = module.get_config(variant) if has_variant else module.get_config()
  except ValueError:
    raise
  except Exception as e:  # noqa: BLE001 (the user's file: its failure, in one line)
    raise ValueError(f"--config={spec}: {path} failed ({type(e).__name__}: {e}); fix the file.") \
        from None
  return _checked(config, spec)


def _task_files() -> list[pathlib.Path]:
  return [p for p in _HERE.glob("*.py") if p.stem not in ("__init__", "base", "load", "cli")]


def task_config(name: str, variant: str = "") -> ml_collections.ConfigDict:
  """The config `--task=name` starts from (`variant` of it: a preset's `NAME_VARIANT`)."""
  plugin = registry.task_plugin(name)
  source = getattr(plugin, "config", None)
  if source is None and name in {p.stem for p in _task_files()}:
    source = f"amplify.configs.{name}"
  if source is None:
    if variant:
      raise ValueError(f"task {name!r} ships no config, so it has no variant {variant!r} (a "
                       "plug-in ships one as TaskPlugin.config).")
    config = base.get_config()
    config.task = base.block(name, plugin.settings)
    return config
  if isinstance(source, str):
    try:
      source = importlib.import_module(source).get_config
    except (ImportError, AttributeError) as e:
      raise ValueError(f"task {name!r}: its config {source!r} cannot be loaded: "
                       f"{type(e).__name__}: {e}") from e
  try:
    config = source(variant)
  except (KeyError, ValueError) as e:  # a variant its config file does not have
    raise ValueError(f"task {name!r}: its config has no variant {variant!r} "
                     f"({type(e).__name__}: {e}).") from e
  config = _checked(config, f"task {name!r}'s config")
  if config.task.get("name") != name:
    raise ValueError(f"task {name!r}: its config sets task.name={config.task.get('name')!r}.")
  return config


def _checked(config, source: str) -> ml_collections.ConfigDict:
  """`config` if it has the engine's fields, no more and no fewer (a misspelt field would be
  kept and never read); its task's and oracle's settings are checked by their dataclasses."""
  if not isinstance(config, ml_collections.ConfigDict) or "task" not in config:
    raise ValueError(f"{source}: get_config() returned {type(config).__name__}, not a "
                     "ConfigDict built on amplify.configs.base.get_config().")
  engine = lambda c: {p for p in base.paths(c) if not p.startswith(("task.", "oracle."))}
  extra, missing = engine(config) - engine(base.get_config()), engine(base.get_config()) - engine(
      config)
  if extra or missing:
    raise ValueError(f"{source}: get_config() " + (f"sets {sorted(extra)}, which amplify has "
                     "not (misspelt?)" if extra else f"lacks {sorted(missing)}") + "; build it on "
                     "amplify.configs.base.get_config() and set only the fields it has.")
  return config


def oracle_block(name: str) -> ml_collections.ConfigDict:
  """`config.oracle` for `--oracle=name`: its name and its settings' defaults."""
  return base.block(name, registry.oracle_plugin(name).settings)


def _kind(name: str) -> str:
  groups = (registry.TASK_GROUP, registry.ORACLE_GROUP)
  tasks, oracles = (name in registry.names(group) for group in groups)
  if tasks == oracles:
    what = "both a task and an oracle" if tasks else "neither a task nor an oracle"
    raise ValueError(f"{name!r} is {what}: pass kind='task' or kind='oracle' to settings().")
  return "task" if tasks else "oracle"


def settings(sub: ml_collections.ConfigDict, kind: str | None = None):
  """The settings dataclass the plug-in's factory receives, from `config.task` or `config.oracle`
  (its fields but `name`); `kind` ("task", "oracle") where the name is both. A ValueError names a
  field the plug-in does not declare, or a value its dataclass refuses."""
  kind = kind or _kind(sub.name)
  plugin = registry.task_plugin(sub.name) if kind == "task" else registry.oracle_plugin(sub.name)
  declared = [f.name for f in dataclasses.fields(plugin.settings)]
  fields = {k: v for k, v in sub.items() if k != "name"}
  unknown = sorted(fields.keys() - set(declared))
  if unknown:
    raise ValueError(f"--{kind}.{unknown[0]}: {kind} {sub.name!r} has no such setting; its "
                     f"settings are {[f'--{kind}.{d}' for d in declared] or 'none'}.")
  return plugin.settings(**fields)
