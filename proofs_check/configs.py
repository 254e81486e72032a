"""Configurations the claims are checked on: three datasets on a token tree, or one code alphabet."""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from theory import token_tree
from theory.conventions import ALIGN, ALIGNED_PREFIX, PERTURB, PRETRAIN, UNALIGNED_PREFIX
from theory.distributions import DatasetSpec

__all__ = ["ALIGN", "LAYOUTS", "MODELS", "PERTURB", "PRETRAIN", "CodeConfig", "ElasticityConfig", "StationaryConfig",
           "layout_supports"]

LAYOUTS: dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]] = {
    "shared": ((), (), ()),
    "nested": ((), ALIGNED_PREFIX, ALIGNED_PREFIX + (0,)),
    "overlapping": ((), ALIGNED_PREFIX, ()),
    "unaligned": ((), ALIGNED_PREFIX, UNALIGNED_PREFIX),
    "disjoint": (ALIGNED_PREFIX, ALIGNED_PREFIX, UNALIGNED_PREFIX),
}
"""Support layouts: name -> binary prefixes of (D_p, D_a, D_t), with D_a on the aligned subtree
(theory.conventions.ALIGNED_PREFIX) wherever it is not the whole tree. 'nested': D_t inside D_a inside D_p;
'overlapping': D_t covers D_a's subtree and more; 'unaligned': D_t on the unaligned subtree (UNALIGNED_PREFIX),
disjoint from D_a but inside D_p; 'disjoint': D_p and D_a on the aligned subtree, D_t on the unaligned one,
outside the mixture (uncovered at l = 0). At depth 2 a prefix of length 2 has no leaf, so 'nested' uses
ALIGNED_PREFIX for D_t there."""


def layout_supports(layout: str, depth: int) -> tuple[tuple[int, ...], ...]:
  """The (D_p, D_a, D_t) prefixes of `layout` at `depth`, shortened where the tree is too shallow."""
  if layout not in LAYOUTS:
    raise ValueError(f"unknown support layout {layout!r}; allowed: {', '.join(LAYOUTS)}")
  return tuple(prefix[:depth - 1] for prefix in LAYOUTS[layout])


@functools.lru_cache(maxsize=256)
def _stacked(depth: int, specs: tuple[DatasetSpec, ...]) -> np.ndarray:
  probs = np.stack([spec.probabilities(depth) for spec in specs])
  probs.setflags(write=False)
  return probs


@dataclasses.dataclass(frozen=True, kw_only=True)
class ElasticityConfig:
  """Pre-training, alignment and perturbation datasets on one token tree, with their sizes."""

  depth: int  # depth d of the pruned token tree (2**d - 1 leaves).
  pretrain: DatasetSpec  # D_p's family, parameter, support prefix and seed.
  align: DatasetSpec  # D_a's.
  perturb: DatasetSpec  # D_t's.
  layout: str = "shared"  # name of the support layout (a key of LAYOUTS), for reports.
  k: float = 1.0  # n_p / n_a.
  l: float = 0.0  # noqa: E741 (the paper's name) n_t / n_a, the perturbation size derivatives are taken at.
  n_a: float = 1.0  # alignment size; derivatives d/dl are free of it, the weighted identity scales with it.

  def probabilities(self) -> np.ndarray:
    """Leaf distributions of (D_p, D_a, D_t), shape (3, 2**depth - 1)."""
    return _stacked(self.depth, (self.pretrain, self.align, self.perturb))

  def sizes(self, size_ratio: float | None = None) -> np.ndarray:
    """Sizes (n_p, n_a, n_t) at l = `size_ratio` (default: the config's l), shape (3,)."""
    size_ratio = self.l if size_ratio is None else size_ratio
    return np.array([self.k * self.n_a, self.n_a, size_ratio * self.n_a], dtype=np.float64)

  def with_l(self, size_ratio: float) -> ElasticityConfig:
    """The same datasets and k at another perturbation size l = `size_ratio`."""
    return dataclasses.replace(self, l=float(size_ratio))

  def as_dict(self) -> dict:
    """Plain-data form for JSON reports."""
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, data: dict) -> ElasticityConfig:
    """Rebuilds a configuration from as_dict's output (or its JSON form), e.g. a saved counterexample."""
    specs = {name: _spec(data[name]) for name in ("pretrain", "align", "perturb")}
    return cls(**{**data, **specs})


