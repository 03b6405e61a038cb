"""The shape every study in experiments/ shares: its flags, its runs and its results.

  python experiments/STUDY.py --root=workdirs/experiments --seeds=0,1,2 --preset=lexicon
  python experiments/STUDY.py --seeds=0 --config.train.total_steps=300 --oracle.noise_rate=0.05
Seeds: `--seeds` (default 0). Machine: any; a study's results name the one it ran on.

A study runs configs made by amplify's own command line (`amplify.configs.cli`): `--preset` (or
`--config=FILE.py[:VARIANT]`), the study's own settings, then the run flags given here, handed to
every run (`--config.PATH=V`, `--task.F=V`, `--oracle.F=V` and the shorthands `--task`,
`--oracle`, `--oracle_store`, `--arm`, `--rounds`, `--baselines`, `--gate`), then what the study
varies and the seed. Each run goes into ROOT/NAME/RUN_sSEED (NAME: `--name`, default the study's
name); a workdir that holds a finished run of the same config is read, not run again, so an
interrupted study resumes, and one of another config is refused (use another --root or --name).
A study that asks (`run(..., keep=True)`: reproduce_2018) keeps each finished run's record beside
its results, and reads it where the workdir is absent.
The results, RESULTS/FOLDER/NAME.{json,md,png}, are written atomically.
"""
from __future__ import annotations

import os
import platform
import re
import shlex
import shutil
import sys

from absl import app, flags, logging
import numpy as np

_SHORTHANDS = ("task", "oracle", "oracle_store", "arm", "rounds", "baselines", "gate")
_DOTTED = re.compile(r"^--?(no)?(config|task|oracle)\.")
_ARGV: list[str] = []  # the command line, as typed
_DOTTED_ARGS: list[str] = []  # its --config.*, --task.*, --oracle.* flags
FLAGS = flags.FLAGS


def define_flags() -> list[str]:
  """The shared flags (`main` defines them, so a test that imports a study defines none, and
  amplify.main's flags can live beside it); returns their names."""
  before = set(FLAGS)
  flags.DEFINE_string("root", "workdirs/experiments", "Where the runs' workdirs go: "
                      "ROOT/NAME/RUN_sSEED.")
  flags.DEFINE_list("seeds", ["0"], "The runs' seeds, a comma list.")
  flags.DEFINE_list("preset", None, "The presets to run, a comma list (default: the study's).")
  flags.DEFINE_string("results", "experiments/results", "Where the results go: "
                      "RESULTS/FOLDER/NAME.{json,md,png}.")
  flags.DEFINE_string("name", None, "This sweep's name (default: the study's): its runs' folder "
                      "under --root and its results' file name.")
  # amplify's run flags (amplify.configs.cli), handed to every run as they are given
  flags.DEFINE_string("config", None, "A config file for every run, FILE.py[:VARIANT] (instead "
                      "of --preset); fields as --config.PATH=VALUE.")
  flags.DEFINE_string("task", None, "Run flag: the task (its settings: --task.FIELD=VALUE).")
  flags.DEFINE_string("oracle", None, "Run flag: who answers as H (--oracle.FIELD=VALUE).")
  flags.DEFINE_string("oracle_store", None, "Run flag: the answer store, SQLite.")
  flags.DEFINE_string("arm", None, "Run flag: the comparison to run.")
  flags.DEFINE_integer("rounds", None, "Run flag: rounds of amplification.")
  flags.DEFINE_bool("baselines", None, "Run flag: also train prosaic ML and the ceiling.")
  flags.DEFINE_bool("gate", None, "Run flag: the type-2 gate.")
  return sorted(set(FLAGS) - before)


def main(study_main) -> None:
  """`app.run(study_main)` with the shared flags defined (and listed by --help) and the run
  flags split off before absl parses the rest."""
  for name in define_flags():
    FLAGS.register_key_flag_for_module(sys.argv[0], FLAGS[name])
  app.run(study_main, flags_parser=_flags_parser)


def _flags_parser(argv: list[str]) -> list[str]:
  _ARGV[:] = argv
  rest, args = [argv[0]], list(argv[1:])
  while args:
    arg = args.pop(0)
    if not _DOTTED.match(arg):
      rest.append(arg)
      continue
    if "=" not in arg and args and not args[0].startswith("-"):
      arg = f"{arg}={args.pop(0)}"  # --config.PATH VALUE
    _DOTTED_ARGS.append(arg)
  try:
    return flags.FLAGS(rest)
  except flags.Error as e:
    sys.exit(f"error: {e}")


