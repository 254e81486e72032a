"""Claim 1 checks: Huffman code lengths against entropy and brute force, and the paper's Thm. 3.4 formula."""

from __future__ import annotations

import functools
import itertools

import numpy as np

from proofs_check import constants
from proofs_check.configs import CodeConfig
from proofs_check.runner import Outcome
from theory import compression


@functools.cache
def _kraft_feasible_lengths(n_symbols: int) -> np.ndarray:
  """All integer length vectors in 1..n-1 with sum 2**-L <= 1 (Kraft), shape (count, n)."""
  top = max(n_symbols - 1, 1)
  grid = np.array(list(itertools.product(range(1, top + 1), repeat=n_symbols)), dtype=np.int64)
  return grid[(2.0 ** -grid).sum(axis=1) <= 1.0 + 1e-12]


def brute_force_optimal_length(probs) -> float:
  """Smallest expected length, in bits, of any prefix code for `probs`, by exhaustive search over lengths.

  A prefix code with lengths L exists iff sum 2**-L <= 1 (Kraft), and an optimal code never needs a
  length above n - 1, so the minimum over that finite set is the optimum. Only for small alphabets.

  References:
    Cover & Thomas, Elements of Information Theory, 2nd ed., Thm. 5.2.1 (Kraft inequality).
  """
  probs = np.asarray(probs, dtype=np.float64)
  positive = probs[probs > 0]
  if len(positive) < 2:
    return 0.0
  if len(positive) > constants.BRUTE_FORCE_MAX_SYMBOLS:
    raise ValueError(f"{len(positive)} symbols is too many for brute force; allowed: at most "
                     f"{constants.BRUTE_FORCE_MAX_SYMBOLS}")
  return float((_kraft_feasible_lengths(len(positive)) @ positive).min())


def _lengths(config: CodeConfig) -> tuple[np.ndarray, float, float]:
  probs = config.probabilities()
  return probs, float(compression.expected_code_length(probs, probs)), float(compression.entropy_bits(probs))


def huffman_bound(config: CodeConfig) -> Outcome:
  """Claim 1a at one source: H <= E[L] < H + 1, Kraft sum <= 1, E[L] optimal (brute force when small).

  Also checks that coding P with the Huffman code of another distribution q (here (P + uniform) / 2) costs
  at least H(P) bits. Error: the largest violation, in bits (0 when everything holds).
  """
  probs, length, entropy = _lengths(config)
  lengths = compression.huffman_code_lengths(probs)
  kraft = float((2.0 ** -lengths[probs > 0]).sum()) if np.count_nonzero(probs) > 1 else 1.0
  other = 0.5 * probs + 0.5 * (probs > 0) / np.count_nonzero(probs)
  cross = float(compression.expected_code_length(probs, other))
  violations = {"H - E[L]": entropy - length, "E[L] - (H + 1)": length - entropy - 1.0,
                "Kraft sum - 1": kraft - 1.0, "H - E_P[L_q]": entropy - cross}
  if np.count_nonzero(probs) <= constants.BRUTE_FORCE_MAX_SYMBOLS:
    violations["|E[L] - brute force optimum|"] = abs(length - brute_force_optimal_length(probs))
  worst = max(violations, key=violations.get)
  strict_upper = length < entropy + 1.0
  holds = strict_upper and all(v <= constants.BITS_ATOL for v in violations.values())
  return Outcome(error=max(0.0, violations[worst]), holds=holds,
                 values={"entropy": entropy, "huffman": length, "worst_term": worst})


def paper_formula_exact(config: CodeConfig) -> Outcome:
  """Claim 1b at one source: is ceil(|x|/d) * ceil(H) (paper Thm. 3.4) the exact Huffman length?

  Error: |paper formula - ceil(|x|/d) * E[L]| in bits per response.
  """
  probs, length, entropy = _lengths(config)
  depth = config.block_depth()
  paper = float(compression.paper_ideal_code_length(probs, config.response_length, depth))
  exact = float(compression.block_count(config.response_length, depth)) * length
  gap = abs(paper - exact)
  return Outcome(error=gap, holds=gap <= constants.BITS_ATOL,
                 values={"entropy": entropy, "huffman": length, "paper": paper, "exact": exact})


def paper_formula_within_one(config: CodeConfig) -> Outcome:
  """Claim 1c at one source: |ceil(H) - E[L]| < 1 bit per block (both lie in [H, H + 1)). Error: the gap."""
  probs, length, entropy = _lengths(config)
  paper_block = float(compression.paper_ideal_code_length(probs, 1, config.block_depth()))
  gap = abs(paper_block - length)
  return Outcome(error=gap, holds=gap < 1.0, values={"entropy": entropy, "huffman": length})


def paper_formula_counterexample() -> dict:
  """Recomputes the counterexample to claim 1b: p = (1/2, 1/4, 1/4), one block (depth 2, |x| = 1)."""
  probs = np.array([0.5, 0.25, 0.25])
  entropy = float(compression.entropy_bits(probs))
  huffman = float(compression.expected_code_length(probs, probs))
  paper = float(compression.paper_ideal_code_length(probs, 1, 2))
  return {"probs": probs.tolist(), "entropy_bits": entropy, "huffman_bits": huffman, "paper_bits": paper,
          "reproduced": abs(paper - huffman) > constants.BITS_ATOL,
          "reading": f"H = E[L] = {huffman:g} bits but the paper's ceil(H) = {paper:g} bits"}
