"""Tests of theory.elasticity: closed-form derivatives vs finite differences, identity, ratio, signs, speed."""

import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.helpers import RTOL_FINITE_DIFFERENCE, RTOL_FLOAT64, random_config
from theory import distributions, elasticity, mixture


def finite_difference(P, sizes, step=1e-4):
  """Central difference of the mixture rates in l = n_t / n_a (bits per response per unit l).

  The step is relative to n_t: near an uncovered support the rates curve on the scale of n_t itself.
  """
  h = step * sizes[2]
  up, down = sizes.copy(), sizes.copy()
  up[2] += h
  down[2] -= h
  return (mixture.compression_rates(P, up) - mixture.compression_rates(P, down)) / (2 * h / sizes[1])


@given(st.integers(0, 100_000))
def test_derivatives_match_central_finite_differences(seed):
  P, sizes = random_config(seed, depth=5)
  sizes[2] = max(sizes[2], 1e-3)  # away from l = 0 so the central difference stays inside the domain
  closed = elasticity.rate_derivatives(P, sizes)
  numeric = finite_difference(P, sizes)
  rates = mixture.compression_rates(P, sizes)
  finite = np.isfinite(rates)
  # Error model of the central difference: truncation (relative, RTOL_FINITE_DIFFERENCE of the largest
  # derivative) plus round-off of subtracting two rates, ~ eps |gamma| / (2 h / n_a) with h = 1e-4 n_t.
  roundoff = 8 * np.finfo(float).eps * np.abs(rates[finite]).max() / (2e-4 * sizes[2] / sizes[1])
  scale = np.abs(closed[finite]).max()
  assert np.allclose(closed[finite], numeric[finite], rtol=RTOL_FINITE_DIFFERENCE,
                     atol=RTOL_FINITE_DIFFERENCE * scale + roundoff)


@given(st.integers(0, 100_000), st.sampled_from([0.0, 1e-6, 1e-2, 1.0, 10.0]))
def test_weighted_identity_holds_for_every_l(seed, l):
  P, sizes = random_config(seed, depth=6)
  sizes[2] = l * sizes[1]
  residual = elasticity.weighted_identity_residual(P, sizes)
  d = elasticity.rate_derivatives(P, sizes)
  scale = np.abs(np.where(np.isfinite(d), d, 0.0) * sizes).max() + sizes[1] / np.log(2)
  assert abs(residual) <= RTOL_FLOAT64 * scale


@given(st.integers(0, 100_000), st.floats(1e-6, 10.0))
def test_ratio_equals_minus_k_with_the_finite_l_correction(seed, l):
  P, sizes = random_config(seed, depth=6)
  sizes[2] = l * sizes[1]
  direct = elasticity.derivative_ratio(P, sizes)
  predicted = elasticity.predicted_ratio(P, sizes)
  assert direct == pytest.approx(predicted, rel=1e-7, abs=1e-9)


def test_ratio_is_exactly_minus_k_at_l_zero_when_the_mixture_covers_the_perturbation():
  depth = 6
  P = np.stack([distributions.leaf_distribution("pareto", depth, seed=1),
                distributions.leaf_distribution("zipf", depth, seed=2, support=(0,)),
                distributions.leaf_distribution("dirichlet", depth, seed=3, support=(1,))])
  for k in [1.0, 30.0, 1e6]:
    assert elasticity.derivative_ratio(P, [k, 1.0, 0.0]) == pytest.approx(-k, rel=1e-9)


def test_uncovered_perturbation_breaks_minus_k_at_l_zero():
  depth = 5
  P = np.stack([distributions.leaf_distribution("pareto", depth, seed=1, support=(1,)),
                distributions.leaf_distribution("zipf", depth, seed=2, support=(1,)),
                distributions.leaf_distribution("uniform", depth, support=(0,))])
  d = elasticity.rate_derivatives(P, [100.0, 1.0, 0.0])
  assert d[0] == pytest.approx(1 / (101 * np.log(2)))  # both rates rise: every old leaf loses mass
  assert d[1] == pytest.approx(d[0])
  assert d[2] == -np.inf
  assert elasticity.derivative_ratio(P, [100.0, 1.0, 0.0]) == pytest.approx(1.0)
  assert elasticity.predicted_ratio(P, [100.0, 1.0, 0.0]) == pytest.approx(1.0)
  assert elasticity.weighted_identity_residual(P, [100.0, 1.0, 0.0]) == pytest.approx(0.0, abs=1e-12)


