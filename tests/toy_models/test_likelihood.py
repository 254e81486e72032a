"""toy_models.likelihood against brute force: a tabular model's conditionals multiplied along each response's path."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from theory import token_tree
from toy_models import likelihood
from toy_models.model_config import ModelConfig
from toy_models.models import build_model

DEPTH = 3
MODEL = build_model(ModelConfig(kind="tabular"), DEPTH)
N_LEAVES = token_tree.n_leaves(DEPTH)
TOKENS = token_tree.leaf_tokens(DEPTH)  # numpy: no JAX array is made while the tests are collected


def random_logits(seed: int) -> np.ndarray:
  """Logits (2**DEPTH - 1 nodes, 3 next tokens) of the tabular model, spread enough that every value matters."""
  return np.random.default_rng(seed).normal(scale=1.5, size=(N_LEAVES, 3))


def log_softmax(row: np.ndarray) -> np.ndarray:
  return row - math.log(np.exp(row).sum())


def brute_force_token_log_probs(logits: np.ndarray, depth: int = DEPTH) -> np.ndarray:
  """(n_leaves, depth) nats: log q(token | prefix) along each path, EOS forced at the last layer, 0 at PAD."""
  out = np.zeros((token_tree.n_leaves(depth), depth))
  for index in range(token_tree.n_leaves(depth)):
    node = 0  # heap index of the prefix read so far; its children are 2 node + 1 (token 0) and 2 node + 2 (token 1)
    bits = token_tree.leaf_bits(index, depth)
    for position, bit in enumerate(bits):
      out[index, position] = log_softmax(logits[node])[bit]
      node = 2 * node + 1 + bit
    if len(bits) < depth - 1:  # at the deepest layer EOS is the only continuation: log 1 = 0
      out[index, len(bits)] = log_softmax(logits[node])[token_tree.EOS]
  return out


def params(logits: np.ndarray, dtype=np.float64) -> dict:
  return {"logits": jnp.asarray(logits, dtype=dtype)}


def test_model_inputs_shift_the_response_right_after_the_begin_symbol():
  tokens = jnp.asarray([[0, 1, token_tree.EOS], [1, token_tree.EOS, token_tree.PAD],
                        [token_tree.EOS, token_tree.PAD, token_tree.PAD]], dtype=jnp.int32)
  begin = likelihood.BEGIN
  expected = [[begin, 0, 1], [begin, 1, begin], [begin, begin, begin]]  # EOS and PAD are read as the begin symbol
  assert np.asarray(likelihood.model_inputs(tokens)).tolist() == expected
  assert likelihood.model_inputs(tokens).dtype == jnp.int32


@pytest.mark.parametrize("seed", range(3))
def test_token_log_probs_are_the_conditionals_along_each_path(seed):
  logits = random_logits(seed)
  got = np.asarray(likelihood.token_log_probs(MODEL, params(logits), jnp.asarray(TOKENS)))
  np.testing.assert_allclose(got, brute_force_token_log_probs(logits), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("seed", range(3))
def test_leaf_log_probs_sum_the_tokens_and_form_a_distribution(seed):
  logits = random_logits(seed)
  got = np.asarray(likelihood.leaf_log_probs(MODEL, params(logits), jnp.asarray(TOKENS)))
  np.testing.assert_allclose(got, brute_force_token_log_probs(logits).sum(axis=1), rtol=1e-13)
  assert np.exp(got).sum() == pytest.approx(1.0, abs=1e-13)  # every response of the tree, exactly once


def test_weighted_token_nll_is_nats_per_token_of_the_weighted_responses():
  logits = random_logits(4)
  weights = np.random.default_rng(5).integers(0, 5, N_LEAVES).astype(np.float64)
  weights[0] = 3.0
  log_q = brute_force_token_log_probs(logits).sum(axis=1)
  lengths = np.array([len(token_tree.leaf_bits(i, DEPTH)) + 1 for i in range(N_LEAVES)])  # EOS counted
  expected = (weights * -log_q).sum() / (weights * lengths).sum()
  got = likelihood.weighted_token_nll(MODEL, params(logits), jnp.asarray(TOKENS), jnp.asarray(weights))
  assert float(got) == pytest.approx(expected, rel=1e-13)
  # One response weighted alone: its own -log q / |x|.
  alone = np.zeros(N_LEAVES)
  alone[5] = 2.0
  got = likelihood.weighted_token_nll(MODEL, params(logits), jnp.asarray(TOKENS), jnp.asarray(alone))
  assert float(got) == pytest.approx(-log_q[5] / lengths[5], rel=1e-13)


def test_weighted_token_nll_of_no_data_is_zero_and_follows_the_parameter_type():
  logits = random_logits(6)
  zero = likelihood.weighted_token_nll(MODEL, params(logits), jnp.asarray(TOKENS), jnp.zeros(N_LEAVES))
  assert float(zero) == 0.0  # 0 / max(0, tiny), not 0 / 0
  single = likelihood.weighted_token_nll(MODEL, params(logits, np.float32), jnp.asarray(TOKENS), jnp.ones(N_LEAVES))
  assert single.dtype == jnp.float32
  assert likelihood.params_dtype(params(logits, np.float32)) == jnp.float32
  assert likelihood.params_dtype({"a": jnp.zeros(2, jnp.float64), "b": jnp.zeros(2, jnp.float32)}) == jnp.float64


def softplus(x: float) -> float:
  return math.log1p(math.exp(x)) if x < 30 else x + math.log1p(math.exp(-x))


@pytest.mark.parametrize("beta", [0.1, 1.0, 4.0])
def test_dpo_loss_is_the_double_sum_over_normalised_pair_weights(beta):
  logits, reference_logits = random_logits(7), random_logits(8)
  rng = np.random.default_rng(9)
  chosen, rejected = rng.uniform(0, 2, N_LEAVES), rng.uniform(0, 1, N_LEAVES)
  chosen[rng.integers(N_LEAVES)] = 0.0
  log_q = brute_force_token_log_probs(logits).sum(axis=1)
  log_ref = brute_force_token_log_probs(reference_logits).sum(axis=1)
  margin = log_q - log_ref
  expected = sum(chosen[w] / chosen.sum() * rejected[r] / rejected.sum() * softplus(-beta * (margin[w] - margin[r]))
                 for w in range(N_LEAVES) for r in range(N_LEAVES))
  got = likelihood.dpo_loss(MODEL, params(logits), jnp.asarray(TOKENS), jnp.asarray(chosen), jnp.asarray(rejected),
                            jnp.asarray(log_ref), beta)
  assert float(got) == pytest.approx(expected, rel=1e-12)


def test_dpo_loss_is_ln2_at_the_reference_and_zero_without_pairs():
  logits = random_logits(10)
  log_ref = jnp.asarray(brute_force_token_log_probs(logits).sum(axis=1))
  weights = jnp.asarray(np.arange(1.0, N_LEAVES + 1.0))
  at_reference = likelihood.dpo_loss(MODEL, params(logits), jnp.asarray(TOKENS), weights, weights[::-1], log_ref, 2.0)
  assert float(at_reference) == pytest.approx(math.log(2.0), rel=1e-13)
  no_chosen = likelihood.dpo_loss(MODEL, params(logits), jnp.asarray(TOKENS), jnp.zeros(N_LEAVES), weights, log_ref,
                                  2.0)
  assert float(no_chosen) == 0.0


def test_dpo_loss_falls_when_mass_moves_from_rejected_to_chosen():
  logits = random_logits(11)
  log_ref = jnp.asarray(brute_force_token_log_probs(logits).sum(axis=1))
  chosen = jnp.asarray(np.eye(N_LEAVES)[0])  # the EOS-only response
  rejected = jnp.asarray(np.eye(N_LEAVES)[1])  # the response starting with token 0
  moved = logits.copy()
  moved[0, token_tree.EOS] += 1.0  # the root now prefers EOS: log q(chosen) rises, log q(rejected) falls
  before = likelihood.dpo_loss(MODEL, params(logits), jnp.asarray(TOKENS), chosen, rejected, log_ref, 1.0)
  after = likelihood.dpo_loss(MODEL, params(moved), jnp.asarray(TOKENS), chosen, rejected, log_ref, 1.0)
  log_q = brute_force_token_log_probs(moved).sum(axis=1)
  assert float(after) == pytest.approx(softplus(-((log_q[0] - log_ref[0]) - (log_q[1] - log_ref[1]))), rel=1e-12)
  assert float(after) < float(before) == pytest.approx(math.log(2.0), rel=1e-13)


@pytest.mark.parametrize("beta", [0.5, 3.0])
def test_dpo_pair_loss_is_the_mean_over_the_given_pairs(beta):
  logits, reference_logits = random_logits(12), random_logits(13)
  log_q = brute_force_token_log_probs(logits).sum(axis=1)
  log_ref = brute_force_token_log_probs(reference_logits).sum(axis=1)
  chosen_ids, rejected_ids = np.array([0, 3, 6, 6]), np.array([1, 1, 2, 5])
  got = likelihood.dpo_pair_loss(MODEL, params(logits), jnp.asarray(TOKENS[chosen_ids]),
                                 jnp.asarray(TOKENS[rejected_ids]), jnp.asarray(log_ref[chosen_ids]),
                                 jnp.asarray(log_ref[rejected_ids]), beta)
  margins = log_q - log_ref
  expected = np.mean([softplus(-beta * (margins[w] - margins[r])) for w, r in zip(chosen_ids, rejected_ids,
                                                                                    strict=True)])
  assert float(got) == pytest.approx(expected, rel=1e-12)


def test_dpo_losses_follow_the_parameter_type():
  logits, reference_logits = random_logits(14), random_logits(15)
  log_ref = brute_force_token_log_probs(reference_logits).sum(axis=1)
  weights = np.arange(1.0, N_LEAVES + 1.0)
  expected = likelihood.dpo_loss(MODEL, params(logits), jnp.asarray(TOKENS), jnp.asarray(weights),
                                 jnp.asarray(weights[::-1]), jnp.asarray(log_ref), 1.5)
  single = likelihood.dpo_loss(MODEL, params(logits, np.float32), jnp.asarray(TOKENS), jnp.asarray(weights),
                               jnp.asarray(weights[::-1]), jnp.asarray(log_ref), 1.5)  # float64 weights and reference
  assert single.dtype == jnp.float32 and float(single) == pytest.approx(float(expected), rel=1e-5)
  pairs = likelihood.dpo_pair_loss(MODEL, params(logits, np.float32), jnp.asarray(TOKENS[:3]), jnp.asarray(TOKENS[3:6]),
                                   jnp.asarray(log_ref[:3]), jnp.asarray(log_ref[3:6]), 1.5)
  assert pairs.dtype == jnp.float32
