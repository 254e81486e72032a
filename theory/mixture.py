"""Size-weighted mixtures and compression rates: the optimal compressor of a union of datasets.

A model trained to its optimum on D = D_1 ∪ ... ∪ D_N learns q = sum_i |D_i| P_i / sum_i |D_i| (paper,
Section 3, "mixing by size"); the compression rate of D_i under it is the cross-entropy -sum_x P_i(x) log2 q(x),
in bits per response (or divided by the response length, bits per token).
"""

from __future__ import annotations

import numpy as np

from theory import symbolic, validation

CHUNK_ELEMENTS = 2**15
"""float64 entries (256 KiB) per temporary array of a batch chunk: theory functions loop over chunks of the batch
this size, so their temporaries stay in cache and are reused instead of touching fresh memory per call."""

NORMALIZATIONS = ("log_leaves", "kl")
"""Normalized compression rates: 'log_leaves' is gamma - log2 M (M leaves; the default, following one
transcription of the paper), 'kl' is gamma - H(P_i) = KL(P_i || q) (the excess over the dataset's entropy)."""


def _checked(P, sizes) -> tuple[np.ndarray, np.ndarray]:
  P = validation.check_probabilities("P", P, min_ndim=2)
  sizes = validation.check_sizes("sizes", sizes)
  validation.check_matching("P", P, "sizes", sizes)
  return P, sizes


def batch_slices(batch_shape: tuple[int, ...], elements_per_configuration: int,
                 chunk_elements: int | None = None) -> list[tuple[slice, ...]]:
  """Index tuples that split a batch along its first axis into chunks of about `chunk_elements` entries.

  Args:
    batch_shape: the broadcast batch shape (...) of a theory function's inputs; () for one configuration.
    elements_per_configuration: entries of the largest temporary per configuration (e.g. n_leaves).
    chunk_elements: entries per chunk; default CHUNK_ELEMENTS (read at call time). Chunks hold at least one
      index of the first axis, so a batch (B1, B2, ...) with a huge B2 is chunked no finer than one B1 row.

  Returns:
    A list of index tuples; indexing the broadcast inputs with each and concatenating gives the whole batch.
  """
  if not batch_shape:
    return [()]
  chunk_elements = CHUNK_ELEMENTS if chunk_elements is None else chunk_elements
  per_row = max(1, int(np.prod(batch_shape[1:], dtype=np.int64)) * elements_per_configuration)
  rows = max(1, chunk_elements // per_row)
  return [(slice(start, start + rows),) for start in range(0, batch_shape[0], rows)]


def broadcast_batch(P: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Read-only views of checked P (..., n_datasets, n_leaves) and sizes (..., n_datasets) on their common batch."""
  batch = validation.check_matching("P", P, "sizes", sizes)
  return np.broadcast_to(P, batch + P.shape[-2:]), np.broadcast_to(sizes, batch + sizes.shape[-1:])


def size_weighted_mixture(P, sizes) -> np.ndarray:
  """The mixture q = sum_i n_i P_i / sum_i n_i, shape (..., n_leaves).

  Args:
    P: leaf distributions, shape (..., n_datasets, n_leaves), rows summing to one.
    sizes: dataset sizes n_i (masses |D_i|), shape (..., n_datasets), >= 0, not all zero.
  """
  P, sizes = _checked(P, sizes)
  return _mixture(P, validation.rescaled_sizes(sizes))


def _mixture(P: np.ndarray, sizes: np.ndarray) -> np.ndarray:
  """The mixture of checked, rescaled sizes (validation.rescaled_sizes), so the total never overflows."""
  weights = sizes / sizes.sum(axis=-1, keepdims=True)
  return np.einsum("...i,...ix->...x", weights, P)


def _chunked_rates(P: np.ndarray, sizes: np.ndarray, divisor: np.ndarray | None = None) -> np.ndarray:
  """sum_x -P_i log2 q(x) (each term divided by `divisor`, which broadcasts against P, if given), by chunks."""
  P_all, sizes_all = broadcast_batch(P, validation.rescaled_sizes(sizes))
  if divisor is not None:
    try:
      shape = np.broadcast_shapes(P_all.shape, divisor.shape)
    except ValueError as error:
      raise ValueError(f"shape mismatch: lengths of shape {divisor.shape} do not broadcast against P of shape "
                       f"{P_all.shape}") from error
    P_all, divisor = np.broadcast_to(P_all, shape), np.broadcast_to(divisor, shape)
    sizes_all = np.broadcast_to(sizes_all, shape[:-1])
  rates = np.empty(sizes_all.shape)
  for index in batch_slices(sizes_all.shape[:-1], P.shape[-2] * P.shape[-1]):
    P_chunk = P_all[index]
    terms = _cross_entropy_terms(P_chunk, _mixture(P_chunk, sizes_all[index])[..., None, :])
    rates[index] = (terms if divisor is None else terms / divisor[index]).sum(axis=-1)
  return rates


def _cross_entropy_terms(P: np.ndarray, q: np.ndarray) -> np.ndarray:
  """Per-leaf -P log2 q from the symbolic source, with 0 log 0 = 0 and +inf where P > 0 = q."""
  if q.size and q.min() > 0:  # every leaf covered: the same terms without the masks of q = 0
    return np.where(P > 0, symbolic.cross_entropy_term_numeric(P, q), 0.0)
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
  return _chunked_rates(P, sizes)


def compression_rates_per_token(P, sizes, lengths) -> np.ndarray:
  """Compression rate in bits per token: E_{x~P_i}[-log2 q(x) / |x|], |x| = `lengths` (tokens, with EOS)."""
  P, sizes = _checked(P, sizes)
  lengths = validation.as_float_array("lengths", lengths)
  if lengths.shape[-1:] != P.shape[-1:] or np.any(lengths < 1):
    raise ValueError(f"lengths must have {P.shape[-1]} entries >= 1 (one per leaf), got shape {lengths.shape}")
  return _chunked_rates(P, sizes, lengths)


def normalized_rates(P, sizes, normalization: str = "log_leaves") -> np.ndarray:
  """Normalized compression rate gamma^{D_i/D}, bits per response (see NORMALIZATIONS)."""
  if normalization not in NORMALIZATIONS:
    raise ValueError(f"unknown normalization {normalization!r}; allowed: {', '.join(NORMALIZATIONS)}")
  P, sizes = _checked(P, sizes)
  rates = compression_rates(P, sizes)
  if normalization == "log_leaves":
    return rates - np.log2(P.shape[-1])
  own = np.empty(P.shape[:-1])
  for index in batch_slices(P.shape[:-2], P.shape[-2] * P.shape[-1]):
    own[index] = _cross_entropy_terms(P[index], P[index]).sum(axis=-1)
  return rates - own