def run_flags() -> list[str]:
  """The run flags of the command line, as amplify's flags."""
  shorthands = [f"--{name}={FLAGS[name].value}" for name in _SHORTHANDS
                if FLAGS[name].present]
  return shorthands + list(_DOTTED_ARGS)


def seeds() -> list[int]:
  try:
    return [int(s) for s in FLAGS.seeds]
  except ValueError:
    sys.exit(f"error: --seeds={','.join(FLAGS.seeds)}: give whole numbers, e.g. --seeds=0,1,2")


def presets(default: list[str]) -> list[str]:
  """The configs to start from: --config's file, else --preset, else the study's `default`."""
  return [FLAGS.config] if FLAGS.config else (FLAGS.preset or default)


def label(preset: str) -> str:
  """A preset's name in workdirs and tables (`lexicon_tiny` for a file's lexicon.py:tiny)."""
  if ".py" not in preset:
    return preset
  path, _, variant = preset.partition(":")
  return "_".join(filter(None, [os.path.basename(path).removesuffix(".py"), variant]))


def _script() -> str:
  return os.path.basename(_ARGV[0] if _ARGV else sys.argv[0]).removesuffix(".py")


def study() -> str:
  """This sweep's name: --name, else the script's."""
  return FLAGS.name or _script()


def argv_for(preset: str, seed: int, defaults=(), variant=()) -> list[str]:
  """amplify's flags for one run: the preset, the study's `defaults`, the run flags given, what
  the study varies (`variant`; give it as --config.PATH=V so that it wins), the seed."""
  return [preset_flag(preset), *defaults, *run_flags(), *variant, f"--seed={seed}"]


def preset_flag(preset: str) -> str:
  """The flag that starts from `preset`: a config file's --config, else --preset."""
  return f"--config={preset}" if ".py" in preset else f"--preset={preset}"


def config_for(argv: list[str]):
  """The config amplify's command line makes of `argv`; exits 2 with one line if it is refused."""
  from amplify.configs import cli  # pylint: disable=g-import-not-at-top (after --help)
  try:
    return cli.config_from_flags(["amplify", *argv], flags.FlagValues())
  except (ValueError, flags.Error) as e:
    print(f"error: {shlex.join(argv)}: {str(e).splitlines()[0]}", file=sys.stderr)
    sys.exit(2)


def make_policy(spec, model, key, **kwargs):
  """amplify's policy (`amplify.learn.policy.make_policy`) for a study that builds one itself; a
  model setting the task refuses is one line (exit 2), as from amplify."""
  from amplify.learn import policy  # pylint: disable=g-import-not-at-top (after --help)
  try:
    return policy.make_policy(spec, model, key, **kwargs)
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)


def workdir_for(run_name: str, seed: int) -> str:
  return os.path.join(FLAGS.root, study(), f"{run_name}_s{seed}")


# A finished run's record, without its checkpoints: what a study that reads only the summary and
# metrics.jsonl needs, small enough for git (a few KB to a few hundred)
KEPT_FILES = ("config.json", "metrics.jsonl", "summary.json", "world.json")


def kept_for(run_name: str, seed: int) -> str:
  """Where `run(..., keep=True)` keeps a finished run's record: RESULTS/FOLDER/runs/NAME/
  RUN_NAME_sSEED, beside the results (so a sweep spread over machines adds up in git)."""
  return os.path.join(FLAGS.results, _script(), "runs", study(), f"{run_name}_s{seed}")


def finished(config, workdir: str) -> dict | None:
  """The summary of `workdir`'s run where it is a finished run of `config`; None where the
  workdir is absent or holds no finished run yet. It only reads: a damaged workdir, or one
  holding a run of another config, is refused in one line (exit 1), so a study never reads
  another config's run as this one's."""
  # pylint: disable-next=g-import-not-at-top (after --help)
  from amplify.loop.workdir import check_config, finished_summary
  if not os.path.isdir(workdir):
    return None
  try:
    check_config(config, workdir)
    return finished_summary(workdir)
  except ValueError as e:
    sys.exit(f"error: {e} (here: another --root or --name)")


