"""Configuration of the resistance experiment (`elasticity simulate resistance`, paper Table 1)."""

from __future__ import annotations

import dataclasses

from toy_models import datasets, sources
from toy_models.model_config import ModelConfig, transformer_sizes
from toy_models.stage_config import StageConfig

OUTPUTS = ("exact", "sampled")
"""What a checkpoint's outputs are as a dataset: its exact response distribution, or `output_samples` responses
sampled from it (the paper's setting: responses to held-out prompts)."""
PAIRS = ((0, 1), (1, 2), (0, 2))
"""Checkpoint pairs (earlier, later) as indices into (θ1, θ2, θ3): θ1-θ2, θ2-θ3, θ1-θ3, as in the paper."""


def _stage(**changes) -> StageConfig:
  base = dict(epochs=None, steps=100, batch_size=50, learning_rate=0.003, schedule="constant", gradient="minibatch")
  return StageConfig(**{**base, **changes})


@dataclasses.dataclass(frozen=True, kw_only=True)
class ResistanceConfig:
  """Every knob of the resistance experiment; the same config gives the same numbers.

  Per seed, dataset and model size: a transformer is pre-trained on `pretrain_mass` responses of D_p (a
  `pretrain_family` source over the whole tree), then SFT-ed on `align_mass` responses of the alignment dataset (a
  source of that family on the aligned subtree) for sft.steps steps; θ1, θ2, θ3 are the model after 1/3, 2/3 and all
  of them (the same run: the schedule is constant and minibatches depend only on the run's key and the step).
  For each pair (θi, θj), i < j, forward alignment trains θi on θj's outputs and inverse alignment θj on θi's, both
  for transfer.steps steps with the same minibatch stream.
  """

  datasets: tuple[str, ...] = ("pareto", "zipf", "dirichlet")  # alignment datasets: source families (3 in Table 1).
  model_sizes: tuple[tuple[int, int], ...] = ((8, 1), (16, 1), (24, 1))  # transformer (width, layers).
  heads: int = 2  # attention heads (must divide every width).
  seeds: int = 5  # independent repetitions (seed, seed + 1, ...).
  seed: int = 0  # first seed.
  depth: int = 8  # token-tree depth (2**depth - 1 responses).
  pretrain_family: str = "pareto"  # family of D_p.
  pretrain_mass: float = 5000.0  # responses of pre-training data (sampled from D_p).
  align_mass: float = 2000.0  # responses of each alignment dataset (sampled).
  outputs: str = "exact"  # one of OUTPUTS.
  output_samples: int = 2000  # responses per checkpoint dataset when outputs = 'sampled'.
  dtype: str = "float64"  # parameter type (metrics are float64 regardless).
  pretrain: StageConfig = _stage(epochs=1.0)  # pre-training: one epoch over pretrain_mass.
  sft: StageConfig = _stage(steps=60)  # the SFT run θ1..θ3 lie on (constant schedule required).
  transfer: StageConfig = _stage()  # forward and inverse alignment: the same budget for both.

  def __post_init__(self):
    for name, values, allowed in (("datasets", self.datasets, sources.ALL_FAMILIES),
                                  ("pretrain_family", (self.pretrain_family,), sources.ALL_FAMILIES),
                                  ("outputs", (self.outputs,), OUTPUTS)):
      bad = [v for v in values if v not in allowed]
      if bad or not values or len(set(values)) != len(values):
        raise ValueError(f"{name}={list(values) if name == 'datasets' else values[0]!r} is not allowed; allowed: "
                         f"{'distinct values of ' if name == 'datasets' else ''}{', '.join(allowed)}")
    transformer_sizes(self.model_sizes, heads=self.heads, dtype=self.dtype)
    for name in ("seeds", "output_samples"):
      value = getattr(self, name)
      if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}={value!r} is not allowed; allowed: an integer >= 1")
    if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
      raise ValueError(f"seed={self.seed!r} is not allowed; allowed: an integer >= 0")
    for name in ("pretrain_mass", "align_mass"):
      if datasets.check_mass(name, getattr(self, name)) < 1:
        raise ValueError(f"{name}={getattr(self, name)!r} is not allowed; allowed: >= 1 response")
    self.pretrain.steps_for(self.pretrain_mass)
    if self.sft.epochs is not None or self.sft.steps < 3 or self.sft.schedule != "constant":
      raise ValueError(f"sft (epochs={self.sft.epochs}, steps={self.sft.steps}, schedule={self.sft.schedule!r}) is "
                       "not allowed; allowed: a fixed number of steps >= 3 with schedule 'constant' (so that "
                       "θ1, θ2, θ3 lie on one run)")
    if self.transfer.epochs is not None or self.transfer.steps < 1:
      raise ValueError(f"transfer steps={self.transfer.steps}, epochs={self.transfer.epochs} is not allowed; "
                       "allowed: a fixed number of steps >= 1 (forward and inverse share it)")
    self.source(self.datasets[0], 0)

  def model_config(self, size: tuple[int, int]) -> ModelConfig:
    """The transformer of one (width, layers) size."""
    return transformer_sizes((size,), heads=self.heads, dtype=self.dtype)[0]

  def source(self, dataset: str, repetition: int):
    """(D_p, alignment source) leaf distributions of one dataset and repetition, each of shape (n_leaves,)."""
    seed = self.seed + repetition
    pretrain = datasets.SourceConfig(depth=self.depth, family=self.pretrain_family, seed=seed).probabilities()
    align = datasets.SourceConfig(depth=self.depth, family=dataset, seed=seed).probabilities()
    return pretrain[datasets.PRETRAIN], align[datasets.ALIGN]

  def checkpoint_steps(self) -> tuple[int, int, int]:
    """SFT steps of θ1, θ2, θ3."""
    return (round(self.sft.steps / 3), round(2 * self.sft.steps / 3), self.sft.steps)
