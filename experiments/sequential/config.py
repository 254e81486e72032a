"""Configuration of the sequential study (`elasticity simulate sequential`): grids, conditions, per-model budgets."""

from __future__ import annotations

import dataclasses
import math

from toy_models import datasets, sources
from toy_models.model_config import MODEL_KINDS, ModelConfig
from toy_models.stage_config import GRADIENTS, StageConfig


@dataclasses.dataclass(frozen=True, kw_only=True)
class Condition:
  """How one sequential pipeline (pre-train, align, fine-tune) trains: optimiser, loss, state, alignment budget."""

  optimizer: str  # 'adam' or 'sgd' in every stage.
  loss: str  # 'mean': token-mean NLL (nats per token), steps prop. to examples; 'sum': summed NLL, fixed steps.
  state: str  # 'reset': a fresh optimiser state each stage; 'carried': Adam's state carried across the stages.
  alignment: str  # 'converged': the long alignment budget; 'short': the short one.


CONDITIONS: dict[str, Condition] = {
    "adam_mean_reset_converged": Condition(optimizer="adam", loss="mean", state="reset", alignment="converged"),
    "adam_mean_carried_converged": Condition(optimizer="adam", loss="mean", state="carried", alignment="converged"),
    "adam_mean_reset_short": Condition(optimizer="adam", loss="mean", state="reset", alignment="short"),
    "sgd_mean_converged": Condition(optimizer="sgd", loss="mean", state="reset", alignment="converged"),
    "sgd_mean_short": Condition(optimizer="sgd", loss="mean", state="reset", alignment="short"),
    "sgd_sum_converged": Condition(optimizer="sgd", loss="sum", state="reset", alignment="converged"),
    "sgd_sum_short": Condition(optimizer="sgd", loss="sum", state="reset", alignment="short"),
}
"""The pre-registered conditions of the sequential arm (README.md explains each)."""

CONFIRMATORY_CONDITIONS = ("adam_mean_reset_converged", "sgd_mean_converged", "sgd_sum_converged")
"""Conditions the verdicts read: k-scaling in adam_mean_reset_converged and sgd_sum_converged, replay in the Adam
condition (sgd_mean_converged is the second replay condition, descriptive)."""
KSCALING_CONDITIONS = ("adam_mean_reset_converged", "sgd_sum_converged")
REPLAY_VERDICT_CONDITION = "adam_mean_reset_converged"
PRETRAIN_GROUPS = ("adam_mean", "sgd_mean", "sgd_sum")
"""Conditions with the same optimiser and loss share one pre-training (it does not depend on the later stages)."""


def pretrain_group(condition: Condition) -> str:
  """The pre-training a condition starts from (one of PRETRAIN_GROUPS)."""
  return f"{condition.optimizer}_{condition.loss}"