@given(st.integers(0, 100_000), st.floats(0.0, 10.0))
def test_perturbation_rate_never_rises_and_bound_holds(seed, l):
  P, sizes = random_config(seed, depth=6)
  sizes[2] = l * sizes[1]
  d = elasticity.rate_derivatives(P, sizes)
  assert d[2] <= 1e-12 or np.isnan(d[2])
  k = sizes[0] / sizes[1]
  if d[0] < 0 and np.isfinite(d[1]):
    assert abs(d[1]) >= k * abs(d[0]) * (1 - 1e-9)


@given(st.integers(0, 100_000))
def test_signs_at_l_zero_follow_the_alignment_expectation(seed):
  P, sizes = random_config(seed, depth=6)
  P[2] = P[0] if seed % 2 else P[1]  # pre-training-like or alignment-like perturbations, both covered
  sizes[2] = 0.0
  d = elasticity.rate_derivatives(P, sizes)
  expectation = elasticity.alignment_expectation(P, sizes)
  if abs(expectation - 1) > 1e-9:
    assert (d[1] > 0) == (expectation < 1) == (d[0] < 0)


def test_alignment_like_perturbation_flips_the_papers_signs():
  depth = 6
  P = np.stack([distributions.leaf_distribution("pareto", depth, seed=1),
                distributions.leaf_distribution("pareto", depth, seed=2, support=(0,))])
  P = np.concatenate([P, P[1:]])  # D_t = D_a
  d = elasticity.rate_derivatives(P, [100.0, 1.0, 0.0])
  assert d[1] < 0 < d[0]
  assert elasticity.derivative_ratio(P, [100.0, 1.0, 0.0]) == pytest.approx(-100.0)


def test_batched_derivatives_equal_one_by_one():
  configs = [random_config(s, depth=5) for s in range(8)]
  P = np.stack([c[0] for c in configs])
  sizes = np.stack([c[1] for c in configs])
  batched = elasticity.rate_derivatives(P, sizes)
  for i, (p, n) in enumerate(configs):
    assert np.array_equal(batched[i], elasticity.rate_derivatives(p, n), equal_nan=True)


def test_ten_thousand_configurations_of_depth_ten_in_under_a_second():
  rng = np.random.default_rng(0)
  P = rng.dirichlet(np.ones(1023), size=(10_000, 3))
  sizes = np.stack([10 ** rng.uniform(0, 6, 10_000), np.ones(10_000), rng.uniform(0, 0.1, 10_000)], -1)
  elasticity.rate_derivatives(P[:2], sizes[:2])  # builds the lambdified expression once
  seconds = []
  for _ in range(3):  # best of three, so that a busy machine does not decide the outcome
    start = time.perf_counter()
    out = elasticity.rate_derivatives(P, sizes)
    seconds.append(time.perf_counter() - start)
  assert min(seconds) < 1.0
  assert out.shape == (10_000, 3) and np.isfinite(out).all()


@pytest.mark.parametrize("kwargs, message", [
    ({"align": 1, "perturb": 1}, "three different datasets"),
    ({"perturb": 3}, "perturb=3 is out of range"),
    ({"pretrain": 0.5}, "pretrain must be an integer"),
])
def test_bad_indices_are_rejected(kwargs, message):
  P, sizes = random_config(0, depth=3)
  with pytest.raises(ValueError, match=message):
    elasticity.rate_derivatives(P, sizes, **kwargs)


def test_zero_alignment_size_is_rejected():
  P, sizes = random_config(0, depth=3)
  sizes[1] = 0.0
  with pytest.raises(ValueError, match=r"sizes\[..., align\] must be > 0"):
    elasticity.rate_derivatives(P, sizes)
