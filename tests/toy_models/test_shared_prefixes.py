"""toy_models.shared_prefixes: every response scored from the tree's longest responses equals every response run
through the model (likelihood), for the log-likelihoods and the exact SFT gradient, in any chunking."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from theory import token_tree
from toy_models import likelihood, shared_prefixes, training
from toy_models.model_config import ModelConfig
from toy_models.models import build_model

KINDS = ["tabular", "ngram", "transformer"]


def _model_and_params(kind: str, depth: int, seed: int = 1):
  model = build_model(ModelConfig(kind=kind, width=8, layers=1, heads=2), depth)
  params = model.init(jax.random.PRNGKey(seed))
  noise = jax.random.PRNGKey(seed + 100)  # away from the initial (often symmetric) point
  params = jax.tree_util.tree_map(lambda x: x + 0.3 * jax.random.normal(noise, x.shape, x.dtype), params)
  return model, params


def test_rows_and_the_row_of_each_leaf_at_depth_three():
  rows, row_of_leaf = shared_prefixes.rows_of(3)
  eos = token_tree.EOS
  np.testing.assert_array_equal(rows, [[0, 0, eos], [0, 1, eos], [1, 0, eos], [1, 1, eos]])
  # leaves in heap order: EOS, 0, 1, 00, 01, 10, 11 (then EOS); each row extends the leaf's bits with 0 bits
  np.testing.assert_array_equal(row_of_leaf, [0, 0, 2, 0, 1, 2, 3])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("depth", [1, 3, 6])
def test_leaf_log_probs_equal_every_response_run_through_the_model(kind, depth):
  model, params = _model_and_params(kind, depth)
  tokens = jnp.asarray(token_tree.leaf_tokens(depth))
  ours = shared_prefixes.leaf_log_probs(model, params, tokens)
  reference = likelihood.leaf_log_probs(model, params, tokens)
  np.testing.assert_allclose(ours, reference, rtol=1e-12, atol=1e-13)
  np.testing.assert_allclose(jnp.exp(ours).sum(), 1.0, rtol=1e-12)  # a distribution over the leaves


def test_row_weights_move_every_token_weight_to_one_slot():
  depth = 4
  model, params = _model_and_params("transformer", depth)
  tokens = token_tree.leaf_tokens(depth)
  weights = jnp.asarray(np.random.default_rng(0).uniform(0.0, 2.0, tokens.shape[0]))
  slots = shared_prefixes.row_weights(depth, weights)
  assert slots.shape == (2 ** (depth - 1), depth, 3)
  np.testing.assert_allclose(slots.sum(), (weights * (tokens != token_tree.PAD).sum(axis=1)).sum(), rtol=1e-13)
  row_log_probs = likelihood.next_token_log_probs(model, params, jnp.asarray(shared_prefixes.rows_of(depth)[0]))
  scored = jnp.where(slots != 0, slots * row_log_probs, 0.0).sum()
  reference = (weights * likelihood.leaf_log_probs(model, params, jnp.asarray(tokens))).sum()
  np.testing.assert_allclose(scored, reference, rtol=1e-12)
  assert not np.any(np.asarray(slots)[:, -1, :2])  # the last position is EOS only: no weight on a forced slot


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("chunk", [3, 16])  # 16 rows at depth 5: a partial last chunk of 3, one chunk
def test_exact_gradient_equals_the_gradient_of_the_loss(kind, chunk):
  depth = 5
  model, params = _model_and_params(kind, depth)
  tokens = jnp.asarray(token_tree.leaf_tokens(depth))
  weights = jnp.asarray(np.random.default_rng(2).uniform(0.0, 2.0, tokens.shape[0])).at[3].set(0.0)
  whole = jax.grad(lambda p: likelihood.weighted_token_nll(model, p, tokens, weights))(params)
  ours = jax.jit(lambda p: shared_prefixes.exact_sft_gradient(model, p, depth, weights, chunk))(params)
  via_training = jax.jit(lambda p: training.exact_sft_gradient(model, p, tokens, weights, chunk, whole_tree=True))(
      params)
  for leaves in zip(jax.tree_util.tree_leaves(ours), jax.tree_util.tree_leaves(via_training),
                    jax.tree_util.tree_leaves(whole), strict=True):
    np.testing.assert_allclose(leaves[0], leaves[2], rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(leaves[1], leaves[2], rtol=1e-10, atol=1e-14)
  assert any(np.abs(np.asarray(leaf)).max() > 1e-6 for leaf in jax.tree_util.tree_leaves(whole))


def test_tokens_of_another_shape_are_a_one_line_error():
  model, params = _model_and_params("tabular", 3)
  tokens = jnp.asarray(token_tree.leaf_tokens(3)[:5])
  with pytest.raises(ValueError, match=r"tokens have shape \(5, 3\); allowed: every leaf of a tree, \(7, 3\)"):
    shared_prefixes.leaf_log_probs(model, params, tokens)


def test_whole_tree_log_probs_run_small_trees_as_before_and_large_ones_from_the_rows():
  for depth in (8, 9):  # 255 leaves: every response through the model; 511: the 256 longest responses
    model, params = _model_and_params("tabular", depth)
    tokens = jnp.asarray(token_tree.leaf_tokens(depth))
    ours = np.asarray(shared_prefixes.tree_leaf_log_probs(model, params, depth))
    expected = (likelihood.leaf_log_probs if tokens.shape[0] <= shared_prefixes.WHOLE_TREE_ONE_BY_ONE
                else shared_prefixes.leaf_log_probs)(model, params, tokens)
    np.testing.assert_array_equal(ours, np.asarray(expected))  # the branch taken, bit for bit
    np.testing.assert_allclose(ours, likelihood.leaf_log_probs(model, params, tokens), rtol=1e-12, atol=1e-13)
  assert token_tree.n_leaves(8) <= shared_prefixes.WHOLE_TREE_ONE_BY_ONE < token_tree.n_leaves(9)
