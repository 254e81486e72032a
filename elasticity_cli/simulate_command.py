"""`elasticity simulate EXPERIMENT`: trains toy models for one experiment and saves a resumable run."""

from __future__ import annotations

import argparse
import importlib

NAME = "simulate"
HELP = "Train toy language models for an experiment (hooke, ...) and save the results (resumable)."

EXPERIMENTS = ("hooke", "resistance", "rebound", "model-size", "pretrain-volume")
"""Experiments; each lives in elasticity_cli/simulate_<name with _ for ->.py with HELP, add_arguments and run."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """Registers one sub-subcommand per experiment."""
  experiments = parser.add_subparsers(dest="experiment", required=True)
  for name in EXPERIMENTS:
    module = importlib.import_module(f"elasticity_cli.simulate_{name.replace('-', '_')}")
    sub = experiments.add_parser(name, help=module.HELP, description=module.HELP)
    module.add_arguments(sub)
    sub.set_defaults(experiment_run=module.run)


def run(args: argparse.Namespace) -> int:
  """Runs the chosen experiment."""
  return args.experiment_run(args)
