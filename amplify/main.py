"""Launch an experiment: `python -m amplify.main --task=permutation --workdir=DIR`.

Every field of `amplify.config.Config` is a flag of the same name; `--preset` picks the defaults
they override; without it, the preset named after `--task` (default: lexicon).
"""
from __future__ import annotations

import dataclasses
import os
import sys

from absl import app, flags, logging

from amplify import config as config_lib

_PRESET = flags.DEFINE_enum("preset", None, sorted(config_lib.PRESETS),
                            "Named defaults that the other flags override (default: the preset "
                            "named after --task).")
_WORKDIR = flags.DEFINE_string("workdir", None, "Where config.json, metrics.jsonl and "
                               "summary.json go (default: workdirs/TASK, or workdirs/TASK_ARM "
                               "for an --arm other than ltp).")

_DEFINE = {bool: flags.DEFINE_bool, int: flags.DEFINE_integer, float: flags.DEFINE_float,
           str: flags.DEFINE_string}
for _field in dataclasses.fields(config_lib.Config):
  _kind = type(getattr(config_lib.Config(), _field.name))
  _DEFINE[_kind](_field.name, None, f"Config.{_field.name} ({_kind.__name__}); default from the "
                 f"preset (lexicon preset: {getattr(config_lib.Config(), _field.name)!r}).")


def config_from_flags() -> config_lib.Config:
  overrides = {f.name: flags.FLAGS[f.name].value for f in dataclasses.fields(config_lib.Config)
               if flags.FLAGS[f.name].value is not None}
  return config_lib.get_config(_PRESET.value, **overrides)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}; every setting is a --flag=value.")
  from amplify import inspect, rounds  # after flag parsing: --help stays fast
  if not flags.FLAGS["verbosity"].present:  # progress is printed; library INFO logs are noise
    logging.set_verbosity(logging.WARNING)
  try:  # every bad setting is reported before any work starts
    config = config_from_flags()
    workdir = _WORKDIR.value or os.path.join(
        "workdirs", config.task if config.arm == "ltp" else f"{config.task}_{config.arm}")
    checked = rounds.check(config, workdir)
    os.makedirs(workdir, exist_ok=True)
  except (ValueError, OSError) as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  rounds.run(config, workdir, checked)
  print(inspect.format_table(workdir))


if __name__ == "__main__":
  app.run(main)
