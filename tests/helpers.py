"""Shared test helpers: tolerances, random configurations (all seeded), one-line errors, a reference Huffman."""

import fractions
import heapq
import itertools
import threading

import numpy as np
import pytest

from theory import distributions

RTOL_FLOAT64 = 1e-9  # closed form vs closed form in float64.
RTOL_FINITE_DIFFERENCE = 1e-5  # closed-form derivative vs central finite difference.


def random_config(seed: int, depth: int = 5, n_datasets: int = 3, families=("pareto", "zipf", "dirichlet")):
  """Leaf distributions (n_datasets, 2**depth - 1) with random supports, and sizes spanning k up to 1e6."""
  rng = np.random.default_rng(seed)
  supports = [(), (0,), (1,), (1, 0), (0, 1)]
  P = np.stack([
      distributions.leaf_distribution(str(rng.choice(families)), depth, seed=int(rng.integers(1 << 30)),
                                      support=supports[int(rng.integers(len(supports)))])
      for _ in range(n_datasets)
  ])
  sizes = np.concatenate([[10 ** rng.uniform(0, 6)], [1.0], 10 ** rng.uniform(-4, 1, n_datasets - 2)])
  return P, sizes


def within(seconds, function, *args, **kwargs):
  """function(*args, **kwargs) run in a thread: its result or exception, or a failure if it has not returned after
  `seconds` (a hang is a test failure, not a wait)."""
  outcome = {}

  def run():
    try:
      outcome["value"] = function(*args, **kwargs)
    except BaseException as error:  # re-raised in the test's thread
      outcome["error"] = error

  worker = threading.Thread(target=run, daemon=True)
  worker.start()
  worker.join(seconds)
  assert not worker.is_alive(), f"{getattr(function, '__name__', function)} did not return within {seconds} s"
  if "error" in outcome:
    raise outcome["error"]
  return outcome["value"]


def one_line_error(function, *args, **kwargs) -> str:
  """The message of the ValueError `function(*args, **kwargs)` raises (within 30 s), checked to be one line."""
  with pytest.raises(ValueError) as error:
    within(30, function, *args, **kwargs)
  message = str(error.value)
  assert "\n" not in message
  return message


def heap_huffman_lengths(probs):
  """Reference: the textbook priority-queue Huffman, one merge per pop pair, key (weight, smallest symbol below)."""
  probs = np.asarray(probs, dtype=np.float64)
  lengths = np.zeros(probs.shape, dtype=np.int64)
  heap = [(float(probs[s]), int(s), [int(s)]) for s in np.flatnonzero(probs > 0)]
  heapq.heapify(heap)
  while len(heap) > 1:
    weight_1, key_1, symbols_1 = heapq.heappop(heap)
    weight_2, key_2, symbols_2 = heapq.heappop(heap)
    lengths[symbols_1 + symbols_2] += 1  # every symbol below the merged node gets one more bit
    heapq.heappush(heap, (weight_1 + weight_2, min(key_1, key_2), symbols_1 + symbols_2))
  return lengths


def sign_flip_rejects(values, delta, level: float) -> bool:
  """Brute force in exact rationals: does either one-sided sign-flip test of mean(values) = delta reject at `level`?"""
  shifted = [fractions.Fraction(v) - fractions.Fraction(delta) for v in values]
  observed = sum(shifted)
  sums = [sum(s * d for s, d in zip(signs, shifted, strict=True))
          for signs in itertools.product((1, -1), repeat=len(shifted))]
  greater = sum(t >= observed for t in sums) / len(sums)
  less = sum(t <= observed for t in sums) / len(sums)
  return min(greater, less) <= level
