"""Elasticity of the size-weighted mixture: d(rate)/dl, the weighted identity, the ratio and the bound.

Numeric functions here are lambdified from theory.symbolic (the single source of the formulas) and are
vectorised over any leading batch shape, in float64. Rates are in bits per response; l = n_t / n_a with n_t
the perturbation size and n_a the alignment size, all other sizes fixed.
"""

from __future__ import annotations

import numpy as np

from theory import mixture, symbolic, validation


def _checked(P, sizes, pretrain, align, perturb):
  P = validation.check_probabilities("P", P, min_ndim=2)
  sizes = validation.check_sizes("sizes", sizes)
  validation.check_matching("P", P, "sizes", sizes)
  n = P.shape[-2]
  indices = [validation.check_index(name, value, n)
             for name, value in (("pretrain", pretrain), ("align", align), ("perturb", perturb))]
  if len(set(indices)) != 3:
    raise ValueError(f"pretrain={pretrain}, align={align}, perturb={perturb} must be three different datasets")
  if np.any(sizes[..., align] <= 0):
    bad = np.atleast_1d(sizes[..., align])
    raise ValueError(f"sizes[..., align] must be > 0 (l = n_t / n_a), got {bad[bad <= 0][0]!r}")
  return P, sizes


def rate_derivatives(P, sizes, *, pretrain: int = 0, align: int = 1, perturb: int = 2) -> np.ndarray:
  """d gamma_i / dl for every dataset i, in bits per response per unit of l = sizes[perturb] / sizes[align].

  gamma_i is the cross-entropy of dataset i under the size-weighted mixture (theory.mixture.compression_rates);
  the derivative is (n_a / N)(1 - E_{x~P_t}[P_i(x) / q(x)]) / ln 2, generated from theory.symbolic.
  A dataset whose rate is +inf (mass where q = 0, possible only for a dataset of size 0) gets -inf if the
  perturbation puts mass on those leaves (its rate falls from infinity) and NaN otherwise (it stays infinite).
  The result depends on the sizes only through their ratios: they are rescaled per configuration by a power of
  two (validation.rescaled_sizes), which changes no bit where the raw sizes would neither overflow nor
  underflow, and lets any finite sizes up to 1.8e308 work. The batch is processed in chunks of about
  mixture.CHUNK_ELEMENTS leaf values (temporaries stay in cache), each exactly as a whole batch would be.

  Args:
    P: leaf distributions, shape (..., n_datasets, n_leaves), rows summing to one within 1e-9.
    sizes: dataset sizes, shape (..., n_datasets), >= 0, not all zero, sizes[..., align] > 0.
    pretrain, align, perturb: indices of D_p, D_a and D_t along the dataset axis (three different ones).

  Returns:
    float64 array of shape (..., n_datasets).

  References:
    Ji et al., "Language Models Resist Alignment", ACL 2025, Thm. 4.2; docs/THEORY.md §4.2, (4.2).
  """
  P, sizes = _checked(P, sizes, pretrain, align, perturb)
  del pretrain  # part of the signature for symmetry with the ratio functions; not needed here.
  P_all, sizes_all = mixture.broadcast_batch(P, validation.rescaled_sizes(sizes))
  derivatives = np.empty(sizes_all.shape)
  for index in mixture.batch_slices(sizes_all.shape[:-1], P.shape[-1]):
    derivatives[index] = _rate_derivatives_chunk(P_all[index], sizes_all[index], align, perturb)
  return derivatives


