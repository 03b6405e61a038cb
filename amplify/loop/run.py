"""The rounds loop, read as the recipe: learn the prior, then a short loop over named phases.

  prior -> for each round of the arm's plan: label -> split -> distil -> IID check -> type-2
  gate -> evaluate -> save -> baselines -> summary

`run(config, workdir)` is the whole experiment; `amplify.main` is a thin absl wrapper around it.
Each phase is a function of the run's fixed parts (`Run`) and what rounds hand on (`State`) that
returns what it produces, so an arm (`amplify.loop.arms`) is a plan of rounds, not a branch in
the loop. A workdir whose run has finished is not run again: `run` returns its summary.
"""
from __future__ import annotations

import contextlib
import dataclasses
import time

from amplify.files.jsonio import WorkdirError
from amplify.loop.evaluate import evaluate, finish_baselines, save, start_baselines
from amplify.loop.gate import deployed_policy, type2_gate
from amplify.loop.phases import distil, iid_check, label, split
from amplify.loop.setup import Checked, begin, check, resume
from amplify.loop.summary import summarise
from amplify.loop.workdir import finished_summary, release
from amplify.oracles.per_question import OracleError, Stopped


def run(config, workdir: str, checked: Checked | None = None) -> dict:
  """Runs the experiment `config` into `workdir`; returns the summary. `checked`: what
  `check(config, workdir)` returned, if the caller has run it already. A finished run in the
  workdir is returned as it is."""
  checked = checked or check(config, workdir)
  try:
    summary = _run(config, workdir, checked)
  except BaseException:  # a failure or a Ctrl-C: what the store was handed is committed still
    try:
      checked.close(failed=True)
    finally:
      release(workdir)
    raise
  try:
    with _phase("committing the answer store"):
      checked.close()
  finally:
    release(workdir)
  return summary


def _run(config, workdir: str, checked: Checked) -> dict:
  with _phase("reading the workdir"):
    if (summary := finished_summary(workdir)) is not None:
      print(f"workdir {workdir!r} holds a finished run of this config: nothing to do", flush=True)
      return summary
  with _phase("starting the run (prior, evaluation set, resume)"):
    run_, done = begin(config, workdir, checked)
    state = resume(run_, done)
  referee = checked.referee
  with _phase("starting the baselines"):
    started = start_baselines(run_, referee)
  for r in range(done + 1, len(run_.plan)):
    t0 = time.time()
    with _phase(f"round {r}, labelling"):
      batch = label(run_, state, r)
      parts = split(run_, state, r, batch)
    with _phase(f"round {r}, distillation"):
      before, t1 = deployed_policy(run_, state, parts), time.time()
      trained = distil(run_, state, r, parts)
      distilled = time.time() - t1
      state = dataclasses.replace(state, distiller=trained.distiller,
                                  steps_used=state.steps_used + trained.steps)
    with _phase(f"round {r}, evaluation"):
      checks, state = iid_check(run_, state, r, parts, trained)
      with _phase(f"round {r}, type-2 evaluation"):
        gated, state = type2_gate(run_, state, r, parts, before, checks["kept_previous_policy"])
      evaluate(run_, state, r, batch, checks | gated, referee, t0, distilled)
    with _phase(f"round {r}, checkpoint"):
      state = save(run_, state, r, batch, parts)
  with _phase("baselines"):
    finished = finish_baselines(run_, referee, started)
  with _phase("summary"):
    return summarise(run_, finished)


class RunError(RuntimeError):
  """A failure after the run started, as one line naming the phase and the cause (amplify.main
  prints it; the traceback is chained, shown with --debug)."""


def failure(e: RunError | OracleError, workdir: str, debug: str = "--debug") -> tuple[str, int]:
  """The one line and exit status a run that failed after its start ends with (amplify.main, the
  studies): the cause, then the way out. A workdir that cannot go on and a diverged loss name
  their own (the same command would fail again); anything else leaves the finished rounds for
  the same command to resume. A bad oracle answer exits 2, as a bad setting does; the rest, 1.
  `debug`: what shows the traceback."""
  if isinstance(e, OracleError):
    return f"error: {e}", 2
  cause = str(e).rstrip(". ")
  if isinstance(e.__cause__, (WorkdirError, FloatingPointError)):
    return f"error: {cause} ({debug} shows the traceback).", 1
  return (f"error: {cause}. The work so far is kept in {workdir}: the same command resumes it "
          f"({debug} shows the traceback)."), 1


@contextlib.contextmanager
def _phase(name: str):
  try:
    yield
  except (RunError, OracleError, Stopped):
    raise
  except Exception as e:  # KeyboardInterrupt is not an Exception: it stops the run as it is
    first_line = (str(e).strip().splitlines() or [""])[0]
    raise RunError(f"{name}: {type(e).__name__}: {first_line}") from e
