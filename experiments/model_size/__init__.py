"""Rebound against model size (paper Fig. 5): the rebound experiment for transformers of several sizes."""

from experiments.rebound import family_member
from experiments.rebound.figures import across_figure

EXPERIMENT = family_member(
    "model-size", "Rebound against model size (`elasticity simulate model-size`; paper Fig. 5)",
    "rebound against model size (paper Fig. 5): transformers from ~1k to ~26k parameters", __name__,
    across_figure("model_size.png", "parameter_count",
                  lambda c: f"w{c['size'][0]} L{c['size'][1]} ({c['parameter_count']:,} params)"))
