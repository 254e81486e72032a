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
  if np.isnan(array).any():
    raise ValueError(f"{name} contains NaN ({_first_bad(array, np.isnan(array))}); "
                     "allowed: finite numbers >= 0")
  if np.isinf(array).any():
    raise ValueError(f"{name} contains an infinity ({_first_bad(array, np.isinf(array))}); "
                     "allowed: finite numbers >= 0")
  if (array < 0).any():
    raise ValueError(f"{name} contains a negative value ({_first_bad(array, array < 0)}); "
                     "allowed: finite numbers >= 0")


def check_probabilities(name: str, probs, *, min_ndim: int = 1) -> np.ndarray:
  """Returns `probs` as float64 after checking that every row (last axis) is a probability vector."""
  probs = as_float_array(name, probs)
  if probs.ndim < min_ndim:
    raise ValueError(f"{name} must have at least {min_ndim} dimension(s), got shape {probs.shape}")
  if probs.shape[-1] == 0:
    raise ValueError(f"{name} has an empty last axis (shape {probs.shape}); allowed: at least one leaf")
  check_finite_non_negative(name, probs)
  sums = probs.sum(axis=-1)
  off = np.abs(sums - 1.0) > ROW_SUM_TOLERANCE
  if off.any():
    index = tuple(int(i) for i in np.argwhere(np.atleast_1d(off))[0])
    value = np.atleast_1d(sums)[index]
    raise ValueError(f"{name} row {index} sums to {value!r}; allowed: rows summing to 1 within "
                     f"{ROW_SUM_TOLERANCE:g}")
  return probs


def check_sizes(name: str, sizes) -> np.ndarray:
  """Returns dataset sizes as float64 after checking they are finite, >= 0 and not all zero per row."""
  sizes = as_float_array(name, sizes)
  if sizes.ndim < 1:
    raise ValueError(f"{name} must have at least one dimension (one entry per dataset), got a scalar")
  check_finite_non_negative(name, sizes)
  all_zero = sizes.sum(axis=-1) <= 0
  if np.any(all_zero):
    index = tuple(int(i) for i in np.argwhere(np.atleast_1d(all_zero))[0])
    raise ValueError(f"{name} are all zero in configuration {index}; allowed: at least one positive size")
  return sizes


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
