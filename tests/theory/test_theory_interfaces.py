"""The theory's public functions: any dataset order, batches of several configurations, and one-line errors that
name the argument (P, sizes, lengths, ...) and the bad value."""

import math

import numpy as np
import pytest
import sympy as sp

from tests.helpers import one_line_error, random_config
from theory import distributions, elasticity, mixture, precise, symbolic, token_tree

ELASTICITY = {
    "rate_derivatives": elasticity.rate_derivatives,
    "derivative_ratio": elasticity.derivative_ratio,
    "perturbation_term": elasticity.perturbation_term,
    "predicted_ratio": elasticity.predicted_ratio,
    "weighted_identity_residual": elasticity.weighted_identity_residual,
    "alignment_expectation": elasticity.alignment_expectation,
}


@pytest.mark.parametrize("name", sorted(ELASTICITY))
@pytest.mark.parametrize("order", [(2, 0, 1), (1, 2, 0), (0, 2, 1)])
def test_elasticity_follows_the_datasets_wherever_they_are(name, order):
  # order[j] is where dataset j (pre-training, alignment, perturbation) sits along the dataset axis.
  function = ELASTICITY[name]
  P, sizes = random_config(3, depth=5)
  sizes[2] = 0.3
  moved_P, moved_sizes = np.empty_like(P), np.empty_like(sizes)
  moved_P[list(order)], moved_sizes[list(order)] = P, sizes
  expected = function(P, sizes)
  got = function(moved_P, moved_sizes, pretrain=order[0], align=order[1], perturb=order[2])
  if name == "rate_derivatives":
    got = got[list(order)]
  np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)


def test_a_fourth_dataset_keeps_its_own_derivative_and_joins_the_identity():
  P, sizes = random_config(5, depth=5, n_datasets=4)
  d = elasticity.rate_derivatives(P, sizes)
  q = mixture.size_weighted_mixture(P, sizes)
  n_a, total = sizes[1], sizes.sum()
  expected = n_a / total * (1 - (P * P[2] / q).sum(axis=-1)) / math.log(2)  # (n_a/N)(1 - E_{P_t}[P_i/q]) / ln 2
  np.testing.assert_allclose(d, expected, rtol=1e-12)
  assert abs(elasticity.weighted_identity_residual(P, sizes)) <= 1e-12 * total


def test_an_empty_dataset_outside_the_mixture_adds_nothing_to_the_identity():
  # Pre-training of size 0 lives where nothing else does: its rate is +inf and its derivative NaN, yet n_p = 0.
  depth = 4
  P = np.stack([distributions.leaf_distribution("uniform", depth, support=(1,)),
                distributions.leaf_distribution("zipf", depth, seed=2, support=(0,)),
                distributions.leaf_distribution("pareto", depth, seed=3, support=(0,))])
  sizes = np.array([0.0, 1.0, 0.5])
  assert np.isnan(elasticity.rate_derivatives(P, sizes)[0])
  assert elasticity.weighted_identity_residual(P, sizes) == pytest.approx(0.0, abs=1e-15)


def test_perturbation_term_beyond_float64_names_itself():
  # At l = 0 with the perturbation outside the mixture the term is -n_a m_out / ln 2 = -1.7e308 / ln 2.
  P = np.stack([distributions.leaf_distribution("uniform", 4, support=s) for s in [(0,), (0,), (1,)]])
  huge = np.array([1.7e308, 1.7e308, 0.0])
  message = one_line_error(elasticity.perturbation_term, P, huge)
  assert message.startswith("perturbation_term = -") and "overflows float64; allowed: |perturbation_term| <= " \
                                                         "1.798e+308 (divide all sizes by a common factor)" in message
  assert np.isfinite(elasticity.perturbation_term(P, huge / 1e10))


@pytest.mark.parametrize("name", sorted(ELASTICITY))
def test_elasticity_inputs_are_named(name):
  function = ELASTICITY[name]
  P, sizes = random_config(1, depth=4)
  assert one_line_error(function, P, sizes, align=0) == (
      "pretrain=0, align=0, perturb=2 must be three different datasets")
  assert one_line_error(function, P, sizes, perturb=3) == "perturb=3 is out of range; allowed: 0..2"
  assert one_line_error(function, P, sizes, pretrain=-1) == "pretrain=-1 is out of range; allowed: 0..2"
  assert one_line_error(function, P, np.array([2.0, 0.0, 1.0])) == (
      f"sizes[..., align] must be > 0 (l = n_t / n_a), got {np.float64(0.0)!r}")
  assert one_line_error(function, P, np.array([[2.0, 1.0, 1.0], [2.0, 0.0, 1.0]])) == (
      f"sizes[..., align] must be > 0 (l = n_t / n_a), got {np.float64(0.0)!r}")
  assert one_line_error(function, P[0], sizes) == "P must have at least 2 dimension(s), got shape (15,)"
  assert one_line_error(function, P * 2, sizes).startswith("P row (0,) sums to ")
  assert one_line_error(function, P, [0.0, 0.0, 0.0]) == (
      "sizes are all zero in configuration (0,); allowed: at least one positive size")
  assert one_line_error(function, P, sizes[:2]) == (
      "shape mismatch: P has 3 datasets (shape (3, 15)) but sizes has 2 (shape (2,))")