@dataclasses.dataclass(frozen=True, kw_only=True)
class CodeConfig:
  """A source to Huffman-code: a leaf distribution of a pruned tree, or a small explicit alphabet."""

  depth: int | None = None  # depth of the token tree whose leaves are the symbols; None for `probs`.
  source: DatasetSpec | None = None  # leaf distribution of the tree (with `depth`).
  probs: tuple[float, ...] | None = None  # explicit probabilities of a small alphabet (sum to one).
  response_length: int = 1  # |x| in tokens for the paper's block formula ceil(|x| / d).

  def probabilities(self) -> np.ndarray:
    """The symbol probabilities, float64, summing to one."""
    if self.probs is not None:
      probs = np.asarray(self.probs, dtype=np.float64)
      return probs / probs.sum()
    return self.source.probabilities(self.depth)

  def block_depth(self) -> int:
    """d of the block formula: the tree depth, or for an explicit alphabet the smallest depth holding it."""
    if self.depth is not None:
      return self.depth
    depth = 1
    while token_tree.n_leaves(depth) < len(self.probs):
      depth += 1
    return depth

  def as_dict(self) -> dict:
    """Plain-data form for JSON reports."""
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, data: dict) -> CodeConfig:
    """Rebuilds a configuration from as_dict's output (or its JSON form)."""
    source = None if data.get("source") is None else _spec(data["source"])
    probs = None if data.get("probs") is None else tuple(data["probs"])
    return cls(**{**data, "source": source, "probs": probs})


MODELS = ("linear", "two_layer")
"""Parametric models of claim 10: 'linear' q = softmax(A theta) with a fixed random feature matrix A (leaves x
width); 'two_layer' q = softmax(sin([F, 1] W^T) v) with fixed random leaf features F (leaves x n_features)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class StationaryConfig:
  """Three datasets and a small parametric model over their leaves, fitted to sum_i n_i CE_i (claim 10)."""

  datasets: ElasticityConfig  # D_p, D_a, D_t on one token tree, with k, l and n_a.
  model: str  # one of MODELS.
  width: int  # 'linear': parameters (columns of A); 'two_layer': hidden units.
  n_features: int = 0  # 'two_layer': random input features per leaf; 'linear': 0.
  model_seed: int = 0  # seed of the fixed random features and of the initial parameters.

  def __post_init__(self):
    if self.model not in MODELS:
      raise ValueError(f"unknown model {self.model!r}; allowed: {', '.join(MODELS)}")
    n_leaves = token_tree.n_leaves(self.datasets.depth)
    if not 1 <= self.n_params <= n_leaves - 2:
      raise ValueError(f"{self.n_params} parameters for {n_leaves} leaves; allowed: 1..{n_leaves - 2} (fewer than "
                       "the free simplex's n_leaves - 1)")

  @property
  def n_params(self) -> int:
    """Number of model parameters: width, or width * (n_features + 2) for 'two_layer'."""
    return self.width if self.model == "linear" else self.width * (self.n_features + 2)

  def as_dict(self) -> dict:
    """Plain-data form for JSON reports."""
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, data: dict) -> StationaryConfig:
    """Rebuilds a configuration from as_dict's output (or its JSON form)."""
    return cls(**{**data, "datasets": ElasticityConfig.from_dict(data["datasets"])})


def _spec(data: dict) -> DatasetSpec:
  return DatasetSpec(**{**data, "support": tuple(data["support"])})
