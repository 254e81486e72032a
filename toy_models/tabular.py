"""The tabular model: a free next-token logit vector per node of the pruned token tree (unlimited capacity)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from toy_models.model_config import VOCAB_OUT


def init(key: jax.Array, depth: int, scale: float, dtype) -> dict:
  """Logits of shape (2**depth - 1, 3): one row per prefix (node) of length 0..depth-1, heap-indexed."""
  return {"logits": scale * jax.random.normal(key, (2**depth - 1, VOCAB_OUT), dtype=dtype)}


def node_ids(inputs: jax.Array) -> jax.Array:
  """Heap index of the prefix seen at each position: 2**t - 1 + (value of the first t tokens), shape (B, T)."""
  bits = jnp.where(inputs[:, 1:] < 2, inputs[:, 1:], 0)  # inputs[:, 0] is the begin marker
  steps = inputs.shape[1]

  def step(value, bit):
    value = 2 * value + bit
    return value, value

  _, values = jax.lax.scan(step, jnp.zeros(inputs.shape[0], dtype=jnp.int32), bits.T.astype(jnp.int32))
  values = jnp.concatenate([jnp.zeros((1, inputs.shape[0]), dtype=jnp.int32), values], axis=0).T
  offsets = (2 ** jnp.arange(steps, dtype=jnp.int32) - 1)[None, :]
  return offsets + values


def logits(params: dict, inputs: jax.Array) -> jax.Array:
  """Next-token logits (B, T, 3) for inputs (B, T) = [begin, t_0, ..., t_{T-2}]."""
  return params["logits"][node_ids(inputs)]