MIXTURE = {
    "compression_rates": mixture.compression_rates,
    "size_weighted_mixture": mixture.size_weighted_mixture,
    "normalized_rates": mixture.normalized_rates,
    "per_token": lambda P, sizes: mixture.compression_rates_per_token(P, sizes, token_tree.response_lengths(4)),
    "precise": precise.compression_rates,
    "precise_differences": lambda P, sizes: precise.rate_differences(P, sizes, sizes),
}


@pytest.mark.parametrize("name", sorted(MIXTURE))
def test_mixture_inputs_are_named(name):
  function = MIXTURE[name]
  P, sizes = random_config(2, depth=4)
  assert one_line_error(function, P[0], sizes) == "P must have at least 2 dimension(s), got shape (15,)"
  assert one_line_error(function, P * 0.5, sizes).startswith("P row (0,) sums to ")
  assert one_line_error(function, P, [1.0, np.nan, 1.0]) == (
      f"sizes contains NaN ({np.float64('nan')!r} at index (1,)); allowed: finite numbers >= 0")
  assert one_line_error(function, P, sizes[:2]) == (
      "shape mismatch: P has 3 datasets (shape (3, 15)) but sizes has 2 (shape (2,))")
  assert one_line_error(function, P[None].repeat(2, 0), np.ones((3, 3))) == (
      "shape mismatch: batch shapes (2,) of P and (3,) of sizes do not broadcast")


def test_reference_sizes_are_named():
  P, sizes = random_config(2, depth=4)
  assert one_line_error(precise.rate_differences, P, sizes, [0.0, 0.0, 0.0]) == (
      "reference_sizes are all zero in configuration (0,); allowed: at least one positive size")
  assert one_line_error(precise.rate_differences, P, sizes, [1.0, 1.0]) == (
      "shape mismatch: P has 3 datasets (shape (3, 15)) but reference_sizes has 2 (shape (2,))")


def test_per_token_lengths_are_checked_and_named():
  P, sizes = random_config(2, depth=4)
  lengths = token_tree.response_lengths(4)
  assert one_line_error(mixture.compression_rates_per_token, P, sizes, lengths[:-1]) == (
      "lengths must have 15 entries >= 1 (one per leaf), got shape (14,)")
  bad = lengths.astype(float)
  bad[3] = 0.5
  assert one_line_error(mixture.compression_rates_per_token, P, sizes, bad) == (
      "lengths must have 15 entries >= 1 (one per leaf), got shape (15,)")
  assert one_line_error(mixture.compression_rates_per_token, P[None], sizes[None], lengths[:3]) == (
      "lengths must have 15 entries >= 1 (one per leaf), got shape (3,)")
  assert one_line_error(mixture.compression_rates_per_token, P, sizes, "long") == "lengths must be numeric, got 'long'"
  # Lengths of exactly 1 are allowed: then the rate per token is the rate per response.
  np.testing.assert_allclose(mixture.compression_rates_per_token(P, sizes, np.ones(15)),
                             mixture.compression_rates(P, sizes), rtol=1e-15)


def test_normalized_rates_default_and_batches():
  configs = [random_config(s, depth=4) for s in range(3)]
  P, sizes = np.stack([c[0] for c in configs]), np.stack([c[1] for c in configs])
  rates = mixture.compression_rates(P, sizes)
  np.testing.assert_array_equal(mixture.normalized_rates(P, sizes), rates - math.log2(15))  # 'log_leaves'
  own = -(np.where(P > 0, P * np.log2(np.where(P > 0, P, 1.0)), 0.0)).sum(axis=-1)
  np.testing.assert_allclose(mixture.normalized_rates(P, sizes, "kl"), rates - own, rtol=1e-13, atol=1e-13)


def test_precise_batches_keep_each_configuration_apart():
  (P1, s1), (P2, s2) = random_config(7, depth=4), random_config(8, depth=4)
  P = np.stack([P1, P2])
  both = precise.compression_rates(P, s1)  # one size vector for both configurations
  np.testing.assert_allclose(both, np.stack([mixture.compression_rates(P1, s1), mixture.compression_rates(P2, s1)]),
                             rtol=1e-14)
  grid = precise.compression_rates(P1, np.stack([s1, s2]))  # one P for two size vectors
  np.testing.assert_allclose(grid, mixture.compression_rates(P1, np.stack([s1, s2])), rtol=1e-14)
  assert grid.dtype == np.float64 and grid.shape == (2, 3)


@pytest.mark.parametrize("digits", [15, 16.0, 30.0, True, "50"])
def test_precise_digits_must_be_an_integer_of_at_least_16(digits):
  P, sizes = random_config(2, depth=4)
  assert one_line_error(precise.compression_rates, P, sizes, digits=digits) == (
      f"digits={digits!r} is not allowed; allowed: an integer >= 16")


