"""amplify.files.checkpoint alone: a round's state reads back as it was written (the replay with
or without a context, seen or not), a damaged newest round is moved aside for the one before it,
and a workdir whose `checkpoints` is a file is refused at once (issue 22)."""
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from amplify import configs as config_lib
from amplify.files import checkpoint
from amplify.learn.distill import Distiller, LabelledSet
from amplify.learn.policy import make_policy
from amplify.tasks import make_task
from amplify.types import Inputs


@pytest.fixture(scope="module")
def made():
  config = config_lib.get_config("lexicon_tiny")
  task, _ = make_task(config)
  return lambda seed: Distiller(make_policy(task.spec, config.model, jax.random.key(seed)), config.train, 100)


def _replay(context_shape):
  """A replay buffer of 5 rows whose context is `context_shape` (latent worlds: (5, 0, 1))."""
  context = jnp.arange(np.prod(context_shape), dtype=jnp.int32).reshape(context_shape)
  return LabelledSet(Inputs(context, jnp.arange(20, dtype=jnp.int32).reshape(5, 4)),
                     jnp.arange(10, dtype=jnp.int32).reshape(5, 2),
                     jnp.linspace(0, 1, 5, dtype=jnp.float32))


def _same(a, b) -> bool:
  return (jax.tree.structure(a) == jax.tree.structure(b)
          and all(x.shape == y.shape and x.dtype == y.dtype and np.array_equal(x, y)
                  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))))


@pytest.mark.parametrize("replay, seen", [
    (None, None), (_replay((5, 3, 2)), np.array([True, False, True])),
    (_replay((5, 0, 1)), None)], ids=["no replay", "replay and seen", "empty context"])
def test_a_round_reads_back_as_it_was_written(tmp_path, made, replay, seen):
  saved, into = made(1), made(2)
  competent = np.array([True, True, False])
  checkpoint.save(str(tmp_path), 0, saved, replay, competent, seen)
  assert checkpoint.latest_round(str(tmp_path)) == 0
  assert checkpoint.latest_readable_round(str(tmp_path)) == 0
  assert not _same(into.state, saved.state)
  back, competent_back, seen_back = checkpoint.restore(str(tmp_path), 0, into)
  assert _same(into.state, saved.state)  # the nnx and optax structure too, not only the leaves
  assert competent_back.dtype == bool and np.array_equal(competent_back, competent)
  assert (seen_back is None) if seen is None else np.array_equal(seen_back, seen)
  assert (back is None) if replay is None else _same(back, replay)


def test_a_policy_laid_out_otherwise_is_refused_and_left_as_it_was(tmp_path, made):
  """A checkpoint that reads back whole but holds another policy's parameters (an earlier
  amplify's layout: here another task's network) is not damage: restore refuses it in one line
  naming the way out, and the round is neither moved aside nor lost."""
  checkpoint.save(str(tmp_path), 0, made(1), None, np.array([True]))  # lexicon's policy ...
  config = config_lib.get_config("wildcard_tiny")  # ... restored into wildcard's
  task, _ = make_task(config)
  into = Distiller(make_policy(task.spec, config.model, jax.random.key(0)), config.train, 100)
  with pytest.raises(checkpoint.WorkdirError, match="laid out otherwise.*new --workdir"):
    checkpoint.restore(str(tmp_path), 0, into)
  assert checkpoint.latest_readable_round(str(tmp_path)) == 0


def test_no_checkpoint_is_none(tmp_path):
  assert checkpoint.latest_round(str(tmp_path)) is None
  assert checkpoint.latest_readable_round(str(tmp_path)) is None


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # see below
@pytest.mark.parametrize("damage", ["truncate", "overwrite", "empty", "one array file"])
def test_a_damaged_newest_round_is_moved_aside_for_the_one_before(tmp_path, made, capsys, damage):
  distiller = made(1)
  for r in range(2):
    checkpoint.save(str(tmp_path), r, distiller, _replay((5, 0, 1)), np.ones(3, bool))
  newest = tmp_path / "checkpoints" / "round_1"
  files = sorted(p for p in newest.rglob("*") if p.is_file())
  if damage == "one array file":  # the policy's data, its metadata whole: the read fails
    # midway, and TensorStore's callbacks still pending find Orbax's event loop closed (harmless)
    files = [max((p for p in files if "policy" in p.parts), key=lambda p: p.stat().st_size)]
  for path in files:
    data = path.read_bytes()
    if damage == "truncate" or damage == "one array file":
      path.write_bytes(data[:len(data) // 2])
    elif damage == "overwrite":
      path.write_bytes(bytes(range(256)) * (len(data) // 256 + 1))
    else:
      path.unlink()
  assert checkpoint.latest_readable_round(str(tmp_path)) == 0
  assert f"warning: checkpoint {newest} is damaged" in capsys.readouterr().out
  assert not newest.exists() and (tmp_path / "checkpoints" / "round_1.damaged-0").is_dir()
  assert checkpoint.latest_round(str(tmp_path)) == 0
  checkpoint.restore(str(tmp_path), 0, made(2))
  checkpoint.save(str(tmp_path), 1, distiller, None, np.ones(3, bool))  # the round done again
  assert checkpoint.latest_readable_round(str(tmp_path)) == 1


def test_a_damaged_prior_is_moved_aside_and_none_returned(tmp_path, capsys):
  table = np.arange(4, dtype=np.uint8)  # z*: an entry's value index
  checkpoint.save_prior(str(tmp_path), table)
  assert np.array_equal(checkpoint.restore_prior(str(tmp_path), (4,)), table)
  assert checkpoint.restore_prior(str(tmp_path), (5,)) is None  # another task's table
  assert "its z* has shape (4,), not (5,)" in capsys.readouterr().out
  assert checkpoint.restore_prior(str(tmp_path), (4,)) is None  # moved aside: none now
  checkpoint.save_prior(str(tmp_path), table)
  for path in (tmp_path / "checkpoints" / "prior").rglob("*"):
    if path.is_file():
      path.write_bytes(b"\x00" * len(path.read_bytes()))
  assert checkpoint.restore_prior(str(tmp_path), (4,)) is None
  assert "fitting z* again" in capsys.readouterr().out
  assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
      "prior.damaged-0", "prior.damaged-1"]


def test_checkpoints_as_a_file_is_refused_at_once_in_one_line(tmp_path):
  (tmp_path / "checkpoints").write_text("not a folder")
  message = (f"workdir {str(tmp_path)!r}: checkpoints is a file, not a folder: move it away or "
             "use a new --workdir")
  with pytest.raises(ValueError) as error:
    checkpoint.check(str(tmp_path))
  assert str(error.value) == message
  # each function that writes or reads says the same, and no Orbax thread keeps the process up
  script = ("import sys, numpy as np\nfrom amplify.files import checkpoint\n"
            "for call in (lambda: checkpoint.save(sys.argv[1], 0, None, None, np.ones(1)),\n"
            "             lambda: checkpoint.latest_readable_round(sys.argv[1]),\n"
            "             lambda: checkpoint.save_prior(sys.argv[1], np.ones(2))):\n"
            "  try:\n    call()\n  except ValueError as e:\n    print(e)\n")
  done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True,
                        text=True, timeout=120, cwd=os.path.dirname(os.path.dirname(__file__)))
  assert done.returncode == 0, done.stderr[-2000:]
  assert done.stdout.splitlines() == [message] * 3
