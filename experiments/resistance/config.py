"""Configuration of the resistance experiment (`elasticity simulate resistance`, paper Table 1)."""

from __future__ import annotations

import dataclasses
import math

from theory.conventions import ALIGN, PRETRAIN
from toy_models import datasets, sources
from toy_models.model_config import ModelConfig, transformer_sizes
from toy_models.stage_config import StageConfig

OUTPUTS = ("exact", "sampled")
"""What a checkpoint's outputs are as a dataset: its exact response distribution, or `output_samples` responses
sampled from it (closer to the paper, where they are responses to held-out prompts)."""
PAIRS = ((0, 1), (1, 2), (0, 2))
"""Checkpoint pairs (earlier, later) as indices into (θ1, θ2, θ3): θ1-θ2, θ2-θ3, θ1-θ3, as in the paper."""


def _stage(**changes) -> StageConfig:
  """The transformer's sequential stage of toy_models.plans.TRANSFORMER_PLAN (Adam, lr 0.003, constant, minibatches
  of 50), with `changes`."""
  base = dict(epochs=None, steps=100, batch_size=50, learning_rate=0.003, schedule="constant", gradient="minibatch")
  return StageConfig(**{**base, **changes})


@dataclasses.dataclass(frozen=True, kw_only=True)
class ResistanceConfig:
  """Every knob of the resistance experiment; the same config gives the same numbers.

  Per seed and model size a transformer is pre-trained on `pretrain_mass` responses sampled from D_p (a
  `pretrain_family` source over the whole tree; the same data and model for every alignment dataset). Per
  alignment dataset (a source of that family on the aligned subtree, `align_mass` responses sampled) it is then
  SFT-ed for sft.steps steps; θ1, θ2, θ3 are the model after 1/3, 2/3 and all of them, on one run (the schedule is
  constant and a run's minibatches depend only on its key and the step). For each pair (θi, θj), i < j, forward
  alignment trains θi on θj's outputs and inverse alignment θj on θi's, both for transfer.steps steps at
  transfer.learning_rate with the same minibatch stream.
  """

  datasets: tuple[str, ...] = ("pareto", "zipf", "dirichlet")  # alignment datasets, as source families (Table 1: 3).
  model_sizes: tuple[tuple[int, int], ...] = ((8, 1), (16, 1), (24, 1))  # transformer (width, layers) pairs.
  heads: int = 2  # attention heads (must divide every width).
  seeds: int = 5  # independent repetitions (seed, seed + 1, ...): sources, samples, initial parameters, minibatches.
  seed: int = 0  # first seed.
  depth: int = 8  # token-tree depth (2**depth - 1 responses, every one enumerated through the model).
  pretrain_family: str = "pareto"  # family of D_p's source (toy_models.sources.ALL_FAMILIES).
  pretrain_mass: float = 5000.0  # responses of pre-training data (sampled from D_p).
  align_mass: float = 2000.0  # responses of each alignment dataset (sampled from its source).
  outputs: str = "exact"  # one of OUTPUTS.
  output_samples: int = 2000  # responses per checkpoint dataset when outputs = 'sampled'.
  dtype: str = "float64"  # parameter type (metrics are float64 regardless).
  pretrain: StageConfig = _stage(epochs=1.0)  # pre-training: one epoch over pretrain_mass (100 steps of 50).
  sft: StageConfig = _stage(steps=60)  # the SFT run θ1..θ3 lie on: 60 steps of 50 = 1.5 epochs of align_mass.
  transfer: StageConfig = _stage()  # forward and inverse alignment: the same 100 steps of 50 for both.

  def __post_init__(self):
    for name, values in (("datasets", self.datasets), ("pretrain_family", (self.pretrain_family,))):
      if not values or len(set(values)) != len(values) or any(v not in sources.ALL_FAMILIES for v in values):
        shown = list(values) if name == "datasets" else values[0]
        raise ValueError(f"{name}={shown!r} is not allowed; allowed: {'distinct ' if name == 'datasets' else ''}"
                         f"names among {', '.join(sources.ALL_FAMILIES)}")
    if self.outputs not in OUTPUTS:
      raise ValueError(f"outputs={self.outputs!r} is not allowed; allowed: {', '.join(OUTPUTS)}")
    transformer_sizes(self.model_sizes, heads=self.heads, dtype=self.dtype)  # the model's own one-line messages
    for name in ("seeds", "output_samples"):
      value = getattr(self, name)
      if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}={value!r} is not allowed; allowed: an integer >= 1")
    if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
      raise ValueError(f"seed={self.seed!r} is not allowed; allowed: an integer >= 0")
    for name in ("pretrain_mass", "align_mass"):
      value = getattr(self, name)
      if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 1:
        raise ValueError(f"{name}={value!r} is not allowed; allowed: a finite number of responses >= 1")
    self.pretrain.steps_for(self.pretrain_mass)  # refuses budgets above pretrain.max_steps
    if self.sft.epochs is not None or self.sft.steps < 3 or self.sft.schedule != "constant":
      raise ValueError(f"sft (epochs={self.sft.epochs}, steps={self.sft.steps}, schedule={self.sft.schedule!r}) is "
                       "not allowed; allowed: epochs none, steps >= 3 and schedule 'constant' (so that θ1, θ2, θ3 "
                       "lie on one run)")
    if self.transfer.epochs is not None or self.transfer.steps < 1:
      raise ValueError(f"transfer (epochs={self.transfer.epochs}, steps={self.transfer.steps}) is not allowed; "
                       "allowed: epochs none and steps >= 1 (forward and inverse share that budget)")
    self.source(self.datasets[0], 0)  # validates depth with the sources' own message

  def model_config(self, size: tuple[int, int]) -> ModelConfig:
    """The transformer of one (width, layers) size."""
    return transformer_sizes((size,), heads=self.heads, dtype=self.dtype)[0]

  def source(self, dataset: str, repetition: int):
    """(D_p, alignment source) leaf distributions of one dataset and repetition, each of shape (n_leaves,).

    D_p depends on the repetition only; the alignment source lives on the aligned subtree (prefix token 0).
    """
    seed = self.seed + repetition
    pretrain = datasets.SourceConfig(depth=self.depth, family=self.pretrain_family, seed=seed).probabilities()
    align = datasets.SourceConfig(depth=self.depth, family=dataset, seed=seed).probabilities()
    return pretrain[PRETRAIN], align[ALIGN]

  def checkpoint_steps(self) -> tuple[int, int, int]:
    """SFT steps of θ1, θ2, θ3."""
    return (round(self.sft.steps / 3), round(2 * self.sft.steps / 3), self.sft.steps)
