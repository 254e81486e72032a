"""Tests of theory.mixture: the mixture, its optimality, rates per response and per token, normalizations."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.helpers import random_config
from theory import distributions, mixture, token_tree, validation


@given(st.integers(0, 10_000))
def test_rates_equal_a_direct_loop_over_leaves(seed):
  P, sizes = random_config(seed, depth=4)
  q = sum(n * p for n, p in zip(sizes, P, strict=True)) / sizes.sum()
  expected = [sum(-p * np.log2(qx) for p, qx in zip(row, q, strict=True) if p > 0) for row in P]
  assert np.allclose(mixture.compression_rates(P, sizes), expected, rtol=1e-12)


@given(st.integers(0, 10_000))
def test_mixture_minimises_the_weighted_total_code_length(seed):
  P, sizes = random_config(seed, depth=4)
  q = mixture.size_weighted_mixture(P, sizes)

  def weighted_total(model):
    with np.errstate(divide="ignore"):
      logs = np.where(P > 0, np.log2(np.where(model > 0, model, 1e-300)), 0.0)
    return -(sizes[:, None] * P * logs).sum()

  best = weighted_total(q)
  rng = np.random.default_rng(seed)
  for _ in range(20):
    other = 0.9 * q + 0.1 * rng.dirichlet(np.ones(q.size))
    assert weighted_total(other) >= best - 1e-9 * abs(best)


def test_batched_rates_equal_one_by_one():
  configs = [random_config(s, depth=5) for s in range(6)]
  P = np.stack([c[0] for c in configs])
  sizes = np.stack([c[1] for c in configs])
  batched = mixture.compression_rates(P, sizes)
  for i, (p, n) in enumerate(configs):
    assert np.array_equal(batched[i], mixture.compression_rates(p, n))


def test_per_token_rate_divides_each_leaf_by_its_length():
  depth = 5
  P, sizes = random_config(2, depth=depth)
  lengths = token_tree.response_lengths(depth)
  q = mixture.size_weighted_mixture(P, sizes)
  with np.errstate(divide="ignore"):
    expected = np.where(P > 0, -P * np.log2(q) / lengths, 0.0).sum(axis=-1)
  assert np.allclose(mixture.compression_rates_per_token(P, sizes, lengths), expected, rtol=1e-12)


def test_normalizations_subtract_log_leaves_or_the_entropy():
  P, sizes = random_config(5, depth=5)
  rates = mixture.compression_rates(P, sizes)
  assert np.allclose(mixture.normalized_rates(P, sizes, "log_leaves"), rates - np.log2(31))
  kl = mixture.normalized_rates(P, sizes, "kl")
  own = np.array([-(p[p > 0] * np.log2(p[p > 0])).sum() for p in P])
  assert np.allclose(kl, rates - own)
  assert (kl >= -1e-12).all()


def test_zero_size_dataset_outside_the_mixture_has_infinite_rate():
  P = np.stack([distributions.leaf_distribution("uniform", 3, support=(1,)),
                distributions.leaf_distribution("uniform", 3, support=(0,))])
  assert mixture.compression_rates(P, [1.0, 0.0]).tolist() == [pytest.approx(np.log2(3)), np.inf]


def rate_functions(depth):
  lengths = token_tree.response_lengths(depth)
  return {
      "rates": mixture.compression_rates,
      "mixture": mixture.size_weighted_mixture,
      "per_token": lambda P, sizes: mixture.compression_rates_per_token(P, sizes, lengths),
      "kl": lambda P, sizes: mixture.normalized_rates(P, sizes, "kl"),
  }


def batch_of_configs(n_configs, depth=5):
  configs = [random_config(s, depth=depth) for s in range(n_configs)]
  P, sizes = np.stack([c[0] for c in configs]), np.stack([c[1] for c in configs])
  sizes[::3, 2] = 0.0  # some perturbations of size 0, whose rates are +inf where the mixture misses them
  return P, sizes


@pytest.mark.parametrize("name", ["rates", "mixture", "per_token", "kl"])
def test_chunked_results_equal_one_chunk_bit_for_bit(name, monkeypatch):
  depth = 5
  function = rate_functions(depth)[name]
  P, sizes = batch_of_configs(20, depth)
  monkeypatch.setattr(mixture, "CHUNK_ELEMENTS", 2**40)
  whole = function(P, sizes)
  grid_sizes = np.stack([sizes, sizes * 3.0], axis=1)  # batch (20, 2), P broadcast over the second axis
  whole_grid = function(P[:, None], grid_sizes)
  for chunk_elements in [1, 4 * 3 * 31]:  # one or four configurations a chunk
    monkeypatch.setattr(mixture, "CHUNK_ELEMENTS", chunk_elements)
    assert np.array_equal(function(P, sizes), whole)
    assert np.array_equal(function(P[:, None], grid_sizes), whole_grid)


def test_per_token_lengths_may_carry_their_own_batch_axes():
  depth = 4
  P, sizes = batch_of_configs(6, depth)
  lengths = token_tree.response_lengths(depth)
  stretched = np.stack([lengths, 2.0 * lengths])[:, None, None, :]  # (2, 1, 1, n_leaves)
  rates = mixture.compression_rates_per_token(P, sizes, stretched)
  assert rates.shape == (2, 6, 3)
  assert np.array_equal(rates[0], mixture.compression_rates_per_token(P, sizes, lengths))
  assert np.allclose(rates[1], rates[0] / 2, rtol=1e-15)
  with pytest.raises(ValueError, match="do not broadcast"):
    mixture.compression_rates_per_token(P, sizes, np.stack([lengths] * 4)[:, None, None, :].repeat(5, axis=1))


@pytest.mark.parametrize("name", ["rates", "mixture", "per_token", "kl"])
@pytest.mark.parametrize("power", [-980, -200, 1, 200, 1000, 1023])
def test_rates_depend_only_on_size_ratios_bit_for_bit(name, power):
  # Rates and the mixture are homogeneous of degree 0 in the sizes; a power of two scales them exactly, so
  # not a bit may change, also where the raw total N = sum n_i would overflow (largest size 1.5 * 2**1023).
  depth = 5
  function = rate_functions(depth)[name]
  P, sizes = batch_of_configs(9, depth)
  sizes = sizes / sizes.max(axis=-1, keepdims=True) * 1.5
  scaled = np.ldexp(sizes, power)
  assert np.array_equal(np.ldexp(scaled, -power), sizes)  # no size under- or overflowed
  assert np.array_equal(function(P, scaled), function(P, sizes))


def test_rates_stay_finite_for_sizes_near_the_float64_maximum():
  P, sizes = random_config(4, depth=5)
  huge = np.array([1.0e308, 1.7e308, 3.0e306])  # the total 2.7e308 overflows float64
  rates = mixture.compression_rates(P, huge)
  assert np.isfinite(rates).all()
  # Independent: the mixture from the ratios, computed in a safe range.
  ratios = huge / 1e308
  q = (ratios @ P) / ratios.sum()
  expected = [-(p[p > 0] * np.log2(q[p > 0])).sum() for p in P]
  assert np.allclose(rates, expected, rtol=1e-13)
  assert np.isclose(mixture.size_weighted_mixture(P, huge).sum(), 1.0, rtol=1e-14)


@pytest.mark.parametrize("factor", [1e300, 7.0, 1e-300])
def test_rates_are_invariant_to_any_common_size_factor(factor):
  P, sizes = batch_of_configs(9)
  rates = mixture.compression_rates(P, sizes)
  finite = np.isfinite(rates)
  scaled = mixture.compression_rates(P, sizes * factor)
  assert np.array_equal(np.isfinite(scaled), finite)
  assert np.allclose(scaled[finite], rates[finite], rtol=1e-14, atol=0)


def test_rescaled_sizes_keep_every_ratio_and_bring_the_largest_to_half_one():
  sizes = np.array([[1.7e308, 1.0e10, 3.0e2], [0.0, 1e-310, 0.0], [6.0, 3.0, 1.5]])
  rescaled = validation.rescaled_sizes(sizes)
  assert np.all((0.5 <= rescaled.max(axis=-1)) & (rescaled.max(axis=-1) < 1.0))
  exponents = validation.size_exponents(sizes)
  assert np.array_equal(np.ldexp(rescaled, exponents), sizes)  # exact: a power of two per configuration
  assert rescaled[2].tolist() == [0.75, 0.375, 0.1875]
  # The documented limit: sizes below 2**-1022 times the largest of their configuration round to subnormal
  # numbers, and below 2**-1074 times the largest to 0.
  assert validation.rescaled_sizes(np.array([1.7e308, 3.0e-300])).tolist() == [math.ldexp(1.7e308, -1024), 0.0]


@pytest.mark.parametrize("sizes, message", [
    ([1.0, float("inf")], "contains an infinity"),
    (np.ones((2, 0)), "empty last axis"),
])
def test_bad_sizes_are_rejected_in_one_line(sizes, message):
  with pytest.raises(ValueError, match=message) as info:
    validation.check_sizes("sizes", sizes)
  assert "\n" not in str(info.value)


@pytest.mark.parametrize("P, sizes, message", [
    (np.full((2, 3), 1 / 3), [1.0, -1.0], "negative"),
    (np.full((2, 3), 1 / 3), [1.0, float("nan")], "NaN"),
    (np.full((2, 3), 1 / 3), [0.0, 0.0], "all zero"),
    (np.full((2, 3), 1 / 3), [1.0, 2.0, 3.0], "shape mismatch"),
    (np.full((2, 3), 0.3), [1.0, 1.0], "sums to"),
    (np.full(3, 1 / 3), [1.0], "at least 2 dimension"),
])
def test_bad_input_is_rejected_in_one_line(P, sizes, message):
  with pytest.raises(ValueError, match=message) as info:
    mixture.compression_rates(P, sizes)
  assert "\n" not in str(info.value)


def test_unknown_normalization_is_rejected():
  with pytest.raises(ValueError, match="unknown normalization 'ent'; allowed: log_leaves, kl"):
    mixture.normalized_rates(np.full((1, 2), 0.5), [1.0], "ent")
