"""Tests of toy_models.corrector: the conditional table, its loss and minimiser, the exact composition and metrics."""

import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import optimize

from tests.helpers import RTOL_FLOAT64
from theory import token_tree
from theory.conventions import ALIGNED_PREFIX, UNALIGNED_PREFIX
from toy_models import corrector

DEPTH = 3
N = token_tree.n_leaves(DEPTH)
BITS = [token_tree.leaf_bits(i, DEPTH) for i in range(N)]
LENGTHS = token_tree.response_lengths(DEPTH).astype(np.float64)
ALIGNED = token_tree.prefix_mask(DEPTH, ALIGNED_PREFIX)
UNALIGNED = token_tree.prefix_mask(DEPTH, UNALIGNED_PREFIX)
FAST_COMPILE = {"xla_backend_optimization_level": 0}  # tests run each program a few times: compile it quickly
LOG_PROBS = jax.jit(corrector.corrector_log_probs, compiler_options=FAST_COMPILE)
LOSS = jax.jit(jax.value_and_grad(corrector.corrector_nll), compiler_options=FAST_COMPILE)


def random_table(seed: int, scale: float = 1.0) -> dict:
  return {"logits": jnp.asarray(scale * np.random.default_rng(seed).standard_normal((N, N, 3)))}


def conditional_bruteforce(table) -> np.ndarray:
  """c(y | x) by walking y's path through row x of the table (numpy), the last layer forced to EOS."""
  table = np.asarray(table)
  out = np.zeros((N, N))
  for x in range(N):
    for y, bits in enumerate(BITS):
      prob = 1.0
      for j, token in enumerate((*bits, token_tree.EOS)):
        if j < DEPTH - 1:
          z = table[x, token_tree.leaf_index(bits[:j])]
          prob *= np.exp(z[token] - z.max()) / np.exp(z - z.max()).sum()
      out[x, y] = prob
  return out


def random_distribution(seed: int) -> np.ndarray:
  probs = np.random.default_rng(seed).dirichlet(np.ones(N))
  return probs


def test_conditional_matches_brute_force_and_rows_sum_to_one():
  table = random_table(0)
  log_c = np.asarray(LOG_PROBS(table))
  assert corrector.init_corrector(jax.random.PRNGKey(0), DEPTH, 0.1, jnp.float64)["logits"].shape == (N, N, 3)
  np.testing.assert_allclose(np.exp(log_c), conditional_bruteforce(table["logits"]), rtol=RTOL_FLOAT64, atol=1e-15)
  np.testing.assert_allclose(np.exp(log_c).sum(axis=1), 1.0, rtol=RTOL_FLOAT64)


@hypothesis.given(seed=st.integers(0, 2**20))
def test_composed_distribution_sums_to_one_and_matches_the_sum_over_inputs(seed):
  rng = np.random.default_rng(seed)
  base = rng.dirichlet(np.ones(N) * 0.5)
  matrix = rng.dirichlet(np.ones(N) * 0.5, size=N)
  with np.errstate(divide="ignore"):
    composed = np.exp(corrector.composed_log_probs(np.log(base), np.log(matrix)))
  assert composed.sum() == pytest.approx(1.0, rel=RTOL_FLOAT64)
  expected = [sum(base[x] * matrix[x, y] for x in range(N)) for y in range(N)]
  np.testing.assert_allclose(composed, expected, rtol=RTOL_FLOAT64, atol=1e-300)


def test_identity_corrector_reproduces_the_base():
  base = np.log(random_distribution(1))
  with np.errstate(divide="ignore"):
    exact_identity = np.log(np.eye(N))
  np.testing.assert_allclose(corrector.composed_log_probs(base, exact_identity), base, rtol=0, atol=1e-15)
  log_c = np.asarray(LOG_PROBS(corrector.identity_corrector(DEPTH, 50.0, jnp.float64)))
  assert np.all(np.abs(np.diag(log_c)) < 1e-15) and np.all(log_c[~np.eye(N, dtype=bool)] < -45)
  np.testing.assert_allclose(corrector.composed_log_probs(base, log_c), base, rtol=0, atol=1e-12)
  out = corrector.composed_metrics(base, log_c, DEPTH)
  assert out["copy_rate"] == pytest.approx(1.0, abs=1e-12) and out["correction_rate"] == pytest.approx(0.0, abs=1e-12)
  assert out["positive_score"] == pytest.approx(out["positive_score_base"], rel=RTOL_FLOAT64)


