"""Configuration of the rebound experiments (`elasticity simulate rebound`, `model-size`, `pretrain-volume`)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from theory.conventions import ALIGN, PERTURB, PRETRAIN
from toy_models import datasets, sources
from toy_models.model_config import ModelConfig, transformer_sizes
from toy_models.stage_config import StageConfig

ORDERS = ("positive_first", "negative_first")
"""positive_first: align on positive examples, then fine-tune on negative ones (paper Fig. 4); negative_first:
the reverse order (paper Appendix), misalign on negative examples, then fine-tune on positive ones."""
METHODS = ("sft", "dpo")
"""How the second (reverse) stage trains: SFT on its examples, or DPO on pairs (chosen = a second-stage example,
rejected = a response of the first stage's behaviour), with the first-stage model as DPO's reference."""
BEHAVIOURS = ("conditional", "independent")
"""Where positive and negative examples come from: 'conditional', D_p conditioned on the aligned (positive) or
unaligned (negative) subtree, so both behaviours are ones the pre-trained model already knows and only their
share changes; 'independent', fresh sources on the two subtrees (D_a and the 'unaligned' D_t of hooke)."""
MAX_EXAMPLES = 10_000_000  # refuse larger example counts (a typo would sample for minutes).


def stage(**changes) -> StageConfig:
  """The rebound's transformer stage (Adam, lr 0.003, constant, one epoch of minibatches of 50), with `changes`;
  the mitigations testbed builds its stages from it too."""
  base = dict(epochs=1.0, batch_size=50, learning_rate=0.003, schedule="constant", gradient="minibatch")
  return StageConfig(**{**base, **changes})


@dataclasses.dataclass(frozen=True, kw_only=True)
class ReboundConfig:
  """Every knob of the rebound experiments; the same config gives the same numbers.

  Per seed and grid cell (family, model size, pre-training mass, order): a transformer is pre-trained on
  `pretrain_mass` responses sampled from D_p (whole tree); a copy is fine-tuned on n1 first-stage examples for
  each n1 in first_sizes (positive = the aligned subtree's source, negative = the unaligned subtree's); each of
  those is fine-tuned on n2 second-stage examples (the other behaviour) for each n2 in second_sizes, by each
  method. Stages with `epochs` take steps in proportion to their examples, so more data = more training.
  The score is the model's probability of the first stage's behaviour (positive score for positive_first).
  """

  first_sizes: tuple[int, ...] = (1000, 2000, 5000, 10000)  # examples of the first stage (alignment).
  second_sizes: tuple[int, ...] = (0, 100, 200, 500, 1000, 2000)  # examples of the reverse stage (0 is added).
  orders: tuple[str, ...] = ORDERS  # which orders to run.
  methods: tuple[str, ...] = METHODS  # how the reverse stage trains.
  families: tuple[str, ...] = ("pareto",)  # leaf families of the sources (toy_models.sources.ALL_FAMILIES).
  param: float | None = None  # the family's parameter (None: each family's default); one family only.
  model_sizes: tuple[tuple[int, int], ...] = ((16, 1),)  # transformer (width, layers) pairs.
  heads: int = 2  # attention heads of every transformer (must divide every width).
  pretrain_masses: tuple[float, ...] = (20000.0,)  # responses of pre-training data (nested samples of D_p).
  seeds: int = 5  # independent repetitions (seed, seed + 1, ...): sources, samples, initial parameters.
  seed: int = 0  # first seed.
  depth: int = 8  # token-tree depth (2**depth - 1 responses).
  behaviours: str = "conditional"  # one of BEHAVIOURS.
  sampling: str = "sampled"  # 'sampled' finite datasets (the paper's setting) or 'exact' expected counts.
  epsilon_nats: float = 0.01  # KL threshold of the Table 3 analogue (nats per response).
  dpo_beta: float = 0.1  # DPO's inverse temperature beta.
  dtype: str = "float64"  # parameter type (metrics are float64 regardless).
  pretrain: StageConfig = stage()  # pre-training: 1 epoch over pretrain_mass at batch 50.
  first: StageConfig = stage()  # first stage: 1 epoch over n1 examples at batch 50.
  second: StageConfig = stage(batch_size=10)  # reverse stage: 1 epoch over n2 examples (or pairs) at batch 10.

  def __post_init__(self):
    for name, grid, low in (("first_sizes", self.first_sizes, 1), ("second_sizes", self.second_sizes, 0)):
      if not grid or any(isinstance(v, bool) or not isinstance(v, int) or not low <= v <= MAX_EXAMPLES
                         for v in grid):
        raise ValueError(f"{name}={list(grid)} is not allowed; allowed: one or more integers {low}..{MAX_EXAMPLES}")
      if list(grid) != sorted(set(grid)):
        raise ValueError(f"{name}={list(grid)} is not allowed; allowed: distinct values in increasing order")
    if len(self.second_sizes) < 3 or self.second_sizes[0] != 0:
      raise ValueError(f"second_sizes={list(self.second_sizes)} is not allowed; allowed: 0 first, then at least "
                       "two more sizes (the curves need an early and a late interval)")
    for name, values, allowed in (("orders", self.orders, ORDERS), ("methods", self.methods, METHODS),
                                  ("families", self.families, sources.ALL_FAMILIES)):
      bad = [v for v in values if v not in allowed]
      if bad or not values or len(set(values)) != len(values):
        raise ValueError(f"{name}={list(values)} is not allowed; allowed: distinct values of {', '.join(allowed)}")
    if self.param is not None and len(self.families) != 1:
      raise ValueError(f"param={self.param} with families={list(self.families)}; allowed: a param with one family")
    transformer_sizes(self.model_sizes, heads=self.heads, dtype=self.dtype)
    if not self.pretrain_masses or len(set(self.pretrain_masses)) != len(self.pretrain_masses):
      raise ValueError(f"pretrain_masses={list(self.pretrain_masses)} is not allowed; allowed: distinct masses")
    for mass in self.pretrain_masses:
      if datasets.check_mass("pretrain_mass", mass) < 1:
        raise ValueError(f"pretrain_mass={mass!r} is not allowed; allowed: >= 1 response")
      self.pretrain.steps_for(mass)
    self.first.steps_for(max(self.first_sizes))
    self.second.steps_for(max(self.second_sizes))
    if isinstance(self.seeds, bool) or not isinstance(self.seeds, int) or self.seeds < 1:
      raise ValueError(f"seeds={self.seeds!r} is not allowed; allowed: an integer >= 1")
    if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
      raise ValueError(f"seed={self.seed!r} is not allowed; allowed: an integer >= 0")
    if self.behaviours not in BEHAVIOURS:
      raise ValueError(f"unknown behaviours {self.behaviours!r}; allowed: {', '.join(BEHAVIOURS)}")
    if self.sampling not in datasets.SAMPLING:
      raise ValueError(f"unknown sampling {self.sampling!r}; allowed: {', '.join(datasets.SAMPLING)}")
    for name in ("epsilon_nats", "dpo_beta"):
      value = getattr(self, name)
      if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name}={value!r} is not allowed; allowed: a finite number > 0")
    for family in self.families:
      self.source(family, 0)

  def model_config(self, size: tuple[int, int]) -> ModelConfig:
    """The transformer of one (width, layers) size."""
    return transformer_sizes((size,), heads=self.heads, dtype=self.dtype)[0]

  def source(self, family: str, repetition: int) -> datasets.SourceConfig:
    """Sources of repetition `repetition`: D_p on the whole tree, positive and negative behaviour sources."""
    return datasets.SourceConfig(depth=self.depth, family=family, param=self.param, perturbation="unaligned",
                                 seed=self.seed + repetition)

  def sources(self, family: str, repetition: int) -> np.ndarray:
    """Leaf distributions (3, n_leaves) of repetition `repetition`: D_p, positive and negative behaviour."""
    probs = self.source(family, repetition).probabilities()
    if self.behaviours == "conditional":
      mask = datasets.aligned_mask(self.depth)
      for row, keep in ((ALIGN, mask), (PERTURB, ~mask)):
        probs[row] = np.where(keep, probs[PRETRAIN], 0.0) / probs[PRETRAIN][keep].sum()
    return probs

  def second_stage(self, method: str) -> StageConfig:
    """The reverse stage's StageConfig for `method` ('sft' or 'dpo')."""
    return dataclasses.replace(self.second, objective=method, dpo_beta=self.dpo_beta)
