"""Compression of token-tree leaves (paper Def. 3.3, Thm. 3.4): Huffman codes, entropies, ideal lengths.

All lengths are in bits. A response of at most d tokens is one symbol of the pruned tree and is coded in one
block; a longer response is coded in ceil(|x| / d) blocks.
"""

from __future__ import annotations

import math

import numpy as np

from theory import validation

_VECTORISED_MIN_SYMBOLS = 1024  # rows with this many positive symbols or more use the phase-vectorised merge;
# below it the plain loop is faster (equal at about 1,000 symbols, 0.5 ms each, on a 2-core CPU).


def huffman_code_lengths(probs) -> np.ndarray:
  """Integer code lengths, in bits, of an optimal (Huffman) prefix code for `probs`.

  Each row is sorted once and merged with the two-queue Huffman algorithm (van Leeuwen 1976): leaves in
  sorted order and merged nodes in creation order, which is also their weight order. Ties are broken by
  (weight, smallest symbol index below the node), so the code is the one a priority-queue Huffman with that
  key builds. Rows of at least 1024 symbols merge in phases: every node whose key is below the first merge of
  a phase is paired off in one vectorised step (their merges are the next ones a sequential run makes), and
  the smallest weight about doubles per phase, so a row takes O(n log n) for the sort plus
  O(n + phases * numpy call) with phases ~ log2(largest / smallest probability). 10^6 symbols take well
  under a second.

  Args:
    probs: probabilities of shape (..., n_symbols); each row non-negative and summing to one (1e-9).

  Returns:
    int64 array of the same shape. Symbols of probability 0 get length 0 (they are never coded); if a row
    has a single symbol of positive probability it also gets length 0 (nothing needs to be sent).

  References:
    D. A. Huffman, "A Method for the Construction of Minimum-Redundancy Codes", Proc. IRE 40(9), 1952.
    J. van Leeuwen, "On the Construction of Huffman Trees", ICALP 1976 (two queues over sorted weights).
    Cover & Thomas, Elements of Information Theory, 2nd ed., Thm. 5.8.1 (H <= E[L] < H + 1).
  """
  probs = validation.check_probabilities("probs", probs)
  flat = probs.reshape(-1, probs.shape[-1])
  lengths = np.zeros(flat.shape, dtype=np.int64)
  for row, out in zip(flat, lengths, strict=True):
    symbols = np.flatnonzero(row > 0)
    if len(symbols) < 2:
      continue
    order = np.argsort(row[symbols], kind="stable")  # by (weight, symbol index): the tie-breaking key
    weights, ids = row[symbols][order], symbols[order]
    if len(symbols) < _VECTORISED_MIN_SYMBOLS:
      out[ids] = _sorted_lengths_loop(weights, ids)
    else:
      out[ids] = _sorted_lengths_phases(weights, ids)
  return lengths.reshape(probs.shape)


def _sorted_lengths_loop(weights: np.ndarray, ids: np.ndarray) -> np.ndarray:
  """Code lengths of leaves sorted by (weight, id): the two-queue merge, one node at a time (small rows)."""
  n = len(weights)
  leaf_w, leaf_t = weights.tolist() + [math.inf], ids.tolist() + [0]
  node_w, node_t = [0.0] * (n - 1), [0] * (n - 1)
  parent = [0] * (2 * n - 1)  # leaves 0..n-1 in sorted order, then merged node c at n + c
  i = j = 0  # next unmerged leaf, next unmerged node
  for c in range(n - 1):
    picked_w, picked_t = [], []
    for _ in range(2):
      if j < c and (node_w[j] < leaf_w[i] or (node_w[j] == leaf_w[i] and node_t[j] < leaf_t[i])):
        picked_w.append(node_w[j])
        picked_t.append(node_t[j])
        parent[n + j] = c
        j += 1
      else:
        picked_w.append(leaf_w[i])
        picked_t.append(leaf_t[i])
        parent[i] = c
        i += 1
    node_w[c] = picked_w[0] + picked_w[1]
    node_t[c] = min(picked_t)
  depth = [0] * (n - 1)  # the root is node n - 2; every parent is created after its children
  for c in range(n - 3, -1, -1):
    depth[c] = depth[parent[n + c]] + 1
  return np.array(depth, dtype=np.int64)[parent[:n]] + 1


