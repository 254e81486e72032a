"""Tests of theory.mixture: the mixture, its optimality, rates per response and per token, normalizations."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.helpers import random_config
from theory import distributions, mixture, token_tree


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
