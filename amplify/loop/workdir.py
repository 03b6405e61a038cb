"""The workdir as the unit of an experiment: refused when it cannot be written or holds another
config's run; a finished run's summary read back instead of running again."""
from __future__ import annotations

import fcntl
import os
import shlex

from amplify import processes
from amplify.configs import check_version, to_dict
from amplify.files import checkpoint
from amplify.files import jsonio
from amplify.files.jsonio import read_json
from amplify.oracles.make import serving

WORLD = "world.json"  # the referee's fingerprint of the world the run was drawn in
LOCK = ".lock"  # held by the run writing the workdir (`hold`)
_HELD: dict[str, object] = {}  # this process's workdirs: real path -> its open lock file


def check_workdir(config, workdir: str, world: str | None = None) -> None:
  """Refuses a workdir that cannot be written, or that holds a run of another config, or of
  another world (`world`: the referee's fingerprint of its secret, `world.json`), rather than
  overwrite or mix them. Creates the workdir."""
  try:  # a file written and removed: what the run will do, tried before any work
    os.makedirs(workdir, exist_ok=True)
    probe = os.path.join(workdir, ".write_check")
    with open(probe, "w") as f:
      f.write("ok")
    os.remove(probe)
  except OSError as e:
    raise ValueError(f"workdir {workdir!r} cannot be written ({e.strerror}): choose a writable "
                     "--workdir.") from None
  checkpoint.check(workdir)
  jsonio.check_workdir_layout(workdir)
  check_config(config, workdir)
  saved = os.path.join(workdir, WORLD)
  if world is not None and os.path.exists(saved):
    old = read_json(saved, "the run's world").get("world_id")
    if old != world:
      raise ValueError(f"workdir {workdir!r} holds a run drawn in another world (world {old}; "
                       f"this referee's secret gives {world}): restore the secret file it was run "
                       "with ($AMPLIFY_SECRET_FILE), or use a new --workdir.")
  jsonio.read_summary(workdir)  # a damaged summary, or a finished run's lost metrics: refused now


def hold(workdir: str) -> None:
  """Takes `workdir` for this process (the run's check, on process 0): an exclusive lock on
  workdir/.lock, kept until `release` or the process ends (a kill frees it too). A workdir
  another live run holds is refused: two runs in one workdir would interleave their metrics
  lines and checkpoints."""
  key = os.path.realpath(workdir)
  if key in _HELD:
    return
  f = open(os.path.join(workdir, LOCK), "a+")  # pylint: disable=consider-using-with
  try:
    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except BlockingIOError:
    f.seek(0)
    holder = f.read().strip() or "another process"
    f.close()
    raise ValueError(f"workdir {workdir!r} is in use by a run ({holder}): wait for it to end, "
                     "or use another --workdir.") from None
  f.seek(0)
  f.truncate()
  f.write(f"pid {os.getpid()}\n")
  f.flush()
  _HELD[key] = f


def release(workdir: str) -> None:
  """Lets `workdir` go (`hold`)."""
  f = _HELD.pop(os.path.realpath(workdir), None)
  if f is not None:
    f.close()


def check_config(config, workdir: str) -> None:
  """Refuses a workdir holding a run of another config, naming the difference and the flags
  that resume it; reads only (a study reads its finished runs through it)."""
  old, changed = config_differences(config, workdir)
  if changed:
    raise ValueError(f"workdir {workdir!r} holds a run with a different config (differs in "
                     f"{changed}); use a new --workdir, or the same flags to resume"
                     f"{_resume_flags(old, changed)}.")


def config_differences(config, workdir: str) -> tuple[dict | None, list[str]]:
  """(the config.json in `workdir` as a dict, or None where there is none; the dotted paths at
  which it differs from `config`, sorted), ignoring where the oracle is served, which may change
  between starts. A ValueError where config.json is damaged or of an older layout."""
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    # config.json is written first: a run's later files without it cannot say which run they are
    later = [name for name in ("metrics.jsonl", "summary.json", "checkpoints", "transcripts")
             if _holds(os.path.join(workdir, name))]
    if later:
      raise jsonio.WorkdirError(f"workdir {workdir!r} holds a run's {', '.join(later)} but no "
                                "config.json, which says whose they are: put back the config.json "
                                "it was run with, or use a new --workdir.")
    return None, []
  old = check_version(read_json(path, "the run's config"), workdir)
  new = to_dict(config)
  for field in serving(config):
    for d in (old, new):
      d.get("oracle", {}).pop(field, None)
  return old, sorted(_differences(old, new))


def _holds(path: str) -> bool:
  """A file, or a folder with something in it."""
  return os.path.isfile(path) or (os.path.isdir(path) and bool(os.listdir(path)))


def _resume_flags(old: dict, paths: list[str]) -> str:
  """The flags that give `old`'s values at `paths` (a run made before a field's default changed
  resumes with them), where each is a plain value: ' (here: --config.a.b=1 ...)', or ''."""
  flags = []
  for path in paths:
    value = old
    for part in path.split("."):
      value = value.get(part) if isinstance(value, dict) else None
    if not isinstance(value, (bool, int, float, str)):
      return ""
    flags.append(shlex.quote(f"--config.{path}={value}"))
  return f" (here: {' '.join(flags)})"


def _differences(old: dict, new: dict, prefix: str = "") -> list[str]:
  """The dotted paths at which two nested configs differ."""
  out = []
  for key in old.keys() | new.keys():
    a, b = old.get(key), new.get(key)
    if isinstance(a, dict) and isinstance(b, dict):
      out += _differences(a, b, f"{prefix}{key}.")
    elif a != b:
      out.append(f"{prefix}{key}")
  return out


def finished_summary(workdir: str) -> dict | None:
  """The summary of a finished run in `workdir`: its summary written and metrics.jsonl holding
  every round's eval line and each baseline's the summary names, checkpoints or not (deleted to
  free the disk); else None (a line cut short: the run goes on and writes it again). Every
  process of a run calls it; process 0 reads the files."""
  summary = processes.shared(jsonio.read_summary, workdir)
  if summary is None:
    return None
  needed = {("eval", r) for r in range(summary["rounds"])} | {
      ("baseline", name) for name in ("prosaic", "ceiling")
      if summary.get(f"{name}_accuracy") is not None}
  return summary if needed <= processes.shared(recorded_lines, workdir) else None


def recorded_lines(workdir: str) -> set[tuple]:
  """(phase, round or baseline) of each line in metrics.jsonl (none where there is none); a last
  line cut short is not one (MetricWriter warns of it)."""
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.exists(path):
    return set()
  return {(rec["phase"], rec.get("baseline", rec["round"]))
          for rec in jsonio.read_jsonl(path, warn=False)}
