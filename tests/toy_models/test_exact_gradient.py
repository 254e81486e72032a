"""The exact (every-response) SFT gradient in chunks of responses, and the final exact objective in chunks of runs,
against the same quantities computed all at once."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from theory import token_tree
from toy_models import likelihood, metrics, training
from toy_models.model_config import ModelConfig
from toy_models.models import build_model
from toy_models.stage_config import StageConfig

DEPTH = 5  # 31 responses: chunks of 4 and 8 leave a partial last chunk


@pytest.mark.parametrize("kind", ["transformer", "tabular"])
@pytest.mark.parametrize("chunk", [4, 8, 31, 64])
def test_chunked_gradient_equals_the_whole_gradient(kind, chunk):
  model = build_model(ModelConfig(kind=kind, width=8, layers=1, heads=2), DEPTH)
  params = model.init(jax.random.PRNGKey(1))
  tokens = jnp.asarray(token_tree.leaf_tokens(DEPTH))
  weights = jnp.asarray(np.random.default_rng(2).uniform(0.0, 2.0, tokens.shape[0])).at[3].set(0.0)
  whole = jax.grad(lambda p: likelihood.weighted_token_nll(model, p, tokens, weights))(params)
  chunked = jax.jit(lambda p: training.exact_sft_gradient(model, p, tokens, weights, chunk=chunk))(params)
  for ours, reference in zip(jax.tree_util.tree_leaves(chunked), jax.tree_util.tree_leaves(whole), strict=True):
    np.testing.assert_allclose(ours, reference, rtol=1e-11, atol=1e-14)
  assert any(np.abs(np.asarray(leaf)).max() > 1e-6 for leaf in jax.tree_util.tree_leaves(whole))  # not all zero


def test_expected_gradient_training_is_the_same_in_chunks(monkeypatch):
  """train_batch with gradient='expected' in chunks of 8 of the 31 responses equals training on the whole gradient
  (one program each: the chunk size is read when the loop is traced)."""
  model = build_model(ModelConfig(kind="tabular"), DEPTH)
  stage = StageConfig(steps=1, gradient="expected", learning_rate=0.05)
  keys = np.stack([np.asarray(jax.random.PRNGKey(i)) for i in range(2)])
  weights = np.random.default_rng(0).uniform(0.1, 3.0, (2, token_tree.n_leaves(DEPTH)))

  def trained(chunk: int) -> np.ndarray:
    monkeypatch.setattr(training, "EXACT_GRADIENT_CHUNK", chunk)
    jax.clear_caches()
    training._batched_segment.cache_clear()
    params, _ = training.train_batch(model, stage, training.init_params(model, keys), weights, np.array([20, 13]),
                                     keys=keys)
    return np.concatenate([np.ravel(leaf) for leaf in jax.tree_util.tree_leaves(params)])

  np.testing.assert_allclose(trained(8), trained(1024), rtol=1e-10, atol=1e-13)


def test_the_environment_sets_the_chunk_and_a_bad_value_is_named(monkeypatch):
  monkeypatch.delenv(training.EXACT_GRADIENT_CHUNK_ENV, raising=False)
  assert training.exact_gradient_chunk() == training.EXACT_GRADIENT_CHUNK == 256  # the tests run on a CPU
  with monkeypatch.context() as patched:
    patched.setattr(jax, "default_backend", lambda: "gpu")
    assert training.exact_gradient_chunk() == training.ACCELERATOR_EXACT_GRADIENT_CHUNK == 512
  model = build_model(ModelConfig(kind="tabular"), DEPTH)  # the chunked sums are checked for every kind above
  params = model.init(jax.random.PRNGKey(4))
  tokens = jnp.asarray(token_tree.leaf_tokens(DEPTH))
  weights = jnp.asarray(np.random.default_rng(5).uniform(0.0, 2.0, tokens.shape[0]))
  whole = training.exact_sft_gradient(model, params, tokens, weights)  # 31 responses: one chunk of 256
  seen = []
  monkeypatch.setattr(training.shared_prefixes, "exact_sft_gradient",
                      lambda *args: seen.append(args[-1]) or whole)  # the chunk it is called with
  monkeypatch.setenv(training.EXACT_GRADIENT_CHUNK_ENV, " 4 ")
  assert training.exact_gradient_chunk() == 4
  training.exact_sft_gradient(model, params, tokens, weights, whole_tree=True)
  assert seen == [4]
  monkeypatch.undo()
  monkeypatch.setenv(training.EXACT_GRADIENT_CHUNK_ENV, "8")
  chunked = training.exact_sft_gradient(model, params, tokens, weights)  # 4 chunks of responses
  for ours, reference in zip(jax.tree_util.tree_leaves(chunked), jax.tree_util.tree_leaves(whole), strict=True):
    np.testing.assert_allclose(ours, reference, rtol=1e-11, atol=1e-14)
  for bad in ("0", "-3", "many", "2.5"):
    monkeypatch.setenv(training.EXACT_GRADIENT_CHUNK_ENV, bad)
    with pytest.raises(ValueError, match=f"ELASTICITY_EXACT_GRADIENT_CHUNK='{bad}'; allowed: an integer >= 1"):
      training.exact_gradient_chunk()


@pytest.mark.parametrize("objective", ["sft", "dpo"])
def test_final_objective_in_chunks_of_runs_equals_one_call(monkeypatch, objective):
  model = build_model(ModelConfig(kind="transformer", width=8, layers=1, heads=2), DEPTH)
  stage = StageConfig(steps=1, gradient="minibatch", batch_size=4, learning_rate=0.01, objective=objective)
  keys = np.stack([np.asarray(jax.random.PRNGKey(i)) for i in range(5)])
  rng = np.random.default_rng(3)
  n = token_tree.n_leaves(DEPTH)
  extra = {}
  if objective == "dpo":
    extra = {"rejected_weights": rng.uniform(0.1, 1.0, (5, n)), "reference_log_probs": rng.normal(-3.0, 0.5, (5, n))}
  weights = rng.uniform(0.1, 3.0, (5, n))
  params = training.init_params(model, keys)
  steps = np.array([6, 4, 6, 0, 5])
  _, whole = training.train_batch(model, stage, params, weights, steps, keys=keys, **extra)
  monkeypatch.setattr(training, "objective_run_chunk", lambda *args, **kwargs: 2)  # 5 runs (8 padded): 3 calls
  _, chunked = training.train_batch(model, stage, params, weights, steps, keys=keys, **extra)
  assert whole.shape == chunked.shape == (5,)
  np.testing.assert_allclose(chunked, whole, rtol=1e-12)


def test_objective_run_chunk_is_the_largest_power_of_two_within_the_limit():
  model = build_model(ModelConfig(kind="transformer", width=32, layers=2, heads=2), 10)
  sft, dpo = StageConfig(steps=1), StageConfig(steps=1, objective="dpo")
  n = token_tree.n_leaves(10)
  one = metrics.evaluation_bytes(model, 1, n)
  assert training.objective_run_chunk(model, sft, 100, memory_limit_bytes=100 * one) == 100  # everything fits
  chunk = training.objective_run_chunk(model, sft, 100, memory_limit_bytes=10 * one)
  assert chunk == 8 and metrics.evaluation_bytes(model, 8, n) <= 10 * one < metrics.evaluation_bytes(model, 16, n)
  assert training.objective_run_chunk(model, sft, 100, memory_limit_bytes=1) == 1  # one run at least
  pairs = n * n * metrics.FLOAT64_BYTES  # one run's DPO pair matrix
  limit = 8 * one + 4 * pairs
  assert training.objective_run_chunk(model, sft, 100, memory_limit_bytes=limit) == 8
  assert training.objective_run_chunk(model, dpo, 100, memory_limit_bytes=limit) == 4  # the pairs do not fit at 8
