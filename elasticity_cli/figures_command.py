"""`elasticity figures`: draws the figures of a saved run directory, or of every published run."""

from __future__ import annotations

import argparse
import pathlib

from experiments import paths, registry, runner

NAME = "figures"
HELP = ("Draw figures from saved results: --run DIR draws one run directory (any experiment); without it, every "
        "published run under figures/data (into runs/figures, or figures/ with --publish).")


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """Registers --run, --out-dir and --publish."""
  parser.add_argument("--run", type=pathlib.Path, default=None, help="a run directory written by simulate/reproduce")
  parser.add_argument("--out-dir", type=pathlib.Path, default=None,
                      help="where the PNG files go (default: RUN/figures with --run, else runs/figures)")
  parser.add_argument("--publish", action="store_true", help="redraw the published figures in figures/ from "
                      "figures/data (the committed PNGs)")


def run(args: argparse.Namespace) -> int:
  """Draws the figures and prints where they went."""
  if args.publish and (args.run is not None or args.out_dir is not None):
    raise ValueError("--publish with --run or --out-dir is not allowed; allowed: --publish alone")
  published = paths.published_data()
  runs = [args.run] if args.run is not None else (
      [] if published is None else [published / name for name in registry.EXPERIMENTS if (published / name).is_dir()])
  if not runs:
    raise ValueError("no run to draw: figures/data has none; allowed: --run DIR (a run directory)")
  default = (args.run / "figures") if args.run is not None else paths.RUNS / "figures"
  out_dir = paths.published_dir() if args.publish else (args.out_dir or default)
  paths.check_output_dir(out_dir, publishing=args.publish)
  for path in runs:
    experiment, config, reader = runner.load(path, registry.EXPERIMENTS)
    summary = experiment.summarize(config, reader)
    for file in experiment.figures(config, summary, reader, out_dir):
      print(f"wrote {file}")
  return 0
