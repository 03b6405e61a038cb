"""Learning the prior (amplify.learn.prior): D's likelihood is summed a chunk at a time."""
import jax.numpy as jnp
import numpy as np
import pytest

import helpers
from amplify.learn import prior
from amplify.learn.mz import Table
from amplify.oracles.make import human_model, make_oracle


@pytest.mark.parametrize("name", ["lexicon", "colored_digits"])
def test_a_fit_streamed_over_chunks_of_d_is_the_full_batch_fit(name):
  """Chunks of 37 rows (the last one overlapping the one before, those rows weighing 0) give the
  parameters of the fit that sums all of D at once, to float rounding, the same z* and the same
  report."""
  config, task, *_ = helpers.setup_task(name)
  human = human_model(make_oracle(config, task), task)
  d = task.observations()
  assert d[1].shape[0] % 37 and d[1].shape[0] > 3 * 37  # several chunks, a last one overlapping
  whole, streamed = (prior.fit(human, Table(task.spec), prior.blocks(task), steps=50,
                               learning_rate=0.1, chunk_rows=rows) for rows in (d[1].shape[0], 37))
  np.testing.assert_array_equal(streamed[1], whole[1])
  np.testing.assert_array_equal(np.asarray(streamed[0].entries), np.asarray(whole[0].entries))
  drop = lambda report: {k: v for k, v in report.items() if k != "seconds"}
  assert drop(streamed[2]).keys() == drop(whole[2]).keys()
  for key, value in drop(whole[2]).items():
    assert streamed[2][key] == pytest.approx(value, rel=1e-5), key


def test_chunks_cover_every_row_once():
  """Chunks of 4 of 10 rows: the last one ends at row 9, and its rows read before weigh 0."""
  d = (jnp.arange(10)[:, None],), jnp.arange(10)[:, None] * 2
  seen = np.zeros(10)
  for i in range(3):
    (inputs,), labels, weights = prior.chunk(d, jnp.int32(i), 4)
    assert labels.shape == (4, 1)
    np.testing.assert_array_equal(np.asarray(labels)[:, 0], np.asarray(inputs)[:, 0] * 2)
    np.add.at(seen, np.asarray(inputs)[:, 0], np.asarray(weights))
  np.testing.assert_array_equal(seen, np.ones(10))
