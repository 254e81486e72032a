"""theory.seeding: seeds are numpy SeedSequence states of the root and the path (strings by CRC-32), checked."""

import zlib

import numpy as np
import pytest

from theory import seeding


def seed_sequence_state(*words: int) -> int:
  """The documented construction: the first 32-bit word of SeedSequence(entropy=words)."""
  return int(np.random.SeedSequence(list(words)).generate_state(1, dtype=np.uint32)[0])


def test_seed_is_the_seed_sequence_of_root_and_path():
  assert seeding.derive(3) == seed_sequence_state(3)
  assert seeding.derive(3, 7, "dataset") == seed_sequence_state(3, 7, zlib.crc32(b"dataset"))
  assert seeding.derive(np.int64(5), np.uint8(2)) == seed_sequence_state(5, 2)
  assert seeding.derive(0, "") == seed_sequence_state(0, 0)  # CRC-32 of the empty string is 0


def test_streams_are_distinct_and_ordered():
  # (Paths that differ only by trailing zeros, such as () and (0,), share a seed: SeedSequence pads its entropy with
  # zero words. The toolkit's streams never differ that way.)
  paths = [(), (1,), (2,), ("a",), ("b",), (0, 1), (1, 2), (2, 1), ("a", 1), (1, "a")]
  seeds = {seeding.derive(root, *path) for root in range(3) for path in paths}
  assert len(seeds) == 3 * len(paths)  # no two (root, path) pairs collide, and the order of a path matters
  assert seeding.derive(1, 0) != seeding.derive(0, 1)
  seed = seeding.derive(12345, "x", 2**40)
  assert isinstance(seed, int) and 0 <= seed < 2**32
  np.random.default_rng(seed)  # usable as a numpy seed


@pytest.mark.parametrize("part", [-1, -(2**40)])
def test_negative_path_elements_are_refused(part):
  with pytest.raises(ValueError) as error:
    seeding.derive(0, part)
  assert str(error.value) == f"seed path element {part} is not allowed; allowed: integers >= 0 or strings"
  with pytest.raises(ValueError, match=f"^seed path element {part} is not allowed"):
    seeding.derive(part)


@pytest.mark.parametrize("part", [True, False, 1.0, None, b"bytes", (1,)])
def test_non_integer_path_elements_are_refused(part):
  with pytest.raises(ValueError) as error:
    seeding.derive(0, "ok", part)
  assert str(error.value) == f"seed path element {part!r} is not allowed; allowed: integers >= 0 or strings"
