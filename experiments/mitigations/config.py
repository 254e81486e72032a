"""Configuration of the mitigations testbed (`elasticity simulate mitigations`): defences, strengths, attacks."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from experiments.rebound.config import MAX_EXAMPLES, stage
from theory import token_tree
from theory.conventions import ALIGN, ALIGNED_PREFIX, PERTURB, PRETRAIN, UNALIGNED_PREFIX
from toy_models import corrector, datasets, sources
from toy_models.defences import LisaSchedule
from toy_models.model_config import ModelConfig, transformer_sizes
from toy_models.stage_config import StageConfig

BASELINE = "none"
"""The undefended pipeline: pre-train, align by SFT, attack."""
ATTACK_STAGE = ("replay_alignment", "replay_pretraining", "kl_anchor_response", "kl_anchor_token",
                "tokenwise_constrained", "lisa")
"""Defences that change the attack stage's objective (the provider fine-tunes the user's data under them)."""
ALIGNMENT_STAGE = ("booster", "vaccine")
"""Defences that change the alignment stage's objective (the attack is plain fine-tuning of the model they leave)."""
CORRECTOR = "corrector"
"""Aligner: a frozen base (the pre-trained model) behind a tabular residual corrector trained on pairs."""
DEFENCES = ATTACK_STAGE + ALIGNMENT_STAGE + (CORRECTOR,)
MODEL_DEFENCES = ATTACK_STAGE + ALIGNMENT_STAGE
"""The defences of one transformer (the corrector defends a composed system and is analysed apart where it must)."""
DPO_DEFENCES = ("kl_anchor_response", "kl_anchor_token", "lisa", "booster", "vaccine", CORRECTOR)
"""Defences that are also attacked by DPO. Replay mixes SFT data into the objective and the token-wise constraint is
an SFT objective: neither is defined for preference pairs, so they meet the SFT attacks only."""
ZERO_IS_BASELINE = ("replay_alignment", "replay_pretraining", "kl_anchor_response", "kl_anchor_token",
                    "tokenwise_constrained", "booster", "vaccine")
"""Defences whose strength 0 is the undefended pipeline exactly (Lisa at 0 still alternates alignment steps; the
corrector has no strength 0)."""
STRENGTH_MEANING = {
    BASELINE: "none",
    "replay_alignment": "rho, share of the attack stage's data replayed from the alignment data",
    "replay_pretraining": "rho, share of the attack stage's data replayed from the pre-training data",
    "kl_anchor_response": "beta, weight of KL(q || q_aligned) in nats per response",
    "kl_anchor_token": "beta, weight of the per-token KL to the aligned model along the data, nats per token",
    "tokenwise_constrained": "s, multiplier of Qi et al.'s per-position betas (0.5, 2, 2, 2, 2, 0.1, ...)",
    "lisa": "rho, proximal strength of Lisa's bi-state optimisation",
    "booster": "lambda, weight of Booster's simulated-attack penalty",
    "vaccine": "rho, norm of Vaccine's embedding perturbation",
    CORRECTOR: "W/C, copy pairs per correction pair (larger = weaker corrector)",
}


@dataclasses.dataclass(frozen=True, kw_only=True)
class Strengths:
  """A defence's strengths: the grid of the safety-utility frontier and the default of its confirmatory test."""

  default: float = 0.0  # the strength of the confirmatory test, the breaking-point attacks and DPO (in the grid).
  grid: tuple[float, ...] = (0.0,)  # strengths of the frontier, increasing (the default is one of them).


