"""theory.compression on inputs that stress tie-breaking and rounding: many small tied alphabets, absorbed weights."""

import itertools
import math

import numpy as np
import pytest

from tests.helpers import heap_huffman_lengths, within
from theory import compression


@pytest.mark.parametrize("vectorised_from", [2, 10**9])
def test_small_tied_alphabets_follow_the_documented_tie_breaking(vectorised_from, monkeypatch):
  # Integer weights 0..3: every vector of 2..6 symbols, then random ones of 7..13. Ties between leaves, between
  # merged nodes and between the two.
  monkeypatch.setattr(compression, "_VECTORISED_MIN_SYMBOLS", vectorised_from)
  rng = np.random.default_rng(2024)
  exhaustive = [np.array(w, dtype=np.float64) for n in range(2, 7) for w in itertools.product(range(4), repeat=n)]
  for weights in exhaustive + [rng.integers(0, 4, int(rng.integers(7, 14))).astype(np.float64) for _ in range(600)]:
    if weights.sum() == 0:
      continue
    probs = weights / weights.sum()
    assert np.array_equal(compression.huffman_code_lengths(probs), heap_huffman_lengths(probs)), weights.tolist()


@pytest.mark.parametrize("vectorised_from", [2, 10**9])
def test_weights_absorbed_by_rounding_are_merged_first_and_the_merge_ends(vectorised_from, monkeypatch):
  # 1e-20 + 0.25 rounds to 0.25: the first merge's weight is no larger than the next key's, yet it must happen.
  monkeypatch.setattr(compression, "_VECTORISED_MIN_SYMBOLS", vectorised_from)
  for probs in ([1e-20, 1e-20, 0.25, 0.25, 0.5 - 2e-20], [5e-324, 0.5, 0.5 - 5e-324], [1e-18] * 3 + [1 - 3e-18]):
    probs = np.array(probs)
    lengths = within(20, compression.huffman_code_lengths, probs)
    assert float((probs * lengths).sum()) == pytest.approx(float((probs * heap_huffman_lengths(probs)).sum()),
                                                           rel=1e-12)
    assert np.sum(2.0 ** -lengths[probs > 0]) == 1.0


def test_log2_leaves_is_the_offset_of_the_log_leaves_normalisation():
  assert compression.log2_leaves(1) == 0.0 and compression.log2_leaves(8) == 3.0
  assert compression.log2_leaves(2**10 - 1) == pytest.approx(math.log(1023) / math.log(2), rel=1e-15)


def test_entropy_and_expected_length_work_row_by_row_and_name_their_inputs():
  probs = np.array([[0.5, 0.25, 0.25, 0.0], [1.0, 0.0, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25]])
  assert compression.entropy_bits(probs).tolist() == [1.5, 0.0, 2.0]
  model = np.array([[0.5, 0.25, 0.25, 0.0], [0.5, 0.5, 0.0, 0.0], [0.25, 0.25, 0.5, 0.0]])
  # Row 2 puts mass on a leaf the model's code has no word for: +inf there only.
  assert compression.expected_code_length(probs, model).tolist() == [1.5, 1.0, np.inf]
  for function, args, name in [(compression.entropy_bits, ([0.5, 0.6],), "probs"),
                               (compression.expected_code_length, ([0.5, 0.6], [0.5, 0.5]), "data_probs"),
                               (compression.expected_code_length, ([0.5, 0.5], [0.5, 0.6]), "model_probs")]:
    with pytest.raises(ValueError, match=rf"^{name} row \(0,\) sums to "):
      function(*args)


def test_paper_formula_rounds_near_integer_entropies_and_works_row_by_row():
  # H = 1 + ~5e-14 bits: within float64 rounding of 1, so ceil(H) is taken as 1 (the documented tolerance 1e-12).
  near_one = np.array([0.5, 0.5 - 1e-15, 1e-15])
  assert 0 < compression.entropy_bits(near_one) - 1 < 1e-12
  assert compression.paper_ideal_code_length(near_one, 1, 2) == 1.0
  clearly_above = np.array([0.5, 0.5 - 1e-6, 1e-6])
  assert compression.paper_ideal_code_length(clearly_above, 1, 2) == 2.0
  rows = np.array([[1.0, 0.0, 0.0], [0.5, 0.25, 0.25], [0.5, 0.5, 0.0]])
  assert compression.paper_ideal_code_length(rows, 5, 2).tolist() == [0.0, 6.0, 3.0]  # ceil(5/2) = 3 blocks
