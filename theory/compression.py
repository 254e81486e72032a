"""Compression of token-tree leaves (paper Def. 3.3, Thm. 3.4): Huffman codes, entropies, ideal lengths.

All lengths are in bits. A response of at most d tokens is one symbol of the pruned tree and is coded in one
block; a longer response is coded in ceil(|x| / d) blocks.
"""

from __future__ import annotations

import heapq
import math

import numpy as np

from theory import validation


def huffman_code_lengths(probs) -> np.ndarray:
  """Integer code lengths, in bits, of an optimal (Huffman) prefix code for `probs`.

  Args:
    probs: probabilities of shape (..., n_symbols); each row non-negative and summing to one (1e-9).

  Returns:
    int64 array of the same shape. Symbols of probability 0 get length 0 (they are never coded); if a row
    has a single symbol of positive probability it also gets length 0 (nothing needs to be sent).

  References:
    D. A. Huffman, "A Method for the Construction of Minimum-Redundancy Codes", Proc. IRE 40(9), 1952.
    Cover & Thomas, Elements of Information Theory, 2nd ed., Thm. 5.8.1 (H <= E[L] < H + 1).
  """
  probs = validation.check_probabilities("probs", probs)
  flat = probs.reshape(-1, probs.shape[-1])
  lengths = np.zeros(flat.shape, dtype=np.int64)
  for row, out in zip(flat, lengths, strict=True):
    _huffman_row(row, out)
  return lengths.reshape(probs.shape)


def _huffman_row(row: np.ndarray, out: np.ndarray) -> None:
  symbols = np.flatnonzero(row > 0)
  if len(symbols) < 2:
    return
  # Each heap entry: (weight, tie-breaker, list of symbols below it). Merging adds one bit to all below.
  heap = [(float(row[s]), int(s), [int(s)]) for s in symbols]
  heapq.heapify(heap)
  while len(heap) > 1:
    w1, t1, s1 = heapq.heappop(heap)
    w2, t2, s2 = heapq.heappop(heap)
    out[s1] += 1
    out[s2] += 1
    heapq.heappush(heap, (w1 + w2, min(t1, t2), s1 + s2))


def entropy_bits(probs) -> np.ndarray:
  """Shannon entropy H(P) = -sum P log2 P, in bits per symbol, over the last axis (0 log 0 = 0)."""
  probs = validation.check_probabilities("probs", probs)
  logs = np.log2(np.where(probs > 0, probs, 1.0))
  return -(probs * logs).sum(axis=-1)


def expected_code_length(data_probs, model_probs) -> np.ndarray:
  """Expected Huffman code length, in bits per response, of data from P coded with a code built for q.

  The code is the Huffman code of the model's probabilities `model_probs`; responses the model gives
  probability 0 have no codeword, so the result is +inf if P puts mass on them.

  Args:
    data_probs: P, shape (..., n_leaves).
    model_probs: q, shape broadcastable to P's.

  Returns:
    E_{x~P}[L_q(x)] in bits per response, shape (...).
  """
  data_probs = validation.check_probabilities("data_probs", data_probs)
  model_probs = validation.check_probabilities("model_probs", model_probs)
  data_probs, model_probs = np.broadcast_arrays(data_probs, model_probs)
  lengths = huffman_code_lengths(model_probs).astype(np.float64)
  uncovered = (data_probs > 0) & (model_probs == 0)
  total = (data_probs * lengths).sum(axis=-1)
  return np.where(uncovered.any(axis=-1), np.inf, total)


def block_count(response_length, depth: int) -> np.ndarray:
  """Number of depth-d blocks a response of `response_length` tokens is coded in: ceil(|x| / d)."""
  depth = validation.check_depth(depth)
  length = np.asarray(response_length)
  if np.any(length < 1):
    raise ValueError(f"response_length must be >= 1 token, got {length.min()}")
  return -(-length // depth)


_INTEGER_ENTROPY_ATOL = 1e-12  # bits: entropies this close to an integer count as that integer.


def paper_ideal_code_length(probs, response_length, depth: int) -> np.ndarray:
  """The paper's Thm. 3.4 formula: ceil(|x| / d) * ceil(-sum_{l,j} p_lj log2 p_lj), in bits.

  Here `probs` are the leaf probabilities p_lj of the pruned tree (shape (..., 2**d - 1)) and the entropy
  is taken in bits. Compare with `expected_code_length(probs, probs)`, the exact Huffman length of one block:
  both lie in [H, H + 1) but they are not equal in general (see proofs_check, claim 1).

  References:
    Ji et al., "Language Models Resist Alignment", ACL 2025, Thm. 3.4.
  """
  probs = np.asarray(probs, dtype=np.float64)
  entropy = entropy_bits(probs)
  nearest = np.round(entropy)
  # An entropy within float64 rounding of an integer n >= 1 (a dyadic source) is taken as exactly n; any source
  # with two or more positive probabilities has H > 0 exactly, so ceil(H) >= 1 however small H rounds to.
  ceiling = np.where(np.abs(entropy - nearest) <= _INTEGER_ENTROPY_ATOL, nearest, np.ceil(entropy))
  ceiling = np.where(np.count_nonzero(probs > 0, axis=-1) >= 2, np.maximum(ceiling, 1.0), 0.0)
  return block_count(response_length, depth) * ceiling


def log2_leaves(n_leaves: int) -> float:
  """log2 M for a pruned tree with M leaves, the offset of the first normalized compression rate."""
  return math.log2(n_leaves)