def test_sixteen_digits_are_enough_for_float64_rates():
  P, sizes = random_config(2, depth=4)
  np.testing.assert_allclose(precise.compression_rates(P, sizes, digits=16), mixture.compression_rates(P, sizes),
                             rtol=1e-14)
  values = precise.compression_rates_mp(P, sizes, digits=16)
  assert [float(v) for v in values] == pytest.approx(mixture.compression_rates(P, sizes).tolist(), rel=1e-14)
  assert one_line_error(precise.compression_rates_mp, P[None], sizes) == (
      "P has shape (1, 3, 15); allowed: (n_datasets, n_leaves) for one configuration")


def test_three_dataset_leaf_terms_are_the_closed_form():
  # d/dl [-x log2 q] = -x (dq/dl) / (q ln 2), dq/dl = n_a (p_t - q) / N: (n_a / N) x (1 - p_t / q) / ln 2.
  values = {symbolic.n_p: 30, symbolic.n_a: 2, symbolic.l: sp.Rational(1, 3), symbolic.p_p: sp.Rational(1, 5),
            symbolic.p_a: sp.Rational(1, 7), symbolic.p_t: sp.Rational(2, 9)}
  for x, stored in zip(symbolic.LEAF_SYMBOLS, (symbolic.D_p_leaf, symbolic.D_a_leaf, symbolic.D_t_leaf), strict=True):
    closed = symbolic.n_a * x * (1 - symbolic.p_t / symbolic.q3) / (symbolic.N3 * sp.log(2))
    for term in (symbolic._three_dataset_term(x), stored):
      assert sp.nsimplify(sp.simplify((term - closed).subs(values))) == 0
      assert float(term.subs(values)) == pytest.approx(float(closed.subs(values)), rel=1e-14)


def test_k_beyond_float64_is_named_with_its_sizes():
  P, _ = random_config(4, depth=4)
  sizes = np.array([[3.0, 1.0, 0.5], [1.7e308, 1e-300, 1.0]])
  message = one_line_error(elasticity.predicted_ratio, np.stack([P, P]), sizes)
  assert message == "k = n_p / n_a = 1.7e+308 / 1e-300 overflows float64; allowed: k <= 1.798e+308"


def test_ratios_where_pretraining_does_not_move_are_infinite_or_undefined_without_warnings():
  # q = P_p exactly: alignment and perturbation mirror each other about it, so d gamma_p / dl = 0.
  P = np.array([[0.5, 0.5], [0.75, 0.25], [0.25, 0.75]])
  sizes = np.array([2.0, 1.0, 1.0])
  d = elasticity.rate_derivatives(P, sizes)
  assert d[0] == 0.0 and d[1] > 0 and d[2] < 0
  assert elasticity.derivative_ratio(P, sizes) == np.inf
  assert elasticity.predicted_ratio(P, sizes) == np.inf  # -k - n_t d_t / (n_a * 0), with n_t d_t < 0
  same = np.full((3, 2), 0.5)  # every dataset alike: nothing moves, 0 / 0
  assert np.isnan(elasticity.derivative_ratio(same, sizes)) and np.isnan(elasticity.predicted_ratio(same, sizes))


def test_identity_at_l_zero_with_empty_datasets_whose_rates_fall_from_infinity():
  # Pre-training and perturbation have size 0 and live where alignment does not: at l = 0 their rates fall from
  # +inf (d = -inf), the pre-training's 0 x -inf adds nothing, and the perturbation's limit -n_a m_out / ln 2 cancels
  # n_a d gamma_a / dl = n_a / ln 2.
  P = np.stack([distributions.leaf_distribution("uniform", 3, support=s) for s in [(1,), (0,), (1,)]])
  sizes = np.array([0.0, 2.0, 0.0])
  d = elasticity.rate_derivatives(P, sizes)
  assert d[0] == d[2] == -np.inf and d[1] == pytest.approx(1 / math.log(2))
  assert elasticity.weighted_identity_residual(P, sizes) == pytest.approx(0.0, abs=1e-15)


def test_batch_slices_cut_the_first_axis_into_chunks_of_about_the_requested_size():
  # 10 configurations of 4 entries each, 8 entries a chunk: two configurations a chunk.
  assert mixture.batch_slices((10,), 4, chunk_elements=8) == [(slice(start, start + 2),) for start in range(0, 10, 2)]
  # (3, 5) configurations of 2 entries: a first-axis row holds 10 entries, more than a chunk of 4: one row a chunk.
  assert mixture.batch_slices((3, 5), 2, chunk_elements=4) == [(slice(0, 1),), (slice(1, 2),), (slice(2, 3),)]
  assert mixture.batch_slices((), 7) == [()]
  assert mixture.batch_slices((5,), 1, chunk_elements=100) == [(slice(0, 100),)]
