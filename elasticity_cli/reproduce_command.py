"""`elasticity reproduce`: the main job — claims check, every experiment, figures, REPORT.md and the verdicts."""

from __future__ import annotations

import argparse
import pathlib
import time

from experiments import pipeline, readme_blocks, records, runner
from experiments.protocol import SCALES
from proofs_check import report
from proofs_check import run as checker

NAME = "reproduce"
HELP = ("Run everything (claims check, theory figures, toy-model experiments) and write figures, REPORT.md and "
        "verdicts.md under runs/reproduce-SCALE (published runs of the same config are reused, not recomputed).")
CLAIM_EXAMPLES = {"tiny": 10, "quick": 40, "default": 300, "paper": 2000}  # hypothesis examples per claim part.


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """Registers the flags of `elasticity reproduce`."""
  parser.add_argument("--scale", choices=SCALES, default=None, help="default: CPU-sized, the published runs; quick: "
                      "a first look; paper: larger, for a GPU; tiny: seconds, for tests")
  parser.add_argument("--quick", action="store_true", help="same as --scale quick")
  parser.add_argument("--out-dir", type=pathlib.Path, default=None,
                      help="where to write (default runs/reproduce-SCALE)")
  parser.add_argument("--recompute", action="store_true", help="recompute every run, even when a published run of the "
                      "same config exists")
  parser.add_argument("--only", default="", help="comma-separated experiments to run (default: all)")
  parser.add_argument("--compile", choices=runner.COMPILE_CHOICES, default="auto", help=runner.COMPILE_HELP)
  parser.add_argument("--jobs", type=int, default=None, help="experiments run at once, each in its own process "
                      "(default: one per CPU core up to 4 on a CPU, 1 with an accelerator or at the paper "
                      "scale)")
  parser.add_argument("--publish", action="store_true", help="write the published results: figures/, figures/data/ "
                      "(runs resumed there) and the README's generated blocks (default scale only)")


def run(args: argparse.Namespace) -> int:
  """Runs the main job and prints where the figures and the report went."""
  if args.quick and args.scale not in (None, "quick"):
    raise ValueError(f"--quick with --scale {args.scale} is not allowed; allowed: one of them")
  scale = "quick" if args.quick else (args.scale or "default")
  only = tuple(name.strip() for name in args.only.split(",") if name.strip())
  config = pipeline.ReproduceConfig(scale=scale, out_dir=args.out_dir, publish=args.publish,
                                    recompute=args.recompute, only=only, jobs=args.jobs,
                                    compile_preset=args.compile)
  args.interrupted = (f"interrupted; units finished before now are saved under {config.data} and reused on the next "
                      "run")

  def claims(target: pathlib.Path) -> list[str]:
    checker.run_all(examples=CLAIM_EXAMPLES[scale], seed=0, out_dir=target)
    table = (target / report.MARKDOWN_NAME).read_text()
    if config.publish:
      readme_blocks.embed("claims", report.readme_table(records.read_json(target / report.JSON_NAME)))
    return ["## Claims (`elasticity check`)\n\nEach claim checked symbolically where possible and on random "
            f"configurations ({CLAIM_EXAMPLES[scale]} hypothesis examples per claim at this scale).\n\n" + table]

  start = time.perf_counter()
  path = pipeline.reproduce(config, preface=None if only else claims)
  print(f"figures: {config.target}/*.png")
  print(f"report:  {path}")
  print(f"total time: {time.perf_counter() - start:.0f} s")
  return 0
