"""Launch an experiment: `amplify --task=permutation --workdir=DIR` (or `python -m amplify.main`).

The run's config is a file (`--config=amplify/configs/permutation.py:tiny`) or a shorthand for
one (`--task=NAME`, `--preset=NAME`), and every field of it is a flag: `--config.train.
total_steps=3000`, `--task.num_entities=1000`, `--oracle.noise_rate=0.1`, with `--oracle`,
`--oracle_store`, `--arm`, `--seed`, `--rounds`, `--baselines` and `--gate` as shorthands
(`amplify.configs.cli`). `main` checks every setting before any work, then runs
`amplify.loop.run.run(config, workdir)` and prints the report's table.
"""
from __future__ import annotations

import os
import sys

from absl import app, flags, logging

from amplify import processes
from amplify.configs import cli as config_cli

config_cli.define_flags()
flags.adopt_module_key_flags(config_cli)  # --help lists the config's flags beside main's
_WORKDIR = flags.DEFINE_string("workdir", None, "Where config.json, metrics.jsonl and "
                               "summary.json go (default: workdirs/TASK, or workdirs/TASK_ARM "
                               "for an --arm other than ltp).")
_COORDINATOR = flags.DEFINE_string(
    "coordinator_address", None, "host:port of process 0, for a run of several processes "
    "(with --num_processes and --process_id; under Slurm or Open MPI, JAX finds all three).")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "How many processes the run has.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's number, 0 to "
                                   "--num_processes - 1; process 0 writes the workdir.")
_DEBUG = flags.DEFINE_bool("debug", False, "Show the traceback of a failure (without it, one "
                           "line names the phase and the cause).")


def main(argv):
  if len(argv) > 1:
    print(f"error: unexpected arguments {argv[1:]}: every setting is one --flag=value (e.g. "
          "--baselines=false).", file=sys.stderr)
    sys.exit(2)
  # after flag parsing: --help stays fast
  from amplify.loop import run as loop  # pylint: disable=g-import-not-at-top
  from amplify.oracles.per_question import OracleError, Stopped  # pylint: disable=g-import-not-at-top
  from amplify.views import report  # pylint: disable=g-import-not-at-top
  if not flags.FLAGS["verbosity"].present:  # progress is printed; library INFO logs are noise
    logging.set_verbosity(logging.WARNING)
  config = config_cli.config_from_flags()
  workdir = _WORKDIR.value or os.path.join(
      "workdirs", config.task.name if config.arm == "ltp" else f"{config.task.name}_{config.arm}")
  try:
    try:  # every bad setting is reported before any work starts
      processes.start(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
      if not processes.writes():  # process 0 prints the run's progress; the others, their errors
        sys.stdout.flush()
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
      checked = loop.check(config, workdir)
    except (ValueError, OSError) as e:
      if _DEBUG.value:
        raise
      print(f"error: {e}", file=sys.stderr)
      _exit(2)
    loop.run(config, workdir, checked)
  except (Stopped, KeyboardInterrupt):
    kept = (f"every answer given is in {config.oracle_store}" if config.oracle_store else
            "finished rounds are kept (no --oracle_store: this round's answers are not)")
    print(f"stopped: {kept}; run the same command to go on.", flush=True)
    sys.stderr.flush()
    # a computation the interrupt left running would crash the interpreter's teardown
    # (SIGSEGV); every file is closed and every answer committed by now
    os._exit(0)  # pylint: disable=protected-access
  except (OracleError, loop.RunError) as e:
    if _DEBUG.value:
      raise
    if lost := processes.lost_peer(e):
      print(f"error: {lost}. The rounds checkpointed in {workdir} are kept: start every process "
            "again with the same command to resume.", file=sys.stderr)
      _exit(1)  # several processes: by os._exit (JAX's exit would wait for the lost process)
    line, status = loop.failure(e, workdir)
    print(line, file=sys.stderr)
    _exit(status)
  if processes.writes():
    try:
      print(report.format_table(workdir))
    except (ValueError, OSError) as e:  # a finished run's lines damaged since
      print(f"error: {e}", file=sys.stderr)
      _exit(2)


def _exit(status: int) -> None:
  """Ends the command with `status`; in a run of several processes by os._exit: JAX's exit waits
  at a barrier for every process, which another, waiting for this one at its next collective,
  never reaches (both aborted after 300 s); by os._exit, the others say at that collective that
  this process has stopped."""
  sys.stdout.flush()
  sys.stderr.flush()
  if processes.several():
    os._exit(status)  # pylint: disable=protected-access
  sys.exit(status)


def cli() -> None:
  """The command line, for `amplify` and `python -m amplify.main`, and for a script that
  registers its own task or oracle (`amplify.registry.register_task`) before handing over."""
  fv = flags.FLAGS
  for flag in fv.get_key_flags_for_module(sys.modules[__name__]):  # `--help` of a console script,
    fv.register_key_flag_for_module(sys.argv[0], flag)  # whose main module defines no flag
  app.run(main, flags_parser=config_cli.flags_parser)


if __name__ == "__main__":
  cli()