@dataclasses.dataclass(frozen=True, kw_only=True)
class ModelPlan:
  """Learning rates and budgets of one model kind in every arm (constant learning rates throughout)."""

  adam_learning_rate: float = 0.05  # Adam's step size in every stage of the Adam conditions.
  sgd_learning_rate: float = 3.0  # SGD's step size on the token-mean loss (nats per token) in the sgd_mean stages.
  sum_pretrain_rate: float = 3.0  # sgd_sum: eta * T_p(k), T_p = pre-training tokens: eta = this / T_p in all stages.
  gradient: str = "expected"  # pre-training and alignment gradient of the mean conditions ('minibatch' draws).
  finetune_gradient: str = "expected"  # gradient of every fine-tuning stage (plain and replay), all conditions.
  pretrain_epochs: float = 1.0  # mean conditions: pre-training steps = ceil(epochs * n_p / batch).
  pretrain_batch_size: int = 100  # responses per pre-training step (the minibatch under 'minibatch').
  align_epochs_converged: float = 100.0  # mean conditions, converged alignment: ceil(epochs * n_a / batch) steps.
  align_epochs_short: float = 1.0  # mean conditions, short alignment.
  align_batch_size: int = 50  # responses per alignment step.
  finetune_epochs: float = 100.0  # mean conditions: fine-tuning steps = ceil(epochs * n / batch), n its examples.
  finetune_batch_size: int = 10  # responses per fine-tuning step.
  sum_pretrain_steps: int = 300  # sgd_sum: fixed pre-training steps (every k).
  sum_align_steps_converged: int = 300  # sgd_sum_converged: fixed alignment steps.
  sum_align_steps_short: int = 3  # sgd_sum_short: fixed alignment steps.
  sum_finetune_steps: int = 10  # sgd_sum: fixed fine-tuning steps.
  replay_max_steps: int = 100  # replay: fine-tuning steps are capped at this (steps grow with rho * (n_p + n_a)).
  joint_learning_rate: float = 0.05  # joint arm: full-batch Adam step size before the Newton phase.
  joint_stops: tuple[int, ...] = (30, 100, 300, 1000)  # joint arm: Adam steps at which the degradation is measured.
  newton_steps: int = 60  # joint arm: converge_joint's Newton-CG iterations at most (after the last stop).
  cg_iterations: int = 1000  # joint arm: CG iterations per Newton step at most.
  solver_iterations: int = 2000  # joint arm: Krylov iterations of the implicit derivative at the converged point.
  degradation_iterations: int = 2000  # joint arm: Krylov iterations of the implicit derivative at each stop.

  def __post_init__(self):
    for name in ("adam_learning_rate", "sgd_learning_rate", "sum_pretrain_rate", "joint_learning_rate"):
      value = getattr(self, name)
      if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name}={value!r} is not allowed; allowed: a finite number > 0")
    for name in ("pretrain_epochs", "align_epochs_converged", "align_epochs_short", "finetune_epochs"):
      value = getattr(self, name)
      if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name}={value!r} is not allowed; allowed: a finite number of epochs > 0")
    for name in ("pretrain_batch_size", "align_batch_size", "finetune_batch_size", "sum_pretrain_steps",
                 "sum_align_steps_converged", "sum_align_steps_short", "sum_finetune_steps", "replay_max_steps",
                 "solver_iterations", "degradation_iterations"):
      value = getattr(self, name)
      if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}={value!r} is not allowed; allowed: an integer >= 1")
    for name in ("newton_steps", "cg_iterations"):
      value = getattr(self, name)
      if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name}={value!r} is not allowed; allowed: an integer >= 0")
    for name in ("gradient", "finetune_gradient"):
      if getattr(self, name) not in GRADIENTS:
        raise ValueError(f"{name}={getattr(self, name)!r} is not allowed; allowed: {', '.join(GRADIENTS)}")
    stops = self.joint_stops
    if not stops or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in stops) or \
        list(stops) != sorted(set(stops)):
      raise ValueError(f"joint_stops={list(stops)} is not allowed; allowed: increasing integers >= 1")

  def stage(self, optimizer: str, gradient: str, batch_size: int) -> StageConfig:
    """A constant-rate stage (rates are passed per run); the batch size only matters for minibatch gradients."""
    return StageConfig(steps=1, learning_rate=1.0, schedule="constant", optimizer=optimizer, gradient=gradient,
                       batch_size=batch_size if gradient == "minibatch" else 1)


TRANSFORMER_PLAN = ModelPlan(adam_learning_rate=0.01, sgd_learning_rate=0.5, sum_pretrain_rate=0.5,
                             gradient="minibatch", joint_learning_rate=0.01, newton_steps=30, cg_iterations=200,
                             solver_iterations=1000, degradation_iterations=150)
"""The transformers' plan: smaller rates (SGD diverged at 3 in a pilot at k = 100, Adam was slower at 0.003 than at
0.01), minibatches in pre-training and alignment, and smaller Krylov budgets (each Hessian-vector product costs
about a millisecond on a CPU)."""


def _positive_grid(name: str, grid, low: float, *, zero: bool = False) -> None:
  if not grid:
    raise ValueError(f"{name} is empty; allowed: one or more numbers")
  for value in grid:
    if not math.isfinite(value) or value < low or (value == low and not zero):
      raise ValueError(f"{name} value {value!r} is not allowed; allowed: finite numbers "
                       f"{'>=' if zero else '>'} {low:g}")
  if len(set(grid)) != len(grid):
    raise ValueError(f"{name}={list(grid)} repeats a value; allowed: distinct values")


