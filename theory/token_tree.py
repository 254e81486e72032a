"""Token trees of paper Def. 3.1: binary tokens plus EOS, pruned to depth d, with their leaves (responses).

A node at layer l (l = 1..d) is a binary prefix of length l - 1; each node has children 0 and 1 and one EOS
leaf. Pruned to depth d the tree has 2**d - 1 leaves: every binary string of length 0..d-1 followed by EOS.
Leaves are indexed heap-style: the response with bits b (length m, read as a big-endian integer v) has index
2**m - 1 + v, so layer l occupies indices [2**(l-1) - 1, 2**l - 1). A response's length in tokens counts EOS.
"""

from __future__ import annotations

import functools

import numpy as np

from theory import validation

EOS = 2  # token id of end-of-sequence; the binary tokens are 0 and 1.
PAD = 3  # token id used to pad responses shorter than the depth (never a real token).


def n_leaves(depth: int) -> int:
  """Number of leaves (responses) of the token tree pruned to `depth`: 2**depth - 1."""
  return 2 ** validation.check_depth(depth) - 1


@functools.lru_cache(maxsize=32)
def _bit_lengths(depth: int) -> np.ndarray:
  lengths = np.repeat(np.arange(depth), 2 ** np.arange(depth))
  lengths.setflags(write=False)
  return lengths


def response_lengths(depth: int) -> np.ndarray:
  """Length in tokens (binary tokens plus EOS, so 1..depth) of every leaf, shape (2**depth - 1,)."""
  return _bit_lengths(validation.check_depth(depth)) + 1


def leaf_values(depth: int) -> np.ndarray:
  """Big-endian integer value of each leaf's binary prefix, shape (2**depth - 1,)."""
  depth = validation.check_depth(depth)
  bits = _bit_lengths(depth)
  return np.arange(2**depth - 1) - (2**bits - 1)


def leaf_index(bits) -> int:
  """Heap index of the response whose binary tokens are `bits` (a sequence of 0/1)."""
  bits = tuple(int(b) for b in bits)
  if any(b not in (0, 1) for b in bits):
    raise ValueError(f"bits must be 0 or 1, got {bits}")
  value = 0
  for b in bits:
    value = 2 * value + b
  return 2 ** len(bits) - 1 + value


def leaf_bits(index: int, depth: int) -> tuple[int, ...]:
  """Binary tokens (without EOS) of the leaf at heap `index` in the tree of `depth`."""
  total = n_leaves(depth)
  if not 0 <= index < total:
    raise ValueError(f"leaf index {index} is out of range; allowed: 0..{total - 1} for depth {depth}")
  length = int(_bit_lengths(depth)[index])
  value = index - (2**length - 1)
  return tuple((value >> (length - 1 - i)) & 1 for i in range(length))


def leaf_tokens(depth: int) -> np.ndarray:
  """Token matrix of all leaves, shape (2**depth - 1, depth): bits, then EOS, then PAD.

  Row i is the response of leaf i; column j is its j-th token (0, 1, EOS or PAD).
  """
  depth = validation.check_depth(depth, copies=depth)
  lengths = _bit_lengths(depth)
  values = leaf_values(depth)
  positions = np.arange(depth)
  shift = lengths[:, None] - 1 - positions[None, :]
  bits = (values[:, None] >> np.maximum(shift, 0)) & 1
  tokens = np.where(positions[None, :] < lengths[:, None], bits, PAD)
  tokens = np.where(positions[None, :] == lengths[:, None], EOS, tokens)
  return tokens.astype(np.int32)


def prefix_mask(depth: int, prefix=()) -> np.ndarray:
  """Boolean mask of the leaves whose response starts with `prefix` (a sequence of 0/1 tokens).

  The empty prefix selects every leaf. With prefix (1,) the mask selects the subtree of responses that
  start with token 1 (length >= 2 tokens); the EOS-only response belongs to no non-empty prefix.
  """
  depth = validation.check_depth(depth)
  prefix = tuple(int(b) for b in prefix)
  if any(b not in (0, 1) for b in prefix):
    raise ValueError(f"prefix must contain only tokens 0 and 1, got {prefix}")
  if len(prefix) > depth - 1:
    raise ValueError(f"prefix {prefix} is longer than depth-1={depth - 1}; no leaf of the tree has it")
  lengths = _bit_lengths(depth)
  values = leaf_values(depth)
  m = len(prefix)
  head = leaf_index(prefix) - (2**m - 1)
  long_enough = lengths >= m
  shifted = values >> np.maximum(lengths - m, 0)
  return long_enough & (shifted == head)


def layer_slices(depth: int) -> list[slice]:
  """Slices of the leaf axis holding each layer l = 1..depth (responses of l tokens)."""
  depth = validation.check_depth(depth)
  return [slice(2 ** (l - 1) - 1, 2**l - 1) for l in range(1, depth + 1)]
