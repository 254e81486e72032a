"""Training plans: the stages a model goes through in the joint and in the sequential regime."""

from __future__ import annotations

import dataclasses

from toy_models.stage_config import StageConfig

REGIMES = ("joint", "sequential")
"""joint: one objective over D_p ∪ D_a ∪ D_t, each response weighted by its count (what the theory assumes);
sequential: pre-train on D_p, align on D_a, then fine-tune on D_t alone (the realistic order)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainingPlan:
  """Stages of one model kind: `joint` for the joint regime; pretrain, align, finetune for the sequential one.

  In the sequential regime a stage with `epochs` set takes steps in proportion to its data's mass, so that
  k = |D_p| / |D_a| and l = |D_t| / |D_a| are ratios of training steps as well as of data.
  """

  joint: StageConfig = StageConfig(steps=2000, learning_rate=0.1)  # the joint regime's one stage.
  pretrain: StageConfig = StageConfig(epochs=1.0, batch_size=50, learning_rate=0.05, schedule="constant")  # on D_p.
  align: StageConfig = StageConfig(epochs=10.0, batch_size=50, learning_rate=0.05, schedule="constant")  # on D_a.
  finetune: StageConfig = StageConfig(epochs=5.0, batch_size=10, learning_rate=0.05, schedule="constant")  # on D_t.


TRANSFORMER_PLAN = TrainingPlan(
    joint=StageConfig(steps=800, learning_rate=0.01, gradient="minibatch", batch_size=32),
    pretrain=StageConfig(epochs=1.0, batch_size=50, learning_rate=0.003, schedule="constant",
                         gradient="minibatch"),
    align=StageConfig(epochs=10.0, batch_size=50, learning_rate=0.003, schedule="constant", gradient="minibatch"),
    finetune=StageConfig(epochs=5.0, batch_size=10, learning_rate=0.003, schedule="constant",
                         gradient="minibatch"))
"""The transformer's default plan: smaller learning rates, and minibatches of responses (32 or the stage's
batch size) instead of the exact expected gradient, which costs every response of the tree per step."""
