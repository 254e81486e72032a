"""theory.validation: every check accepts what it documents, rejects the rest in one line naming the bad value."""

import math
import re

import numpy as np
import pytest

from tests.helpers import one_line_error
from theory import validation


def test_as_float_array_converts_numbers_and_names_non_numbers():
  array = validation.as_float_array("w", [[1, 2], [3, 4]])
  assert array.dtype == np.float64 and array.tolist() == [[1.0, 2.0], [3.0, 4.0]]
  assert one_line_error(validation.as_float_array, "w", "abc") == "w must be numeric, got 'abc'"
  assert one_line_error(validation.as_float_array, "w", {"a": 1}) == "w must be numeric, got {'a': 1}"
  long = "x" * 200
  assert one_line_error(validation.as_float_array, "w", long) == f"w must be numeric, got {repr(long)[:80]}"


@pytest.mark.parametrize("values, what, bad, index", [
    ([[1.0, 2.0], [0.5, float("nan")]], "NaN", float("nan"), (1, 1)),
    ([-1.0, float("inf"), float("nan")], "NaN", float("nan"), (2,)),  # NaN is reported first
    ([-1.0, 2.0, float("inf")], "an infinity", float("inf"), (2,)),  # then infinities
    ([[0.0, 3.0, -2.5, -1.0]], "a negative value", -2.5, (0, 2)),  # then the first negative value
    ([float("nan")], "NaN", float("nan"), (0,)),
    ([-float("inf")], "an infinity", -float("inf"), (0,)),
])
def test_non_finite_or_negative_entries_are_named_with_their_index(values, what, bad, index):
  message = one_line_error(validation.check_finite_non_negative, "masses", np.asarray(values))
  assert message == f"masses contains {what} ({np.float64(bad)!r} at index {index}); allowed: finite numbers >= 0"


@pytest.mark.parametrize("values", [[], [[0.0, 0.0]], [0.0, 1e308, 5e-324], np.zeros((0, 3))])
def test_finite_non_negative_entries_pass(values):
  assert validation.check_finite_non_negative("masses", np.asarray(values, dtype=np.float64)) is None


def test_probabilities_pass_within_the_row_tolerance_and_are_returned_as_float64():
  probs = [[0.5, 0.5], [1.0, 0.0], [0.25, 0.75 + 0.9e-9]]
  checked = validation.check_probabilities("P", probs)
  assert checked.dtype == np.float64 and checked.tolist() == [[0.5, 0.5], [1.0, 0.0], [0.25, 0.75 + 0.9e-9]]
  assert validation.check_probabilities("P", np.zeros((0, 4))).shape == (0, 4)
  assert validation.check_probabilities("P", [1]).tolist() == [1.0]


@pytest.mark.parametrize("probs, index, total", [
    ([0.5, 0.6], (0,), 1.1),
    ([[0.5, 0.5], [0.3, 0.3]], (1,), 0.6),
    ([[[1.0, 0.0]], [[0.25, 0.75 + 2e-9]]], (1, 0), 1.000000002),
    ([[0.0, 0.0]], (0,), 0.0),
])
def test_rows_off_the_simplex_are_named_with_their_sum(probs, index, total):
  message = one_line_error(validation.check_probabilities, "P", probs)
  row_sum = np.atleast_1d(np.asarray(probs).sum(axis=-1))[index]
  assert message == f"P row {index} sums to {float(row_sum)!r}; allowed: rows summing to 1 within 1e-09"
  assert row_sum == pytest.approx(total)


def test_probabilities_with_bad_entries_or_shapes_are_rejected():
  assert one_line_error(validation.check_probabilities, "P", [1.5, -0.5]) == (
      f"P contains a negative value ({np.float64(-0.5)!r} at index (1,)); allowed: finite numbers >= 0")
  assert "contains an infinity" in one_line_error(validation.check_probabilities, "P", [1.0, float("inf")])
  assert one_line_error(validation.check_probabilities, "P", 1.0) == (
      "P must have at least 1 dimension(s), got shape ()")
  assert one_line_error(validation.check_probabilities, "P", [0.5, 0.5], min_ndim=2) == (
      "P must have at least 2 dimension(s), got shape (2,)")
  assert validation.check_probabilities("P", [[0.5, 0.5]], min_ndim=2).shape == (1, 2)
  assert one_line_error(validation.check_probabilities, "P", np.zeros((3, 0))) == (
      "P has an empty last axis (shape (3, 0)); allowed: at least one leaf")
  assert one_line_error(validation.check_probabilities, "P", ["a"]) == "P must be numeric, got ['a']"


