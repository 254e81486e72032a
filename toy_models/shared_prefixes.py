"""Every response's log-likelihood from the longest responses alone: a causal model sees each prefix once per row.

A response of the pruned token tree is its bits then EOS; the model's prediction at position j depends only on the
first j tokens (every model here is causal). Each response's bits, padded with 0 bits to the longest length, form one
of the 2**(depth - 1) longest bit strings, and at every position up to the response's own EOS that row's inputs are
the response's own. So one pass over those rows (half the 2**depth - 1 responses) gives the next-token distributions
that every response's tokens are scored with: likelihood.leaf_log_probs's numbers up to rounding, from half the model
evaluations. Training's exact SFT gradient and the elasticities use it above WHOLE_TREE_ONE_BY_ONE leaves.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from theory import token_tree
from toy_models import likelihood
from toy_models.models import Model

WHOLE_TREE_ONE_BY_ONE = 255
"""Leaves up to which tree_leaf_log_probs runs every response through the model, as likelihood does: every default-
and quick-scale tree (depth <= 8) keeps the numbers it was published with, bit for bit. Above (the paper scale's
depth 10) the longest responses score them all: equal up to rounding, from half the model evaluations."""


@functools.lru_cache(maxsize=16)
def rows_of(depth: int) -> tuple[np.ndarray, np.ndarray]:
  """(row_tokens, row_of_leaf): the longest responses' tokens, shape (2**(depth - 1), depth) (all bits but the last
  position, which is EOS), and for each leaf the row whose bits extend its own with 0 bits, shape (2**depth - 1,).

  Both are numpy int32 arrays, built once per depth.
  """
  tokens = token_tree.leaf_tokens(depth)
  bits = np.where(tokens < 2, tokens, 0)[:, :depth - 1]  # a response's bits, then 0 bits in place of EOS and PAD
  place = 2 ** np.arange(depth - 2, -1, -1)
  row_of_leaf = (bits * place).sum(axis=1).astype(np.int32)
  row_bits = (np.arange(2 ** (depth - 1))[:, None] // place[None, :]) % 2
  row_tokens = np.concatenate([row_bits, np.full((row_bits.shape[0], 1), token_tree.EOS)], axis=1)
  return row_tokens.astype(np.int32), row_of_leaf


def token_log_probs(model: Model, params: dict, tokens: jax.Array) -> jax.Array:
  """likelihood.token_log_probs of every leaf of the tree (`tokens` = theory.token_tree.leaf_tokens(depth), shape
  (2**depth - 1, depth)), computed from the longest responses only: log p(t_j | t_<j) in nats, 0 at padding.

  Raises a one-line ValueError when `tokens` does not have the whole tree's shape (only then do the rows cover it).
  """
  count, depth = tokens.shape
  if count != token_tree.n_leaves(depth):
    raise ValueError(f"tokens have shape {tokens.shape}; allowed: every leaf of a tree, ({token_tree.n_leaves(depth)}, "
                     f"{depth}) (theory.token_tree.leaf_tokens)")
  row_tokens, row_of_leaf = rows_of(depth)
  return likelihood.score_tokens(likelihood.next_token_log_probs(model, params, jnp.asarray(row_tokens))[row_of_leaf],
                                 tokens)


def leaf_log_probs(model: Model, params: dict, tokens: jax.Array) -> jax.Array:
  """log q(x) in nats of every leaf x (2**depth - 1,), as likelihood.leaf_log_probs, from the longest responses."""
  return token_log_probs(model, params, tokens).sum(axis=-1)


def row_weights(depth: int, weights: jax.Array) -> jax.Array:
  """The leaf weights (2**depth - 1,) moved onto the rows' next-token slots: W[r, j, a] = sum of w(x) over the
  leaves x scored at row r whose token j is a, shape (2**(depth - 1), depth, 3).

  sum_x w(x) log q(x) = sum_{r, j, a} W[r, j, a] log p_r(a | j), since each leaf's tokens are scored at its row.
  """
  tokens = token_tree.leaf_tokens(depth)
  _, row_of_leaf = rows_of(depth)
  leaf, position = np.nonzero(tokens != token_tree.PAD)  # every real token (0, 1 or EOS) of every leaf
  empty = jnp.zeros((2 ** (depth - 1), depth, 3), weights.dtype)
  return empty.at[row_of_leaf[leaf], position, tokens[leaf, position]].add(weights[leaf])


def exact_sft_gradient(model: Model, params: dict, depth: int, weights: jax.Array, chunk: int) -> jax.Array:
  """The gradient of likelihood.weighted_token_nll over every leaf of the tree of `depth`, from the longest
  responses in chunks of `chunk` rows (a lax.scan: memory holds one chunk's activations per run).

  The loss is -sum_x w(x) log q(x) / sum_x w(x) |x|; its numerator is -sum W log p over the rows' slots
  (row_weights), so the gradient sums each chunk of rows' gradient over the same constant denominator. The rows are
  half the leaves: the same gradient, up to rounding, from half the model evaluations of
  training.exact_sft_gradient's chunks of responses.

  Args:
    model: the model (any causal model of toy_models.models).
    params: its parameters (one run).
    depth: the tree's depth.
    weights: (2**depth - 1,) leaf weights >= 0 (counts or probabilities).
    chunk: rows per chunk (>= 1).

  Returns:
    The gradient, a pytree like params.

  References:
    Ji et al., "Language Models Resist Alignment", ACL 2025, Section 5 (the SFT loss); JAX documentation,
    jax.lax.scan.
  """
  weights = weights.astype(likelihood.params_dtype(params))
  denominator = likelihood.token_mass(jnp.asarray(token_tree.leaf_tokens(depth)), weights)
  row_tokens, _ = rows_of(depth)

  def numerator(p, part_tokens, part_slots):
    log_probs = likelihood.next_token_log_probs(model, p, part_tokens)
    return -jnp.where(part_slots != 0, part_slots * log_probs, 0.0).sum()  # 0 * (-inf) at forced slots is no term

  parts = (chunked(jnp.asarray(row_tokens), chunk, pad_with_first=True),
           chunked(row_weights(depth, weights), chunk, pad_with_first=False))
  return gradient_in_chunks(numerator, params, parts, denominator)


def chunked(array: jax.Array, chunk: int, *, pad_with_first: bool) -> jax.Array:
  """`array` (n, ...) as (ceil(n / chunk), chunk, ...), the last chunk padded with copies of the first row (tokens)
  or with zeros (weights: the padding then adds no term)."""
  n, extra = array.shape[0], -array.shape[0] % chunk
  pad = jnp.repeat(array[:1], extra, axis=0) if pad_with_first else jnp.zeros((extra, *array.shape[1:]), array.dtype)
  return jnp.concatenate([array, pad]).reshape(-(-n // chunk), chunk, *array.shape[1:])


def gradient_in_chunks(numerator, params: dict, parts: tuple, denominator: jax.Array):
  """The gradient of sum_c numerator(params, *part_c) / denominator over the chunks of `parts` (arrays with a
  leading chunk axis, chunked), one chunk after another (a lax.scan: memory holds one chunk's activations).

  References:
    JAX documentation, jax.lax.scan.
  """
  def add(total, part):
    grads = jax.grad(numerator)(params, *part)
    return jax.tree_util.tree_map(jnp.add, total, grads), None

  total, _ = jax.lax.scan(add, jax.tree_util.tree_map(jnp.zeros_like, params), parts)
  return jax.tree_util.tree_map(lambda g: g / denominator.astype(g.dtype), total)


def tree_leaf_log_probs(model: Model, params: dict, depth: int) -> jax.Array:
  """log q(x) in nats of every leaf x of the tree of `depth`, (2**depth - 1,): likelihood.leaf_log_probs up to
  WHOLE_TREE_ONE_BY_ONE leaves, leaf_log_probs (from the longest responses) above."""
  tokens = jnp.asarray(token_tree.leaf_tokens(depth))
  if tokens.shape[0] <= WHOLE_TREE_ONE_BY_ONE:
    return likelihood.leaf_log_probs(model, params, tokens)
  return leaf_log_probs(model, params, tokens)
