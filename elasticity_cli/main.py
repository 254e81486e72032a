"""Entry point of `elasticity`: builds the parser from the subcommand modules and runs one, interruptibly.

A subcommand module defines NAME, HELP, add_arguments(parser) and run(args) -> exit code; run may set
args.interrupted to the line printed on Ctrl-C (what was saved). Bad input raises ValueError, printed as one line
`elasticity: error: ...` with exit code 2. The command runs in a worker thread so that Ctrl-C stops it within a
fraction of a second at every scale (the process exits; units saved before stay saved).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import multiprocessing
import os
import sys
import threading

from elasticity_cli import bench_command, check_command, figures_command, reproduce_command, simulate_command
from experiments import pipeline

DESCRIPTION = ("lm-elasticity: checks 'Language Models Resist Alignment' (Ji et al., ACL 2025) symbolically, "
               "numerically and in trained toy language models.")
SUBCOMMANDS = (check_command, figures_command, simulate_command, bench_command, reproduce_command)


def _version() -> str:
  try:
    return importlib.metadata.version("lm-elasticity")
  except importlib.metadata.PackageNotFoundError:
    return "unknown"


def build_parser() -> argparse.ArgumentParser:
  """The argument parser with every subcommand registered."""
  parser = argparse.ArgumentParser(prog="elasticity", description=DESCRIPTION)
  parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
  subparsers = parser.add_subparsers(dest="command", required=True)
  for module in SUBCOMMANDS:
    sub = subparsers.add_parser(module.NAME, help=module.HELP, description=module.HELP)
    module.add_arguments(sub)
    sub.set_defaults(handler=module.run)
  return parser


def _prepare() -> None:
  """What every command needs: float64 JAX (theory and simulation are compared in float64) and the compile cache."""
  import jax

  jax.config.update("jax_enable_x64", True)
  try:
    from toy_models import compilation, training
  except ImportError:
    return
  training.exact_gradient_chunk_from_environment()  # a bad $ELASTICITY_EXACT_GRADIENT_CHUNK: refused before any work
  compilation.enable_persistent_cache()


def main(argv=None) -> int:
  """Parses `argv` (default sys.argv[1:]), runs the subcommand and returns its exit code."""
  pipeline.skip_the_last_collection_at_exit()  # about 0.5 s less per command
  args = build_parser().parse_args(argv)
  args.interrupted = "interrupted; nothing was saved"
  outcome: dict = {}

  def work():
    try:
      _prepare()
      outcome["code"] = int(args.handler(args) or 0)
    except BaseException as error:  # re-raised in the main thread
      outcome["error"] = error

  worker = threading.Thread(target=work, name=f"elasticity {args.command}", daemon=True)
  worker.start()
  try:
    while worker.is_alive():
      worker.join(timeout=0.2)
  except KeyboardInterrupt:
    print(f"elasticity: {args.interrupted}", file=sys.stderr, flush=True)
    sys.stdout.flush()
    for child in multiprocessing.active_children():  # worker processes of `reproduce`: they ignore Ctrl-C
      child.kill()
    os._exit(130)  # the worker may be inside a long XLA computation: stop the process now, not when it returns
  error = outcome.get("error")
  if isinstance(error, KeyboardInterrupt):  # raised inside the command itself
    print(f"elasticity: {args.interrupted}", file=sys.stderr, flush=True)
    return 130
  if isinstance(error, ValueError):
    print(f"elasticity: error: {error}", file=sys.stderr)
    return 2
  if error is not None:
    raise error
  return outcome["code"]


if __name__ == "__main__":
  sys.exit(main())
