"""Launch an experiment: `python -m amplify.main --task=permutation --workdir=DIR`.

Every field of `amplify.config.Config` is a flag of the same name; `--preset` picks the defaults
they override; without it, the preset named after `--task` (default: lexicon). The task's and the
oracle's own settings are flags `--task.FIELD` and `--oracle.FIELD`, defined once the command
line has named them (`--task=NAME`, `--oracle=NAME`, built in or a plug-in: `amplify.registry`).
"""
from __future__ import annotations

import dataclasses
import os
import sys

from absl import app, flags, logging

from amplify import config as config_lib
from amplify import registry

_PRESET = flags.DEFINE_enum("preset", None, sorted(config_lib.PRESETS),
                            "Named defaults that the other flags override (default: the preset "
                            "named after --task).")
_WORKDIR = flags.DEFINE_string("workdir", None, "Where config.json, metrics.jsonl and "
                               "summary.json go (default: workdirs/TASK, or workdirs/TASK_ARM "
                               "for an --arm other than ltp).")

_DEBUG = flags.DEFINE_bool("debug", False, "Show the traceback of a failure (without it, one "
                           "line names the phase and the cause).")

_DEFINE = {bool: flags.DEFINE_bool, int: flags.DEFINE_integer, float: flags.DEFINE_float,
           str: flags.DEFINE_string}
_OWN = ("task_config", "oracle_config")  # set as --task.FIELD / --oracle.FIELD
for _field in dataclasses.fields(config_lib.Config):
  if _field.name in _OWN:
    continue
  _kind = type(getattr(config_lib.Config(), _field.name))
  _DEFINE[_kind](_field.name, None, f"Config.{_field.name} ({_kind.__name__}); default from the "
                 f"preset (lexicon preset: {getattr(config_lib.Config(), _field.name)!r}).")


def define_plugin_flags(argv: list[str]) -> None:
  """Defines --task.FIELD and --oracle.FIELD for the task and the oracle `argv` names (their
  settings' fields). A name that is not a setting of either exits with the settings there are."""
  try:
    flags.FLAGS(argv, known_only=True)
    preset = config_lib.PRESETS.get(flags.FLAGS.preset) if flags.FLAGS.preset else None
    task = flags.FLAGS.task or (preset.task if preset else config_lib.Config.task)
    oracle = flags.FLAGS.oracle or (preset.oracle if preset else config_lib.Config.oracle)
    owned = {"task": registry.task_plugin(task).settings,
             "oracle": registry.oracle_plugin(oracle).settings}
  except (flags.Error, ValueError):
    return  # reported by the full parse (or by config_from_flags) with its own message
  finally:
    flags.FLAGS.unparse_flags()
  for owner, settings in owned.items():
    for f in dataclasses.fields(settings):
      default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
      name = f"{owner}.{f.name}"
      if name not in flags.FLAGS:
        _DEFINE[type(default)](name, None, f"{settings.__name__}.{f.name} "
                               f"({type(default).__name__}, default {default!r}).")
  for arg in argv[1:]:
    name = arg.removeprefix("--").split("=", 1)[0]
    owner = name.split(".", 1)[0]
    if arg.startswith("--") and owner in owned and "." in name and name not in flags.FLAGS:
      have = [f"--{owner}.{f.name}" for f in dataclasses.fields(owned[owner])]
      print(f"error: --{name}: {owner} {(task if owner == 'task' else oracle)!r} has no such "
            f"setting; its settings are {have or 'none'}.", file=sys.stderr)
      sys.exit(2)


def config_from_flags() -> config_lib.Config:
  overrides = {f.name: flags.FLAGS[f.name].value for f in dataclasses.fields(config_lib.Config)
               if f.name not in _OWN and flags.FLAGS[f.name].value is not None}
  overrides |= {name: flags.FLAGS[name].value for name in flags.FLAGS
                if name.startswith(("task.", "oracle.")) and flags.FLAGS[name].value is not None}
  return config_lib.get_config(_PRESET.value, **overrides)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}; every setting is a --flag=value.")
  from amplify.views import report  # after flag parsing: --help stays fast
  from amplify.loop import run as loop
  if not flags.FLAGS["verbosity"].present:  # progress is printed; library INFO logs are noise
    logging.set_verbosity(logging.WARNING)
  try:  # every bad setting is reported before any work starts
    config = config_from_flags()
    workdir = _WORKDIR.value or os.path.join(
        "workdirs", config.task if config.arm == "ltp" else f"{config.task}_{config.arm}")
    checked = loop.check(config, workdir)
    os.makedirs(workdir, exist_ok=True)
  except (ValueError, OSError) as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  from amplify.oracles.per_question import OracleError, Stopped
  try:
    loop.run(config, workdir, checked)
  except (Stopped, KeyboardInterrupt):
    kept = (f"every answer given is in {config.oracle_store}" if config.oracle_store else
            "finished rounds are kept (no --oracle_store: this round's answers are not)")
    print(f"stopped: {kept}; run the same command to go on.", flush=True)
    return
  except OracleError as e:
    if _DEBUG.value:
      raise
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  except loop.RunError as e:
    if _DEBUG.value:
      raise
    print(f"error: {e}. The work so far is kept in {workdir}: the same command resumes it "
          "(--debug shows the traceback).", file=sys.stderr)
    sys.exit(1)
  print(report.format_table(workdir))


def cli() -> None:
  """The command line, for `python -m amplify.main` and for a script that registers its own
  task or oracle (`amplify.registry.register_task`) before handing over to it."""
  define_plugin_flags(sys.argv)
  app.run(main)


if __name__ == "__main__":
  cli()