def test_huge_rows_are_reported_without_a_floating_point_warning():
  # The sum overflows to inf: reported in one line, with no RuntimeWarning (pytest turns warnings into errors).
  message = one_line_error(validation.check_probabilities, "P", [1e308, 1e308])
  assert message == "P row (0,) sums to inf; allowed: rows summing to 1 within 1e-09"


def test_sizes_pass_when_finite_non_negative_and_not_all_zero():
  sizes = validation.check_sizes("sizes", [[1, 0, 0], [0, 0, 2.5]])
  assert sizes.dtype == np.float64 and sizes.tolist() == [[1.0, 0.0, 0.0], [0.0, 0.0, 2.5]]
  assert validation.check_sizes("sizes", np.ones((0, 3))).shape == (0, 3)  # no configuration at all
  assert validation.check_sizes("sizes", [1.7e308, 1.7e308]).tolist() == [1.7e308, 1.7e308]


def test_bad_sizes_are_named():
  assert one_line_error(validation.check_sizes, "n", 3.0) == (
      "n must have at least one dimension (one entry per dataset), got a scalar")
  assert one_line_error(validation.check_sizes, "n", np.ones((2, 0))) == (
      "n has an empty last axis (shape (2, 0)); allowed: one size per dataset")
  assert one_line_error(validation.check_sizes, "n", [[1.0, 2.0], [0.0, 0.0], [0.0, 0.0]]) == (
      "n are all zero in configuration (1,); allowed: at least one positive size")
  assert one_line_error(validation.check_sizes, "n", [0.0, 0.0]) == (
      "n are all zero in configuration (0,); allowed: at least one positive size")
  assert "contains a negative value" in one_line_error(validation.check_sizes, "n", [1.0, -1.0])


def test_size_exponents_put_the_largest_size_in_half_to_one():
  sizes = np.array([[3.0, 1.0], [0.5, 0.1], [1e-300, 0.0], [1.7e308, 1.0], [1.0, 1.0]])
  exponents = validation.size_exponents(sizes)
  assert exponents.shape == (5, 1)
  assert exponents[:, 0].tolist() == [math.frexp(float(row.max()))[1] for row in sizes] == [2, 0, -996, 1024, 1]
  rescaled = validation.rescaled_sizes(sizes)
  assert np.all((rescaled.max(axis=-1) >= 0.5) & (rescaled.max(axis=-1) < 1.0))
  assert rescaled[0].tolist() == [0.75, 0.25] and rescaled[1].tolist() == [0.5, 0.1]


def test_unscaled_result_multiplies_back_exactly():
  exponents = np.array([[3], [-2], [1000]])
  got = validation.unscaled_result("r", np.array([0.75, -1.5, 0.5]), exponents)
  assert got.tolist() == [6.0, -0.375, math.ldexp(0.5, 1000)]
  assert validation.unscaled_result("r", np.array([np.inf, 1.0]), np.array([[5], [0]])).tolist() == [np.inf, 1.0]
  assert validation.unscaled_result("r", 0.25, np.array([2])).tolist() == 1.0  # one configuration, shape ()


def test_unscaled_result_beyond_float64_names_the_value_and_configuration():
  message = one_line_error(validation.unscaled_result, "residual", np.array([0.5, 1.5]), np.array([[0], [1024]]))
  assert message == ("residual = 3.0 * 2**1023 in configuration (1,) overflows float64; allowed: |residual| <= "
                     "1.798e+308 (divide all sizes by a common factor)")
  message = one_line_error(validation.unscaled_result, "t", np.array(-0.75), np.array([1026]))
  assert message.startswith("t = -6.0 * 2**1023 in configuration (0,) overflows float64")


def test_matching_shapes_give_the_broadcast_batch():
  P = np.full((4, 1, 3, 5), 0.2)
  assert validation.check_matching("P", P, "sizes", np.ones((2, 3))) == (4, 2)
  assert validation.check_matching("P", np.full((3, 5), 0.2), "sizes", np.ones(3)) == ()


