"""Referee processes forked from a server (amplify.truth.forks): a script without a main guard
runs once (multiprocessing's fork server would run it again in the referee), and a run killed
with SIGKILL leaves neither the server nor its referee behind."""
import os
import signal
import subprocess
import sys
import time

SCRIPT = """
from amplify import configs
from amplify.truth.referee import Referee
print("top level", flush=True)
task, referee = Referee.start(configs.get_config("permutation_tiny"), 1)
print("referee started", flush=True)
{rest}
"""


def _group(pgid: int) -> list[int]:
  """The live processes of a process group (read from /proc)."""
  members = []
  for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
      with open(f"/proc/{pid}/stat") as f:
        state, _, group = f.read().rsplit(")", 1)[1].split()[:3]
    except OSError:  # it ended while we looked
      continue
    if int(group) == pgid and state != "Z":
      members.append(int(pid))
  return members


def _script(tmp_path, rest: str):
  path = tmp_path / "unguarded.py"
  path.write_text(SCRIPT.format(rest=rest))
  return [sys.executable, str(path)]


def test_a_script_without_a_main_guard_runs_once(tmp_path):
  result = subprocess.run(_script(tmp_path, "referee.close()"), capture_output=True, text=True,
                          timeout=300)
  assert result.returncode == 0, result.stderr
  assert result.stdout.splitlines() == ["top level", "referee started"]


def test_a_run_killed_leaves_no_referee_or_server_behind(tmp_path):
  process = subprocess.Popen(_script(tmp_path, "import time; time.sleep(300)"),
                             stdout=subprocess.PIPE, text=True, start_new_session=True)
  try:
    while process.stdout.readline().strip() != "referee started":
      assert process.poll() is None, "the script ended before its referee started"
    group = os.getpgid(process.pid)
    assert len(_group(group)) == 3  # the script, the server, the referee
    process.send_signal(signal.SIGKILL)  # the script alone: the others see their sockets close
    process.wait()
    deadline = time.time() + 30
    while time.time() < deadline:
      if not _group(group):
        break
      time.sleep(0.1)
    else:
      raise AssertionError("the server or the referee outlived the run")
  finally:
    if process.poll() is None:
      process.kill()
