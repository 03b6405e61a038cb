"""The worker's channel at its edges: a worker that dies while the run answers it, one that
half-closes its socket and hangs, a key no task can read, and a resume in another world."""
import jax
import pytest

from amplify import configs as config_lib
from amplify.learn.amplifier import Amplifier, Budget
from amplify.learn.mz import ExactIndex
from amplify.loop import setup
from amplify.oracles.per_question import CallableOracle, CallableSettings, OracleError


def _label(permutation, fn, **settings):
  task, policy, competent = permutation
  oracle = CallableOracle.load(CallableSettings(fn=f"edge_oracles:{fn}", **settings))
  amplifier = Amplifier(oracle, ExactIndex(), task, Budget(4, 4), identity=fn)
  inputs = task.deployment_questions(jax.random.key(5), 4)
  return amplifier.label(inputs, policy, competent, jax.random.key(2),
                         progress={"round": 1, "rounds": 2})


@pytest.mark.parametrize("fn", ["half_closes", "dies_while_asking"])
def test_a_worker_that_goes_away_is_one_line_not_a_hang(permutation, fn):
  with pytest.raises(OracleError, match=r"^oracle 'callable' in round 1 died: its worker process "
                                        r"exited \(code -?\d+\)"):
    _label(permutation, fn, in_flight=2, timeout_s=1.0)


def test_a_key_no_task_reads_is_the_oracles_error(permutation):
  with pytest.raises(OracleError, match="^oracle 'callable' in round 1 "):
    _label(permutation, "looks_up_infinity", in_flight=1)


def test_a_resume_in_another_secrets_world_is_refused(tmp_path, monkeypatch):
  config = config_lib.get_config("lexicon_tiny", rounds=1, total_steps=10, label_size=64,
                                 eval_size=32, type2_size=0, baselines=False, prior_steps=5)
  workdir = str(tmp_path / "run")
  checked = setup.check(config, workdir)
  try:
    setup.begin(config, workdir, checked)  # writes config.json and world.json
  finally:
    checked.close()
  setup.check(config, workdir).close()  # the same secret: the same world, resumable
  monkeypatch.setenv("AMPLIFY_SECRET_FILE", str(tmp_path / "another_secret"))
  with pytest.raises(ValueError, match="holds a run drawn in another world .* restore the secret "
                                       "file it was run with"):
    setup.check(config, workdir)
