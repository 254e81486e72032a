"""Configuration of one training stage: objective, budget, optimiser, learning-rate schedule, gradient estimate."""

from __future__ import annotations

import dataclasses
import math
import numbers

OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("constant", "cosine", "warmup_cosine")
GRADIENTS = ("expected", "minibatch")
"""'expected': each step uses the exact expected gradient over the stage's data (every response weighted by its
count: deterministic full-batch SGD); 'minibatch': each step draws `batch_size` responses from the data."""
OBJECTIVES = ("sft", "dpo")
"""'sft': token-level negative log-likelihood of the data (supervised fine-tuning); 'dpo': Direct Preference
Optimisation on pairs of a chosen and a rejected response against a fixed reference model (Rafailov et al.,
NeurIPS 2023), with `batch_size` pairs per step under 'minibatch'."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class StageConfig:
  """One stage of training (e.g. pre-train, align, fine-tune, or the whole joint run)."""

  steps: int = 1000  # optimiser steps, used when `epochs` is None.
  epochs: float | None = None  # if set: steps = ceil(epochs * |data| / batch_size), so mass buys steps.
  learning_rate: float = 0.05  # peak learning rate.
  schedule: str = "cosine"  # one of SCHEDULES (cosine decays to 0 at the end of the stage).
  warmup_fraction: float = 0.05  # share of the stage spent warming up (warmup_cosine only).
  optimizer: str = "adam"  # one of OPTIMIZERS.
  batch_size: int = 32  # responses (DPO: pairs) per step: the minibatch, and the unit turning epochs into steps.
  gradient: str = "expected"  # one of GRADIENTS.
  objective: str = "sft"  # one of OBJECTIVES.
  dpo_beta: float = 0.1  # DPO's inverse temperature beta (> 0): strength of the implicit KL pull to the reference.
  max_steps: int = 1_000_000  # refuse budgets above this (a typo in a mass or epochs would run for days).

  def __post_init__(self):
    for name, allowed in (("optimizer", OPTIMIZERS), ("schedule", SCHEDULES), ("gradient", GRADIENTS),
                          ("objective", OBJECTIVES)):
      if getattr(self, name) not in allowed:
        raise ValueError(f"unknown {name} {getattr(self, name)!r}; allowed: {', '.join(allowed)}")
    if isinstance(self.steps, bool) or not isinstance(self.steps, int) or not 0 <= self.steps <= self.max_steps:
      raise ValueError(f"steps={self.steps!r} is not allowed; allowed: an integer 0..{self.max_steps}")
    if self.epochs is not None and (not math.isfinite(self.epochs) or self.epochs < 0):
      raise ValueError(f"epochs={self.epochs!r} is not allowed; allowed: a finite number >= 0 or none")
    if not math.isfinite(self.learning_rate) or self.learning_rate <= 0:
      raise ValueError(f"learning_rate={self.learning_rate!r} is not allowed; allowed: a finite number > 0")
    if not 0 <= self.warmup_fraction < 1:
      raise ValueError(f"warmup_fraction={self.warmup_fraction!r} is not allowed; allowed: 0 <= value < 1")
    if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
      raise ValueError(f"batch_size={self.batch_size!r} is not allowed; allowed: an integer >= 1")
    beta = self.dpo_beta
    if isinstance(beta, bool) or not isinstance(beta, numbers.Real) or not math.isfinite(beta) or beta <= 0:
      raise ValueError(f"dpo_beta={self.dpo_beta!r} is not allowed; allowed: a finite number > 0")

  def steps_for(self, mass: float) -> int:
    """Steps this stage takes on data of `mass` responses (the fixed `steps` when epochs is None)."""
    if self.epochs is None:
      return self.steps
    steps = math.ceil(self.epochs * float(mass) / self.batch_size - 1e-9)
    if steps > self.max_steps:
      raise ValueError(f"epochs={self.epochs} on {mass:g} responses at batch_size={self.batch_size} is {steps} steps; "
                       f"allowed: <= max_steps={self.max_steps}")
    return max(steps, 0)