def test_loss_matches_brute_force():
  table = random_table(2)
  weights = np.random.default_rng(3).integers(0, 4, (N, N)).astype(np.float64)
  loss, _ = LOSS(table, weights)
  c = conditional_bruteforce(table["logits"])
  expected = -(weights * np.log(c)).sum() / (weights * LENGTHS[None, :]).sum()
  assert float(loss) == pytest.approx(expected, rel=RTOL_FLOAT64)


def training_pairs() -> np.ndarray:
  """Copy pairs, mirror corrections of the unaligned responses and random pairs (so that every row with data has
  full support: a finite minimiser), and two rows (inputs) without data."""
  rng = np.random.default_rng(4)
  weights = corrector.copy_pair_weights(rng.integers(1, 4, N).astype(np.float64))
  unaligned = np.flatnonzero(UNALIGNED)
  weights += 3 * corrector.pair_weights(DEPTH, unaligned, corrector.mirror_responses(unaligned, DEPTH))
  weights += rng.integers(1, 3, (N, N))
  weights[[2, 5]] = 0.0
  return weights


def test_loss_minimiser_is_the_empirical_conditional():
  weights = training_pairs()
  rows = weights.sum(axis=1) > 0
  assert np.all(weights[rows] > 0) and (~rows).sum() == 2

  def fun(flat):
    loss, grads = LOSS({"logits": jnp.asarray(flat.reshape(N, N, 3))}, weights)
    return float(loss), np.asarray(grads["logits"]).ravel()

  result = optimize.minimize(fun, np.zeros(N * N * 3), jac=True, method="L-BFGS-B",
                             options={"gtol": 1e-12, "ftol": 1e-15, "maxiter": 5000})
  c = np.exp(np.asarray(LOG_PROBS({"logits": jnp.asarray(result.x.reshape(N, N, 3))})))
  empirical = weights[rows] / weights[rows].sum(axis=1, keepdims=True)
  np.testing.assert_allclose(c[rows], empirical, rtol=1e-6)
  # The optimum is the conditional entropy of the pairs, per output token, and no random table beats it.
  with np.errstate(divide="ignore", invalid="ignore"):
    entropy = -np.where(weights > 0, weights * np.log(np.where(weights > 0, weights, 1.0)
                                                      / weights.sum(axis=1, keepdims=True)), 0.0).sum()
  optimum = entropy / (weights * LENGTHS[None, :]).sum()
  assert result.fun == pytest.approx(optimum, rel=1e-7)
  for seed in range(5):
    assert fun(result.x + 0.1 * np.random.default_rng(seed).standard_normal(result.x.size))[0] > optimum


def test_correction_pairs_go_from_unaligned_to_aligned():
  unaligned = np.flatnonzero(UNALIGNED)
  mirrored = corrector.mirror_responses(unaligned, DEPTH)
  for x, y in zip(unaligned, mirrored, strict=True):
    assert BITS[x][0] == 1 and BITS[y] == (0, *BITS[x][1:])
  np.testing.assert_array_equal(corrector.mirror_responses(mirrored, DEPTH), unaligned)
  source = UNALIGNED / UNALIGNED.sum()
  inputs, outputs = corrector.draw_correction_pairs(DEPTH, 50, source, seed=0)
  assert np.all(UNALIGNED[inputs]) and np.array_equal(outputs, corrector.mirror_responses(inputs, DEPTH))
  target = ALIGNED / ALIGNED.sum()
  inputs, outputs = corrector.draw_correction_pairs(DEPTH, 50, source, target, seed=1)
  assert np.all(UNALIGNED[inputs]) and np.all(ALIGNED[outputs])
  counts = corrector.pair_weights(DEPTH, inputs, outputs)
  assert counts.sum() == 50 and np.all(counts[~UNALIGNED] == 0) and np.all(counts[:, ~ALIGNED] == 0)
  np.testing.assert_array_equal(corrector.copy_pair_weights(np.arange(N)), np.diag(np.arange(N)))