def test_mismatched_shapes_are_named():
  assert one_line_error(validation.check_matching, "P", np.ones(3), "n", np.ones(3)) == (
      "P must have shape (..., n_datasets, n_leaves), got (3,)")
  assert one_line_error(validation.check_matching, "P", np.ones((2, 3)), "n", np.ones(3)) == (
      "shape mismatch: P has 2 datasets (shape (2, 3)) but n has 3 (shape (3,))")
  assert one_line_error(validation.check_matching, "P", np.ones((4, 2, 3)), "n", np.ones((5, 2))) == (
      "shape mismatch: batch shapes (4,) of P and (5,) of n do not broadcast")


def test_dataset_indices_are_integers_in_range():
  assert validation.check_index("align", 2, 3) == 2 and validation.check_index("align", np.int64(0), 3) == 0
  assert type(validation.check_index("align", np.int64(1), 3)) is int
  assert one_line_error(validation.check_index, "align", 3, 3) == "align=3 is out of range; allowed: 0..2"
  assert one_line_error(validation.check_index, "align", -1, 3) == "align=-1 is out of range; allowed: 0..2"
  assert one_line_error(validation.check_index, "align", True, 3) == (
      "align must be an integer dataset index, got True")
  assert one_line_error(validation.check_index, "align", 1.0, 3) == "align must be an integer dataset index, got 1.0"


def test_depths_are_positive_integers_that_fit_in_memory():
  assert validation.check_depth(1) == 1 and validation.check_depth(np.int32(28)) == 28
  assert type(validation.check_depth(np.int64(3))) is int
  assert one_line_error(validation.check_depth, True) == "depth must be a positive integer, got True"
  assert one_line_error(validation.check_depth, 2.0) == "depth must be a positive integer, got 2.0"
  assert one_line_error(validation.check_depth, 0) == "depth=0 is too small; allowed: depth >= 1"
  assert one_line_error(validation.check_depth, -3) == "depth=-3 is too small; allowed: depth >= 1"
  # 2 GiB of float64 leaves: 2**28 - 1 leaves fit, 2**29 - 1 (4.0 GiB) do not.
  assert one_line_error(validation.check_depth, 29) == (
      "depth=29 needs 4.0 GiB for its 2**29-1 leaves; allowed: depth <= 28 (limit 2.0 GiB)")


def test_depth_memory_limit_is_inclusive_and_counts_copies():
  assert validation.check_depth(3, max_bytes=7 * 8) == 3  # exactly 2**3 - 1 float64 values
  message = one_line_error(validation.check_depth, 3, max_bytes=7 * 8 - 1)
  assert re.fullmatch(r"depth=3 needs 0\.0 GiB for its 2\*\*3-1 leaves; allowed: depth <= 2 \(limit 0\.0 GiB\)",
                      message)
  assert validation.check_depth(4, max_bytes=15 * 8 * 4, copies=4) == 4
  assert "allowed: depth <= 3 " in one_line_error(validation.check_depth, 4, max_bytes=15 * 8 * 4 - 1, copies=4)
  assert "allowed: depth <= 1 " in one_line_error(validation.check_depth, 2, max_bytes=3 * 8 * 2 - 1, copies=2)
  assert "allowed: depth <= 3 " in one_line_error(validation.check_depth, 6, max_bytes=2**30, copies=2**24)


def test_unscaled_results_are_float64_whatever_the_input_type():
  got = validation.unscaled_result("r", np.array([0.75, 0.5], dtype=np.float32), np.array([[200], [3]]))
  assert got.dtype == np.float64 and got.tolist() == [math.ldexp(0.75, 200), 4.0]  # 0.75 * 2**200 > float32's range


def test_messages_name_the_argument_at_every_check():
  assert one_line_error(validation.check_sizes, "n", "many") == "n must be numeric, got 'many'"
  assert one_line_error(validation.check_sizes, "n", [1.0, -1.0]) == (
      f"n contains a negative value ({np.float64(-1.0)!r} at index (1,)); allowed: finite numbers >= 0")
  assert one_line_error(validation.check_matching, "P", np.ones((4, 2, 3)), "n", np.ones((5, 3, 2))) == (
      "shape mismatch: batch shapes (4,) of P and (5, 3) of n do not broadcast")
