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


def _descendants(root: int) -> list[int]:
  """`root` and its live descendants (read from /proc; the server runs in a process group of its
  own, so the tree is followed by parent)."""
  parents = {}
  for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
      with open(f"/proc/{pid}/stat") as f:
        state, ppid = f.read().rsplit(")", 1)[1].split()[:2]
    except OSError:  # it ended while we looked
      continue
    if state != "Z":
      parents[int(pid)] = int(ppid)
  tree = [root] if root in parents else []
  for pid in tree:
    tree += [child for child, parent in parents.items() if parent == pid]
  return tree


def _alive(pids: list[int]) -> list[int]:
  out = []
  for pid in pids:
    try:
      with open(f"/proc/{pid}/stat") as f:
        if f.read().rsplit(")", 1)[1].split()[0] != "Z":
          out.append(pid)
    except OSError:
      pass
  return out


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
    tree = _descendants(process.pid)
    assert len(tree) == 3  # the script, the server, the referee
    process.send_signal(signal.SIGKILL)  # the script alone: the others see their sockets close
    process.wait()
    deadline = time.time() + 30
    while time.time() < deadline:
      if not _alive(tree):
        break
      time.sleep(0.1)
    else:
      raise AssertionError("the server or the referee outlived the run")
  finally:
    if process.poll() is None:
      process.kill()
