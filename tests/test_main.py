"""The command line: bad names and malformed values give a clear error before any work (checked
in this process, through the parser and the run's check the command calls), and the command
itself exits 2 with one line; a run prints its table, and the same command again exits 0."""
import json
import shutil
import subprocess
import sys

import pytest
from absl import flags

import helpers
from amplify.configs import cli
from amplify.loop import run as loop


def _main(*args, module="amplify.main"):
  return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True,
                        timeout=600)


BAD_FLAGS = [
    (["--task=nonesuch"], "unknown task 'nonesuch' (--task); choose one of"),
    (["--oracle=nonesuch"], "unknown oracle 'nonesuch' (--oracle); choose one of"),
    (["--rounds=three"], "--rounds"),
    (["--rounds=0"], "--rounds=0: must be a positive integer"),
    (["--config.label.heldout_fraction=1.5"], "--config.label.heldout_fraction=1.5"),
    (["--config.label.heldout_fraction=nan"], "choose one strictly between 0 and 1"),
    (["--seed=4294967296"], "--seed=4294967296: must be >= 0 and below 2**32"),
    (["--config.eval_size=3000000000"], "--config.eval_size=3000000000: must be a positive "
                                        "integer, at most 2147483647"),
    (["--config.train.weight_decay=nan"], "--config.train.weight_decay=nan: must be >= 0 and "
                                          "finite"),
    (["--config.train.learning_rate=inf"], "--config.train.learning_rate=inf: must be > 0 and "
                                           "finite"),
    (["--config.model.width=30", "--config.model.heads=4"], "not divisible by --config.model.heads"),
    (["--preset=huge"], "--preset"),
    (["--task.label_noise=1.5"], "--task.label_noise=1.5: a probability"),
    (["--task.num_classes=1"], "lexicon needs --task.num_classes >= 2"),
    (["--task.max_set_size=300"], "--task.num_entities >= --task.max_set_size"),
    (["--task.nonesuch=3"], "--task.nonesuch: task 'lexicon' has no such setting; its settings "
                            "are ['--task.label_noise'"),
    (["--oracle=noisy", "--oracle.noise_rate=2"], "--oracle.noise_rate=2.0: a probability"),
    (["--oracle=callable"], "--oracle.fn='': name the function as module:function"),
    (["--oracle=replay"], "--oracle=replay answers only from the answer store: pass "
                          "--oracle_store=PATH"),
    (["--oracle=interactive"], "--oracle=interactive keeps a person's every answer in the "
                               "answer store: pass --oracle_store=PATH"),
    (["--config.type2.oracle=nonesuch"], "unknown oracle 'nonesuch' (--config.type2.oracle)"),
    (["--config.type2.oracle=interactive"], "--config.type2.oracle=interactive: type 2 runs H's whole tree as "
                                     "one compiled program"),
    (["--config.type2.size=-1"], "--config.type2.size=-1: must be >= 0"),
    (["--config.type2.size=0", "--gate=false"], "--gate is read only with type 2"),
    (["--oracle=sloppy", "--oracle.from_difficulty=-1"], "--oracle.from_difficulty=-1"),
    (["--config.prior.steps=0"], "--config.prior.steps=0: must be a positive integer"),
    (["--config.label.max_asks=1"], "--config.label.max_asks=1: H's decomposition for task 'lexicon' needs up to 2"),
    (["--task=colored_digits", "--config.label.size=2000"], "--config.label.size=2000: task 'colored_digits' "
                                                     "has only 450"),
    (["--task=colored_digits", "--task.label_noise=0.1"], "task 'colored_digits' has no such "
                                                           "setting; its settings are none"),
    (["--task=permutation", "--config.prior.steps=5"], "--config.prior.steps is read only by latent-world"),
    (["--task=permutation", "--config.model.depth=3"], "--config.model.depth>=4"),
    (["--config.curriculum.on=true"], "--config.curriculum.on is read only by tasks with an "
                                      "instance size; --task=lexicon has none"),
    (["--task=permutation", "--config.curriculum.threshold=0.9"], "--config.curriculum.threshold "
                                                                  "is read only with the "
                                                                  "curriculum on"),
]


