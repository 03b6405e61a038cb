"""The studies' shared shape (experiments/common.py): a finished run's kept record."""
import importlib.util
import os

import helpers
from amplify import configs
from amplify.views import report

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _common():
  spec = importlib.util.spec_from_file_location(
      "experiments_common", os.path.join(ROOT, "experiments", "common.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_a_kept_record_reads_as_its_run_and_only_for_its_own_config(finished_run, tmp_path):
  """Kept: the run's config, metrics, summary and world, no checkpoints; read back as the run
  (the report reads the same lines), and refused for any other config (here another seed)."""
  common = _common()
  config, workdir, summary = finished_run(helpers.LEXICON)
  kept = tmp_path / "kept"
  common._keep(str(workdir), str(kept))  # pylint: disable=protected-access
  assert sorted(os.listdir(kept)) == sorted(common.KEPT_FILES)
  assert common._kept_summary(config, str(kept)) == summary  # pylint: disable=protected-access
  assert report.read_metrics(str(kept)) == report.read_metrics(str(workdir))
  other = configs.replace(config, seed=config.seed + 1)
  assert common._kept_summary(other, str(kept)) is None  # pylint: disable=protected-access
  assert common._kept_summary(config, str(tmp_path / "none")) is None  # pylint: disable=protected-access
