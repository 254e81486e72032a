"""The theory curves as one unit of work: exact mixtures evaluated on the config's grids, saved as arrays."""

from __future__ import annotations

import dataclasses

import numpy as np

from theory import hooke_curves

CURVES = "curves"  # the experiment's single unit.


@dataclasses.dataclass(frozen=True)
class Unit:
  """The one unit of the theory figures."""

  name: str = CURVES


def units(config: hooke_curves.TheoryFiguresConfig) -> list[Unit]:
  """The single unit: every curve of the three figures."""
  del config
  return [Unit()]


def run_unit(config: hooke_curves.TheoryFiguresConfig, unit: Unit, run_dir, progress=None) -> tuple[dict, dict]:
  """Evaluates the Hooke curves, the ratio against k and Huffman against entropy (theory.hooke_curves)."""
  del unit, run_dir, progress
  arrays = {}
  for prefix, function in (("hooke", hooke_curves.hooke_curves), ("ratio", hooke_curves.ratio_against_k),
                           ("huffman", hooke_curves.huffman_against_entropy)):
    arrays.update({f"{prefix}_{name}": np.asarray(value) for name, value in function(config).items()})
  return {"name": CURVES}, arrays