def _refusal(args, workdir) -> str:
  """What `amplify ARGS` says before any work, found the way the command finds it: parsing the
  flags (amplify.configs.cli), then the run's check of every setting (amplify.loop.run.check,
  which starts and closes the referee)."""
  fv = flags.FlagValues()
  flags.DEFINE_string("workdir", None, "", flag_values=fv)
  try:
    cli.parse(["amplify", *args, f"--workdir={workdir}"], fv)
    loop.check(fv.config, str(workdir)).close()
  except (ValueError, OSError, flags.Error) as e:
    return str(e).splitlines()[0]  # the line the command prints
  pytest.fail(f"{args} was accepted")


@pytest.mark.parametrize("args, message", BAD_FLAGS)
def test_bad_flags_fail_with_a_clear_message(args, message, tmp_path):
  assert message in _refusal(args, tmp_path)
  assert not (tmp_path / "metrics.jsonl").exists()  # nothing started


def test_a_bad_flag_exits_2_with_one_line_before_any_work(tmp_path):
  """The command's side of the refusals above: a flag the parser refuses, a stray argument (a
  flag's value after a space), and a setting the run's check refuses (a damaged answer store,
  which is left as it was)."""
  store = tmp_path / "answers.db"
  store.write_bytes(b"half a database" * 50)
  for args, message in [(["--rounds=0"], "--rounds=0: must be a positive integer"),
                        (["--baselines", "false"], "unexpected arguments ['false']: every "
                                                   "setting is one --flag=value"),
                        ([f"--oracle_store={store}"], f"--oracle_store={store}: not an answer "
                                                      "store")]:
    result = _main("--preset=lexicon_tiny", *args, f"--workdir={tmp_path / 'w'}")
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr
    assert not (tmp_path / "w" / "metrics.jsonl").exists()
  assert store.read_bytes() == b"half a database" * 50
  debug = _main("--preset=lexicon_tiny", f"--oracle_store={store}", "--debug",
                f"--workdir={tmp_path / 'w'}")  # --debug shows a refusal's traceback too
  assert debug.returncode == 1 and "Traceback" in debug.stderr
  assert "not an answer store" in debug.stderr


def test_ctrl_c_while_the_settings_are_checked_is_one_line_and_no_traceback(tmp_path):
  """Ctrl-C before any work (here raised by the check, which starts the referee): what Ctrl-C
  says later, exit 0, no traceback."""
  code = ("import sys; from amplify.loop import run\n"
          "def check(*args): raise KeyboardInterrupt\n"
          "run.check = check\n"
          f"sys.argv = ['amplify', '--preset=lexicon_tiny', '--workdir={tmp_path / 'w'}']\n"
          "from amplify import main; main.cli()")
  result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=600)
  assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
  assert result.stdout.startswith("stopped: ") and "run the same command to go on" in result.stdout


def test_main_runs_and_prints_the_table_and_the_same_command_again_exits_0(tmp_path,
                                                                           finished_run):
  """The `amplify` entry point on the session's lexicon run without its last round's checkpoint
  (tests/helpers.py; fresh runs through the command line: tests/test_plugins.py): it runs that
  round and prints the table; run again, it finds the run finished and prints the table."""
  _, whole, summary = finished_run(helpers.LEXICON_ROUNDS)
  workdir = helpers.copy_run(whole, tmp_path / "run")
  shutil.rmtree(workdir / "checkpoints" / f"round_{summary['rounds'] - 1}")
  (workdir / "summary.json").unlink()
  command = ["--preset=lexicon_tiny", "--config.type2.size=0", "--baselines=false",
             f"--workdir={workdir}"]
  result = _main(*command)
  assert result.returncode == 0, result.stderr
  assert "held-out agr" in result.stdout
  assert "z* accuracy" in result.stdout and "arm ltp" in result.stdout
  assert f"resuming after round {summary['rounds'] - 2}" in result.stdout
  assert helpers.same_summary(json.loads((workdir / "summary.json").read_text()), summary)
  again = _main(*command)
  assert again.returncode == 0, again.stderr
  assert "finished run" in again.stdout
  assert "held-out agr" in again.stdout and "arm ltp" in again.stdout
