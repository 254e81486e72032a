"""Exact log-likelihood of whole responses under a toy model, the token-level NLL loss (SFT) and the DPO loss."""

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


def next_token_log_probs(model: Model, params: dict, tokens: jax.Array) -> jax.Array:
  """The model's whole next-token distribution log p(. | t_<j) in nats at every position, shape (B, T, 3).

  Entry [i, j, a] is log p(a | first j tokens of response i) for a in (0, 1, EOS); at the last position only
  EOS is possible (the tree's structure), so entries 0 and 1 are -inf there. token_log_probs are these entries at
  the responses' own tokens. Positions after a response's EOS hold the model's prediction after the begin symbol
  and mean nothing: objectives mask them with tokens != PAD.

  Args:
    model: the model.
    params: its parameters (one run).
    tokens: responses (B, T) from theory.token_tree.

  Returns:
    Log-probabilities (B, T, 3) in nats.

  References:
    Ji et al., "Language Models Resist Alignment", ACL 2025, Def. 3.1 (token trees).
  """
  out = model.logits(params, model_inputs(tokens))
  out = jnp.where(~allowed_tokens(tokens.shape[1])[None], -jnp.inf, out)
  return jax.nn.log_softmax(out, axis=-1)


def allowed_tokens(steps: int) -> jax.Array:
  """(T, 3) mask of the next tokens the pruned tree allows at each position: only EOS at the last one."""
  last = jnp.arange(steps)[:, None] == steps - 1
  return ~(last & (jnp.arange(3) != token_tree.EOS)[None, :])


def score_tokens(log_probs: jax.Array, tokens: jax.Array) -> jax.Array:
  """log p(t_j | t_<j) of each response's own tokens picked from next-token log-probabilities `log_probs`
  (B, T, 3), 0 at padding, shape (B, T)."""
  targets = jnp.minimum(tokens, token_tree.EOS)
  picked = jnp.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0]
  return jnp.where(tokens == token_tree.PAD, 0.0, picked)


def token_log_probs(model: Model, params: dict, tokens: jax.Array) -> jax.Array:
  """log p(t_j | t_<j) in nats for every real token of each response, 0 at padding, shape (B, T).

  At the last position of the pruned tree only EOS is possible (the tree's structure, not a learned choice),
  so that position has log-probability 0.
  """
  return score_tokens(next_token_log_probs(model, params, tokens), tokens)


def token_mass(tokens: jax.Array, weights: jax.Array) -> jax.Array:
  """sum_x w(x) |x|: the weighted number of tokens of the data (|x| counting EOS), at least the dtype's tiny; the
  normaliser of the token-level losses."""
  lengths = (tokens != token_tree.PAD).sum(axis=-1)
  return jnp.maximum((weights * lengths).sum(), jnp.finfo(weights.dtype).tiny)


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
  weights = weights.astype(params_dtype(params))
  total = -(weights * leaf_log_probs(model, params, tokens)).sum()
  return total / token_mass(tokens, weights)


def dpo_loss(model: Model, params: dict, tokens: jax.Array, chosen_weights: jax.Array, rejected_weights: jax.Array,
             reference_log_probs: jax.Array, beta: float) -> jax.Array:
  """The expected DPO loss in nats per pair, over pairs of a chosen and an independently drawn rejected response.

  With margins h(x) = log q(x) - log q_ref(x) of whole responses (nats) and p_c, p_r the normalised chosen and
  rejected weights, the loss is sum_{w,l} p_c(w) p_r(l) softplus(-beta (h(w) - h(l))) = E[-log sigmoid(beta
  (h(w) - h(l)))]. It equals ln 2 where q = q_ref and falls as q moves mass from rejected to chosen responses.
  The model runs once over `tokens`; the pair matrix then costs O(B**2) time and memory, B = len(tokens)
  (2**depth - 1 for every leaf: about 10**6 pairs, 8 MB in float64, per run at depth 10; fine for depth <= ~10,
  beyond it sample pairs with dpo_pair_loss).

  Args:
    model: the model.
    params: its parameters (one run).
    tokens: responses (B, T) from theory.token_tree (e.g. every leaf, token_tree.leaf_tokens(depth)).
    chosen_weights: (B,) weights >= 0 of the chosen responses (e.g. counts), normalised here.
    rejected_weights: (B,) weights >= 0 of the rejected responses, normalised here.
    reference_log_probs: (B,) log q_ref(x) in nats under the reference model (a constant: no gradient).
    beta: DPO's inverse temperature (> 0).

  Returns:
    The scalar loss in nats per pair (0 where either weight vector is all zero).

  References:
    Rafailov et al., "Direct Preference Optimization: Your Language Model is Secretly a Reward Model",
    NeurIPS 2023, Eq. 7.
  """
  dtype = params_dtype(params)
  margins = leaf_log_probs(model, params, tokens) - jax.lax.stop_gradient(reference_log_probs.astype(dtype))
  chosen, rejected = chosen_weights.astype(dtype), rejected_weights.astype(dtype)
  tiny = jnp.finfo(dtype).tiny
  chosen, rejected = chosen / jnp.maximum(chosen.sum(), tiny), rejected / jnp.maximum(rejected.sum(), tiny)
  pair_losses = jax.nn.softplus(-beta * (margins[:, None] - margins[None, :]))
  return chosen @ pair_losses @ rejected


def dpo_pair_loss(model: Model, params: dict, chosen_tokens: jax.Array, rejected_tokens: jax.Array,
                  chosen_reference_log_probs: jax.Array, rejected_reference_log_probs: jax.Array,
                  beta: float) -> jax.Array:
  """The DPO loss in nats per pair, averaged over the pairs (chosen_tokens[i], rejected_tokens[i]).

  The unbiased estimate of dpo_loss from pairs drawn from the chosen and rejected weights; the model runs once
  on the 2B responses of the pairs, whatever the size of the tree.

  Args:
    model: the model.
    params: its parameters (one run).
    chosen_tokens: chosen responses (B, T) from theory.token_tree.
    rejected_tokens: rejected responses (B, T), the i-th paired with the i-th chosen one.
    chosen_reference_log_probs: (B,) log q_ref of the chosen responses in nats (a constant: no gradient).
    rejected_reference_log_probs: (B,) log q_ref of the rejected responses in nats (a constant: no gradient).
    beta: DPO's inverse temperature (> 0).

  Returns:
    The scalar mean of -log sigmoid(beta (h(w_i) - h(l_i))) over the pairs, h = log q - log q_ref.

  References:
    Rafailov et al., "Direct Preference Optimization: Your Language Model is Secretly a Reward Model",
    NeurIPS 2023, Eq. 7.
  """
  dtype = params_dtype(params)
  log_probs = leaf_log_probs(model, params, jnp.concatenate([chosen_tokens, rejected_tokens], axis=0))
  reference = jnp.concatenate([chosen_reference_log_probs, rejected_reference_log_probs]).astype(dtype)
  margins = log_probs - jax.lax.stop_gradient(reference)
  pairs = chosen_tokens.shape[0]
  return jax.nn.softplus(-beta * (margins[:pairs] - margins[pairs:])).mean()


def params_dtype(params: dict):
  """Float type of the first parameter leaf."""
  return jax.tree_util.tree_leaves(params)[0].dtype
