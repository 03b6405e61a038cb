"""Run by tests/test_processes.py as one of two processes (jax.distributed on localhost, 2 CPU
devices each): z* on disk, written by process 0, read by both inside H^A's, pi's and type 2's
programs; prints one JSON line saying whether each equals the table in memory to the bit."""
import json
import sys

from amplify import processes

if __name__ == "__main__":
  folder, port, process_id = sys.argv[1], sys.argv[2], int(sys.argv[3])
  processes.start(f"localhost:{port}", 2, process_id)
  # pylint: disable=g-import-not-at-top (after the processes have joined)
  import jax
  import numpy as np

  import helpers
  from amplify.learn import distill, zstore
  from amplify.learn.amplifier import Amplifier, Budget
  from amplify.learn.mz import MzView
  from amplify.learn.type2 import Type2
  from amplify.oracles.make import make_oracle
  config, task, table_mz, policy, competent = helpers.setup_task("lexicon")
  spec = task.spec
  values = np.asarray(table_mz.entries) - spec.z_first_token
  disk_mz = processes.shared(lambda: zstore.write(
      f"{folder}/zstar", [(0, values)], spec.z_entries, spec.z_values, spec.z_first_token))
  inputs = task.deployment_questions(jax.random.key(5), 512)
  answers = {}
  for kind, mz in (("memory", table_mz), ("disk", disk_mz)):
    view = MzView.of(mz, spec)
    answers[kind] = {
        "labels": Amplifier(make_oracle(config, task), mz, task, Budget(4, 4), view=view).label(
            inputs, policy, competent, jax.random.key(2)).answers,
        "predictions": distill.predict(policy, inputs, view),
        "type2": Type2(make_oracle(config, task), task, mz).answers(inputs, jax.random.key(6))[0]}
  print(json.dumps({"devices": jax.device_count(), **{
      name: bool(np.array_equal(np.asarray(answers["memory"][name]),
                                np.asarray(answers["disk"][name])))
      for name in answers["memory"]}}))