def _kept_summary(config, kept: str) -> dict | None:
  """The summary of the run kept in `kept`, if it is a finished run of `config`; else None (no
  record, another config's, or one this amplify cannot read: the run is made again)."""
  # pylint: disable=g-import-not-at-top (after --help)
  from amplify.files.jsonio import read_summary
  from amplify.loop.workdir import config_differences
  if not os.path.exists(os.path.join(kept, "config.json")):  # none, or a copy cut short
    return None
  try:
    old, changed = config_differences(config, kept)
    return read_summary(kept) if old is not None and not changed else None
  except ValueError as e:
    print(f"warning: the kept record {kept} is not read: {e}", flush=True)
    return None


def run(run_name: str, preset: str, seed: int, defaults=(), variant=(), keep=False,
        finished_only=False) -> dict | None:
  """Runs one config (`argv_for`) into ROOT/NAME/RUN_NAME_sSEED, or reads its summary if that
  workdir holds a finished run of it. With `keep`, a finished run's record (KEPT_FILES) is kept
  in `kept_for`, and read from there, with no run, where the workdir holds none: a run finished
  on another machine. Returns {name, seed, workdir, command, summary}; `workdir` is the record's
  folder where the run was read from its record. With `finished_only`, runs nothing: None where
  neither holds a finished run of the config (a workdir holding another config's run is refused,
  as without it)."""
  # pylint: disable=g-import-not-at-top (after --help)
  from amplify.loop import run as loop
  from amplify.loop.workdir import check_workdir
  logging.set_verbosity(logging.WARNING)  # the runs print their progress
  argv = argv_for(preset, seed, defaults, variant)
  config, workdir = config_for(argv), workdir_for(run_name, seed)
  command = shlex.join(["amplify", *argv, f"--workdir={workdir}"])
  kept = kept_for(run_name, seed)
  summary = finished(config, workdir)
  if summary is None and keep and (kept_summary := _kept_summary(config, kept)):
    print(f"{run_name}, seed {seed}: finished earlier, its record kept in {kept}: {command}",
          flush=True)
    return {"name": run_name, "seed": seed, "workdir": kept, "command": command,
            "summary": kept_summary}
  if summary is None and finished_only:
    print(f"{run_name}, seed {seed}: not finished, left out", flush=True)
    return None
  print(f"{run_name}, seed {seed}: {'finished earlier' if summary else 'running'}: {command}",
        flush=True)
  if summary is None:
    try:  # the workdir's checks, then the run's, before any work; a failure is one line
      check_workdir(config, workdir)
    except ValueError as e:
      sys.exit(f"error: {e} (here: another --root or --name)")
    try:
      checked = loop.check(config, workdir)
    except (ValueError, OSError) as e:
      print(f"error: {e}", file=sys.stderr)
      sys.exit(2)
    try:
      summary = loop.run(config, workdir, checked)
    except (loop.OracleError, loop.RunError) as e:
      line, status = loop.failure(e, workdir, f"adding --debug to the run's command, {command},")
      print(line, file=sys.stderr)
      sys.exit(status)
  if keep:
    _keep(workdir, kept)
  return {"name": run_name, "seed": seed, "workdir": workdir, "command": command,
          "summary": summary}


def _keep(workdir: str, kept: str) -> None:
  """Copies a finished run's KEPT_FILES into `kept`, each atomically, config.json last (and
  removed first), so that a copy cut short is never read as a record of the new config; a file
  the run lacks is removed from the record."""
  os.makedirs(kept, exist_ok=True)
  config = os.path.join(kept, "config.json")
  if os.path.exists(config):
    os.remove(config)
  for name in [*sorted(set(KEPT_FILES) - {"config.json"}), "config.json"]:
    if os.path.exists(os.path.join(workdir, name)):
      shutil.copyfile(os.path.join(workdir, name), os.path.join(kept, f"{name}.tmp"))
      _replace(os.path.join(kept, f"{name}.tmp"), os.path.join(kept, name))
    elif os.path.exists(os.path.join(kept, name)):
      os.remove(os.path.join(kept, name))


def records(run_: dict) -> list[dict]:
  """A run's metrics lines."""
  from amplify.views import report  # pylint: disable=g-import-not-at-top
  return report.read_metrics(run_["workdir"])


