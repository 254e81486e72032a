"""Tests of theory.compression: Huffman optimality and bounds, expected lengths, the paper's formula."""

import contextlib
import itertools
import math
import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tests.helpers import heap_huffman_lengths
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


# Rows with at least this many positive symbols take the phase-vectorised merge: 2 forces it on every row,
# 10**9 forces the one-node-at-a-time loop, None keeps the module's default split.
HUFFMAN_PATHS = [2, None, 10**9]


@contextlib.contextmanager
def forced_path(vectorised_from):
  """Context in which huffman_code_lengths takes the path `vectorised_from` selects (see HUFFMAN_PATHS)."""
  with pytest.MonkeyPatch.context() as patch:
    if vectorised_from is not None:
      patch.setattr(compression, "_VECTORISED_MIN_SYMBOLS", vectorised_from)
    yield


def tied_probabilities(rng, n_symbols):
  """Probabilities with many exact ties: small integer weights (some zero) over their sum."""
  weights = rng.integers(0, 4, n_symbols).astype(np.float64)
  weights[rng.integers(n_symbols)] += 1.0
  return weights / weights.sum()


@pytest.mark.parametrize("vectorised_from", HUFFMAN_PATHS)
@pytest.mark.parametrize("seed", range(6))
def test_lengths_equal_the_reference_heap_huffman_with_its_tie_breaking(vectorised_from, seed):
  rng = np.random.default_rng(seed)
  for n_symbols in [2, 3, 7, 40, 600, 2500]:
    for probs in [tied_probabilities(rng, n_symbols), rng.dirichlet(np.ones(n_symbols)),
                  rng.pareto(1.5, n_symbols) / 1e3 + 2.0 ** -rng.integers(0, 40, n_symbols)]:
      probs = probs / probs.sum()
      with forced_path(vectorised_from):
        lengths = compression.huffman_code_lengths(probs)
      assert np.array_equal(lengths, heap_huffman_lengths(probs))


@pytest.mark.parametrize("vectorised_from", HUFFMAN_PATHS)
@given(probs=probability_vectors)
def test_expected_length_equals_the_reference_heap_huffman(vectorised_from, probs):
  # Extreme inputs (5e-324 next to 0.5) make float sums absorb their smaller term, where the two algorithms
  # may break ties differently; the expected lengths still agree to rounding of the weights.
  with forced_path(vectorised_from):
    lengths = compression.huffman_code_lengths(probs)
  reference = heap_huffman_lengths(probs)
  assert float((probs * lengths).sum()) == pytest.approx(float((probs * reference).sum()), rel=1e-12, abs=1e-300)
  positive = probs > 0
  assert (lengths[~positive] == 0).all()
  if positive.sum() >= 2:
    assert np.sum(2.0 ** -lengths[positive]) == 1.0  # complete code: Kraft sum exactly 1 (powers of two)
  else:
    assert (lengths == 0).all()


@pytest.mark.parametrize("vectorised_from", HUFFMAN_PATHS)
@pytest.mark.parametrize("n_symbols", [1, 2, 3, 5, 8, 600, 1000, 1024, 3000])
def test_uniform_source_gets_the_two_lengths_of_a_complete_tree(vectorised_from, n_symbols):
  # All weights tie. In an optimal code for n equal weights no two lengths differ by 2 or more (else merging
  # a deepest sibling pair and splitting a shallow leaf shortens the code), so with m = floor(log2 n) the
  # lengths are m and m + 1, and Kraft's equality a 2**-m + b 2**-(m+1) = 1 with a + b = n gives
  # b = 2 (n - 2**m) symbols of length m + 1, whatever the tie-breaking.
  with forced_path(vectorised_from):
    lengths = compression.huffman_code_lengths(np.full(n_symbols, 1.0 / n_symbols))
  m = int(math.floor(math.log2(n_symbols)))
  if n_symbols == 1:
    assert lengths.tolist() == [0]
    return
  assert np.count_nonzero(lengths == m + 1) == 2 * (n_symbols - 2**m)
  assert np.count_nonzero(lengths == m) == n_symbols - 2 * (n_symbols - 2**m)


def test_zero_probability_symbols_and_a_single_symbol_get_length_zero():
  assert compression.huffman_code_lengths([0.0, 1.0, 0.0]).tolist() == [0, 0, 0]
  assert compression.huffman_code_lengths([0.0, 0.25, 0.0, 0.75]).tolist() == [0, 1, 0, 1]
  probs = np.zeros(1000)
  probs[::2] = 1 / 500
  lengths = compression.huffman_code_lengths(probs)
  assert (lengths[1::2] == 0).all() and np.sum(2.0 ** -lengths[::2]) == 1.0


def test_a_hundred_thousand_leaves_are_coded_optimally_and_fast():
  probs = np.random.default_rng(3).dirichlet(np.ones(100_000))
  start = time.perf_counter()
  lengths = compression.huffman_code_lengths(probs)
  seconds = time.perf_counter() - start
  entropy = float(compression.entropy_bits(probs))
  expected = float((probs * lengths).sum())
  assert entropy <= expected < entropy + 1 and np.sum(2.0 ** -lengths) == 1.0
  assert seconds < 2.0  # generous: ~0.05 s here; the old priority queue took ~1 s and grows faster than n


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
  assert "\n" not in str(info.value) and str(info.value).startswith("probs ")  # names the argument


def test_huffman_code_lengths_are_integers():
  lengths = compression.huffman_code_lengths(np.array([[0.5, 0.25, 0.125, 0.125], [0.25, 0.25, 0.25, 0.25]]))
  assert np.issubdtype(lengths.dtype, np.integer)
  np.testing.assert_array_equal(lengths, [[1, 2, 3, 3], [2, 2, 2, 2]])


def test_rows_with_one_symbol_do_not_stop_the_rows_after_them():
  lengths = compression.huffman_code_lengths(np.array([[1.0, 0.0, 0.0], [0.5, 0.25, 0.25], [0.0, 1.0, 0.0],
                                                       [0.25, 0.25, 0.5]]))
  np.testing.assert_array_equal(lengths, [[0, 0, 0], [1, 2, 2], [0, 0, 0], [2, 2, 1]])
