"""Several processes on JAX's distributed runtime (amplify.processes): two processes of two CPU
devices each, on localhost, against one process of four."""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

import helpers
from amplify import processes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAGS = ["--config=amplify/configs/lexicon.py:tiny", "--rounds=2", "--baselines=false",
         "--config.train.total_steps=100", "--config.label.size=512", "--config.eval_size=256",
         "--config.type2.size=0"]


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def _start(workdir, devices: int, *extra, process_id=None, port=None) -> subprocess.Popen:
  flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={devices}"
  argv = [sys.executable, "-m", "amplify.main", *FLAGS, f"--workdir={workdir}", *extra]
  if process_id is not None:
    argv += [f"--coordinator_address=localhost:{port}", "--num_processes=2",
             f"--process_id={process_id}"]
  return subprocess.Popen(argv, cwd=ROOT, env=dict(os.environ, XLA_FLAGS=flags),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _pair(workdir, *extra) -> list[subprocess.Popen]:
  port = _free_port()
  return [_start(workdir, 2, *extra, process_id=i, port=port) for i in (1, 0)][::-1]


def _finish(process, timeout=600) -> tuple[int, str, str]:
  try:
    out, err = process.communicate(timeout=timeout)
  except subprocess.TimeoutExpired:
    process.kill()
    raise
  return process.returncode, out, err


def test_two_processes_killed_and_resumed_give_one_process_s_run(tmp_path):
  """Two processes of 2 devices: process 1 killed after round 0's checkpoint ends process 0 with
  one line, at its next collective rather than at JAX's heartbeat timeout; both started again
  resume after round 0 and finish. The run is the one a single process of 4 devices makes: the
  same summary, the same metrics lines (losses to float rounding: the gradient is summed in
  another order), and every round's labels and transcripts equal to the bit."""
  workdir, single = tmp_path / "two", tmp_path / "one"
  first, second = _pair(workdir)
  deadline = time.time() + 600
  while not (workdir / "checkpoints" / "round_0").is_dir():
    assert first.poll() is None and second.poll() is None, _finish(first)[2][-2000:]
    assert time.time() < deadline
    time.sleep(0.2)
  second.send_signal(signal.SIGKILL)
  code, out, err = _finish(first)  # no hang: a hung process fails the test at the timeout
  assert code == 1
  # ended by its next collective's error, not by JAX's heartbeat timeout (100 s, then an abort)
  assert "detected fatal errors" not in err
  assert err.strip().splitlines()[-1] == (
      f"error: another process of this 2-process run has stopped. The rounds checkpointed in "
      f"{workdir} are kept: start every process again with the same command to resume.")
  _finish(second)
  assert not (workdir / "summary.json").exists()

  one = _start(single, 4)
  results = [_finish(p) for p in _pair(workdir)]
  for code, out, err in results:
    assert code == 0, err[-3000:]
  assert "resuming after round 0" in results[0][1]
  assert results[1][1] == ""  # process 1 prints nothing but its errors
  code, _, err = _finish(one)
  assert code == 0, err[-3000:]
  a, b = (helpers.read_json(w / "summary.json") for w in (workdir, single))
  assert helpers.same_summary(a, b)
  # every line the same, but times, and losses summed over the devices in another order
  assert _exact(workdir) == _exact(single)
  np.testing.assert_allclose(_losses(workdir), _losses(single), rtol=1e-3)
  for r in (0, 1):
    with np.load(workdir / "transcripts" / f"round_{r}.npz") as x, \
         np.load(single / "transcripts" / f"round_{r}.npz") as y:
      assert x.files == y.files and all(np.array_equal(x[k], y[k]) for k in x.files)


def _exact(workdir) -> list[dict]:
  """metrics.jsonl's lines without their times and losses."""
  return [{k: v for k, v in line.items() if "seconds" not in k and k != "loss"}
          for line in helpers.lines(workdir)]


def _losses(workdir) -> list[float]:
  return [line["loss"] for line in helpers.lines(workdir) if "loss" in line]


def test_a_host_side_oracle_is_refused_on_several_processes(tmp_path):
  """A person, a callable, a replay or H''s fits run on the host: each process is told so, and
  what to do, before any work."""
  for code, out, err in [_finish(p, 120) for p in _pair(tmp_path / "w", "--oracle=interactive")]:
    assert code == 2
    assert err.strip().splitlines()[-1].startswith(
        "error: --oracle=interactive: a run of several processes shares out a compiled oracle's "
        "batches")
  assert not (tmp_path / "w" / "metrics.jsonl").exists()


def test_a_workdir_in_use_is_refused_by_every_process(tmp_path):
  """Process 0 alone takes the workdir's lock; its refusal reaches process 1 too (which waited
  for process 0 at its next collective until JAX's shutdown barrier aborted both, 300 s on)."""
  from amplify.loop import workdir  # pylint: disable=g-import-not-at-top
  os.makedirs(tmp_path / "w")
  workdir.hold(str(tmp_path / "w"))  # another run's, as far as the pair can tell
  try:
    for code, out, err in [_finish(p, 120) for p in _pair(tmp_path / "w")]:
      assert code == 2, err[-3000:]
      assert err.strip().splitlines()[-1].startswith(
          f"error: workdir '{tmp_path / 'w'}' is in use by a run (pid {os.getpid()})")
  finally:
    workdir.release(str(tmp_path / "w"))


def test_z_star_on_disk_reads_the_same_on_two_processes(tmp_path):
  """Process 0 writes z* to disk; both read it inside H^A's, pi's and type 2's programs, which
  span 4 devices of 2 processes: each equal to the table in memory to the bit."""
  port, env = _free_port(), dict(os.environ, PYTHONPATH=os.pathsep.join(
      [os.path.dirname(__file__), os.environ.get("PYTHONPATH", "")]), XLA_FLAGS=(
          f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=2"))
  probes = [subprocess.Popen([sys.executable, os.path.join(os.path.dirname(__file__),
                                                           "zstore_probe.py"),
                              str(tmp_path), str(port), str(i)], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for i in (0, 1)]
  for probe in probes:
    code, out, err = _finish(probe, 300)
    assert code == 0, err[-3000:]
    assert json.loads(out.strip().splitlines()[-1]) == {
        "devices": 4, "labels": True, "predictions": True, "type2": True}


@pytest.mark.parametrize("given, problem", [
    ({"coordinator_address": "localhost:1"}, "add --num_processes, --process_id"),
    ({"coordinator_address": "localhost:1", "num_processes": 2, "process_id": 2},
     "--process_id=2: processes are numbered 0..1"),
])
def test_process_flags_are_checked(given, problem):
  settings = {"coordinator_address": None, "num_processes": None, "process_id": None} | given
  with pytest.raises(ValueError, match=problem):
    processes.start(**settings)


@pytest.mark.parametrize("variable", sorted(processes.CLUSTERS.values()))
def test_a_cluster_s_environment_starts_the_processes(variable, monkeypatch):
  """Under Slurm or Open MPI with more than one task, JAX is asked to read the settings itself;
  one it cannot read is one line naming the variable and the flags to pass instead."""
  import jax  # pylint: disable=g-import-not-at-top
  calls = []
  monkeypatch.setattr(jax.distributed, "initialize", lambda *a, **k: calls.append((a, k)))
  for other in processes.CLUSTERS.values():
    monkeypatch.delenv(other, raising=False)
  monkeypatch.setenv(variable, "1")
  processes.start(None, None, None)
  assert not calls  # one task: not a multi-process run
  monkeypatch.setenv(variable, "4")
  processes.start(None, None, None)
  assert calls == [((), {})]

  def refuse():
    raise RuntimeError("no coordinator")
  monkeypatch.setattr(jax.distributed, "initialize", refuse)
  with pytest.raises(ValueError, match=f"{variable}=4, but JAX could not start the processes "
                     r"from its environment \(no coordinator\); pass --coordinator_address"):
    processes.start(None, None, None)


def test_one_process_shares_by_calling():
  assert not processes.several() and processes.writes()
  assert processes.shared(lambda x: x + 1, 1) == 2
  with pytest.raises(KeyError):
    processes.shared(lambda: {}["missing"])
  assert processes.lost_peer(RuntimeError("Connection closed by peer")) is None  # one process
