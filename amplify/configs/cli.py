"""The command line: a config file (`ml_collections.config_flags`), every field as a flag, and the
shorthands people type.

  python -m amplify.main --config=amplify/configs/permutation.py:tiny --config.train.total_steps=300
  python -m amplify.main --task=permutation --rounds=6 --task.num_elements=16
  python -m amplify.main --preset=lexicon_tiny --oracle=noisy --oracle.noise_rate=0.1

What wins, lowest first:
1. the starting config: --config=FILE.py[:VARIANT], else --preset=NAME, else --task=NAME's config,
   else amplify/configs/lexicon.py;
2. --task=NAME (beside --config or --preset) puts NAME's default settings under config.task, and
   --oracle=NAME the oracle's under config.oracle (where it names another task or oracle);
3. the shorthands --arm, --seed, --rounds, --baselines, --gate, --oracle_store;
4. --config.PATH=VALUE and its aliases --task.FIELD / --oracle.FIELD (the last given wins).
Steps 1-3 need to be known before config_flags parses step 4: an oracle's fields exist only once
the oracle is named. So the command line is parsed twice: the flags of steps 1-3 first, then
`--config` becomes a config_flags flag holding that config, and absl parses the overrides into it
with each field's type. --config.task.name / --config.oracle.name are read as --task / --oracle.
"""
from __future__ import annotations

import re
import sys

from absl import flags
import ml_collections
from ml_collections import config_flags

from amplify import configs
from amplify.configs import base

_OVERRIDE = re.compile(r"^--?(no)?(config|task|oracle)\.")
_SWITCHES = {"task.name": "task", "oracle.name": "oracle"}
_FLAGS = ("config", "preset", "task", "oracle", "oracle_store", "arm", "seed", "rounds",
          "baselines", "gate")


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """The flags of steps 1-3 (see the module's docstring); `parse` defines them where missing."""
  define = lambda kind, name, text: kind(name, None, text, flag_values=flag_values)
  define(flags.DEFINE_string, "config", "A config file, FILE.py or FILE.py:VARIANT (default: "
         "--task's, else amplify/configs/lexicon.py); set any field as --config.PATH=VALUE.")
  define(flags.DEFINE_string, "preset", f"Named configs: {sorted(configs.PRESETS)}.")
  define(flags.DEFINE_string, "task", "The task (amplify/configs/NAME.py or a plug-in's config); "
         "its settings are --task.FIELD.")
  define(flags.DEFINE_string, "oracle", "Who answers as H (a plug-in); its settings are "
         "--oracle.FIELD.")
  define(flags.DEFINE_string, "oracle_store", "The answer store, SQLite ('' for none).")
  define(flags.DEFINE_string, "arm", "The comparison to run (amplify.loop.arms).")
  define(flags.DEFINE_integer, "seed", "Every RNG key derives from it.")
  define(flags.DEFINE_integer, "rounds", "Rounds of amplification.")
  define(flags.DEFINE_bool, "baselines", "Also train prosaic ML and the supervised ceiling.")
  define(flags.DEFINE_bool, "gate", "Deploy pi_r only if its type-2 score is not worse "
         "(--config.type2.gate).")


def _split(argv: list[str]) -> tuple[list[tuple[str, str]], list[str]]:
  """argv -> ((as typed, as --config.PATH=V) for each override, the other arguments)."""
  overrides, rest, args = [], [argv[0]], list(argv[1:])
  while args:
    arg = args.pop(0)
    match = _OVERRIDE.match(arg) if arg != "--" else None
    if arg == "--":
      rest += [arg, *args]
      break
    if not match:
      rest.append(arg)
      continue
    if "=" not in arg and args and not args[0].startswith("-"):
      arg = f"{arg}={args.pop(0)}"  # --config.PATH VALUE
    no, owner = match[1] or "", match[2]
    path = arg[match.end():] if owner == "config" else f"{owner}.{arg[match.end():]}"
    name, _, value = path.partition("=")
    if name in _SWITCHES and not no:
      rest.append(f"--{_SWITCHES[name]}={value}")
    else:
      overrides.append((arg.split("=", 1)[0], f"--{no}config.{path}"))
  return overrides, rest


