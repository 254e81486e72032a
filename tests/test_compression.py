"""Tests of theory.compression: Huffman optimality and bounds, expected lengths, the paper's formula."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from theory import compression

probability_vectors = hnp.arrays(np.float64, st.integers(1, 40), elements=st.floats(0, 1)).filter(
    lambda x: x.sum() > 1e-6).map(lambda x: x / x.sum())


def brute_force_optimal_length(probs):
  """Minimum expected length over all complete prefix codes, by enumerating Kraft-tight length vectors."""
  positive = [p for p in probs if p > 0]
  if len(positive) < 2:
    return 0.0
  best = math.inf
  for lengths in itertools.product(range(1, len(positive)), repeat=len(positive)):
    if sum(2.0**-x for x in lengths) <= 1 + 1e-12:
      best = min(best, sum(p * x for p, x in zip(positive, lengths, strict=True)))
  return best


@given(probability_vectors)
def test_huffman_satisfies_entropy_bound_and_kraft(probs):
  lengths = compression.huffman_code_lengths(probs)
  entropy = compression.entropy_bits(probs)
  expected = float((probs * lengths).sum())
  # H <= E[L] < H + 1; the strict side is checked to float64 resolution (H + 1 rounds to 1 when H < 1e-16).
  assert entropy - 1e-9 <= expected
  assert expected < entropy + 1 or expected == pytest.approx(entropy + 1, rel=1e-15)
  positive = probs > 0
  assert (lengths[~positive] == 0).all()
  if positive.sum() >= 2:
    assert np.sum(2.0 ** -lengths[positive]) == pytest.approx(1.0)  # Huffman codes are complete.


@pytest.mark.parametrize("seed", range(12))
def test_huffman_equals_brute_force_optimum_on_small_alphabets(seed):
  rng = np.random.default_rng(seed)
  probs = rng.dirichlet(np.ones(int(rng.integers(2, 6))))
  lengths = compression.huffman_code_lengths(probs)
  assert float((probs * lengths).sum()) == pytest.approx(brute_force_optimal_length(probs), abs=1e-12)


def test_dyadic_distribution_is_coded_at_its_entropy():
  probs = np.array([0.5, 0.25, 0.125, 0.125])
  assert compression.huffman_code_lengths(probs).tolist() == [1, 2, 3, 3]
  assert compression.expected_code_length(probs, probs) == pytest.approx(compression.entropy_bits(probs))


def test_batched_lengths_equal_row_by_row():
  probs = np.random.default_rng(0).dirichlet(np.ones(9), size=(3, 4))
  batched = compression.huffman_code_lengths(probs)
  for index in np.ndindex(3, 4):
    assert np.array_equal(batched[index], compression.huffman_code_lengths(probs[index]))


def test_expected_length_with_a_mismatched_code_is_direct_and_above_the_entropy():
  rng = np.random.default_rng(1)
  P, q = rng.dirichlet(np.ones(30)), rng.dirichlet(np.ones(30))
  length = compression.expected_code_length(P, q)
  assert length == pytest.approx(float((P * compression.huffman_code_lengths(q)).sum()), rel=1e-15)
  assert length >= compression.entropy_bits(P)  # no prefix code beats the entropy (Shannon).
  q_missing_last = np.r_[q[0] + q[-1], q[1:-1], 0.0]
  assert compression.expected_code_length(P, q_missing_last) == np.inf


def test_paper_formula_is_not_the_exact_huffman_length():
  probs = np.array([0.5, 0.25, 0.25])  # H = E[L] = 1.5 bits; the formula's ceil(H) = 2.
  assert compression.expected_code_length(probs, probs) == pytest.approx(1.5)
  assert compression.paper_ideal_code_length(probs, response_length=1, depth=2) == 2.0


@given(probability_vectors, st.integers(1, 50), st.integers(1, 12))
def test_paper_formula_is_within_one_bit_per_block_of_huffman(probs, length, depth):
  blocks = compression.block_count(length, depth)
  huffman = compression.expected_code_length(probs, probs)
  assert abs(compression.paper_ideal_code_length(probs, length, depth) - blocks * huffman) < blocks


def test_block_count_is_ceiling_of_length_over_depth():
  assert compression.block_count(np.arange(1, 8), 3).tolist() == [1, 1, 1, 2, 2, 2, 3]
  with pytest.raises(ValueError, match="response_length must be >= 1"):
    compression.block_count(0, 3)


@pytest.mark.parametrize("probs, message", [
    ([0.5, 0.6], "sums to"),
    ([0.5, float("nan"), 0.5], "NaN"),
    ([1.5, -0.5], "negative"),
    ([], "empty last axis"),
    (["a", "b"], "must be numeric"),
])
def test_bad_probabilities_are_rejected_in_one_line(probs, message):
  with pytest.raises(ValueError, match=message) as info:
    compression.huffman_code_lengths(probs)
  assert "\n" not in str(info.value)
