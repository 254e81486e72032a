"""Seeded leaf-probability families over a pruned token tree, optionally restricted to a subtree.

Families (all return float64 vectors over the 2**depth - 1 leaves, summing to one on the chosen support):
  pareto     leaf masses drawn i.i.d. from a Pareto distribution (paper Assumption A.7), then normalised.
  zipf       mass proportional to rank**(-exponent) over a random ranking of the leaves (Zipf's law).
  dirichlet  one draw of a symmetric Dirichlet distribution with the given concentration.
  uniform    equal mass on every leaf of the support (no randomness).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from theory import token_tree


def _support_mask(depth: int, support) -> np.ndarray:
  if support is None:
    return np.ones(token_tree.n_leaves(depth), dtype=bool)
  support_array = np.asarray(support)
  if support_array.dtype == bool:
    if support_array.shape != (token_tree.n_leaves(depth),):
      raise ValueError(f"support mask has shape {support_array.shape}; allowed: "
                       f"({token_tree.n_leaves(depth)},) for depth {depth}")
    mask = support_array
  else:
    mask = token_tree.prefix_mask(depth, tuple(support))
  if not mask.any():
    raise ValueError(f"support {support!r} selects no leaf at depth {depth}")
  return mask


def _positive(name: str, value: float) -> float:
  value = float(value)
  if not np.isfinite(value) or value <= 0:
    raise ValueError(f"{name}={value!r} is not allowed; allowed: a finite number > 0")
  return value


def _pareto_masses(rng: np.random.Generator, count: int, shape: float = 1.5) -> np.ndarray:
  """Classical Pareto (scale 1): x = 1 + Lomax(shape); heavier tail for smaller `shape`."""
  return 1.0 + rng.pareto(_positive("shape", shape), size=count)


def _zipf_masses(rng: np.random.Generator, count: int, exponent: float = 1.0) -> np.ndarray:
  ranks = rng.permutation(count) + 1.0
  return ranks ** (-_positive("exponent", exponent))


def _dirichlet_masses(rng: np.random.Generator, count: int, concentration: float = 1.0) -> np.ndarray:
  concentration = _positive("concentration", concentration)
  # Gamma draws normalised later are a Dirichlet draw; this form also handles tiny concentrations.
  masses = rng.gamma(concentration, size=count)
  if masses.sum() <= 0:  # all draws underflowed: put the mass on one random leaf
    masses[rng.integers(count)] = 1.0
  return masses


def _uniform_masses(rng: np.random.Generator, count: int) -> np.ndarray:
  del rng
  return np.ones(count)


FAMILIES: dict[str, Callable[..., np.ndarray]] = {
    "pareto": _pareto_masses,
    "zipf": _zipf_masses,
    "dirichlet": _dirichlet_masses,
    "uniform": _uniform_masses,
}
"""Registry: family name -> function(rng, count, **params) returning positive masses."""


def leaf_distribution(family: str, depth: int, *, seed: int = 0, support=None, **params) -> np.ndarray:
  """Draws a leaf distribution of the token tree of `depth` from a named family.

  Args:
    family: one of FAMILIES ('pareto', 'zipf', 'dirichlet', 'uniform').
    depth: depth d of the pruned token tree (2**d - 1 leaves).
    seed: seed of the numpy Generator; the same arguments give the same vector.
    support: None (every leaf), a prefix of binary tokens such as (1,) (the subtree of responses starting
      with token 1), or a boolean mask over the leaves. Leaves outside it get probability 0.
    **params: the family's parameter: `shape` (pareto, default 1.5), `exponent` (zipf, default 1.0),
      `concentration` (dirichlet, default 1.0).

  Returns:
    float64 array of shape (2**depth - 1,), non-negative, summing to one.

  References:
    Ji et al., "Language Models Resist Alignment", ACL 2025, Def. 3.1 and Assumption A.7 (Pareto masses).
  """
  if family not in FAMILIES:
    raise ValueError(f"unknown distribution family {family!r}; allowed: {', '.join(sorted(FAMILIES))}")
  mask = _support_mask(depth, support)
  rng = np.random.default_rng(seed)
  try:
    masses = FAMILIES[family](rng, int(mask.sum()), **params)
  except TypeError as error:
    raise ValueError(f"bad parameters {sorted(params)} for family {family!r}: {error}") from error
  probs = np.zeros(mask.shape, dtype=np.float64)
  probs[mask] = masses / masses.sum()
  return probs


@dataclasses.dataclass(frozen=True, kw_only=True)
class DatasetSpec:
  """A dataset's leaf distribution: which family, its parameter, its support and its seed."""

  family: str = "pareto"  # a key of FAMILIES.
  param: float | None = None  # shape / exponent / concentration; None takes the family's default.
  support: tuple[int, ...] = ()  # binary prefix of the subtree the dataset lives in; () is the whole tree.
  seed: int = 0  # seed of the draw.

  def probabilities(self, depth: int) -> np.ndarray:
    """The dataset's leaf distribution at `depth` (float64, sums to one)."""
    names = {"pareto": "shape", "zipf": "exponent", "dirichlet": "concentration"}
    params = {} if self.param is None or self.family not in names else {names[self.family]: self.param}
    return leaf_distribution(self.family, depth, seed=self.seed, support=self.support, **params)
