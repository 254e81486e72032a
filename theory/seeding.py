"""One way to derive every seed: numpy SeedSequence over the root seed and a path of named streams.

Every random draw of the toolkit (sources, dataset samples, initial parameters, minibatches, hypothesis-free
figure data) takes its seed from `derive(root, *path)`: the same root and path give the same seed, different
paths give statistically independent streams, and no two streams collide by arithmetic (as "1000 * seed + stream"
could). Experiments use root = seed + repetition, so repetition r of a run with first seed s is the same draw as
repetition 0 of a run with first seed s + r: runs with more seeds extend runs with fewer.
"""

from __future__ import annotations

import zlib

import numpy as np


def _word(part: int | str) -> int:
  """A path element as a non-negative integer (strings by CRC-32, which is stable across runs and platforms)."""
  if isinstance(part, bool) or not isinstance(part, int | np.integer | str):
    raise ValueError(f"seed path element {part!r} is not allowed; allowed: integers >= 0 or strings")
  if isinstance(part, str):
    return zlib.crc32(part.encode())
  if part < 0:
    raise ValueError(f"seed path element {part} is not allowed; allowed: integers >= 0 or strings")
  return int(part)


def derive(root: int, *path: int | str) -> int:
  """A 32-bit seed for the stream `path` under `root` (usable by numpy.random.default_rng and jax.random.PRNGKey).

  References:
    O'Neill (2015), "PCG: A Family of Simple Fast Space-Efficient Statistically Good Algorithms for Random Number
      Generation", and numpy.random.SeedSequence (the hashing of the entropy into independent streams).
  """
  entropy = [_word(root)] + [_word(part) for part in path]
  return int(np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint32)[0])