def test_composed_metrics_match_brute_force():
  base = random_distribution(5)
  c = conditional_bruteforce(random_table(6)["logits"])
  out = corrector.composed_metrics(np.log(base), np.log(c), DEPTH)
  p = np.array([sum(base[x] * c[x, y] for x in range(N)) for y in range(N)])
  np.testing.assert_allclose(np.exp2(out["composed_log2_probs"]), p, rtol=RTOL_FLOAT64)
  assert out["positive_score"] == pytest.approx(p[ALIGNED].sum(), rel=RTOL_FLOAT64)
  assert out["positive_score_base"] == pytest.approx(base[ALIGNED].sum(), rel=RTOL_FLOAT64)
  corrected = sum(base[x] * c[x, y] for x in range(N) for y in range(N) if UNALIGNED[x] and ALIGNED[y])
  assert out["correction_rate"] == pytest.approx(corrected / base[UNALIGNED].sum(), rel=RTOL_FLOAT64)
  spoiled = sum(base[x] * c[x, y] for x in range(N) for y in range(N) if ALIGNED[x] and UNALIGNED[y])
  assert out["degradation_rate"] == pytest.approx(spoiled / base[ALIGNED].sum(), rel=RTOL_FLOAT64)
  assert out["copy_rate"] == pytest.approx(sum(base[x] * c[x, x] for x in range(N)), rel=RTOL_FLOAT64)


def test_a_perfect_mirror_corrector_moves_all_unaligned_mass():
  base = random_distribution(7)
  matrix = np.eye(N)
  unaligned = np.flatnonzero(UNALIGNED)
  matrix[unaligned] = np.eye(N)[corrector.mirror_responses(unaligned, DEPTH)]
  with np.errstate(divide="ignore"):
    out = corrector.composed_metrics(np.log(base), np.log(matrix), DEPTH)
  assert out["positive_score"] == pytest.approx(base[ALIGNED | UNALIGNED].sum(), rel=RTOL_FLOAT64)
  assert out["correction_rate"] == pytest.approx(1.0, rel=RTOL_FLOAT64) and out["degradation_rate"] == 0.0


def test_batched_composition():
  bases = np.log(np.stack([random_distribution(8), random_distribution(9)]))
  log_c = np.log(conditional_bruteforce(random_table(10)["logits"]))
  batched = corrector.composed_metrics(bases, log_c, DEPTH)
  for run in range(2):
    single = corrector.composed_metrics(bases[run], log_c, DEPTH)
    for name, values in single.items():
      np.testing.assert_allclose(batched[name][run], values, rtol=RTOL_FLOAT64)


def test_bad_input_raises_one_line_value_errors():
  cases = [
      lambda: corrector.init_corrector(jax.random.PRNGKey(0), 11, 0.1, jnp.float64),
      lambda: corrector.init_corrector(jax.random.PRNGKey(0), DEPTH, -1.0, jnp.float64),
      lambda: corrector.identity_corrector(DEPTH, 0.0, jnp.float64),
      lambda: corrector.corrector_log_probs({"logits": jnp.zeros((6, 6, 3))}),
      lambda: corrector.corrector_nll(random_table(0), np.zeros((N, N - 1))),
      lambda: corrector.copy_pair_weights(-np.ones(N)),
      lambda: corrector.pair_weights(DEPTH, [0, 1], [N]),
      lambda: corrector.pair_weights(DEPTH, [0, 1], [2, N]),
      lambda: corrector.mirror_responses([0], DEPTH),
      lambda: corrector.draw_correction_pairs(DEPTH, 3, ALIGNED / ALIGNED.sum(), seed=0),
      lambda: corrector.draw_correction_pairs(DEPTH, -1, UNALIGNED / UNALIGNED.sum(), seed=0),
      lambda: corrector.composed_log_probs(np.zeros(N), np.zeros((N, N + 1))),
      lambda: corrector.composed_metrics(np.zeros(N), np.zeros((N, N)), DEPTH + 1),
  ]
  for bad in cases:
    with pytest.raises(ValueError) as error:
      bad()
    assert "\n" not in str(error.value)
