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
  """Chunks of 37 rows (the last one padded with rows that weigh nothing) give the parameters of
  the fit that sums all of D at once, to float rounding, the same z* and the same report."""
  config, task, *_ = helpers.setup_task(name)
  human = human_model(make_oracle(config, task), task)
  d = task.observations()
  assert d[1].shape[0] % 37 and d[1].shape[0] > 3 * 37  # several chunks, a padded last one
  whole, streamed = (prior.fit(human, Table(task.spec), *d, steps=50, learning_rate=0.1,
                               chunk_rows=rows) for rows in (d[1].shape[0], 37))
  np.testing.assert_allclose(np.asarray(streamed[1]), np.asarray(whole[1]), atol=1e-5)
  np.testing.assert_array_equal(np.asarray(streamed[0].entries), np.asarray(whole[0].entries))
  drop = lambda report: {k: v for k, v in report.items() if k != "seconds"}
  assert drop(streamed[2]).keys() == drop(whole[2]).keys()
  for key, value in drop(whole[2]).items():
    assert streamed[2][key] == pytest.approx(value, rel=1e-5), key


def test_chunks_pad_with_rows_that_weigh_nothing():
  inputs, labels = (jnp.arange(10)[:, None],), jnp.arange(10)[:, None] * 2
  (chunked_inputs,), chunked_labels, weights = prior.chunks(inputs, labels, 4)
  assert chunked_labels.shape == (3, 4, 1) and weights.shape == (3, 4)
  assert np.asarray(weights).sum() == 10 and not np.asarray(weights)[2, 2:].any()
  np.testing.assert_array_equal(np.asarray(chunked_labels).reshape(-1)[:10],
                                np.arange(10) * 2)