@dataclasses.dataclass(frozen=True, kw_only=True)
class SequentialConfig:
  """Every knob of `elasticity simulate sequential`; the same config gives the same numbers.

  For each k in k_grid: |D_a| = align_mass responses, |D_p| = k * align_mass, |D_t| = l * align_mass on the
  unaligned subtree, all as exact expected counts (|D_i| P_i). Each seed draws its own sources and initial
  parameters (shared by every arm and k of that seed: the slopes over k are paired within a seed).
  """

  k_grid: tuple[float, ...] = (10.0, 100.0, 1000.0)  # k = |D_p| / |D_a|, one unit per model, arm and k.
  l: float = 0.01  # l = |D_t| / |D_a|, the fine-tuning data's size.
  align_mass: float = 100.0  # |D_a| in responses.
  seeds: int = 10  # independent repetitions (seed, seed + 1, ...).
  seed: int = 0  # first seed.
  depth: int = 6  # token-tree depth (2**depth - 1 responses).
  family: str = "pareto"  # leaf family of the sources (toy_models.sources.ALL_FAMILIES).
  param: float | None = None  # the family's parameter (None: its default).
  perturbation: str = "unaligned"  # what D_t is (toy_models.datasets.PERTURBATIONS).
  models: tuple[str, ...] = MODEL_KINDS  # model kinds; each transformer width is its own model.
  arms: tuple[str, ...] = ("joint", "sequential")  # 'joint' (implicit, degradation), 'sequential' (the rest).
  conditions: tuple[str, ...] = tuple(CONDITIONS)  # sequential conditions (names of CONDITIONS).
  replay_conditions: tuple[str, ...] = ("adam_mean_reset_converged", "sgd_mean_converged")  # with replay runs.
  replay_fractions: tuple[float, ...] = (0.0, 0.01, 0.1, 1.0)  # rho: replayed share of D_p and D_a.
  ngram_context: int = 2  # the n-gram model's context.
  transformer_widths: tuple[int, ...] = (8, 16)  # residual widths of the transformers (one model each).
  transformer_layers: int = 1  # the transformers' blocks.
  transformer_heads: int = 2  # the transformers' attention heads (must divide every width).
  bootstrap_resamples: int = 2000  # resamples of seeds for the CI of the theory's correlation.
  tabular_plan: ModelPlan = ModelPlan()  # the tabular model's rates and budgets.
  ngram_plan: ModelPlan = ModelPlan()  # the n-gram model's rates and budgets.
  transformer_plan: ModelPlan = TRANSFORMER_PLAN  # every transformer's rates and budgets.

  def __post_init__(self):
    _positive_grid("k_grid", self.k_grid, 1.0, zero=True)
    if len(self.k_grid) < 2:
      raise ValueError(f"k_grid={list(self.k_grid)} has one value; allowed: two or more (the verdicts are slopes on "
                       "log k)")
    if not math.isfinite(self.l) or self.l <= 0:
      raise ValueError(f"l={self.l!r} is not allowed; allowed: a finite number > 0")
    datasets.check_mass("align_mass", self.align_mass)
    if self.align_mass <= 0:
      raise ValueError(f"align_mass={self.align_mass!r} is not allowed; allowed: > 0 responses")
    if isinstance(self.seeds, bool) or self.seeds < 2 or self.seed < 0:
      raise ValueError(f"seeds={self.seeds}, seed={self.seed} are not allowed; allowed: seeds >= 2 (the verdicts "
                       "are over seeds), seed >= 0")
    for name, values, allowed in (("models", self.models, MODEL_KINDS), ("arms", self.arms, ("joint", "sequential")),
                                  ("conditions", self.conditions, tuple(CONDITIONS)),
                                  ("replay_conditions", self.replay_conditions, self.conditions)):
      bad = [v for v in values if v not in allowed]
      if bad or len(set(values)) != len(values) or (not values and name != "replay_conditions"):
        raise ValueError(f"{name}={list(values)} is not allowed; allowed: distinct values among "
                         f"{', '.join(allowed) or 'none'}")
    _positive_grid("replay_fractions", self.replay_fractions, 0.0, zero=True)
    if self.replay_conditions and 0.0 not in self.replay_fractions:
      raise ValueError(f"replay_fractions={list(self.replay_fractions)} lacks 0; allowed: a grid with 0 (the plain "
                       "sequential run every rho is compared with)")
    if not self.transformer_widths or len(set(self.transformer_widths)) != len(self.transformer_widths):
      raise ValueError(f"transformer_widths={list(self.transformer_widths)} is not allowed; allowed: distinct widths")
    if isinstance(self.bootstrap_resamples, bool) or self.bootstrap_resamples < 100:
      raise ValueError(f"bootstrap_resamples={self.bootstrap_resamples!r} is not allowed; allowed: an integer >= 100")
    if self.family not in sources.ALL_FAMILIES:
      raise ValueError(f"unknown distribution family {self.family!r}; allowed: {', '.join(sources.ALL_FAMILIES)}")
    for name in self.model_names():  # validates sizes and the tree depth early, with the model's own messages
      self.model_config(name)
    self.source(0)

  def model_names(self) -> list[str]:
    """Every model of the study: 'tabular', 'ngram', 'transformer_w8', ... (transformers once per width)."""
    names = []
    for kind in self.models:
      names += [f"transformer_w{w}" for w in self.transformer_widths] if kind == "transformer" else [kind]
    return names

  def model_config(self, name: str) -> ModelConfig:
    """The ModelConfig of model `name` (one of model_names()); float64 throughout."""
    if name.startswith("transformer_w"):
      return ModelConfig(kind="transformer", width=int(name.removeprefix("transformer_w")),
                         layers=self.transformer_layers, heads=self.transformer_heads, dtype="float64")
    return ModelConfig(kind=name, context=self.ngram_context, dtype="float64")

  def plan(self, name: str) -> ModelPlan:
    """The plan of model `name`."""
    return self.transformer_plan if name.startswith("transformer") else getattr(self, f"{name}_plan")

  def source(self, repetition: int) -> datasets.SourceConfig:
    """The sources of repetition `repetition` (seed + repetition)."""
    return datasets.SourceConfig(depth=self.depth, family=self.family, param=self.param,
                                 perturbation=self.perturbation, seed=self.seed + repetition)
