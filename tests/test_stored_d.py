"""A D too large to hold (amplify.tasks.stored; lexicon past MEMORY_ROWS rows): drawn onto disk a
block of entities at a time, read back a block at a time or at sampled rows, z* fitted a block
at a time; a tiny lexicon whose D is on disk (`helpers.make_lexicon_on_disk`) runs end to end.
The memorising policy past EMBED_ROWS tokens shares rows (prosaic ML at 10^8 entities)."""
import os
import pickle

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import helpers
from amplify import configs as config_lib
from amplify import registry
from amplify.configs import settings
from amplify.learn import policy as policy_lib
from amplify.learn import prior
from amplify.learn.mz import Table
from amplify.loop import run as loop
from amplify.oracles.make import human_model, make_oracle
from amplify.tasks import lexicon, world_key
from amplify.truth.evaluator import Evaluator


def _made(num_entities=40):
  config = config_lib.get_config("lexicon_tiny", num_entities=num_entities)  # 12 rows an entity
  return (config, *helpers.make_lexicon_on_disk(settings(config.task, "task"),
                                                world_key(config.seed)))


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
  monkeypatch.setenv("AMPLIFY_DATA_DIR", str(tmp_path / "data"))
  return tmp_path / "data"


def _rows(blocks) -> np.ndarray:
  return np.concatenate([np.concatenate([b.inputs.questions, b.labels], 1) for b in blocks])


def test_a_d_on_disk_comes_in_blocks_each_observing_its_own_entities():
  _, task, _ = _made()
  blocks = list(prior.blocks(task))
  assert [(b.first, b.entries, b.labels.shape[0]) for b in blocks] == [
      (0, 16, 192), (16, 16, 192), (32, 8, 96)]
  for b in blocks:
    entity = np.asarray(b.inputs.questions[:, 0]) - task.entity0
    assert entity.min() >= b.first and entity.max() < b.first + b.entries
    assert len(np.unique(entity)) > b.entries // 2  # rows spread over the block's entities
  # the task carries where D is, not D (nor the world): it pickles to the run as a few bytes
  assert task.d_entity is None and len(pickle.dumps(task)) < 4096
  with pytest.raises(ValueError, match="on disk, never whole in memory"):
    task.observations()
  with pytest.raises(ValueError, match="the raw_d arm indexes all of D in memory"):
    task.raw_observations()
  # rows sampled for training are rows of D: (entity, background) -> the observed class's count
  inputs, labels = task.training_data(jax.random.key(0), 200)
  d = {(int(e), int(b)): set() for e, b, _ in _rows(blocks)}
  for e, b, o in _rows(blocks):
    d[int(e), int(b)].add(int(o))
  for q, y in zip(np.asarray(inputs.questions), np.asarray(labels)):
    assert int(q[0]) == task.count0 + 1 and (int(q[2]), int(q[3])) in d
    assert task.class0 + int(np.argmax(y - task.count0)) in d[int(q[2]), int(q[3])]
  # each block gives its share (a run of its rows); asked for more than D, all of D once
  entity = np.asarray(inputs.questions[:, 2]) - task.entity0
  assert np.histogram(entity, [0, 16, 32, 40])[0].tolist() == [80, 80, 40]
  inputs, labels = task.training_data(jax.random.key(1), 10**6)
  whole = np.concatenate([inputs.questions[:, 2:4],
                          task.class0 + np.argmax(labels - task.count0, 1)[:, None]], 1)
  assert sorted(map(tuple, whole.tolist())) == sorted(map(tuple, _rows(blocks).tolist()))


def test_the_same_world_reads_the_d_it_wrote_and_one_not_whole_is_drawn_again(data_dir):
  _, task, _ = _made()
  done = os.path.join(task.d_stored.path, "rows.json")
  written, rows = os.stat(done).st_mtime_ns, _rows(prior.blocks(task))
  _, again, _ = _made()
  assert again.d_stored == task.d_stored and os.stat(done).st_mtime_ns == written
  os.remove(done)  # as if its writer was killed before the end: it is drawn again, the same
  os.makedirs(left := f"{task.d_stored.path}.partial-99999999")  # a killed writer's folder
  _, redrawn, _ = _made()
  assert os.path.exists(done) and not os.path.exists(left)
  np.testing.assert_array_equal(_rows(prior.blocks(redrawn)), rows)
  _, other, _ = _made(num_entities=48)  # another world's D has a folder of its own
  assert other.d_stored.path != task.d_stored.path


def test_a_fit_by_blocks_is_the_fit_of_the_same_d_as_one_block():
  config, task, truth = _made()
  human = human_model(make_oracle(config, task), task)
  blocks = list(prior.blocks(task))
  whole = prior.Block(0, task.num_entities,
                      jax.tree.map(lambda *a: jnp.concatenate(a), *[b.inputs for b in blocks]),
                      jnp.concatenate([b.labels for b in blocks]))
  fit = lambda d: prior.fit(human, Table(task.spec), d, steps=100, learning_rate=0.3)
  (by_blocks, values, report), (in_one, one_values, one_report) = fit(blocks), fit([whole])
  np.testing.assert_array_equal(values, one_values)
  assert report["d_blocks"] == 3 and one_report["d_blocks"] == 1
  for key in ("d_rows", "log_prior", "log_likelihood", "loss", "mz_parameters"):
    assert report[key] == pytest.approx(one_report[key], rel=1e-5), key
  assert Evaluator(task, truth).z_accuracy(by_blocks) >= 0.9
  with pytest.raises(ValueError, match="blocks must cover z's entries in order"):
    fit(blocks[1:])


def test_a_run_whose_d_is_on_disk_learns(tmp_path):
  registry.register_task("lexicon_on_disk", helpers.make_lexicon_on_disk,
                         registry.task_plugin("lexicon").settings)
  config = config_lib.get_config("lexicon_tiny")
  config.task.name = "lexicon_on_disk"
  summary = loop.run(config, str(tmp_path / "run"))
  prior_line, = helpers.lines(tmp_path / "run", "prior")
  assert prior_line["d_blocks"] == 2 and prior_line["d_rows"] == 32 * 12
  assert summary["z_accuracy"] > 0.9 and summary["final_policy_accuracy"] > 0.5
  assert summary["prosaic_accuracy"] is not None  # prosaic ML trained on rows read from disk


def test_a_memorising_policy_past_embed_rows_shares_rows_between_keys(monkeypatch):
  config = config_lib.get_config("lexicon_tiny")  # 32 entities
  task, _ = helpers.make_lexicon_on_disk(settings(config.task, "task"), world_key(0))
  rows = task.spec.mz_key_token + 8
  monkeypatch.setattr(policy_lib, "EMBED_ROWS", rows)
  pi = policy_lib.make_policy(task.spec, config.model, jax.random.key(0))
  assert pi.embed.embedding.shape[0] == rows
  one = jnp.zeros((2, 1), jnp.int32)
  questions = task.encode(one[:, 0] + 1, jnp.array([[3] + [0] * 3, [3 + 8] + [0] * 3]),
                          jnp.zeros((2, 4), jnp.int32))
  logits = pi(jnp.zeros((2, 0, 1), jnp.int32), questions)
  np.testing.assert_allclose(logits[0], logits[1], rtol=1e-6)  # entities 3 and 11: one row
