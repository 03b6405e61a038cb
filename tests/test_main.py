"""The command line: bad names and malformed values give a clear error and a non-zero exit."""
import concurrent.futures
import os
import subprocess
import sys

import pytest


def _main(*args, module="amplify.main"):
  return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True,
                        timeout=120)


BAD_FLAGS = [
    (["--task=nonesuch"], "unknown task 'nonesuch' (--task); choose one of"),
    (["--oracle=nonesuch"], "unknown oracle 'nonesuch' (--oracle); choose one of"),
    (["--rounds=three"], "--rounds"),
    (["--rounds=0"], "--rounds=0: must be a positive integer"),
    (["--config.label.heldout_fraction=1.5"], "--config.label.heldout_fraction=1.5"),
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
    (["stray"], "unexpected arguments"),
]


@pytest.fixture(scope="module")
def bad_flag_runs(tmp_path_factory):
  """Each command line of BAD_FLAGS run in a process of its own with a workdir of its own, as
  many at a time as there are cores (they share nothing): (workdir, the finished process)."""
  workdirs = [tmp_path_factory.mktemp("workdir") for _ in BAD_FLAGS]
  run = lambda case: _main(*BAD_FLAGS[case][0], f"--workdir={workdirs[case]}")
  with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 2) as pool:
    return list(zip(workdirs, pool.map(run, range(len(BAD_FLAGS)))))


@pytest.mark.parametrize("args, message", BAD_FLAGS)
def test_bad_flags_fail_with_a_clear_message(args, message, bad_flag_runs):
  workdir, result = bad_flag_runs[BAD_FLAGS.index((args, message))]
  assert result.returncode != 0
  assert message in result.stderr + result.stdout
  assert not (workdir / "metrics.jsonl").exists()  # nothing started


def test_report_on_an_empty_workdir_explains(tmp_path):
  result = _main(f"--workdir={tmp_path}", module="amplify.views.report")
  assert result.returncode != 0
  assert "no metrics.jsonl" in result.stderr


def test_main_runs_and_prints_the_table(tmp_path):
  # the config of test_arms' finished-workdir run: its programs are in the tests' compilation
  # cache (tests/conftest.py), so this process loads them instead of compiling them again
  result = _main("--preset=lexicon_tiny", "--rounds=2", "--config.train.total_steps=200",
                 "--config.train.baseline_size=1024", f"--workdir={tmp_path}")
  assert result.returncode == 0, result.stderr
  assert "held-out agr" in result.stdout and "ceiling" in result.stdout
  assert "z* accuracy" in result.stdout
  assert (tmp_path / "summary.json").exists()


def test_a_damaged_answer_store_is_refused_and_left_as_it_was(tmp_path):
  store = tmp_path / "answers.db"
  store.write_bytes(b"half a database" * 50)
  result = _main("--preset=lexicon_tiny", f"--oracle_store={store}", f"--workdir={tmp_path / 'w'}")
  assert result.returncode == 2
  assert f"--oracle_store={store}: not an answer store" in result.stderr
  assert store.read_bytes() == b"half a database" * 50