@dataclasses.dataclass(frozen=True, kw_only=True)
class MitigationsConfig:
  """Every knob of the mitigations testbed; the same config gives the same numbers.

  Per seed: a transformer is pre-trained on pretrain_size responses of D_p, aligned on align_size positives (D_p on
  the aligned subtree), then attacked by fine-tuning on n2 negatives (D_p on the unaligned subtree) for each n2 in
  attack_sizes. Each defence is the same pipeline with one change, at each strength of its grid; at its default
  strength it also meets the stronger attacks (learning rate x breaking_lr_factors, breaking_epochs epochs) and,
  where defined, a DPO attack. Seeds share everything across defences: sources, samples, initial and pre-trained
  parameters, the attack's examples and minibatch keys (paired comparisons).
  """

  attack_sizes: tuple[int, ...] = (0, 10, 20, 50, 100, 200, 500, 1000, 2000)  # n2, attack examples (0 first).
  align_size: int = 1000  # n1, positive examples of the alignment stage.
  pretrain_size: int = 20000  # responses of pre-training data (D_p).
  seeds: int = 10  # independent repetitions (seed, seed + 1, ...): sources, samples, initial parameters, keys.
  seed: int = 0  # first seed.
  depth: int = 6  # token-tree depth (2**depth - 1 responses).
  family: str = "pareto"  # leaf family of D_p (toy_models.sources.ALL_FAMILIES).
  width: int = 8  # the transformer's residual width.
  layers: int = 1  # the transformer's blocks.
  heads: int = 2  # the transformer's attention heads (must divide the width).
  dtype: str = "float64"  # parameter type (metrics are float64 regardless).
  defences: tuple[str, ...] = DEFENCES  # defences to run (the undefended baseline always runs).
  replay_alignment: Strengths = Strengths(default=0.25, grid=(0.0, 0.1, 0.25, 0.5))  # rho in [0, 1).
  replay_pretraining: Strengths = Strengths(default=0.25, grid=(0.0, 0.1, 0.25, 0.5))  # rho in [0, 1).
  kl_anchor_response: Strengths = Strengths(default=1.0, grid=(0.0, 0.1, 1.0, 10.0))  # beta >= 0.
  kl_anchor_token: Strengths = Strengths(default=1.0, grid=(0.0, 0.1, 1.0, 10.0))  # beta >= 0.
  tokenwise_constrained: Strengths = Strengths(default=1.0, grid=(0.0, 0.5, 1.0, 4.0))  # s >= 0 (x Qi's betas).
  lisa: Strengths = Strengths(default=1.0, grid=(0.1, 1.0, 10.0))  # proximal rho >= 0.
  booster: Strengths = Strengths(default=1.0, grid=(0.0, 0.3, 1.0, 5.0))  # lambda >= 0.
  vaccine: Strengths = Strengths(default=2.0, grid=(0.0, 0.5, 2.0, 8.0))  # perturbation norm rho >= 0.
  corrector: Strengths = Strengths(default=1.0, grid=(1.0, 3.0, 10.0, 30.0))  # W / C > 0 (also the k test's grid).
  lisa_alignment_steps: int = 10  # Lisa's K1: alignment steps per cycle (before the user-data steps).
  lisa_finetune_steps: int = 90  # Lisa's K2: user-data (attack) steps per cycle (>= 1).
  booster_alpha: float = 0.1  # Booster's simulated attack step (parameter norm).
  booster_harmful_size: int = 1000  # negatives the defender holds for Booster's simulated attack (own sample).
  corrector_corrections: int = 1000  # C, correction pairs (unaligned x -> its aligned mirror) of the corrector.
  corrector_init_scale: float = 0.02  # standard deviation of the corrector's initial logits.
  dpo_defences: tuple[str, ...] = DPO_DEFENCES  # defences also attacked by DPO (a subset of DPO_DEFENCES).
  breaking_lr_factors: tuple[float, ...] = (3.0, 10.0)  # stronger attacks: learning rate x these (x1 is the main).
  breaking_epochs: float = 3.0  # a longer attack: this many epochs over the attack data (learning rate x1).
  dpo_beta: float = 0.1  # the DPO attack's beta (pairs: chosen negative, rejected positive; reference = start).
  smallest_effect_log2: float = 0.1  # smallest log2 half-undo gain of interest (0.1: 7 percent), also breaking's bar.
  pretrain: StageConfig = stage()  # pre-training: 1 epoch over pretrain_size at batch 50 (training.train_batch).
  align: StageConfig = stage()  # alignment (and Booster / Vaccine): 1 epoch over align_size at batch 50.
  attack: StageConfig = stage(batch_size=10)  # the attack: 1 epoch over n2 examples (DPO: pairs) at batch 10.
  corrector_stage: StageConfig = stage(batch_size=10, learning_rate=0.05)  # corrector: copy, then correction pairs.
  corrector_attack: StageConfig = stage(batch_size=10, learning_rate=0.05)  # the attack on the corrector (copies).

  def __post_init__(self):
    sizes = self.attack_sizes
    if not sizes or any(isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= MAX_EXAMPLES for v in sizes):
      raise ValueError(f"attack_sizes={list(sizes)} is not allowed; allowed: integers 0..{MAX_EXAMPLES}")
    if list(sizes) != sorted(set(sizes)) or sizes[0] != 0 or len(sizes) < 3:
      raise ValueError(f"attack_sizes={list(sizes)} is not allowed; allowed: 0 first, then at least two more sizes, "
                       "distinct and increasing")
    for name in ("align_size", "pretrain_size", "booster_harmful_size", "corrector_corrections", "seeds",
                 "lisa_finetune_steps"):
      value = getattr(self, name)
      if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_EXAMPLES:
        raise ValueError(f"{name}={value!r} is not allowed; allowed: an integer 1..{MAX_EXAMPLES}")
    for name in ("seed", "lisa_alignment_steps"):
      value = getattr(self, name)
      if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name}={value!r} is not allowed; allowed: an integer >= 0")
    if self.family not in sources.ALL_FAMILIES:
      raise ValueError(f"unknown distribution family {self.family!r}; allowed: {', '.join(sources.ALL_FAMILIES)}")
    if isinstance(self.depth, bool) or not isinstance(self.depth, int) or not 2 <= self.depth <= corrector.MAX_DEPTH:
      raise ValueError(f"depth={self.depth!r} is not allowed; allowed: an integer 2..{corrector.MAX_DEPTH} (the "
                       "corrector's table has 3 (2**depth - 1)**2 entries)")
    self.model_config()
    bad = [d for d in self.defences if d not in DEFENCES]
    if bad or len(set(self.defences)) != len(self.defences):
      raise ValueError(f"defences={list(self.defences)} is not allowed; allowed: distinct values of "
                       f"{', '.join(DEFENCES)}")
    for defence in DEFENCES:
      self._check_strengths(defence, getattr(self, defence))
    bad = [d for d in self.dpo_defences if d not in DPO_DEFENCES]
    if bad or len(set(self.dpo_defences)) != len(self.dpo_defences):
      raise ValueError(f"dpo_defences={list(self.dpo_defences)} is not allowed; allowed: distinct values of "
                       f"{', '.join(DPO_DEFENCES)}")
    if self.attack.epochs is None:
      raise ValueError("attack.epochs=None is not allowed; allowed: a number of epochs (the attack's steps follow its "
                       "examples)")
    LisaSchedule(alignment_steps=self.lisa_alignment_steps, finetune_steps=self.lisa_finetune_steps)
    for name, low in (("booster_alpha", 0.0), ("corrector_init_scale", 0.0), ("dpo_beta", None),
                      ("breaking_epochs", None), ("smallest_effect_log2", 0.0)):
      value = getattr(self, name)
      if (isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)
              or (value < low if low is not None else value <= 0)):
        bound = ">= 0" if low is not None else "> 0"
        raise ValueError(f"{name}={value!r} is not allowed; allowed: a finite number {bound}")
    if self.corrector_init_scale >= 10:
      raise ValueError(f"corrector_init_scale={self.corrector_init_scale!r} is not allowed; allowed: 0 <= scale < 10")
    factors = self.breaking_lr_factors
    if any(not math.isfinite(f) or f <= 1 for f in factors) or list(factors) != sorted(set(factors)):
      raise ValueError(f"breaking_lr_factors={list(factors)} is not allowed; allowed: distinct increasing finite "
                       "factors > 1 (x1 is the main attack)")
    for name in ("pretrain", "align", "attack", "corrector_stage", "corrector_attack"):
      stage = getattr(self, name)
      if stage.gradient != "minibatch" or stage.objective != "sft":
        raise ValueError(f"{name}.gradient={stage.gradient!r}, {name}.objective={stage.objective!r} are not allowed; "
                         "allowed: gradient='minibatch', objective='sft' (the attack's method is set per curve)")
    self.pretrain.steps_for(self.pretrain_size)
    self.align.steps_for(max(self.align_size, self.booster_harmful_size))
    longest = max(sizes) / (1.0 - max(self.replay_alignment.grid + self.replay_pretraining.grid))
    dataclasses.replace(self.attack, epochs=max(self.attack.epochs or 1.0, self.breaking_epochs)).steps_for(longest)
    self.corrector_stage.steps_for(max(self.corrector.grid) * self.corrector_corrections)
    self.corrector_attack.steps_for(max(sizes))

  def _check_strengths(self, defence: str, strengths: Strengths) -> None:
    grid = strengths.grid
    low_open = defence in ("corrector",)
    high = 1.0 if defence.startswith("replay") else math.inf
    if (not grid or any(isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) for v in grid)
            or any(v < 0 or (low_open and v <= 0) or v >= high for v in grid)):
      allowed = "numbers in [0, 1)" if high == 1.0 else "numbers > 0" if low_open else "finite numbers >= 0"
      raise ValueError(f"{defence}.grid={list(grid)} is not allowed; allowed: {allowed}")
    if list(grid) != sorted(set(grid)):
      raise ValueError(f"{defence}.grid={list(grid)} is not allowed; allowed: distinct values in increasing order")
    if strengths.default not in grid:
      raise ValueError(f"{defence}.default={strengths.default!r} is not allowed; allowed: one of its grid "
                       f"{list(grid)}")
    if defence == CORRECTOR:
      if len(grid) < 2:
        raise ValueError(f"corrector.grid={list(grid)} is not allowed; allowed: two or more W/C ratios (the trend "
                         "test needs levels)")
      for ratio in grid:
        copies = ratio * self.corrector_corrections
        if copies != round(copies) or copies > MAX_EXAMPLES:
          raise ValueError(f"corrector.grid value {ratio!r} x corrector_corrections={self.corrector_corrections} is "
                           f"{copies:g} copy pairs; allowed: an integer number up to {MAX_EXAMPLES}")

  def model_config(self) -> ModelConfig:
    """The transformer every defence trains."""
    return transformer_sizes(((self.width, self.layers),), heads=self.heads, dtype=self.dtype)[0]

  def strengths(self, defence: str) -> Strengths:
    """The strengths of `defence` (the baseline has the single strength 0)."""
    return Strengths(default=0.0, grid=(0.0,)) if defence == BASELINE else getattr(self, defence)

  def sources(self, repetition: int) -> np.ndarray:
    """Leaf distributions (3, n_leaves) of repetition `repetition`: D_p, positives (D_p on the aligned subtree),
    negatives (D_p on the unaligned subtree)."""
    probs = datasets.SourceConfig(depth=self.depth, family=self.family, perturbation="unaligned",
                                  seed=self.seed + repetition).probabilities()
    for row, prefix in ((ALIGN, ALIGNED_PREFIX), (PERTURB, UNALIGNED_PREFIX)):
      keep = token_tree.prefix_mask(self.depth, prefix)  # the empty response (EOS only) belongs to neither
      probs[row] = np.where(keep, probs[PRETRAIN], 0.0) / probs[PRETRAIN][keep].sum()
    return probs

  def copy_sizes(self) -> np.ndarray:
    """W, the corrector's copy pairs at each W/C of the corrector's grid (integers, increasing)."""
    return np.rint(np.asarray(self.corrector.grid) * self.corrector_corrections).astype(np.int64)
