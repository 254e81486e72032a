"""Configuration of the Hooke's-law experiment (`elasticity simulate hooke`)."""

from __future__ import annotations

import dataclasses
import math

from experiments.hooke.plans import REGIMES, TRANSFORMER_PLAN, TrainingPlan
from toy_models import datasets, sources
from toy_models.model_config import MODEL_KINDS, ModelConfig


@dataclasses.dataclass(frozen=True, kw_only=True)
class HookeConfig:
  """Every knob of `elasticity simulate hooke`; the same config gives the same numbers.

  For each k in k_grid: |D_a| = align_mass responses, |D_p| = k * align_mass, and for each l in l_grid
  |D_t| = l * align_mass (l = 0, the unperturbed model, is always added). Each seed draws its own sources,
  samples and initial parameters.
  """

  k_grid: tuple[float, ...] = (10.0, 30.0, 100.0, 300.0, 1000.0)  # k = |D_p| / |D_a|.
  l_grid: tuple[float, ...] = (0.003, 0.01, 0.03, 0.1)  # l = |D_t| / |D_a| (> 0; 0 is added as the baseline).
  align_mass: float = 100.0  # |D_a| in responses.
  seeds: int = 3  # independent repetitions (seed, seed + 1, ...).
  seed: int = 0  # first seed.
  depth: int = 8  # token-tree depth (2**depth - 1 responses).
  family: str = "pareto"  # leaf family of the sources (toy_models.sources.ALL_FAMILIES).
  param: float | None = None  # the family's parameter (None: its default).
  perturbation: str = "unaligned"  # what D_t is (toy_models.datasets.PERTURBATIONS).
  sampling: str = "exact"  # 'exact' expected counts (the theory's setting) or 'sampled' finite datasets.
  models: tuple[str, ...] = MODEL_KINDS  # model kinds to train.
  regimes: tuple[str, ...] = REGIMES  # regimes to run.
  ngram_context: int = 3  # the n-gram model's context.
  transformer_width: int = 16  # the transformer's residual width.
  transformer_layers: int = 1  # the transformer's blocks.
  transformer_heads: int = 2  # the transformer's attention heads (must divide the width).
  dtype: str = "float64"  # parameter type of every model (metrics are float64 regardless).
  tabular_plan: TrainingPlan = TrainingPlan()  # the tabular model's stages (joint; pretrain, align, finetune).
  ngram_plan: TrainingPlan = TrainingPlan()  # the n-gram model's stages.
  transformer_plan: TrainingPlan = TRANSFORMER_PLAN  # the transformer's stages (minibatches, smaller rates).

  def __post_init__(self):
    for name, grid, low in (("k_grid", self.k_grid, 1.0), ("l_grid", self.l_grid, 0.0)):
      if not grid:
        raise ValueError(f"{name} is empty; allowed: one or more numbers")
      for value in grid:
        if not math.isfinite(value) or value < low or (name == "l_grid" and value == 0):
          raise ValueError(f"{name} value {value!r} is not allowed; allowed: finite numbers "
                           f"{'>= 1' if name == 'k_grid' else '> 0 (l = 0 is always added)'}")
      if len(set(grid)) != len(grid):
        raise ValueError(f"{name}={list(grid)} repeats a value; allowed: distinct values")
    if len(self.k_grid) < 2:
      raise ValueError(f"k_grid={list(self.k_grid)} has one value; allowed: two or more (the verdict is a slope on "
                       "log k)")
    datasets.check_mass("align_mass", self.align_mass)
    if self.align_mass <= 0:
      raise ValueError(f"align_mass={self.align_mass!r} is not allowed; allowed: > 0 responses")
    if self.sampling == "sampled" and min(self.l_grid) * self.align_mass < 0.5:
      raise ValueError(f"l={min(self.l_grid)} of align_mass={self.align_mass} is less than one sampled response; "
                       "allowed: l * align_mass >= 1 (or sampling='exact')")
    if self.seeds < 1 or self.seed < 0:
      raise ValueError(f"seeds={self.seeds}, seed={self.seed} are not allowed; allowed: seeds >= 1, seed >= 0")
    for name, values, allowed in (("models", self.models, MODEL_KINDS), ("regimes", self.regimes, REGIMES)):
      bad = [v for v in values if v not in allowed]
      if bad or not values:
        raise ValueError(f"{name}={list(values)} is not allowed; allowed: one or more of {', '.join(allowed)}")
    if self.family not in sources.ALL_FAMILIES:
      raise ValueError(f"unknown distribution family {self.family!r}; allowed: {', '.join(sources.ALL_FAMILIES)}")
    for model in self.models:  # validates sizes and the tree depth early, with the model's own messages
      self.model_config(model)
    self.source(0)
    if self.sampling not in datasets.SAMPLING:
      raise ValueError(f"unknown sampling {self.sampling!r}; allowed: {', '.join(datasets.SAMPLING)}")

  def model_config(self, kind: str) -> ModelConfig:
    """The ModelConfig of model `kind` in this experiment."""
    return ModelConfig(kind=kind, context=self.ngram_context, width=self.transformer_width,
                       layers=self.transformer_layers, heads=self.transformer_heads, dtype=self.dtype)

  def plan(self, kind: str) -> TrainingPlan:
    """The training plan of model `kind`."""
    return getattr(self, f"{kind}_plan")

  def source(self, repetition: int) -> datasets.SourceConfig:
    """The sources of repetition `repetition` (seed + repetition)."""
    return datasets.SourceConfig(depth=self.depth, family=self.family, param=self.param,
                                 perturbation=self.perturbation, seed=self.seed + repetition)

  def all_l(self) -> tuple[float, ...]:
    """(0,) + l_grid: the baseline and every perturbation size."""
    return (0.0,) + tuple(self.l_grid)

