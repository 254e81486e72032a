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


def test_a_dataset_outside_the_mixture_gets_nan_or_minus_inf_in_any_chunking(monkeypatch):
  # Dataset 3 has size 0 and lives on the unaligned subtree, which no other dataset of positive size covers:
  # its rate is +inf. It stays +inf (NaN derivative) unless the perturbation brings mass there (-inf).
  depth = 4
  aligned, everywhere, unaligned = (distributions.leaf_distribution("uniform", depth, support=s)
                                    for s in [(0,), (), (1,)])
  P = np.stack([np.stack([aligned, aligned, aligned, unaligned]), np.stack([aligned, aligned, everywhere, unaligned])])
  sizes = np.array([[10.0, 1.0, 0.5, 0.0], [10.0, 1.0, 0.0, 0.0]])
  for chunk_elements in [1, 2**40]:
    monkeypatch.setattr(mixture, "CHUNK_ELEMENTS", chunk_elements)
    d = elasticity.rate_derivatives(P, sizes)
    assert np.isnan(d[0, 3]) and np.isfinite(d[0, :3]).all()
    assert d[1, 3] == -np.inf and d[1, 2] == -np.inf and np.isfinite(d[1, :2]).all()


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


def closed_form_derivatives(P, sizes):
  """(n_a / N)(1 - E_{P_t}[P_i / q]) / ln 2 written out directly, for configurations where q > 0 on every leaf."""
  total = sizes.sum(axis=-1, keepdims=True)
  q = np.einsum("...i,...ix->...x", sizes / total, P)
  expectation = np.einsum("...x,...ix->...i", P[..., 2, :] / q, P)
  return sizes[..., 1:2] / total * (1 - expectation) / np.log(2)


def mixed_batch(n_configs, depth=5):
  """A batch mixing covered and uncovered supports, l = 0 and l > 0, k from 1 to 1e6."""
  configs = [random_config(s, depth=depth) for s in range(n_configs)]
  P = np.stack([c[0] for c in configs])
  sizes = np.stack([c[1] for c in configs])
  sizes[::4, 2] = 0.0
  return P, sizes


ELASTICITY_FUNCTIONS = [elasticity.rate_derivatives, elasticity.derivative_ratio, elasticity.predicted_ratio,
                        elasticity.perturbation_term, elasticity.weighted_identity_residual,
                        elasticity.alignment_expectation]


@pytest.mark.parametrize("function", ELASTICITY_FUNCTIONS)
def test_chunked_results_equal_one_chunk_bit_for_bit(function, monkeypatch):
  P, sizes = mixed_batch(24)
  with np.errstate(divide="ignore", invalid="ignore"):
    monkeypatch.setattr(mixture, "CHUNK_ELEMENTS", 2**40)
    whole = function(P, sizes)
    for chunk_elements in [1, 3 * P.shape[-1], 7 * P.shape[-1]]:  # one, three, seven configurations a chunk
      monkeypatch.setattr(mixture, "CHUNK_ELEMENTS", chunk_elements)
      assert np.array_equal(function(P, sizes), whole, equal_nan=True)
      # A two-axis batch with P broadcast over the second axis: chunks along the first, same numbers.
      grid = function(P[:, None], np.stack([sizes, sizes * [1.0, 1.0, 0.5]], axis=1))
      assert np.array_equal(grid[:, 0], whole, equal_nan=True)


def test_batched_derivatives_equal_the_closed_form():
  rng = np.random.default_rng(7)
  P = rng.dirichlet(np.ones(63), size=(500, 3))
  sizes = np.stack([10 ** rng.uniform(0, 6, 500), np.ones(500), rng.uniform(0, 10, 500)], -1)
  d = elasticity.rate_derivatives(P, sizes)
  expected = closed_form_derivatives(P, sizes)
  # 1 - E cancels: the error is relative to (n_a / N)(1 + E) / ln 2, not to the derivative itself.
  total = sizes.sum(axis=-1, keepdims=True)
  q = np.einsum("...i,...ix->...x", sizes / total, P)
  scale = sizes[..., 1:2] / total * (1 + np.einsum("...x,...ix->...i", P[..., 2, :] / q, P)) / np.log(2)
  assert np.all(np.abs(d - expected) <= RTOL_FLOAT64 * scale)


