"""`elasticity simulate rebound`: align, then fine-tune on the opposite behaviour (paper Fig. 4, Table 3)."""

from __future__ import annotations

import argparse

from elasticity_cli import rebound_command

EXPERIMENT = "rebound"
HELP = ("Rebound (paper Fig. 4, Appendix Table 3): align on {1000..10000} positive examples, fine-tune on "
        "{0..2000} negative ones (SFT and DPO, both orders); score curves with CIs, KL to the pre-trained "
        "model, verdicts")


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """Registers the flags of the rebound family with this experiment's defaults."""
  rebound_command.add_arguments(parser, EXPERIMENT)


def run(args: argparse.Namespace) -> int:
  """Runs `elasticity simulate rebound`."""
  return rebound_command.run(args, EXPERIMENT)
