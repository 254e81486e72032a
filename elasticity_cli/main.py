"""Entry point of `elasticity`: registers each subcommand module and dispatches to it.

A subcommand module defines NAME, HELP, add_arguments(parser) and run(args) -> int (the exit code).
Bad user input raises ValueError, printed as one line `elasticity: error: ...` with exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

SUBCOMMANDS = ("check", "figures", "simulate", "bench", "reproduce")
"""Subcommand names; each lives in elasticity_cli/<name>_command.py."""


def _load(name: str):
  return importlib.import_module(f"elasticity_cli.{name}_command")


def build_parser(available=SUBCOMMANDS) -> argparse.ArgumentParser:
  """The argument parser with every available subcommand registered."""
  parser = argparse.ArgumentParser(prog="elasticity", description=__doc__.splitlines()[0])
  subparsers = parser.add_subparsers(dest="command", required=True)
  for name in available:
    try:
      module = _load(name)
    except ModuleNotFoundError as error:
      if error.name != f"elasticity_cli.{name}_command":
        raise
      continue
    sub = subparsers.add_parser(module.NAME, help=module.HELP, description=module.HELP)
    module.add_arguments(sub)
    sub.set_defaults(run=module.run)
  return parser


def main(argv=None) -> int:
  """Parses `argv` (default sys.argv[1:]), runs the subcommand and returns its exit code."""
  parser = build_parser()
  args = parser.parse_args(argv)
  try:
    return int(args.run(args) or 0)
  except ValueError as error:
    print(f"elasticity: error: {error}", file=sys.stderr)
    return 2
  except KeyboardInterrupt:
    print("elasticity: interrupted; finished work is saved and will be reused on the next run",
          file=sys.stderr)
    return 130


if __name__ == "__main__":
  sys.exit(main())
