"""Input checks shared by the theory functions: each failure is one ValueError line naming the bad value."""

from __future__ import annotations

import numpy as np

ROW_SUM_TOLERANCE = 1e-9  # |sum of a probability row - 1| allowed before a row is rejected.
MAX_TREE_BYTES = 2**31  # 2 GiB: the largest float64 leaf array (per distribution) a depth may ask for.


def as_float_array(name: str, value) -> np.ndarray:
  """Converts `value` to a float64 array, rejecting non-numeric input with a one-line error."""
  try:
    array = np.asarray(value, dtype=np.float64)
  except (TypeError, ValueError) as error:
    raise ValueError(f"{name} must be numeric, got {value!r:.80}") from error
  return array


def _first_bad(array: np.ndarray, bad: np.ndarray) -> str:
  index = tuple(int(i) for i in np.argwhere(bad)[0])
  return f"{array[index]!r} at index {index}"


def check_finite_non_negative(name: str, array: np.ndarray) -> None:
  """Raises ValueError if `array` holds NaN, infinities or negative entries."""
  if array.size == 0 or (array.min() >= 0 and array.max() < np.inf):  # two passes, no temporaries; NaN fails both
    return
  if np.isnan(array).any():
    raise ValueError(f"{name} contains NaN ({_first_bad(array, np.isnan(array))}); "
                     "allowed: finite numbers >= 0")
  if np.isinf(array).any():
    raise ValueError(f"{name} contains an infinity ({_first_bad(array, np.isinf(array))}); "
                     "allowed: finite numbers >= 0")
  if (array < 0).any():
    raise ValueError(f"{name} contains a negative value ({_first_bad(array, array < 0)}); "
                     "allowed: finite numbers >= 0")


def _rows_are_probabilities(probs: np.ndarray) -> bool:
  """Fast path of check_probabilities: every row sums to 1 within the tolerance and no entry is negative.

  Two passes and no large temporaries; rows summing to 1 hold no NaN or infinity, so nothing else is needed.
  """
  if probs.size == 0:
    return True
  with np.errstate(over="ignore", invalid="ignore"):  # a failing array is reported by the full check
    return bool(np.all(np.abs(probs.sum(axis=-1) - 1.0) <= ROW_SUM_TOLERANCE) and probs.min() >= 0)


def check_probabilities(name: str, probs, *, min_ndim: int = 1) -> np.ndarray:
  """Returns `probs` as float64 after checking that every row (last axis) is a probability vector."""
  probs = as_float_array(name, probs)
  if probs.ndim < min_ndim:
    raise ValueError(f"{name} must have at least {min_ndim} dimension(s), got shape {probs.shape}")
  if probs.shape[-1] == 0:
    raise ValueError(f"{name} has an empty last axis (shape {probs.shape}); allowed: at least one leaf")
  if _rows_are_probabilities(probs):
    return probs
  check_finite_non_negative(name, probs)
  with np.errstate(over="ignore", invalid="ignore"):  # sums of huge values: reported below, in one line
    sums = probs.sum(axis=-1)
  off = ~(np.abs(sums - 1.0) <= ROW_SUM_TOLERANCE)  # NaN sums count as off
  if off.any():
    index = tuple(int(i) for i in np.argwhere(np.atleast_1d(off))[0])
    value = np.atleast_1d(sums)[index]
    raise ValueError(f"{name} row {index} sums to {float(value)!r}; allowed: rows summing to 1 within "
                     f"{ROW_SUM_TOLERANCE:g}")
  return probs


def check_sizes(name: str, sizes) -> np.ndarray:
  """Returns dataset sizes as float64 after checking they are finite, >= 0 and not all zero per row.

  Any finite sizes are accepted, up to float64's largest (1.8e308): theory functions use them through
  rescaled_sizes, so sums such as the total size never overflow.
  """
  sizes = as_float_array(name, sizes)
  if sizes.ndim < 1:
    raise ValueError(f"{name} must have at least one dimension (one entry per dataset), got a scalar")
  if sizes.shape[-1] == 0:
    raise ValueError(f"{name} has an empty last axis (shape {sizes.shape}); allowed: one size per dataset")
  check_finite_non_negative(name, sizes)
  all_zero = sizes.max(axis=-1) <= 0  # max, not sum: a sum of sizes near 1.8e308 would overflow
  if np.any(all_zero):
    index = tuple(int(i) for i in np.argwhere(np.atleast_1d(all_zero))[0])
    raise ValueError(f"{name} are all zero in configuration {index}; allowed: at least one positive size")
  return sizes


def size_exponents(sizes: np.ndarray) -> np.ndarray:
  """Per configuration, the integer e with the largest size / 2**e in [0.5, 1); shape (..., 1) for broadcasting.

  Args:
    sizes: checked sizes (see check_sizes), shape (..., n_datasets), at least one positive per configuration.
  """
  return np.frexp(sizes.max(axis=-1, keepdims=True))[1]