@pytest.mark.parametrize("power", [-980, -300, 1, 300, 1000, 1023])
def test_derivatives_and_ratios_depend_only_on_size_ratios_bit_for_bit(power):
  # Scaling all sizes by 2**power is exact in float64 and rates are homogeneous of degree 0 in the sizes:
  # the results must not change by a single bit, even where N = sum n_i would overflow (sizes up to 1.8e308).
  P, sizes = mixed_batch(12)
  sizes = sizes / sizes.max(axis=-1, keepdims=True) * 1.5  # largest size per configuration 1.5
  scaled = np.ldexp(sizes, power)
  assert np.array_equal(np.ldexp(scaled, -power), sizes)  # no size under- or overflowed
  with np.errstate(divide="ignore", invalid="ignore"):
    for function in [elasticity.rate_derivatives, elasticity.derivative_ratio, elasticity.predicted_ratio,
                     elasticity.alignment_expectation]:
      assert np.array_equal(function(P, scaled), function(P, sizes), equal_nan=True)
    # Size-weighted quantities (bits per response times size) scale with the sizes, exactly.
    for function in [elasticity.perturbation_term, elasticity.weighted_identity_residual]:
      assert np.array_equal(function(P, scaled), np.ldexp(function(P, sizes), power), equal_nan=True)


@pytest.mark.parametrize("factor", [1e300, 1.7e8, 3.0, 1e-300])
def test_derivatives_are_invariant_to_any_common_size_factor(factor):
  # A factor that is not a power of two rounds each size once (relative 1.1e-16), which moves the
  # derivatives by about that much of their scale (n_a / N)(1 + E) / ln 2.
  P, sizes = mixed_batch(16)
  covered = np.isfinite(mixture.compression_rates(P, sizes)).all(axis=-1)
  d, d_scaled = elasticity.rate_derivatives(P, sizes), elasticity.rate_derivatives(P, sizes * factor)
  bound = 1e-12 * (np.abs(d[covered]) + (sizes[..., 1:2] / sizes.sum(axis=-1, keepdims=True))[covered])
  assert np.all(np.abs(d_scaled[covered] - d[covered]) <= bound)
  assert np.array_equal(np.isfinite(d_scaled), np.isfinite(d))


def test_sizes_near_the_float64_maximum_give_finite_derivatives():
  P, _ = random_config(3, depth=6)
  huge = np.array([1.7e308, 1.0e308, 2.0e306])  # N = 2.7e308 overflows; the ratios are fine
  d = elasticity.rate_derivatives(P, huge)
  assert np.isfinite(d).all()
  assert np.array_equal(d, elasticity.rate_derivatives(P, huge / 2.0**1000))
  expected = closed_form_derivatives(P, huge / 1e308)  # independent, from the ratios in a safe range
  assert np.allclose(d, expected, rtol=RTOL_FLOAT64, atol=RTOL_FLOAT64 * np.abs(expected).max())
  assert elasticity.weighted_identity_residual(P, huge) == pytest.approx(0.0, abs=1e-9 * 2.7e308)


def test_size_weighted_results_beyond_float64_raise_one_line():
  depth = 4
  P = np.stack([distributions.leaf_distribution("uniform", depth, support=(0,)),
                distributions.leaf_distribution("uniform", depth, support=(0,)),
                distributions.leaf_distribution("uniform", depth, support=(1,))])
  # At l = 0 the perturbation sits outside the mixture: n_t d gamma_t / dl -> -n_a / ln 2 = -1.44 n_a.
  with pytest.raises(ValueError, match=r"perturbation_term = .* overflows float64; allowed") as info:
    elasticity.perturbation_term(P, [1.0e308, 1.5e308, 0.0])
  assert "\n" not in str(info.value)
  assert elasticity.perturbation_term(P, [1.0e308, 1.0e308, 0.0]) == pytest.approx(-1.0e308 / np.log(2))
  with pytest.raises(ValueError, match=r"k = n_p / n_a = .* overflows float64"):
    elasticity.predicted_ratio(P, [1.0e300, 1.0e-10, 1.0e-12])


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