def _check_paths(config, overrides: list[tuple[str, str]]) -> None:
  """A ValueError naming an override's field that the config has not, with the fields there."""
  for typed, arg in overrides:
    path = _OVERRIDE.sub("", arg).split("=", 1)[0]
    *parents, leaf = path.split(".")
    node, where = config, "the config"
    for part in parents:
      if part not in node or not hasattr(node[part], "keys"):
        raise ValueError(f"{typed}: no such field ({where} has {sorted(node.keys())}).")
      node, where = node[part], f"config.{part}" if node is config else f"{where}.{part}"
    if leaf not in node or hasattr(node[leaf], "keys"):
      if path.startswith(("task.", "oracle.")) and len(parents) == 1:
        owner = parents[0]
        have = [f"--{owner}.{k}" for k in sorted(node.keys()) if k != "name"]
        raise ValueError(f"{typed}: {owner} {node.name!r} has no such setting; its settings are "
                         f"{have or 'none'} (--{owner}=NAME picks another {owner}).")
      raise ValueError(f"{typed}: no such field ({where} has {sorted(node.keys())}).")


def _unknown_flag(config, arg: str) -> str:
  name = re.sub(r"^--?", "", arg).split("=", 1)[0]
  try:
    return f"unknown flag --{name}: did you mean --config.{configs.resolve(config, name)}?"
  except ValueError:
    return (f"unknown flag --{name}: set a field as --config.PATH=VALUE (fields: "
            f"{configs.describe(config)}), or use --{', --'.join(_FLAGS)}.")


def parse(argv: list[str], flag_values: flags.FlagValues = flags.FLAGS) -> list[str]:
  """Parses `argv` into `flag_values` (once per FlagValues), leaving the validated, locked config
  in `flag_values.config`; returns the arguments that are not flags (absl's flags_parser). A bad
  flag or value: a ValueError or flags.Error, in one line."""
  fv = flag_values
  if "preset" not in fv:
    define_flags(fv)
  if isinstance(fv["config"].value, ml_collections.ConfigDict):
    raise ValueError("amplify.configs.cli.parse: these flag values were parsed before; pass a "
                     "fresh absl.flags.FlagValues().")
  overrides, rest = _split(argv)
  # --help and its kind print at parse: kept for step 4, where the config's fields exist
  helps = [a for a in rest[1:] if a.lstrip("-").startswith(("help", "?"))]
  rest = fv([a for a in rest if a not in helps], known_only=True)  # steps 1-3
  config = configs.start(fv.preset, task=fv.task, oracle=fv.oracle, file=fv["config"].value)
  for name, path in base.SHORTHANDS.items():
    if fv[name].value is not None:
      configs.override(config, path, fv[name].value)
  _check_paths(config, overrides)
  unknown = [a for a in rest[1:] if a.startswith("-") and a != "--"]
  if unknown:
    raise ValueError(_unknown_flag(config, unknown[0]))
  delattr(fv, "config")
  argv = [argv[0], *(arg for _, arg in overrides), *rest[1:], *helps]
  config_flags.DEFINE_config_dict("config", config, "The run's config (--config.PATH=VALUE).",
                                  flag_values=fv, sys_argv=argv, lock_config=True)
  rest = fv(argv)  # step 4
  configs.validate(fv.config)
  return rest


def flags_parser(argv: list[str], flag_values: flags.FlagValues = flags.FLAGS) -> list[str]:
  """`parse` into absl's FLAGS for `app.run(main, flags_parser=...)`: a bad flag or value is one
  line on stderr and exit status 2."""
  try:
    return parse(argv, flag_values)
  except (ValueError, flags.Error) as e:
    print(f"error: {str(e).splitlines()[0] if str(e) else type(e).__name__}", file=sys.stderr)
    sys.exit(2)


def config_from_flags(argv: list[str] | None = None,
                      flag_values: flags.FlagValues | None = None):
  """The config of a command line: `argv` parsed into `flag_values` (default: a fresh
  FlagValues, so a test's parse leaves no state behind); without `argv`, the config an earlier
  parse left in `flag_values` (default absl's FLAGS, as `flags_parser` leaves it)."""
  if argv is None:
    return (flag_values or flags.FLAGS).config
  fv = flags.FlagValues() if flag_values is None else flag_values
  parse(argv, fv)
  return fv.config
