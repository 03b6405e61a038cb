"""Every command shown in README.md, docs/*.md and the results' READMEs runs with today's flags:
an `amplify` command's flags parse into a valid config (the CLI's own parser, no run), an
`amplify-report` command's flags are the report's, an `amplify-web` command's are its own, an
experiment's flags are those its script defines or run flags (parsed into each named preset's
config, and train_probe's wrapped command as amplify's), and an example's script (which
registers its task, then is `amplify`) parses as `amplify` does."""
from __future__ import annotations

import ast
import copy
import importlib
import pathlib
import re
import runpy
import shlex
import sys

import pytest
from absl import flags

from amplify import registry
from amplify.configs import cli

ROOT = pathlib.Path(__file__).parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
        *sorted((ROOT / "experiments" / "results").glob("*/README.md"))]
_FENCE = re.compile(r"```(?:bash|sh|console)?\n(.*?)```", re.S)
_INLINE = re.compile(r"`([^`\n]+)`")


def _commands(text: str) -> list[str]:
  """The command lines of a document: fenced lines (continuations joined, comments dropped,
  `$ ` prompts removed) and inline code that starts with a command."""
  lines = []
  for block in _FENCE.findall(text):
    for line in re.sub(r"\\\n\s*", " ", block).splitlines():
      line = line.strip().removeprefix("$ ")
      lines += [part.strip() for part in line.split("&&")]
  lines += _INLINE.findall(_FENCE.sub("", text))
  out = []
  for line in lines:
    line = line.split(" #", 1)[0].strip()
    line = re.sub(r"^(\w+=\S+ )+", "", line)  # environment assignments
    if re.match(r"(amplify(-report|-web)?|python3? -m amplify\.\S+"
                r"|python3? (experiments|examples)/\S+)( |$)", line):
      out.append(line)
  return out


COMMANDS = sorted({(path.relative_to(ROOT).as_posix(), c) for path in DOCS
                   for c in _commands(path.read_text())})


def _argv(command: str) -> tuple[str, list[str]]:
  words = shlex.split(command)
  if words[0] in ("python", "python3"):
    words = words[2:] if words[1] == "-m" else words[1:]
  program = {"amplify.main": "amplify", "amplify.views.report": "amplify-report",
             "amplify.views.web.cli": "amplify-web"}.get(words[0], words[0])
  return program, words[1:]


def _defined_flags(script: pathlib.Path) -> set[str]:
  """The flags a script defines (`flags.DEFINE_*("name", ...)`), with those of the experiments
  modules it imports."""
  names, seen, todo = set(), set(), [script]
  while todo:
    path = todo.pop()
    if path in seen or not path.exists():
      continue
    seen.add(path)
    for node in ast.walk(ast.parse(path.read_text())):
      if (isinstance(node, ast.Call) and getattr(node.func, "attr", "").startswith("DEFINE")
          and node.args and isinstance(node.args[0], ast.Constant)):
        names.add(node.args[0].value)
      if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        todo.append(ROOT / "experiments" / f"{node.module.split('.')[-1]}.py")
      if isinstance(node, ast.Import):
        todo += [ROOT / "experiments" / f"{a.name}.py" for a in node.names]
  return names


def _flags_of(module: str) -> dict[str, tuple[str, list | None]]:
  """The flags an amplify module (a path under the project) defines: name -> (its DEFINE_
  function, an enum's values, evaluated where the module names them)."""
  tree = ast.parse((ROOT / module).read_text())
  imported = {a.asname or a.name: f"{node.module}.{a.name}" for node in ast.walk(tree)
              if isinstance(node, ast.ImportFrom) and node.module for a in node.names}
  out = {}
  for node in ast.walk(tree):
    if (isinstance(node, ast.Call) and getattr(node.func, "attr", "").startswith("DEFINE_")
        and node.args and isinstance(node.args[0], ast.Constant)):
      values = None
      if node.func.attr == "DEFINE_enum":
        expr = ast.unparse(node.args[2])
        scope = {name: importlib.import_module(path) for name, path in imported.items()
                 if expr.startswith(f"{name}.")}
        values = list(eval(expr, scope))  # pylint: disable=eval-used (the module's own source)
      out[node.args[0].value] = (node.func.attr, values)
  return out


