"""`elasticity simulate EXPERIMENT`: runs (or resumes) one registered experiment into a run directory."""

from __future__ import annotations

import argparse
import pathlib

from elasticity_cli import config_flags
from experiments import paths, registry, runner
from experiments.protocol import SCALES
from toy_models import compilation

NAME = "simulate"
HELP = "Train toy language models for one experiment and save a resumable run (default under runs/)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """One sub-subcommand per registered experiment, with a flag per config field."""
  experiments = parser.add_subparsers(dest="experiment", required=True, metavar="EXPERIMENT")
  for experiment in registry.EXPERIMENTS.values():
    sub = experiments.add_parser(experiment.name, help=experiment.help, description=experiment.help)
    sub.add_argument("--scale", choices=SCALES, default="default",
                     help="pre-registered settings to start from (experiments/<name>/scales.toml; default: default)")
    sub.add_argument("--config", type=pathlib.Path, default=None,
                     help="TOML file of config fields over the scale's (flags given as well override it)")
    sub.add_argument("--out-dir", type=pathlib.Path, default=None,
                     help=f"run directory (default: runs/{experiment.name}[-SCALE]); finished units there are reused")
    sub.add_argument("--fresh", action="store_true",
                     help="delete this run's earlier results in --out-dir first (only files elasticity wrote)")
    sub.add_argument("--compile", choices=runner.COMPILE_CHOICES, default="auto", help=runner.COMPILE_HELP)
    config_flags.add_flags(sub, experiment.config_class, experiment.config("default"))


def run(args: argparse.Namespace) -> int:
  """Runs the chosen experiment and prints its tables."""
  experiment = registry.get(args.experiment)
  config = experiment.config(args.scale, config_flags.overrides(args, experiment.config_class), args.config)
  suffix = "" if args.scale == "default" else f"-{args.scale}"
  out_dir = args.out_dir or paths.RUNS / f"{experiment.name}{suffix}"
  args.interrupted = f"interrupted; units finished before now are saved in {out_dir} and reused on the next run"
  runner.use_compile_preset(args.scale, args.compile)
  with compilation.count_compilations() as compiled:
    summary = runner.run(experiment, config, out_dir, fresh=args.fresh)
  print(experiment.format_summary(summary, config))
  print(f"compilation: {compiled.summary()}")
  if compiled.log:
    print(f"compile time by function: {compilation.describe_by_program(compiled.by_program())}")
  print(f"results: {out_dir} (summary.json, units/); figures: elasticity figures --run {out_dir}")
  if summary.get("acceptance", {}).get("passed") is False:
    print("acceptance FAILED (see the summary above)")
    return 1
  return 0