def _count_keys_below(weights: np.ndarray, ids: np.ndarray, weight: float, node_id: int) -> int:
  """How many entries of a queue sorted by (weight, id) have a key below (weight, node_id)."""
  low = int(np.searchsorted(weights, weight, side="left"))
  high = int(np.searchsorted(weights, weight, side="right"))
  return low + int(np.searchsorted(ids[low:high], node_id, side="left"))


def _merge_order(weights: np.ndarray, ids: np.ndarray) -> np.ndarray:
  """Permutation sorting entries by (weight, id); ids are distinct."""
  order = np.argsort(weights, kind="stable")
  sorted_w, sorted_t = weights[order], ids[order]
  if not np.any((sorted_w[1:] == sorted_w[:-1]) & (sorted_t[1:] < sorted_t[:-1])):
    return order
  # Equal weights from the two queues: sort by (rank of the weight, id), both integers below len * (max id + 1).
  rank = np.empty(len(weights), dtype=np.int64)
  rank[order] = np.cumsum(np.r_[0, sorted_w[1:] != sorted_w[:-1]])
  return np.argsort(rank * (int(ids.max()) + 1) + ids, kind="stable")


def _sorted_lengths_phases(weights: np.ndarray, ids: np.ndarray) -> np.ndarray:
  """Code lengths of leaves sorted by (weight, id): the two-queue merge, many merges per numpy step.

  In a phase, let (T, t) be the key of the merge of the two smallest nodes. Every node with a key below it is
  merged, in sorted pairs, before any node this phase creates (those have keys >= (T, t)), so the phase pairs
  them all off at once (an odd last one waits for the next phase).
  """
  n = len(weights)
  node_w, node_t = np.empty(n - 1), np.empty(n - 1, dtype=np.int64)
  parent = np.empty(2 * n - 1, dtype=np.int64)  # leaves 0..n-1 in sorted order, then merged node c at n + c
  phase_starts = []
  i = j = c = 0  # next unmerged leaf, next unmerged node, nodes created
  while (n - i) + (c - j) >= 2:
    heads = [(weights[q], ids[q], True) for q in (i, i + 1) if q < n]
    heads += [(node_w[q], node_t[q], False) for q in (j, j + 1) if q < c]
    (w1, t1, leaf1), (w2, t2, leaf2) = sorted(heads, key=lambda head: (head[0], head[1]))[:2]
    threshold_w, threshold_t = w1 + w2, min(t1, t2)
    # The two smallest are always merged, even where rounding puts w1 + w2 at or below w2's key.
    n_leaves = max(_count_keys_below(weights[i:], ids[i:], threshold_w, threshold_t), leaf1 + leaf2)
    n_nodes = max(_count_keys_below(node_w[j:c], node_t[j:c], threshold_w, threshold_t), 2 - leaf1 - leaf2)
    if (n_leaves + n_nodes) % 2:  # the largest selected node waits for the next phase
      last_leaf = (weights[i + n_leaves - 1], ids[i + n_leaves - 1]) if n_leaves else None
      last_node = (node_w[j + n_nodes - 1], node_t[j + n_nodes - 1]) if n_nodes else None
      if last_node is None or (last_leaf is not None and last_node < last_leaf):
        n_leaves -= 1
      else:
        n_nodes -= 1
    picked_w = np.concatenate([weights[i:i + n_leaves], node_w[j:j + n_nodes]])
    picked_t = np.concatenate([ids[i:i + n_leaves], node_t[j:j + n_nodes]])
    picked = np.concatenate([np.arange(i, i + n_leaves), np.arange(n + j, n + j + n_nodes)])
    order = _merge_order(picked_w, picked_t)
    picked_w, picked_t, picked = picked_w[order], picked_t[order], picked[order]
    created = len(picked) // 2
    node_w[c:c + created] = picked_w[0::2] + picked_w[1::2]
    node_t[c:c + created] = np.minimum(picked_t[0::2], picked_t[1::2])
    parent[picked] = c + np.arange(len(picked)) // 2
    phase_starts.append(c)
    i, j, c = i + n_leaves, j + n_nodes, c + created
  depth = np.empty(n - 1, dtype=np.int64)
  depth[c - 1] = 0  # the root, created alone by the last phase
  bounds = phase_starts + [c]
  for phase in range(len(phase_starts) - 2, -1, -1):  # parents are created in later phases
    start, stop = bounds[phase], bounds[phase + 1]
    depth[start:stop] = depth[parent[n + start:n + stop]] + 1
  return depth[parent[:n]] + 1


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
