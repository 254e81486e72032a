"""The registry of experiments: the CLI, `elasticity reproduce` and the tests iterate over it, in this order."""

from __future__ import annotations

from experiments import (
  example,
  families,
  hooke,
  mitigations,
  model_size,
  pretrain_volume,
  rebound,
  resistance,
  sequential,
  theory_figures,
)
from experiments.protocol import Experiment

EXPERIMENTS: dict[str, Experiment] = {experiment.name: experiment for experiment in (
    theory_figures.EXPERIMENT,
    hooke.EXPERIMENT,
    sequential.EXPERIMENT,
    resistance.EXPERIMENT,
    rebound.EXPERIMENT,
    model_size.EXPERIMENT,
    pretrain_volume.EXPERIMENT,
    families.EXPERIMENT,
    mitigations.EXPERIMENT,
    example.EXPERIMENT,
)}
"""Experiment name -> Experiment. Adding an experiment: a package with EXPERIMENT in its __init__.py, one line here."""


def get(name: str) -> Experiment:
  """The experiment called `name`; a one-line ValueError names the allowed ones otherwise."""
  if name not in EXPERIMENTS:
    raise ValueError(f"unknown experiment {name!r}; allowed: {', '.join(EXPERIMENTS)}")
  return EXPERIMENTS[name]
