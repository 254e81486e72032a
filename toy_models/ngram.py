"""The n-gram model: next-token logits from a table indexed by the last `context` input symbols."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from toy_models.model_config import VOCAB_IN, VOCAB_OUT


def init(key: jax.Array, context: int, scale: float, dtype) -> dict:
  """A logit table of shape (3**context, 3): one row per context of symbols 0, 1, begin."""
  return {"logits": scale * jax.random.normal(key, (VOCAB_IN**context, VOCAB_OUT), dtype=dtype)}


def context_ids(inputs: jax.Array, context: int) -> jax.Array:
  """Base-3 id of the last `context` input symbols at each position (begin-padded on the left), (B, T)."""
  padded = jnp.concatenate([jnp.full((inputs.shape[0], context - 1), 2, dtype=inputs.dtype), inputs], axis=1)
  steps = inputs.shape[1]
  ids = jnp.zeros(inputs.shape, dtype=jnp.int32)
  for offset in range(context):
    ids = ids * VOCAB_IN + padded[:, offset:offset + steps].astype(jnp.int32)
  return ids


def logits(params: dict, inputs: jax.Array, context: int) -> jax.Array:
  """Next-token logits (B, T, 3) for inputs (B, T)."""
  return params["logits"][context_ids(inputs, context)]
