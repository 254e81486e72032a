"""Rebound against pre-training volume (paper Fig. 6): the rebound experiment for several pre-training masses."""

from experiments.rebound import family_member
from experiments.rebound.figures import across_figure

EXPERIMENT = family_member(
    "pretrain-volume", "Rebound against pre-training volume (`elasticity simulate pretrain-volume`; paper Fig. 6)",
    "rebound against pre-training volume (paper Fig. 6): 1,000 to 32,000 pre-training responses", __name__,
    across_figure("pretrain_volume.png", "pretrain_tokens",
                  lambda c: f"{c['pretrain_mass']:g} responses ({c['pretrain_tokens']:,.0f} tokens)"))