def _rate_derivatives_chunk(P: np.ndarray, sizes: np.ndarray, align: int, perturb: int) -> np.ndarray:
  """rate_derivatives on one chunk of checked inputs with a common batch shape and rescaled sizes."""
  P_t = P[..., perturb, :]
  n_t = sizes[..., perturb, None]
  n_a_ = sizes[..., align, None]
  total = sizes.sum(axis=-1)[..., None]
  weighted = np.matmul(sizes[..., None, :], P)[..., 0, :]  # sum_i n_i P_i(x), shape (..., n_leaves)
  # d gamma_i / dl = sum_x P_i(x) d/dl[-log2 q(x)]. At uncovered leaves (q = 0) every dataset of positive
  # size has P_i = 0, so the per-leaf derivative is set to 0 there and those datasets are handled below.
  # Masks are built only when needed: the arithmetic is the same either way, so the bits are too.
  all_covered = weighted.size == 0 or weighted.min() > 0
  covered = None if all_covered else weighted > 0
  if all_covered:
    R = np.subtract(weighted, n_t * P_t, out=weighted)
    P_t_covered = P_t
  else:
    R = np.where(covered, weighted - n_t * P_t, total - n_t)
    P_t_covered = np.where(covered, P_t, 0.0)
  with np.errstate(over="ignore", divide="ignore", invalid="ignore"):  # overflow is handled just below
    per_leaf = symbolic.code_length_derivative_numeric(P_t_covered, R, total - n_t, n_a_, n_t / n_a_)
    if not all_covered:
      per_leaf = np.where(covered, per_leaf, 0.0)
    # A sum with an infinity or NaN among its terms is not finite, so a finite sum rules both out in one pass
    # (if finite terms overflow the sum, the exact check below runs and finds nothing to change).
    any_overflowed = not np.isfinite(per_leaf.sum())
  # A subnormal n_t can push P_t / q past float64's range at some leaf: the true per-leaf derivative there is
  # a huge negative number, so datasets with mass on such a leaf get -inf and the others are unaffected.
  if any_overflowed:
    overflowed = ~np.isfinite(per_leaf)
    per_leaf = np.where(overflowed, 0.0, per_leaf)
  derivatives = np.matmul(P, per_leaf[..., :, None])[..., 0]
  if any_overflowed:
    mass_overflowed = np.matmul(P, overflowed[..., :, None].astype(np.float64))[..., 0]
    derivatives = np.where(mass_overflowed > 0, -np.inf, derivatives)
  if not all_covered:
    uncovered = ~covered
    mass_uncovered = np.matmul(P, uncovered[..., :, None].astype(np.float64))[..., 0]
    rescued = np.matmul(P, (uncovered & (P_t > 0))[..., :, None].astype(np.float64))[..., 0] > 0
    derivatives = np.where(mass_uncovered > 0, np.where(rescued, -np.inf, np.nan), derivatives)
  return derivatives


def derivative_ratio(P, sizes, *, pretrain: int = 0, align: int = 1, perturb: int = 2) -> np.ndarray:
  """(d gamma_a / dl) / (d gamma_p / dl), computed directly from the derivatives, shape (...)."""
  d = rate_derivatives(P, sizes, pretrain=pretrain, align=align, perturb=perturb)
  with np.errstate(divide="ignore", invalid="ignore"):
    return d[..., align] / d[..., pretrain]


def perturbation_term(P, sizes, *, pretrain: int = 0, align: int = 1, perturb: int = 2) -> np.ndarray:
  """n_t d gamma_t / dl, with its limit l -> 0+ where n_t = 0; shape (...), bits per response times size.

  For l > 0 this is the product itself. At l = 0 it is 0 if the perturbation's support lies inside the
  mixture's, and otherwise tends to -n_a m_out / ln 2, where m_out is the perturbation mass on leaves the
  mixture gives probability 0 (there d gamma_t / dl ~ -m_out / (l ln 2)). It is proportional to the sizes:
  a value beyond float64's range (sizes near 1e308) raises ValueError instead of returning an infinity.
  """
  P, sizes = _checked(P, sizes, pretrain, align, perturb)
  d = rate_derivatives(P, sizes, pretrain=pretrain, align=align, perturb=perturb)
  scaled = _perturbation_term(P, validation.rescaled_sizes(sizes), d, align, perturb)
  return validation.unscaled_result("perturbation_term", scaled, validation.size_exponents(sizes))


