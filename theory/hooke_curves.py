"""Exact theory curves for the figures: Hooke's-law rate changes, the ratio against k, Huffman vs entropy.

All quantities come from the size-weighted mixture (the optimal compressor of the union), in bits per
response. The default set-up follows docs/THEORY.md §1.1 and §4.7: pre-training covers the whole tree, alignment data
lies in the aligned subtree (responses starting with token 0) and the perturbation in the unaligned subtree
(responses starting with token 1).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from theory import compression, distributions, elasticity, mixture, precise, seeding
from theory.conventions import ALIGNED_PREFIX, UNALIGNED_PREFIX

__all__ = ["ALIGNED_PREFIX", "UNALIGNED_PREFIX", "TheoryFiguresConfig", "hooke_curves", "huffman_against_entropy",
           "ratio_against_k", "three_datasets"]  # the prefixes are re-exported for modules that still import them here


@dataclasses.dataclass(frozen=True, kw_only=True)
class TheoryFiguresConfig:
  """What the theory figures evaluate; every random draw derives from `seed`."""

  depth: int = 8  # depth d of the token tree (2**d - 1 leaves).
  family: str = "pareto"  # leaf-probability family of every dataset (paper Assumption A.7: pareto).
  param: float = 1.5  # the family's parameter (pareto shape).
  k_curves: tuple[float, ...] = (10.0, 100.0, 1000.0, 10000.0)  # k = |D_p|/|D_a| of the Hooke curves.
  l_min: float = 1e-4  # smallest l = |D_t|/|D_a| on the Hooke curves.
  l_max: float = 1.0  # largest l on the Hooke curves.
  n_l: int = 41  # points per Hooke curve (log-spaced).
  n_ratio_configs: int = 400  # random configurations of the ratio-vs-k panel.
  ratio_l: float = 0.01  # l at which the ratio-vs-k panel evaluates d gamma_a/dl / d gamma_p/dl.
  n_huffman: int = 300  # random distributions of the Huffman-vs-entropy panel.
  seed: int = 0  # root seed.

  def __post_init__(self):
    if not 0 < self.l_min < self.l_max:
      raise ValueError(f"need 0 < l_min < l_max, got l_min={self.l_min}, l_max={self.l_max}")
    if any(not np.isfinite(k) or k <= 0 for k in self.k_curves):
      raise ValueError(f"k_curves must be finite and > 0, got {self.k_curves}")
    for name in ("n_l", "n_ratio_configs", "n_huffman"):
      if getattr(self, name) < 2:
        raise ValueError(f"{name}={getattr(self, name)} is too small; allowed: >= 2")


def three_datasets(depth: int, family: str, param: float | None, seed: int) -> np.ndarray:
  """P of shape (3, 2**depth - 1): pre-training (whole tree), alignment (aligned), perturbation (unaligned)."""
  supports = [(), ALIGNED_PREFIX, UNALIGNED_PREFIX]
  return np.stack([
      distributions.DatasetSpec(family=family, param=param, support=support,
                                seed=seeding.derive(seed, "dataset", i)).probabilities(depth)
      for i, support in enumerate(supports)
  ])


def hooke_curves(config: TheoryFiguresConfig, *, digits: int = precise.DEFAULT_DIGITS) -> dict[str, np.ndarray]:
  """Delta gamma_i(l) = gamma_i(l) - gamma_i(0) for each k of config.k_curves, bits per response.

  The differences are taken with `digits` significant digits (theory.precise) and rounded to float64 once:
  at large k and small l they are ~1e-12 bits on rates of ~10 bits, below float64's resolution of the
  rates, and a float64 subtraction would keep only one or two of their digits.

  Args:
    config: the figure's datasets, k values and l grid.
    digits: decimal digits of the high-precision subtraction (>= theory.precise.MIN_DIGITS).

  Returns:
    Arrays: l (n_l,), k (n_k,), delta_rates (n_k, n_l, 3) for (pre-training, alignment; the perturbation's
    difference is omitted as its rate starts infinite: column 2 holds gamma_t(l) itself), derivative_ratio
    (n_k, n_l).

  References:
    Ji et al., "Language Models Resist Alignment", ACL 2025, Thm. 4.2 and Fig. 2 (elasticity, Hooke's law).
  """
  P = three_datasets(config.depth, config.family, config.param, config.seed)
  l = np.geomspace(config.l_min, config.l_max, config.n_l)
  k = np.asarray(config.k_curves, dtype=np.float64)
  sizes = np.stack(np.broadcast_arrays(k[:, None], 1.0, l[None, :]), axis=-1)  # (n_k, n_l, 3)
  P_batch = np.broadcast_to(P, sizes.shape[:-1] + P.shape)
  delta = precise.rate_differences(P, sizes, sizes * np.array([1.0, 1.0, 0.0]), digits=digits)
  delta[..., 2] = mixture.compression_rates(P_batch, sizes)[..., 2]
  return {"l": l, "k": k, "delta_rates": delta,
          "derivative_ratio": elasticity.derivative_ratio(P_batch, sizes)}


def ratio_against_k(config: TheoryFiguresConfig) -> dict[str, np.ndarray]:
  """d gamma_a/dl / d gamma_p/dl at l = config.ratio_l for random configurations with log10 k in [0, 6]."""
  rng = np.random.default_rng(seeding.derive(config.seed, "ratio against k"))
  P = np.stack([three_datasets(config.depth, config.family, config.param, int(s))
                for s in rng.integers(0, 2**31, config.n_ratio_configs)])
  k = 10 ** rng.uniform(0, 6, config.n_ratio_configs)
  sizes = np.stack([k, np.ones_like(k), np.full_like(k, config.ratio_l)], axis=-1)
  return {"k": k, "ratio": elasticity.derivative_ratio(P, sizes),
          "predicted": elasticity.predicted_ratio(P, sizes)}


def huffman_against_entropy(config: TheoryFiguresConfig) -> dict[str, np.ndarray]:
  """Entropy, exact Huffman expected length and the paper's ceil(H) for random leaf distributions (bits)."""
  rng = np.random.default_rng(seeding.derive(config.seed, "huffman against entropy"))
  families = sorted(distributions.FAMILIES)
  entropy, huffman, paper = [], [], []
  for _ in range(config.n_huffman):
    depth = int(rng.integers(2, 9))
    family = families[int(rng.integers(len(families)))]
    probs = distributions.leaf_distribution(family, depth, seed=int(rng.integers(2**31)))
    entropy.append(compression.entropy_bits(probs))
    huffman.append(compression.expected_code_length(probs, probs))
    paper.append(compression.paper_ideal_code_length(probs, 1, depth))
  return {"entropy": np.array(entropy), "huffman": np.array(huffman), "paper": np.array(paper)}
