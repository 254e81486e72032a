"""Tests of theory.token_tree: leaf enumeration, indexing, prefixes and depth limits."""

import itertools

import numpy as np
import pytest

from theory import token_tree


@pytest.mark.parametrize("depth", [1, 2, 3, 6])
def test_leaves_are_all_binary_strings_shorter_than_depth(depth):
  expected = [bits for m in range(depth) for bits in itertools.product((0, 1), repeat=m)]
  got = [token_tree.leaf_bits(i, depth) for i in range(token_tree.n_leaves(depth))]
  assert got == expected
  assert [token_tree.leaf_index(bits) for bits in expected] == list(range(len(expected)))


def test_token_matrix_matches_bits_and_lengths():
  depth = 5
  tokens = token_tree.leaf_tokens(depth)
  lengths = token_tree.response_lengths(depth)
  for i, row in enumerate(tokens):
    bits = token_tree.leaf_bits(i, depth)
    assert tuple(row[: len(bits)]) == bits
    assert row[len(bits)] == token_tree.EOS
    assert (row[len(bits) + 1 :] == token_tree.PAD).all()
    assert lengths[i] == len(bits) + 1


def test_prefix_mask_selects_exactly_the_subtree():
  depth = 6
  for prefix in [(), (0,), (1,), (1, 0), (0, 1, 1)]:
    mask = token_tree.prefix_mask(depth, prefix)
    for i in range(token_tree.n_leaves(depth)):
      bits = token_tree.leaf_bits(i, depth)
      assert mask[i] == (bits[: len(prefix)] == prefix)
  halves = token_tree.prefix_mask(depth, (0,)) | token_tree.prefix_mask(depth, (1,))
  assert np.flatnonzero(~halves).tolist() == [0]  # only the EOS-only response is in neither half.


def test_layer_slices_partition_the_leaves():
  depth = 7
  lengths = token_tree.response_lengths(depth)
  for layer, sl in enumerate(token_tree.layer_slices(depth), start=1):
    assert (lengths[sl] == layer).all()
    assert sl.stop - sl.start == 2 ** (layer - 1)


@pytest.mark.parametrize("bad", [0, -3, 2.5, "8", True])
def test_bad_depth_is_one_line_error(bad):
  with pytest.raises(ValueError, match="depth") as info:
    token_tree.n_leaves(bad)
  assert "\n" not in str(info.value)


def test_depth_that_would_not_fit_in_memory_is_rejected():
  with pytest.raises(ValueError, match=r"depth=40 needs .* GiB.*allowed: depth <= \d+"):
    token_tree.n_leaves(40)


def test_bad_prefixes_are_rejected():
  with pytest.raises(ValueError, match="only tokens 0 and 1"):
    token_tree.prefix_mask(4, (2,))
  with pytest.raises(ValueError, match="longer than depth-1"):
    token_tree.prefix_mask(3, (0, 1, 0))
  with pytest.raises(ValueError, match="out of range"):
    token_tree.leaf_bits(7, 3)