def _perturbation_term(P: np.ndarray, sizes: np.ndarray, d: np.ndarray, align: int, perturb: int) -> np.ndarray:
  """perturbation_term from checked P, sizes in any common scale (the result is in that scale) and d."""
  n_t, n_a_ = sizes[..., perturb], sizes[..., align]
  q = mixture.size_weighted_mixture(P, sizes)
  mass_out = np.where(q > 0, 0.0, P[..., perturb, :]).sum(axis=-1)
  with np.errstate(invalid="ignore"):
    product = n_t * d[..., perturb]
  return np.where(n_t > 0, product, -n_a_ * mass_out / np.log(2))


def predicted_ratio(P, sizes, *, pretrain: int = 0, align: int = 1, perturb: int = 2) -> np.ndarray:
  """-k - (n_t d gamma_t / dl) / (n_a d gamma_p / dl) = -k - l (d gamma_t/dl)/(d gamma_p/dl), shape (...).

  The weighted identity's prediction of (d gamma_a / dl) / (d gamma_p / dl). It is exactly -k at l = 0 when
  the perturbation's support lies inside the mixture's; otherwise the l -> 0+ limit of the correction stays
  finite (see perturbation_term) and the ratio at l = 0 is not -k. Computed from rescaled sizes (only their
  ratios matter); k = n_p / n_a beyond float64's range (1.8e308) raises ValueError.
  """
  P, sizes = _checked(P, sizes, pretrain, align, perturb)
  d = rate_derivatives(P, sizes, pretrain=pretrain, align=align, perturb=perturb)
  with np.errstate(over="ignore"):
    k = sizes[..., pretrain] / sizes[..., align]
  if np.any(np.isinf(k)):
    bad = sizes.reshape(-1, sizes.shape[-1])[np.flatnonzero(np.isinf(k))[0]]
    raise ValueError(f"k = n_p / n_a = {float(bad[pretrain])!r} / {float(bad[align])!r} overflows float64; allowed: "
                     f"k <= {np.finfo(np.float64).max:.4g}")
  scaled = validation.rescaled_sizes(sizes)
  term = _perturbation_term(P, scaled, d, align, perturb)
  with np.errstate(divide="ignore", invalid="ignore"):
    return -k - term / (scaled[..., align] * d[..., pretrain])


def weighted_identity_residual(P, sizes, *, pretrain: int = 0, align: int = 1, perturb: int = 2) -> np.ndarray:
  """sum_i n_i d gamma_i / dl over all datasets, which the theory says is 0 (bits per response times size).

  The perturbation's term is taken from perturbation_term (its l -> 0+ limit at n_t = 0). Other datasets of
  size 0 contribute 0. Summed in rescaled sizes and multiplied back by the same power of two (exact), so no
  term overflows for sizes near 1e308; a residual beyond float64's range raises ValueError.
  """
  P, sizes = _checked(P, sizes, pretrain, align, perturb)
  d = rate_derivatives(P, sizes, pretrain=pretrain, align=align, perturb=perturb)
  scaled = validation.rescaled_sizes(sizes)
  others = np.delete(np.arange(P.shape[-2]), perturb)
  sizes_o, d_o = scaled[..., others], d[..., others]
  with np.errstate(invalid="ignore"):
    rest = np.where(sizes_o > 0, sizes_o * d_o, 0.0).sum(axis=-1)
  residual = rest + _perturbation_term(P, scaled, d, align, perturb)
  return validation.unscaled_result("weighted_identity_residual", residual, validation.size_exponents(sizes))


def alignment_expectation(P, sizes, *, pretrain: int = 0, align: int = 1, perturb: int = 2) -> np.ndarray:
  """E_{x~P_t}[P_a(x) / q(x)]: the alignment-likeness of the perturbation; < 1 gives the paper's signs at l = 0."""
  P, sizes = _checked(P, sizes, pretrain, align, perturb)
  del pretrain
  q = mixture.size_weighted_mixture(P, sizes)
  P_a, P_t = P[..., align, :], P[..., perturb, :]
  ratio = np.where(P_a > 0, P_a / np.where(q > 0, q, 1.0), 0.0)
  return (P_t * ratio).sum(axis=-1)
