"""Data parallel on a mesh (amplify.learn.mesh): 1 and 4 devices compute the same thing. 2 devices:
two processes of 2 in tests/test_processes.py (a whole run against one process of 4) and the
prior's table in tests/test_lexicon.py; no single process of 2 devices runs this comparison."""
import json
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(__file__)


def test_one_and_four_devices_give_the_same_labels_losses_and_type_2():
  """Each device count in a process of its own (XLA fixes it at start-up), both at once:
  H^A's labels with and without pi, pi's predictions and type 2's answers are equal to the bit;
  the losses of 40 distillation steps are equal up to float rounding (the gradient's sum over
  devices adds in another order: trajectories part slowly, by about 1e-4 after 100 steps). Over
  more than one device the questions and minibatches are split over every one and the
  parameters copied on each, or, with `--config.train.shard_params`, split too."""
  def start(devices):
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={devices}"
    env = dict(os.environ, XLA_FLAGS=flags,
               PYTHONPATH=os.pathsep.join([HERE, os.environ.get("PYTHONPATH", "")]))
    return subprocess.Popen([sys.executable, os.path.join(HERE, "mesh_probe.py"), "lexicon",
                             "permutation"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)

  def result(process):
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])

  one, four = map(result, [start(1), start(4)])
  for task, split in (("lexicon", False), ("permutation", False), ("lexicon_shard_params", True)):
    for devices, run in ((1, one), (4, four)):
      if task not in run:  # parameters split over one device: nothing to split
        continue
      probe, single = run[task], one[task.removesuffix("_shard_params")]
      assert probe["devices"] == probe["labels_on"] == probe["params_on"] == devices
      assert (probe["params_split"] > 0) == split
      # over several devices each computes its share of the rows, and the gradient is summed
      assert probe["labels_split"] == probe["gradient_summed"] == (devices > 1)
      for figure in ("round_0", "labels", "predictions", "type2"):
        assert probe[figure] == single[figure], (task, devices, figure)
      np.testing.assert_allclose(probe["losses"], single["losses"], rtol=1e-4)
  assert "lexicon_shard_params" in four
