"""`elasticity bench`: compile time, steps/s and run-steps/s of toy transformers; a table, and JSON saved."""

from __future__ import annotations

import argparse
import pathlib
import sys

from elasticity_cli import config_flags
from experiments import bench, config_io, paths, readme_blocks, records
from toy_models import compilation

NAME = "bench"
HELP = ("Measure training speed: a from-scratch sweep (8 runs x 800 steps, compilation included) and, per width (16, "
        "64), float type and number of vmapped runs, compile time, steps/s and run-steps/s; prints a table")
DEFAULT_OUT = paths.RUNS / "bench.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """A flag per BenchConfig field, --out and --publish."""
  parser.add_argument("--out", type=pathlib.Path, default=None,
                      help=f"where the JSON goes (default {DEFAULT_OUT})")
  parser.add_argument("--publish", action="store_true", help="write the published figures/data/bench.json")
  parser.add_argument("--torch-reference", type=pathlib.Path, default=None,
                      help="JSON of benchmarks/torch_loop.py measured on this machine just before: saved with the "
                      "results and compared with them in the table")
  config_flags.add_flags(parser, bench.BenchConfig, bench.BenchConfig())


def table(result: dict) -> str:
  """The measurements as text: device, sweep rows, one row per workload, float type and run count, then the
  compile time of each program (by function name) and the totals."""
  device = result["device"]
  lines = [f"device: {device['device_kind']} ({device['platform']}, {device['device_count']} device(s), "
           f"{device['cpu_count']} CPUs), jax {device['jax_version']}"]
  for row in result["sweep"]:
    lines.append(f"sweep {row['runs']} runs x {row['steps']} steps, {row['dtype']} {row['preset']}: "
                 f"{row['seconds']:g} s with compilation ({row['programs_compiled']} programs, "
                 f"{row['compile_seconds']:g} s compiling), {row['ms_per_run_step']:g} ms per run-step")
  lines.append(f"{'workload':<9}{'dtype':<9}{'runs':>5}{'first call s':>14}{'programs':>10}{'steps/s':>10}"
               f"{'run-steps/s':>13}")
  for row in result["training"]:
    lines.append(f"{row['workload']:<9}{row['dtype']:<9}{row['runs']:>5}{row['compile_seconds_included']:>14g}"
                 f"{row['programs_compiled']:>10}{row['steps_per_second']:>10g}{row['run_steps_per_second']:>13g}")
  by_program = result["compilation_by_program"]
  if by_program:
    lines.append("compile time by program, every measurement above (loaded: from the persistent cache):")
    width = max(len(row["name"]) for row in by_program)
    lines += [f"  {row['name']:<{width}}  {row['programs']:>3} programs, {row['loaded']:>3} loaded, "
              f"{row['seconds']:8.3f} s (longest {row['max_seconds']:.3f} s)" for row in by_program]
  total = result["compilation"]
  lines.append(f"in all: {compilation.describe(total)}")
  return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
  """Runs the benchmark, prints the table and writes the JSON (with provenance)."""
  if args.publish and args.out is not None:
    raise ValueError("--publish with --out is not allowed; allowed: one of them")
  out = paths.published_data() / "bench.json" if args.publish else (args.out or DEFAULT_OUT)
  paths.check_output_file(out, flag="--out", publishing=args.publish)
  config = config_io.with_overrides(bench.BenchConfig(), config_flags.overrides(args, bench.BenchConfig))
  reference = bench.read_torch_reference(args.torch_reference) if args.torch_reference else None
  result = bench.run_benchmark(config, log=lambda line: print(line, file=sys.stderr, flush=True))
  if reference is not None:
    result["torch_reference"] = reference
  saved = {**result, **records.provenance(config, seed=config.seed)}
  records.write_json(out, saved)
  print(table(result))
  if reference is not None:
    print("\n".join(bench.torch_comparison_lines(result)))
  if args.publish and readme_blocks.embed("bench", bench.markdown(saved)):
    print("updated the speed block in README.md")
  print(f"saved: {out}", file=sys.stderr)
  return 0
