"""High-precision (mpmath) compression rates of the size-weighted mixture and their differences, in bits.

float64 loses a rate difference gamma_i(l) - gamma_i(0) to cancellation when it is below ~1e-13 of the rates
(at k = 1e4, l = 1e-4 the difference is ~1e-12 bits on rates of ~10 bits, so float64 keeps one or two digits).
Here every leaf's mixture mass, logarithm and weighted sum is computed with `digits` significant decimal digits
from the float64 inputs (converted exactly), and only the final rate or difference is rounded to float64.
"""

from __future__ import annotations

import mpmath
import numpy as np

from theory import validation

DEFAULT_DIGITS = 50
"""Significant decimal digits of the default evaluation: differences down to ~1e-35 of the rates survive."""

MIN_DIGITS = 16
"""Fewer digits than this is no more precise than float64."""


def _context(digits) -> mpmath.MPContext:
  """A private mpmath context with `digits` decimal digits (the global mpmath precision is left alone)."""
  if isinstance(digits, bool) or not isinstance(digits, int) or digits < MIN_DIGITS:
    raise ValueError(f"digits={digits!r} is not allowed; allowed: an integer >= {MIN_DIGITS}")
  context = mpmath.MPContext()
  context.dps = digits
  return context


def _checked(P, sizes) -> tuple[np.ndarray, np.ndarray]:
  P = validation.check_probabilities("P", P, min_ndim=2)
  sizes = validation.check_sizes("sizes", sizes)
  validation.check_matching("P", P, "sizes", sizes)
  return P, sizes


class _Evaluator:
  """Rates of one P (n_datasets, n_leaves) at many size vectors, with P converted to mpmath once."""

  def __init__(self, context: mpmath.MPContext, P: np.ndarray):
    self.context = context
    self.n_datasets = P.shape[0]
    self.leaves = []  # per leaf with some mass: [(dataset, P_i(x) as mpf), ...]
    for x in range(P.shape[1]):
      column = [(i, context.mpf(float(P[i, x]))) for i in range(self.n_datasets) if P[i, x] > 0]
      if column:
        self.leaves.append(column)
    self.ln2 = context.ln2
    self.cache: dict[bytes, list] = {}

  def rates(self, sizes: np.ndarray) -> list:
    """gamma_i = -sum_x P_i(x) log2 q(x) for every dataset i, as mpf (+inf where P_i > 0 = q); cached."""
    key = np.ascontiguousarray(sizes, dtype=np.float64).tobytes()
    if key not in self.cache:
      self.cache[key] = self._rates(sizes)
    return self.cache[key]

  def _rates(self, sizes: np.ndarray) -> list:
    ctx = self.context
    n = [ctx.mpf(float(s)) for s in sizes]
    total = ctx.fsum(n)
    terms = [[] for _ in range(self.n_datasets)]
    infinite = [False] * self.n_datasets
    for column in self.leaves:
      weight = ctx.fdot([(n[i], p) for i, p in column])
      if weight == 0:
        for i, _ in column:
          infinite[i] = True
        continue
      log_q = ctx.log(weight / total)
      for i, p in column:
        terms[i].append(p * log_q)
    return [ctx.inf if infinite[i] else -ctx.fsum(terms[i]) / self.ln2 for i in range(self.n_datasets)]


def _batched(P: np.ndarray, size_arrays: list[np.ndarray], digits: int, combine) -> np.ndarray:
  """Applies combine(rates at each size array) over the broadcast batch, one evaluator per distinct P."""
  context = _context(digits)
  batch = np.broadcast_shapes(P.shape[:-2], *(s.shape[:-1] for s in size_arrays))
  P = np.broadcast_to(P, batch + P.shape[-2:])
  size_arrays = [np.broadcast_to(s, batch + s.shape[-1:]) for s in size_arrays]
  out = np.empty(batch + (P.shape[-2],), dtype=np.float64)
  evaluators: dict[bytes, _Evaluator] = {}
  for index in np.ndindex(*batch):
    key = np.ascontiguousarray(P[index]).tobytes()
    if key not in evaluators:
      evaluators[key] = _Evaluator(context, P[index])
    evaluator = evaluators[key]
    values = combine(*(evaluator.rates(s[index]) for s in size_arrays))
    out[index] = [float(v) for v in values]
  return out


def compression_rates_mp(P, sizes, *, digits: int = DEFAULT_DIGITS) -> list:
  """Compression rates of one configuration as mpmath numbers with `digits` digits, bits per response.

  Args:
    P: leaf distributions, shape (n_datasets, n_leaves), rows summing to one within 1e-9.
    sizes: dataset sizes, shape (n_datasets,), >= 0, not all zero.
    digits: significant decimal digits (>= MIN_DIGITS).

  Returns:
    A list of n_datasets mpmath.mpf: gamma_i = -sum_x P_i(x) log2 q(x), q the size-weighted mixture
    (+inf for a dataset with mass where q = 0).

  References:
    Ji et al., "Language Models Resist Alignment", ACL 2025, Section 3; Johansson et al., mpmath 1.3 (2023).
  """
  P, sizes = _checked(P, sizes)
  if P.ndim != 2:
    raise ValueError(f"P has shape {P.shape}; allowed: (n_datasets, n_leaves) for one configuration")
  return _Evaluator(_context(digits), P).rates(sizes)


def compression_rates(P, sizes, *, digits: int = DEFAULT_DIGITS) -> np.ndarray:
  """theory.mixture.compression_rates evaluated with `digits` digits and rounded once to float64.

  Args:
    P: shape (..., n_datasets, n_leaves), rows summing to one within 1e-9.
    sizes: shape (..., n_datasets), non-negative, at least one positive per configuration.
    digits: significant decimal digits (>= MIN_DIGITS).

  Returns:
    float64 array of shape (..., n_datasets), bits per response.

  References:
    Ji et al., "Language Models Resist Alignment", ACL 2025, Section 3 (compression rate, mixing by size).
  """
  P, sizes = _checked(P, sizes)
  return _batched(P, [sizes], digits, lambda rates: rates)


def rate_differences(P, sizes, reference_sizes, *, digits: int = DEFAULT_DIGITS) -> np.ndarray:
  """gamma_i(sizes) - gamma_i(reference_sizes) for the same datasets, subtracted with `digits` digits.

  The difference is rounded to float64 only after the subtraction, so it keeps ~15 significant digits even
  when it is 1e-30 of the rates (float64 subtraction of float64 rates keeps none below ~1e-16).
  inf - inf gives NaN (a dataset uncovered at both sizes), inf - finite gives +inf.

  Args:
    P: shape (..., n_datasets, n_leaves), rows summing to one within 1e-9.
    sizes, reference_sizes: shape (..., n_datasets) each, broadcast against P's batch shape.
    digits: significant decimal digits (>= MIN_DIGITS).

  Returns:
    float64 array of shape (..., n_datasets), bits per response.

  References:
    Ji et al., "Language Models Resist Alignment", ACL 2025, Thm. 4.2 (the rate changes it compares).
  """
  P, sizes = _checked(P, sizes)
  reference_sizes = validation.check_sizes("reference_sizes", reference_sizes)
  validation.check_matching("P", P, "reference_sizes", reference_sizes)

  def difference(rates, reference):
    return [a - b for a, b in zip(rates, reference, strict=True)]

  return _batched(P, [sizes, reference_sizes], digits, difference)
