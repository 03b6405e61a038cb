"""The Oracle seam: the human H, batch first.

`answer(questions, tools, key) -> answers` answers a batch; `tools.ask` goes to the policy and
`tools.lookup` to Mz (see `amplify.oracles.tools`). An oracle never sees ground truth: it gets the
questions, the tools and an RNG key, nothing else.
"""
from __future__ import annotations

from typing import Protocol

import jax

from amplify.tasks.base import Inputs, Tools


class Oracle(Protocol):
  name: str
  jittable: bool  # pure array code: H^A compiles to one program

  def answer(self, questions: jax.Array, tools: Tools, key: jax.Array) -> jax.Array:
    """questions int32[B, Lq] -> answers int32[B, La], IDK where H cannot answer."""

  # For learning the prior (latent worlds): the human's model, reading z only through `lookup`
  # (keys -> each entry's distribution over values); see amplify.tasks.base.HumanModel.
  def log_prior(self, lookup) -> jax.Array:
    """log P_H(z), a scalar."""

  def log_likelihood(self, inputs: Inputs, labels: jax.Array, lookup) -> jax.Array:
    """log P_H(y | x, z) per row of D: float32[B]."""
