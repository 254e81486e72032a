"""`elasticity simulate pretrain-volume`: the rebound after four pre-training budgets (paper Fig. 6)."""

from __future__ import annotations

import argparse

from elasticity_cli import rebound_command

EXPERIMENT = "pretrain-volume"
HELP = ("Rebound after 4 pre-training budgets (1,000 to 32,000 responses; paper Fig. 6): does the early fall "
        "grow with pre-training?")


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """Registers the flags of the rebound family with this experiment's defaults."""
  rebound_command.add_arguments(parser, EXPERIMENT)


def run(args: argparse.Namespace) -> int:
  """Runs `elasticity simulate pretrain-volume`."""
  return rebound_command.run(args, EXPERIMENT)
