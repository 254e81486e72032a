"""Size-weighted mixtures and compression rates: the optimal compressor of a union of datasets.

A model trained to its optimum on D = D_1 ∪ ... ∪ D_N learns q = sum_i |D_i| P_i / sum_i |D_i| (paper,
Section 3, "mixing by size"); the compression rate of D_i under it is the cross-entropy -sum_x P_i(x) log2 q(x),
in bits per response (or divided by the response length, bits per token).
"""

from __future__ import annotations

import numpy as np

from theory import symbolic, validation

NORMALIZATIONS = ("log_leaves", "kl")
"""Normalized compression rates: 'log_leaves' is gamma - log2 M (M leaves; the default, following one
transcription of the paper), 'kl' is gamma - H(P_i) = KL(P_i || q) (the excess over the dataset's entropy)."""


def _checked(P, sizes) -> tuple[np.ndarray, np.ndarray]:
  P = validation.check_probabilities("P", P, min_ndim=2)
  sizes = validation.check_sizes("sizes", sizes)
  validation.check_matching("P", P, "sizes", sizes)
  return P, sizes


def size_weighted_mixture(P, sizes) -> np.ndarray:
  """The mixture q = sum_i n_i P_i / sum_i n_i, shape (..., n_leaves).

  Args:
    P: leaf distributions, shape (..., n_datasets, n_leaves), rows summing to one.
    sizes: dataset sizes n_i (masses |D_i|), shape (..., n_datasets), >= 0, not all zero.
  """
  P, sizes = _checked(P, sizes)
  return _mixture(P, sizes)


def _mixture(P: np.ndarray, sizes: np.ndarray) -> np.ndarray:
  weights = sizes / sizes.sum(axis=-1, keepdims=True)
  return np.einsum("...i,...ix->...x", weights, P)


def _cross_entropy_terms(P: np.ndarray, q: np.ndarray) -> np.ndarray:
  """Per-leaf -P log2 q from the symbolic source, with 0 log 0 = 0 and +inf where P > 0 = q."""
  covered = q > 0
  terms = symbolic.cross_entropy_term_numeric(P, np.where(covered, q, 1.0))
  terms = np.where(P > 0, terms, 0.0)
  return np.where((P > 0) & ~covered, np.inf, terms)


def compression_rates(P, sizes) -> np.ndarray:
  """Compression rate of each dataset under the size-weighted mixture, in bits per response.

  gamma_i = -sum_x P_i(x) log2 q(x) with q the size-weighted mixture: the expected ideal code length of
  dataset i's responses under the optimal compressor of the union. +inf for a dataset of size 0 that puts
  mass where the mixture has none.

  Args:
    P: shape (..., n_datasets, n_leaves), rows summing to one within 1e-9.
    sizes: shape (..., n_datasets), non-negative, at least one positive per configuration.

  Returns:
    float64 array of shape (..., n_datasets), bits per response.

  References:
    Ji et al., "Language Models Resist Alignment", ACL 2025, Section 3 (compression rate, mixing by size);
    Delétang et al., "Language Modeling Is Compression", ICLR 2024.
  """
  P, sizes = _checked(P, sizes)
  q = _mixture(P, sizes)
  return _cross_entropy_terms(P, q[..., None, :]).sum(axis=-1)


def compression_rates_per_token(P, sizes, lengths) -> np.ndarray:
  """Compression rate in bits per token: E_{x~P_i}[-log2 q(x) / |x|], |x| = `lengths` (tokens, with EOS)."""
  P, sizes = _checked(P, sizes)
  lengths = validation.as_float_array("lengths", lengths)
  if lengths.shape[-1:] != P.shape[-1:] or np.any(lengths < 1):
    raise ValueError(f"lengths must have {P.shape[-1]} entries >= 1 (one per leaf), got shape {lengths.shape}")
  q = _mixture(P, sizes)
  return (_cross_entropy_terms(P, q[..., None, :]) / lengths).sum(axis=-1)


def normalized_rates(P, sizes, normalization: str = "log_leaves") -> np.ndarray:
  """Normalized compression rate gamma^{D_i/D}, bits per response (see NORMALIZATIONS)."""
  if normalization not in NORMALIZATIONS:
    raise ValueError(f"unknown normalization {normalization!r}; allowed: {', '.join(NORMALIZATIONS)}")
  P, sizes = _checked(P, sizes)
  rates = compression_rates(P, sizes)
  if normalization == "log_leaves":
    return rates - np.log2(P.shape[-1])
  own = _cross_entropy_terms(P, P).sum(axis=-1)
  return rates - own
