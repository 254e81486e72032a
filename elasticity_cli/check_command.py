"""`elasticity check`: runs every claim of proofs_check, prints the table, saves JSON and markdown."""

from __future__ import annotations

import argparse
import pathlib

from elasticity_cli import readme_embed
from proofs_check import constants, report
from proofs_check import run as checker

NAME = "check"
HELP = ("check every claim (symbolically and on random configurations drawn by hypothesis); exits 1 if "
        "a claim expected to hold fails")


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """Registers --claim, --examples, --seed and --out-dir."""
  parser.add_argument("--claim", default=None,
                      help="check only this claim: a number 1..9 (all its parts) or an id such as 5b; writes "
                           "OUT_DIR/data/claims_<CLAIM>.json and leaves the full table alone")
  parser.add_argument("--examples", type=int, default=constants.DEFAULT_EXAMPLES,
                      help=f"hypothesis examples per claim part (default {constants.DEFAULT_EXAMPLES})")
  parser.add_argument("--seed", type=int, default=constants.DEFAULT_SEED,
                      help="hypothesis seed; the same seed gives the same numbers (default "
                           f"{constants.DEFAULT_SEED})")
  parser.add_argument("--out-dir", default="figures",
                      help="output folder: data/claims.json and claims_table.md go there (default figures)")


def run(args: argparse.Namespace) -> int:
  """Runs the check; returns 0 if every claim ended as expected, 1 if one expected to hold failed."""
  def progress(result):
    print(f"  {result.id}: {result.status} ({result.seconds:.1f} s)", flush=True)

  results = checker.run_all(examples=args.examples, seed=args.seed, out_dir=args.out_dir, claim=args.claim,
                            progress=progress)
  print(report.format_table(results))
  table = pathlib.Path(args.out_dir) / report.MARKDOWN_NAME
  in_repo = table.resolve() == (readme_embed.README.resolve().parent / "figures" / report.MARKDOWN_NAME)
  if args.claim is None and in_repo and table.exists() and readme_embed.embed("claims", table.read_text()):
    print(f"updated the claims table in {readme_embed.README}")
  failed = [result.id for result in results if result.failed]
  if failed:
    print(f"FAILED: claim(s) {', '.join(failed)}; counterexamples in {args.out_dir}")
    return 1
  return 0
