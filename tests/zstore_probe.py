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
  from amplify.learn import zstore
  config, task, table_mz, policy, competent = helpers.setup_task("lexicon")
  spec = task.spec
  values = np.asarray(table_mz.entries) - spec.z_first_token
  disk_mz = processes.shared(lambda: zstore.write(
      f"{folder}/zstar", [(0, values)], spec.z_entries, spec.z_values, spec.z_first_token))
  inputs = task.deployment_questions(jax.random.key(5), 512)
  in_memory, on_disk = (helpers.mz_answers(config, task, mz, policy, competent, inputs)
                        for mz in (table_mz, disk_mz))
  print(json.dumps({"devices": jax.device_count(), **{
      name: bool(np.array_equal(answers, on_disk[name])) for name, answers in in_memory.items()}}))