def rescaled_sizes(sizes: np.ndarray) -> np.ndarray:
  """Sizes divided, per configuration (last axis), by 2**e so that the largest lies in [0.5, 1).

  Rates, mixtures and their derivatives in l are homogeneous of degree 0 in the sizes (only ratios matter),
  and scaling by a power of two is exact in float64, so theory functions compute with these sizes: their
  results are bitwise those of the raw sizes whenever the raw computation neither overflows nor underflows,
  and stay finite for sizes up to float64's largest (1.8e308), where sums like n_p + n_a + n_t overflowed.
  Unit scale also leaves the most room for the products of sizes in the formulas (n_a N / n_t at worst).
  Limit: a configuration whose sizes span more than float64's normal range has its smallest sizes (below
  2**-1022 times the largest) rounded to subnormal numbers, and those below 2**-1074 times the largest to 0.

  Args:
    sizes: checked sizes (see check_sizes), shape (..., n_datasets), at least one positive per configuration.

  Returns:
    float64 array of the same shape, largest entry per configuration in [0.5, 1).

  References:
    IEEE Std 754-2019, section 5.3.3 (scaleB, here numpy.ldexp: exact unless the result over- or underflows).
  """
  return np.ldexp(sizes, -size_exponents(sizes))


def unscaled_result(name: str, scaled: np.ndarray, exponents: np.ndarray) -> np.ndarray:
  """Multiplies back by 2**e a result computed from rescaled sizes that is proportional to the sizes.

  Exact (bitwise the result of the raw sizes) unless it overflows float64, which raises ValueError.

  Args:
    name: the result's name, for the message.
    scaled: the result computed from rescaled_sizes, shape (...).
    exponents: size_exponents of the configurations, shape (..., 1).

  Returns:
    float64 array of shape (...): scaled * 2**e.
  """
  scaled, exponents = np.broadcast_arrays(np.asarray(scaled, dtype=np.float64), exponents[..., 0])
  with np.errstate(over="ignore"):  # reported just below
    result = np.ldexp(scaled, exponents)
  overflowed = np.isinf(result) & np.isfinite(scaled)
  if np.any(overflowed):
    index = tuple(int(i) for i in np.argwhere(np.atleast_1d(overflowed))[0])
    value = np.atleast_1d(scaled)[index] * 2.0 ** (int(np.atleast_1d(exponents)[index]) - 1023)
    raise ValueError(f"{name} = {float(value)!r} * 2**1023 in configuration {index} overflows float64; allowed: "
                     f"|{name}| <= {np.finfo(np.float64).max:.4g} (divide all sizes by a common factor)")
  return result


def check_matching(probs_name: str, probs: np.ndarray, sizes_name: str, sizes: np.ndarray) -> tuple[int, ...]:
  """Checks that P (..., n_datasets, n_leaves) and sizes (..., n_datasets) agree; returns the batch shape."""
  if probs.ndim < 2:
    raise ValueError(f"{probs_name} must have shape (..., n_datasets, n_leaves), got {probs.shape}")
  if probs.shape[-2] != sizes.shape[-1]:
    raise ValueError(f"shape mismatch: {probs_name} has {probs.shape[-2]} datasets (shape {probs.shape}) "
                     f"but {sizes_name} has {sizes.shape[-1]} (shape {sizes.shape})")
  try:
    return np.broadcast_shapes(probs.shape[:-2], sizes.shape[:-1])
  except ValueError as error:
    raise ValueError(f"shape mismatch: batch shapes {probs.shape[:-2]} of {probs_name} and "
                     f"{sizes.shape[:-1]} of {sizes_name} do not broadcast") from error


def check_index(name: str, index: int, n_datasets: int) -> int:
  """Checks that a dataset index is an integer in [0, n_datasets)."""
  if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
    raise ValueError(f"{name} must be an integer dataset index, got {index!r}")
  if not 0 <= index < n_datasets:
    raise ValueError(f"{name}={index} is out of range; allowed: 0..{n_datasets - 1}")
  return int(index)


def check_depth(depth, *, max_bytes: int = MAX_TREE_BYTES, copies: int = 1) -> int:
  """Checks that a token-tree depth is a positive integer whose leaves fit in memory.

  A pruned tree of depth d has 2**d - 1 leaves; `copies` float64 arrays of that size must fit in `max_bytes`.
  """
  if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)):
    raise ValueError(f"depth must be a positive integer, got {depth!r}")
  if depth < 1:
    raise ValueError(f"depth={depth} is too small; allowed: depth >= 1")
  needed = (2**int(depth) - 1) * 8 * copies
  if needed > max_bytes:
    largest = 1
    while (2 ** (largest + 1) - 1) * 8 * copies <= max_bytes:
      largest += 1
    raise ValueError(f"depth={depth} needs {needed / 2**30:.1f} GiB for its 2**{depth}-1 leaves; "
                     f"allowed: depth <= {largest} (limit {max_bytes / 2**30:.1f} GiB)")
  return int(depth)
