"""`elasticity figures`: recompute the theory data if needed and redraw every figure from saved results."""

from __future__ import annotations

import argparse
import importlib
import pathlib

from theory import hooke_curves

NAME = "figures"
HELP = "Redraw every figure from saved results (computing the theory data when it is missing)."

FIGURE_MODULES = ("figure_theory", "figure_hooke", "figure_experiments")
"""Modules of elasticity_cli with draw(data_root, figures_dir) -> list of paths; absent ones are skipped."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """Registers the flags of `elasticity figures`."""
  parser.add_argument("--figures-dir", type=pathlib.Path, default=pathlib.Path("figures"),
                      help="where the PNG files go (default: figures)")
  parser.add_argument("--data-root", type=pathlib.Path, default=None,
                      help="where saved results live (default: <figures-dir>/data)")
  parser.add_argument("--recompute-theory", action="store_true",
                      help="recompute the theory curves even if saved ones exist")
  parser.add_argument("--seed", type=int, default=None, help="seed of the theory curves (default: 0)")


def draw_all(figures_dir: pathlib.Path, data_root: pathlib.Path) -> list[pathlib.Path]:
  """Calls every figure module's draw; returns the files written."""
  written = []
  for name in FIGURE_MODULES:
    try:
      module = importlib.import_module(f"elasticity_cli.{name}")
    except ModuleNotFoundError as error:
      if error.name != f"elasticity_cli.{name}":
        raise
      continue
    written += module.draw(data_root, figures_dir)
  return written


def make_theory_data(data_root: pathlib.Path, *, recompute: bool = False, seed: int | None = None) -> bool:
  """Computes the theory curves unless saved ones with the same config exist; returns whether it computed."""
  from elasticity_cli import figure_theory

  config = hooke_curves.TheoryFiguresConfig(**({} if seed is None else {"seed": seed}))
  if not recompute and figure_theory.load_config(data_root) == config:
    return False
  figure_theory.compute(config, data_root)
  return True


def run(args: argparse.Namespace) -> int:
  """Runs `elasticity figures`."""
  data_root = args.data_root or args.figures_dir / "data"
  if make_theory_data(data_root, recompute=args.recompute_theory, seed=args.seed):
    print(f"computed theory curves into {data_root / 'theory'}")
  for path in draw_all(args.figures_dir, data_root):
    print(f"wrote {path}")
  return 0
