"""Exact log-likelihood of whole responses under a toy model, and the token-level NLL loss (SFT)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from theory import token_tree
from toy_models.models import Model

BEGIN = 2  # input symbol before the first token (and after EOS, where nothing is predicted).


def model_inputs(tokens: jax.Array) -> jax.Array:
  """Inputs (B, T) = [begin, t_0, ..., t_{T-2}] for responses `tokens` (B, T) from theory.token_tree."""
  shifted = jnp.concatenate([jnp.full((tokens.shape[0], 1), BEGIN, tokens.dtype), tokens[:, :-1]], axis=1)
  return jnp.where(shifted < 2, shifted, BEGIN)


def token_log_probs(model: Model, params: dict, tokens: jax.Array) -> jax.Array:
  """log p(t_j | t_<j) in nats for every real token of each response, 0 at padding, shape (B, T).

  At the last position of the pruned tree only EOS is possible (the tree's structure, not a learned choice),
  so that position has log-probability 0.
  """
  out = model.logits(params, model_inputs(tokens))
  last = tokens.shape[1] - 1
  forced = jnp.arange(tokens.shape[1]) == last
  out = jnp.where(forced[None, :, None] & (jnp.arange(3) != token_tree.EOS)[None, None, :], -jnp.inf, out)
  log_probs = jax.nn.log_softmax(out, axis=-1)
  targets = jnp.minimum(tokens, token_tree.EOS)
  picked = jnp.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0]
  return jnp.where(tokens == token_tree.PAD, 0.0, picked)


def leaf_log_probs(model: Model, params: dict, tokens: jax.Array) -> jax.Array:
  """log q(x) in nats of each whole response x (B,), summing its tokens' log-probabilities."""
  return token_log_probs(model, params, tokens).sum(axis=-1)


def weighted_token_nll(model: Model, params: dict, tokens: jax.Array, weights: jax.Array) -> jax.Array:
  """Token-level negative log-likelihood in nats per token of a weighted set of responses (the SFT loss).

  sum_x w(x) (-log q(x)) / sum_x w(x) |x|, with |x| counting EOS: the mean over all tokens of the data when
  w(x) counts how often response x occurs. Its minimiser over a free model is the weighted leaf
  distribution, the same as for the per-response loss.

  References:
    Ji et al., "Language Models Resist Alignment", ACL 2025, Section 5 (SFT loss).
  """
  lengths = (tokens != token_tree.PAD).sum(axis=-1)
  weights = weights.astype(params_dtype(params))
  total = -(weights * leaf_log_probs(model, params, tokens)).sum()
  return total / jnp.maximum((weights * lengths).sum(), jnp.finfo(weights.dtype).tiny)


def params_dtype(params: dict):
  """Float type of the first parameter leaf."""
  return jax.tree_util.tree_leaves(params)[0].dtype
