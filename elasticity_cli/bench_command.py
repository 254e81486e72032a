"""`elasticity bench`: training steps per second (1 run and vmapped batches) and the default hooke's time, as JSON."""

from __future__ import annotations

import argparse
import json
import pathlib

from theory import records
from toy_models.benchmark import BenchConfig, run_benchmark

NAME = "bench"
HELP = ("Measure training steps/s of the default transformer (1 run and vmapped batches of 8 and 32) and the time "
        "of the default `simulate hooke`; prints JSON")


def _ints(text: str) -> tuple[int, ...]:
  try:
    return tuple(int(item) for item in text.split(",") if item.strip())
  except ValueError:
    raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """Registers --steps, --batches, --skip-hooke and --out."""
  parser.add_argument("--steps", type=int, default=200, help="timed steps per measurement (default 200)")
  parser.add_argument("--batches", type=_ints, default=(1, 8, 32), help="vmapped batch sizes (default 1,8,32)")
  parser.add_argument("--skip-hooke", action="store_true", help="do not time the default simulate hooke")
  parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("figures/data/bench.json"),
                      help="also write the JSON here (default figures/data/bench.json)")


def run(args: argparse.Namespace) -> int:
  """Runs the benchmark, prints and saves the JSON."""
  config = BenchConfig(steps=args.steps, batches=args.batches, hooke=not args.skip_hooke)
  result = {**run_benchmark(config), **records.provenance(config)}
  records.write_json(args.out, result)
  print(json.dumps(result, indent=2, default=str))
  print(f"saved: {args.out}")
  return 0
