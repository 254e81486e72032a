"""`elasticity bench`: training steps per second (1 run and vmapped batches) and the default hooke's time, as JSON."""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

from experiments import paths, records
from experiments.bench import BenchConfig, run_benchmark

NAME = "bench"
HELP = ("Measure training steps/s of the default transformer (1 run and vmapped batches of 8 and 32; minibatch and "
        "expected gradient) and the wall time of the default `simulate hooke`; prints JSON")
DEFAULT_OUT = paths.RUNS / "bench.json"


def _integers(flag: str, text: str) -> tuple[int, ...]:
  """Comma-separated integers of a flag; ValueError (a one-line error) otherwise."""
  try:
    return tuple(int(item) for item in text.split(",") if item.strip())
  except ValueError:
    raise ValueError(f"{flag} {text!r} is not allowed; allowed: comma-separated integers") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """Registers --steps, --batches, --skip-hooke and --out."""
  parser.add_argument("--steps", default="200", help="timed steps per measurement, after a warm-up call (default 200)")
  parser.add_argument("--batches", default="1,8,32", help="numbers of vmapped runs, comma-separated (default 1,8,32)")
  parser.add_argument("--skip-hooke", action="store_true", help="do not time the default `simulate hooke`")
  parser.add_argument("--out", type=pathlib.Path, default=None,
                      help=f"also write the JSON here (default {DEFAULT_OUT}; parent folders are created)")
  parser.add_argument("--publish", action="store_true", help="write the published figures/data/bench.json")


def run(args: argparse.Namespace) -> int:
  """Runs the benchmark, prints the JSON on stdout and writes it to --out."""
  steps = _integers("--steps", args.steps)
  if len(steps) != 1:
    raise ValueError(f"--steps {args.steps!r} is not allowed; allowed: one integer >= 1")
  if args.publish and args.out is not None:
    raise ValueError("--publish with --out is not allowed; allowed: one of them")
  out = paths.published_data() / "bench.json" if args.publish else (args.out or DEFAULT_OUT)
  paths.check_output_file(out, flag="--out", publishing=args.publish)
  config = BenchConfig(steps=steps[0], batches=_integers("--batches", args.batches), time_hooke=not args.skip_hooke)
  result = run_benchmark(config, log=lambda line: print(line, file=sys.stderr, flush=True))
  result = {**result, **records.provenance(config, seed=config.seed)}
  records.write_json(out, result)
  print(json.dumps(result, indent=2, default=str))
  print(f"saved: {out}", file=sys.stderr)
  return 0
