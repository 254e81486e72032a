"""`elasticity simulate model-size`: the rebound at three transformer sizes (paper Fig. 5)."""

from __future__ import annotations

import argparse

from elasticity_cli import rebound_command

EXPERIMENT = "model-size"
HELP = ("Rebound at 3 transformer sizes (1,003 to 25,923 parameters; paper Fig. 5): does the early fall grow "
        "with size?")


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """Registers the flags of the rebound family with this experiment's defaults."""
  rebound_command.add_arguments(parser, EXPERIMENT)


def run(args: argparse.Namespace) -> int:
  """Runs `elasticity simulate model-size`."""
  return rebound_command.run(args, EXPERIMENT)
