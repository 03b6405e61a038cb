"""Plug-ins: tasks and oracles found by name, each with settings of its own.

A task or an oracle defined outside the package runs with `--task=NAME` / `--oracle=NAME`:

- in a script or notebook, `register_task(NAME, make, settings)` / `register_oracle(...)`;
- from an installed package, an entry point in the group `amplify.tasks` / `amplify.oracles`
  whose object is a `TaskPlugin` / `OraclePlugin` (pyproject.toml:
  `[project.entry-points."amplify.tasks"] mytask = "mypkg.tasks:PLUGIN"`).

The built-in tasks and oracles are entry points of amplify's own pyproject.toml, found the same
way. A tree run without being installed (`PYTHONPATH=.`) reads them from that pyproject.toml.
This module imports nothing of amplify's, so no plug-in module imports back into a cycle.

`settings` is a dataclass of the plug-in's own settings, set from the command line as
`--task.FIELD=VALUE` / `--oracle.FIELD=VALUE` (`amplify.configs.cli` defines those flags for
the task and oracle named). Factories:

- task: `make(settings, key) -> (Task, GroundTruth)`; key is the world's RNG key.
- oracle: `make(task, settings, human) -> Oracle | QuestionOracle`, where `human` is the task's
  scripted H for the arm (what `noisy` wraps). An oracle factory gets the task's observable parts
  and its own settings, never the run's config or seed.
"""
from __future__ import annotations

import dataclasses
import pathlib
from importlib import metadata
from typing import Any, Callable

TASK_GROUP, ORACLE_GROUP = "amplify.tasks", "amplify.oracles"


@dataclasses.dataclass(frozen=True)
class NoSettings:
  """The settings of a plug-in that has none."""


@dataclasses.dataclass(frozen=True)
class TaskPlugin:
  """`make(settings, key) -> (Task, GroundTruth)`; `settings`, its dataclass; `config`, the run
  config it ships like a built-in task (a module path "pkg.configs" or the function itself,
  `get_config(variant: str) -> ConfigDict` built on `amplify.configs.base.get_config()`; None: the
  shared defaults with `settings`' defaults). Its variants run as `--preset=NAME_VARIANT`."""
  make: Callable[[Any, Any], tuple]
  settings: type = NoSettings
  config: str | Callable | None = None


@dataclasses.dataclass(frozen=True)
class OraclePlugin:
  make: Callable[[Any, Any, Any], Any]
  settings: type = NoSettings


_REGISTERED: dict[str, dict[str, Any]] = {TASK_GROUP: {}, ORACLE_GROUP: {}}


def _check(name: str, settings: type) -> None:
  if not name.isidentifier():
    raise ValueError(f"plug-in name {name!r}: use a Python identifier (letters, digits, _).")
  if not dataclasses.is_dataclass(settings):
    raise ValueError(f"plug-in {name!r}: settings must be a dataclass (got {settings!r}).")


def register_task(name: str, make, settings: type = NoSettings, config=None) -> None:
  """Makes `--task=name` run `make(settings, key)`; replaces an earlier task of that name.
  `config`: see `TaskPlugin`."""
  _check(name, settings)
  _REGISTERED[TASK_GROUP][name] = TaskPlugin(make, settings, config)


def register_oracle(name: str, make, settings: type = NoSettings) -> None:
  """Makes `--oracle=name` use `make(task, settings, human)`; replaces an earlier one."""
  _check(name, settings)
  _REGISTERED[ORACLE_GROUP][name] = OraclePlugin(make, settings)


def _own_entry_points(group: str) -> list[metadata.EntryPoint]:
  """amplify's built-ins, from its pyproject.toml, where amplify is not installed."""
  try:
    metadata.distribution("amplify")
    return []  # installed: its entry points are in metadata.entry_points
  except metadata.PackageNotFoundError:
    pass
  import tomllib  # pylint: disable=g-import-not-at-top
  with open(pathlib.Path(__file__).parents[1] / "pyproject.toml", "rb") as f:
    declared = tomllib.load(f)["project"]["entry-points"].get(group, {})
  return [metadata.EntryPoint(name, value, group) for name, value in declared.items()]


def _entry_points(group: str) -> dict[str, metadata.EntryPoint]:
  found = [*_own_entry_points(group), *metadata.entry_points(group=group)]
  return {ep.name: ep for ep in found}


def names(group: str) -> list[str]:
  return sorted(_REGISTERED[group].keys() | _entry_points(group).keys())


def find(group: str, name: str, flag: str = ""):
  """The plug-in registered (or installed) under `name`; a ValueError naming the choices and the
  flag that named it (default --task / --oracle)."""
  if name in _REGISTERED[group]:
    return _REGISTERED[group][name]
  kind, default_flag, plugin_type = (("task", "--task", TaskPlugin) if group == TASK_GROUP
                                     else ("oracle", "--oracle", OraclePlugin))
  flag = flag or default_flag
  entry = _entry_points(group).get(name)
  if entry is None:
    raise ValueError(f"unknown {kind} {name!r} ({flag}); choose one of {names(group)}, or "
                     f"register one (amplify.registry.register_{kind}, or an entry point in the "
                     f"group {group!r}).")
  try:
    plugin = entry.load()
  except Exception as e:  # a broken plug-in package: say which, not a traceback
    raise ValueError(f"{kind} {name!r}: loading entry point {entry.value!r} failed: "
                     f"{type(e).__name__}: {e}") from e
  if not isinstance(plugin, plugin_type):
    raise ValueError(f"{kind} {name!r}: entry point {entry.value!r} is a "
                     f"{type(plugin).__name__}, not an amplify.registry.{plugin_type.__name__}.")
  _check(name, plugin.settings)
  _REGISTERED[group][name] = plugin
  return plugin


def task_plugin(name: str) -> TaskPlugin:
  return find(TASK_GROUP, name)


def oracle_plugin(name: str, flag: str = "--oracle") -> OraclePlugin:
  return find(ORACLE_GROUP, name, flag)
