"""Finite toy datasets: seeded samples of given masses from pre-training, alignment and perturbation sources."""

from __future__ import annotations

import dataclasses

import numpy as np

from theory import seeding, token_tree, validation
from theory.conventions import ALIGN, ALIGNED_PREFIX, PERTURB, PRETRAIN, UNALIGNED_PREFIX
from toy_models import sources

MAX_DEPTH = 16  # deepest token tree of the toy experiments (65,535 responses, each enumerated through the model).
PERTURBATIONS = ("unaligned", "pretrain_like", "alignment_like", "unrelated")
"""What D_t is drawn from: a fresh source on the unaligned subtree (inside D_p's support, outside D_a's);
D_p's own source; D_a's own source; or an independent source on the whole tree."""
SAMPLING = ("sampled", "exact")
"""'sampled': D_i is a multinomial sample of |D_i| responses; 'exact': counts are |D_i| * P_i (fractional)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class SourceConfig:
  """The three sources behind D_p, D_a and D_t on one token tree, with the behaviour split built in.

  D_p covers the whole tree (both behaviours); D_a lives on the aligned subtree (responses starting with
  token 0); D_t is chosen by `perturbation`.
  """

  depth: int = 8  # depth d of the pruned token tree (2**d - 1 responses).
  family: str = "pareto"  # a key of toy_models.sources.ALL_FAMILIES.
  param: float | None = None  # the family's parameter (Pareto shape, Zipf exponent, ..., Markov order).
  perturbation: str = "unaligned"  # one of PERTURBATIONS.
  seed: int = 0  # root seed of the sources (dataset i draws with theory.seeding.derive(seed, 'source', i)).

  def __post_init__(self):
    if isinstance(self.depth, bool) or not isinstance(self.depth, int) or not 2 <= self.depth <= MAX_DEPTH:
      raise ValueError(f"depth={self.depth!r} is not allowed; allowed: an integer 2..{MAX_DEPTH} (2 so that the "
                       "behaviour split has a first token; the tree of depth d has 2**d - 1 responses)")
    if self.family not in sources.ALL_FAMILIES:
      raise ValueError(f"unknown distribution family {self.family!r}; allowed: {', '.join(sources.ALL_FAMILIES)}")
    if self.perturbation not in PERTURBATIONS:
      raise ValueError(f"unknown perturbation {self.perturbation!r}; allowed: {', '.join(PERTURBATIONS)}")
    if self.param is not None and not np.isfinite(self.param):
      raise ValueError(f"param={self.param!r} is not allowed; allowed: a finite number or none")

  def probabilities(self) -> np.ndarray:
    """Source leaf distributions of (D_p, D_a, D_t), float64, shape (3, 2**depth - 1)."""
    def draw(index, support):
      return sources.source_distribution(self.family, self.depth, param=self.param,
                                         seed=seeding.derive(self.seed, "source", index), support=support)

    pretrain, align = draw(PRETRAIN, ()), draw(ALIGN, ALIGNED_PREFIX)
    perturb = {"unaligned": lambda: draw(PERTURB, UNALIGNED_PREFIX), "pretrain_like": lambda: pretrain,
               "alignment_like": lambda: align, "unrelated": lambda: draw(PERTURB, ())}[self.perturbation]()
    return np.stack([pretrain, align, perturb])


def check_mass(name: str, mass) -> float:
  """A dataset mass (number of responses): finite and >= 0, else a one-line ValueError."""
  try:
    value = float(mass)
  except (TypeError, ValueError):
    raise ValueError(f"{name}={mass!r} is not allowed; allowed: a finite number of responses >= 0") from None
  if not np.isfinite(value) or value < 0:
    raise ValueError(f"{name}={value!r} is not allowed; allowed: a finite number of responses >= 0")
  return value


def sample_counts(probs: np.ndarray, masses, *, seed: int, sampling: str = "sampled") -> np.ndarray:
  """Leaf counts of datasets of the given masses drawn from `probs`, nested in the mass.

  Args:
    probs: a leaf distribution, shape (n_leaves,).
    masses: dataset sizes in responses, shape (m,); with 'sampled' they are rounded to integers.
    seed: seed of the sample; the datasets for different masses are prefixes of one stream of responses,
      so a larger dataset contains every smaller one (the l-grid of an experiment is nested).
    sampling: 'sampled' (multinomial responses) or 'exact' (counts = mass * probs).

  Returns:
    float64 counts of shape (m, n_leaves); row j sums to masses[j] (rounded when sampled).
  """
  probs = validation.check_probabilities("probs", probs)
  masses = np.atleast_1d(np.asarray([check_mass("mass", m) for m in np.atleast_1d(masses)]))
  if sampling not in SAMPLING:
    raise ValueError(f"unknown sampling {sampling!r}; allowed: {', '.join(SAMPLING)}")
  if sampling == "exact":
    return masses[:, None] * probs[None, :]
  sizes = np.rint(masses).astype(np.int64)
  if sizes.max() > 50_000_000:
    raise ValueError(f"mass {sizes.max()} is too large to sample; allowed: <= 5e7 responses (or sampling='exact')")
  rng = np.random.default_rng(seed)
  stream = rng.choice(probs.size, size=int(sizes.max()), p=probs)
  counts = np.zeros((sizes.size, probs.size))
  for row, size in enumerate(sizes):
    counts[row] = np.bincount(stream[:size], minlength=probs.size)
  return counts


def empirical(counts: np.ndarray) -> np.ndarray:
  """Leaf distribution of a dataset given its counts (rows with no response give a zero row)."""
  counts = np.asarray(counts, dtype=np.float64)
  totals = counts.sum(axis=-1, keepdims=True)
  return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)


def aligned_mask(depth: int) -> np.ndarray:
  """Leaves of the aligned behaviour (responses starting with token 0)."""
  return token_tree.prefix_mask(depth, ALIGNED_PREFIX)
