"""z* on disk (amplify.learn.zstore): read through Mz's interface, it answers as the table in
memory does, in H^A's labels, pi's view, type 2 and a whole run."""
import jax
import jax.numpy as jnp
import numpy as np

import helpers
from amplify import configs
from amplify.learn import zstore
from amplify.loop import run as loop
from amplify.tasks import make_task
from amplify.truth.evaluator import Evaluator
from amplify.types import IDK


def _on_disk(table_mz, spec, path, monkeypatch):
  monkeypatch.setattr(zstore, "CHUNK", 8)  # several chunks, the last one short
  entries = np.asarray(table_mz.entries) - spec.z_first_token
  return zstore.write(str(path), ((s, entries[s:s + 8]) for s in range(0, len(entries), 8)),
                      spec.z_entries, spec.z_values, spec.z_first_token)


def test_z_star_on_disk_answers_as_the_table(tmp_path, monkeypatch):
  config, task, table_mz, policy, competent = helpers.setup_task("lexicon", num_entities=37)
  spec = task.spec
  disk_mz = _on_disk(table_mz, spec, tmp_path / "zstar", monkeypatch)
  keys = jnp.asarray(np.random.default_rng(0).integers(-3, spec.z_entries + 3, 500), jnp.int32)
  np.testing.assert_array_equal(jax.jit(disk_mz.lookup)(keys, None), table_mz.lookup(keys, None))
  assert np.asarray(disk_mz.lookup(jnp.array([-1, spec.z_entries]), None)).tolist() == [IDK] * 2
  inputs = task.deployment_questions(jax.random.key(5), 300)
  on_disk, in_memory = (helpers.mz_answers(config, task, mz, policy, competent, inputs)
                        for mz in (disk_mz, table_mz))
  for name, answers in in_memory.items():  # H^A with pi reading Mz, pi's view, type 2
    np.testing.assert_array_equal(on_disk[name], answers, err_msg=name)
  _, truth = make_task(configs.get_config("lexicon_tiny", num_entities=37))
  assert Evaluator(task, truth).z_accuracy(disk_mz) == Evaluator(task, truth).z_accuracy(table_mz)


def test_a_run_reads_z_star_on_disk_past_its_size(tmp_path, monkeypatch, finished_run):
  """Past MEMORY_ENTRIES (here 0) the run writes z* to checkpoints/zstar and H and the referee
  read it there: the same z* accuracy, prior line and round-0 labels as the run in memory. (Later
  rounds are pi's training, the same to the bit under XLA's defaults, measured; the tests' XLA
  flags compile a program with a host callback into other float rounding, and tiny runs part.)"""
  _, in_memory, _ = finished_run(helpers.LEXICON_ROUNDS)
  monkeypatch.setattr(zstore, "MEMORY_ENTRIES", 0)
  workdir = tmp_path / "run"
  summary = loop.run(configs.get_config("lexicon_tiny", type2_size=0, baselines=False, rounds=1),
                     str(workdir))
  assert (workdir / "checkpoints" / "zstar").is_dir()
  assert summary["z_accuracy"] == helpers.read_json(in_memory / "summary.json")["z_accuracy"]
  for phase in ("prior", "label"):
    strip = lambda line: {k: v for k, v in line.items() if "seconds" not in k}
    assert strip(helpers.lines(workdir, phase)[0]) == strip(helpers.lines(in_memory, phase)[0])
  with np.load(workdir / "transcripts" / "round_0.npz") as a, \
       np.load(in_memory / "transcripts" / "round_0.npz") as b:
    assert all(np.array_equal(a[k], b[k]) for k in b.files)