def _main_flags() -> list[tuple[str, str]]:
  """(name, DEFINE_ function) of each flag amplify/main.py defines beside the config's."""
  return [(name, define) for name, (define, _) in _flags_of("amplify/main.py").items()]


def _check_flags(args: list[str], module: str, where: str, command: str) -> None:
  """Each --flag[=value] of `args` one that `module` defines (an enum's value one of its)."""
  defined = _flags_of(module)
  for arg in args:
    name, _, value = re.sub(r"^--(no)?", "", arg).partition("=")
    assert name in defined, f"{where}: {command}: {module} defines no --{name}"
    values = defined[name][1]
    assert values is None or value in values, f"{where}: {command}: --{name}={value}"


def test_the_docs_show_commands():
  programs = {_argv(c)[0] for _, c in COMMANDS}
  assert {"amplify", "amplify-report"} <= programs, programs


def _parse_amplify(args: list[str]) -> None:
  """`amplify ARGS` parsed as amplify.main parses them; raises on any unknown flag or bad
  value."""
  fv = flags.FlagValues()
  for name, define in _main_flags():  # amplify.main's own flags, of their kinds
    getattr(flags, define)(name, None, "", flag_values=fv)
  cli.parse(["amplify", *args], fv)


_RUN_FLAGS = re.compile(
    r"^--(no)?(config\.|(task|oracle)[.=]|(oracle_store|arm|rounds|seed)=|(baselines|gate)(=|$))")


def _run_commands(args: list[str]) -> list[list[str]]:
  """The runs an experiment's command makes where it names its presets: for each preset (and
  each seeds.py `--variant`), the preset with the command's run flags, as `amplify` flags."""
  presets = [p for a in args if a.startswith("--preset=") for p in a[9:].split(",")]
  variants = [shlex.split(a[10:]) for a in args if a.startswith("--variant=")] or [[]]
  run = [a for a in args if _RUN_FLAGS.match(a)]
  return [[f"--preset={p}", *run, *v] for p in presets for v in variants]


@pytest.mark.parametrize("where,command", COMMANDS)
def test_a_documented_command_parses(where, command, monkeypatch):
  program, args = _argv(command)
  if program.startswith("examples/"):  # a script that registers its task, then is `amplify`
    monkeypatch.setattr(registry, "_REGISTERED", copy.deepcopy(registry._REGISTERED))
    monkeypatch.setattr(sys, "path", list(sys.path))  # the script adds its folder
    runpy.run_path(str(ROOT / program))  # not as __main__: it registers and returns
    program = "amplify"
  if program == "amplify":
    if where == "docs/plugins.md":  # its example plug-ins are the reader's, not installed here
      args = [a for a in args if not a.startswith(("--task=", "--oracle="))]
    if "--helpfull" in args or "--help" in args:
      return
    _parse_amplify(args)
  elif program == "amplify-report":
    _check_flags(args, "amplify/views/report.py", where, command)
  elif program == "amplify-web":
    assert args[:1] in ([], ["invite"], ["serve"]), f"{where}: {command}"  # [] names it
    _check_flags(args[1:], "amplify/views/web/cli.py", where, command)
  else:
    script = ROOT / program
    assert script.exists(), f"{where}: {command}: no such script"
    defined = _defined_flags(script)
    own = args[:args.index("--")] if "--" in args else args  # after --: a wrapped command
    for arg in own:
      if not arg.startswith("--"):
        continue
      name = re.sub(r"^--(no)?", "", arg).split("=", 1)[0]
      assert name in defined or name.split(".")[0] in ("config", "task", "oracle"), (
          f"{where}: {command}: {script.name} defines no --{name}")
    for argv in _run_commands(own):  # each preset's run, with the run flags (and variants)
      cli.parse(["amplify", *argv], flags.FlagValues())
    if script.name == "train_probe.py":  # after --: amplify's command line
      _parse_amplify(args[args.index("--") + 1:])
