"""Figures of the paper's four experiments at toy scale (resistance and the rebound family) from saved runs."""

from __future__ import annotations

import importlib
import pathlib

from elasticity_cli import figure_rebound


def draw(data_root: pathlib.Path, figures_dir: pathlib.Path) -> list[pathlib.Path]:
  """Draws the resistance figure and every rebound-family figure whose default run exists."""
  written = []
  try:
    resistance = importlib.import_module("elasticity_cli.figure_resistance")
  except ModuleNotFoundError as error:
    if error.name != "elasticity_cli.figure_resistance":
      raise
  else:
    written += resistance.draw(data_root, figures_dir)
  return written + figure_rebound.draw(data_root, figures_dir)