def real_h_calls(records: list[dict], upto: int | None = None) -> int:
  """The real H's answers in a run's rounds (up to round `upto`): its labels (a learned H' counts
  only the questions it left to the real H) and its answers to the type-2 gate (the real H's
  tree, behind H' too)."""
  return sum(r.get("real_h_calls", r["oracle_calls"]) if r["phase"] == "label" else
             r.get("type2_calls", 0) for r in records
             if r["phase"] in ("label", "eval") and (upto is None or r["round"] <= upto))


def command_line() -> str:
  return shlex.join(["python", f"experiments/{_script()}.py", *(_ARGV or sys.argv)[1:]])


def machine() -> dict:
  import jax  # pylint: disable=g-import-not-at-top
  devices = jax.devices()
  return {"platform": platform.platform(), "python": platform.python_version(),
          "cpus": os.cpu_count(), "jax": jax.__version__,
          "devices": f"{len(devices)} x {devices[0].device_kind} ({devices[0].platform})"}


def describe_machine(m: dict) -> str:
  return (f"{m['devices']}, {m['cpus']} CPUs, {m['platform']}, Python {m['python']}, "
          f"jax {m['jax']}")


def mean_spread(values: list, fmt: str = "{:.3f}") -> str:
  """`mean ± standard deviation` (ddof 1); one value alone, marked `(n=1)` (no spread to show);
  `-` where a value is missing."""
  if not values or any(v is None for v in values):
    return "-"
  values = np.asarray(values, float)
  if len(values) == 1:
    return f"{fmt.format(values[0])} (n=1)"
  return f"{fmt.format(values.mean())} ± {fmt.format(values.std(ddof=1))}"


def markdown(headers: list[str], rows: list[list]) -> str:
  lines = ["| " + " | ".join(headers) + " |", "|" + " --- |" * len(headers)]
  return "\n".join(lines + ["| " + " | ".join(map(str, row)) + " |" for row in rows])


def accuracy_figure(rows: list[dict], draw, xlabel: str, ylabel: str = "accuracy on D*"):
  """A matplotlib figure with a panel a preset of `rows` (dicts with "preset" and "ceiling"):
  `draw(ax, preset)` draws its lines; the supervised ceiling's mean final accuracy is a dotted
  line beside them."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  presets = list(dict.fromkeys(r["preset"] for r in rows))
  fig, axes = plt.subplots(1, len(presets), figsize=(6 * len(presets), 4.2), squeeze=False)
  for ax, preset in zip(axes[0], presets):
    draw(ax, preset)
    ceilings = [r["ceiling"] for r in rows if r["preset"] == preset and r["ceiling"] is not None]
    if ceilings:
      ax.axhline(sum(ceilings) / len(ceilings), color="k", linestyle=":",
                 label="supervised ceiling (final)")
    ax.set(title=preset, xlabel=xlabel, ylabel=ylabel, ylim=(0, 1.02))
    ax.legend(fontsize=7)
  fig.tight_layout()
  return fig


def _replace(tmp: str, path: str) -> None:
  with open(tmp, "rb+") as f:
    os.fsync(f.fileno())
  os.replace(tmp, path)


def write_results(title: str, table: str, runs: list[dict], folder: str | None = None,
                  figure=None, **extra) -> str:
  """Writes RESULTS/FOLDER/NAME.json (the title, the command line, seeds, machine, every run and
  `extra`), NAME.md (the title, command, machine and `table`) and NAME.png (`figure`, a
  matplotlib Figure, if any), each atomically. FOLDER: default the script's name. Returns the md."""
  from amplify.files.jsonio import write_json  # pylint: disable=g-import-not-at-top
  directory = os.path.join(FLAGS.results, folder or _script())
  os.makedirs(directory, exist_ok=True)
  path = os.path.join(directory, study())
  m = machine()
  write_json(f"{path}.json", {"title": title, "command": command_line(), "seeds": seeds(),
                              "machine": m, **extra, "runs": runs})
  text = f"# {title}\n\n`{command_line()}`\n\nMachine: {describe_machine(m)}.\n\n{table}\n"
  with open(f"{path}.md.tmp", "w") as f:
    f.write(text)
  _replace(f"{path}.md.tmp", f"{path}.md")
  if figure is not None:
    figure.savefig(f"{path}.png.tmp", format="png", dpi=110)
    _replace(f"{path}.png.tmp", f"{path}.png")
  print(f"{text}\nwritten: {path}.json, .md{', .png' if figure is not None else ''}", flush=True)
  return text
