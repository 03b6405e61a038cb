"""A task and an oracle from outside amplify/ run by name: installed with entry points, or
registered by a script."""
import base64
import hashlib
import json
import os
import pathlib
import subprocess
import sys
import zipfile

TOY = pathlib.Path(__file__).parent / "plugin_toy" / "amplify_toy.py"
SMALL = ["--rounds=1", "--config.label.size=128", "--config.eval_size=64", "--config.train.total_steps=20",
         "--config.train.batch_size=32", "--config.train.steps_per_call=20", "--config.train.baseline_size=128", "--config.train.replay_rounds=1",
         "--config.model.width=16", "--config.model.depth=1", "--config.model.heads=2", "--config.train.warmup_steps=5", "--baselines=false",
         "--config.type2.size=0"]


def _wheel(directory: pathlib.Path) -> pathlib.Path:
  """A wheel of the toy package whose entry points name its task and oracle."""
  info = "amplify_toy-0.1.dist-info"
  files = {
      "amplify_toy.py": TOY.read_text(),
      f"{info}/METADATA": "Metadata-Version: 2.1\nName: amplify-toy\nVersion: 0.1\n",
      f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                       "Tag: py3-none-any\n",
      f"{info}/entry_points.txt": "[amplify.tasks]\ndoubling = amplify_toy:TASK\n\n"
                                  "[amplify.oracles]\ntoy_person = amplify_toy:ORACLE\n",
  }
  digest = lambda text: base64.urlsafe_b64encode(
      hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
  record = "".join(f"{name},sha256={digest(text)},{len(text.encode())}\n"
                   for name, text in files.items()) + f"{info}/RECORD,,\n"
  path = directory / "amplify_toy-0.1-py3-none-any.whl"
  with zipfile.ZipFile(path, "w") as z:
    for name, text in {**files, f"{info}/RECORD": record}.items():
      z.writestr(name, text)
  return path


def _run(args, python_path):
  return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=600,
                        env={**os.environ, "PYTHONPATH": str(python_path)})


def _label_accuracy(workdir: pathlib.Path) -> float:
  lines = [json.loads(l) for l in (workdir / "metrics.jsonl").read_text().splitlines()]
  return [l for l in lines if l["phase"] == "eval"][-1]["label_accuracy"]


def test_an_installed_plugin_runs_by_name_through_its_entry_points(tmp_path):
  site = tmp_path / "site"
  install = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                            "--no-index", "--target", str(site), str(_wheel(tmp_path))],
                           capture_output=True, text=True, timeout=300)
  assert install.returncode == 0, install.stderr
  # the task and the oracle found by name, and the oracle's own setting reaches it: a slipping
  # person labels 2x wrong wherever x != 2x (the same person without slips labels every row
  # right: test_a_script_registers_its_task_and_oracle)
  slips = _run(["-m", "amplify.main", "--task=doubling", "--oracle=toy_person",
                "--task.size=5", "--oracle.slips=true", f"--workdir={tmp_path / 'slips'}",
                *SMALL], site)
  assert slips.returncode == 0, slips.stderr
  assert _label_accuracy(tmp_path / "slips") < 0.5
  config = json.loads((tmp_path / "slips" / "config.json").read_text())
  assert config["task"] == {"name": "doubling", "size": 5}
  assert config["oracle"] == {"name": "toy_person", "slips": True}
  bad = _run(["-m", "amplify.main", "--task=doubling", "--task.sise=5",
              f"--workdir={tmp_path / 'bad'}"], site)
  assert bad.returncode == 2
  assert "--task.sise: task 'doubling' has no such setting; its settings are ['--task.size']" \
      in bad.stderr


def test_a_script_registers_its_task_and_oracle(tmp_path):
  script = tmp_path / "my_experiment.py"
  script.write_text(
      "import amplify_toy\n"
      "from amplify import main, registry\n"
      "registry.register_task('doubled', amplify_toy.make_doubling, amplify_toy.DoublingSettings)\n"
      "registry.register_oracle('typist', lambda task, s, human: amplify_toy.ToyPerson(task, s),\n"
      "                         amplify_toy.ToyPersonSettings)\n"
      "main.cli()\n")
  result = _run([str(script), "--task=doubled", "--oracle=typist", "--task.size=3",
                 f"--workdir={tmp_path / 'w'}", *SMALL], TOY.parent)
  assert result.returncode == 0, result.stderr
  assert _label_accuracy(tmp_path / "w") == 1.0
  assert "final" in result.stdout
