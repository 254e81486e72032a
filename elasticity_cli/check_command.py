"""`elasticity check`: runs every claim of proofs_check, prints the table, saves JSON and the markdown table."""

from __future__ import annotations

import argparse
import pathlib

import hypothesis

from experiments import paths, readme_blocks, records
from proofs_check import constants, report
from proofs_check import run as checker

NAME = "check"
HELP = ("Check every claim (symbolically and on random configurations drawn by hypothesis); exits 1 if a claim "
        "expected to hold fails")


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """Registers --claim, --examples, --seed, --out-dir and --publish."""
  parser.add_argument("--claim", default=None,
                      help="check only this claim: a number (all its parts) or an id such as 5b")
  parser.add_argument("--examples", type=int, default=constants.DEFAULT_EXAMPLES,
                      help=f"hypothesis examples per claim part (default {constants.DEFAULT_EXAMPLES})")
  parser.add_argument("--seed", type=int, default=constants.DEFAULT_SEED,
                      help=f"hypothesis seed; the same seed gives the same numbers (default {constants.DEFAULT_SEED})")
  parser.add_argument("--out-dir", type=pathlib.Path, default=None,
                      help="output folder for data/claims.json and claims_table.md (default runs/claims)")
  parser.add_argument("--publish", action="store_true",
                      help="write the published table (figures/) and the README's claims block")


def hypothesis_version_note(published: pathlib.Path | None) -> str | None:
  """A line for a check whose hypothesis is not the one the published claims (`published`, a claims.json) were drawn
  with: the configurations a seed gives differ between hypothesis releases, so the numbers may too. None when the
  versions agree or nothing is published."""
  if published is None or not published.is_file():
    return None
  drawn_with = records.read_json(published)["provenance"]["package_versions"]["hypothesis"]
  if drawn_with == hypothesis.__version__:
    return None
  return (f"note: the published claims were drawn with hypothesis {drawn_with}, this is {hypothesis.__version__}: "
          "a seed draws other configurations in another release, so the numbers may differ (not the statuses)")


def run(args: argparse.Namespace) -> int:
  """Runs the check; returns 0 if every claim ended as expected, 1 if one expected to hold failed."""
  if args.publish and (args.out_dir is not None or args.claim is not None):
    raise ValueError("--publish with --out-dir or --claim is not allowed; allowed: --publish alone (all claims)")
  out_dir = paths.published_dir() if args.publish else (args.out_dir or paths.RUNS / "claims")
  paths.check_output_dir(out_dir, publishing=args.publish)

  def progress(result):
    print(f"  {result.id}: {result.status} ({result.seconds:.1f} s)", flush=True)

  results = checker.run_all(examples=args.examples, seed=args.seed, out_dir=out_dir, claim=args.claim,
                            progress=progress)
  print(report.format_table(results))
  print(f"saved: {out_dir}")
  published = paths.published_dir()
  note = None if args.publish else hypothesis_version_note(None if published is None else published / report.JSON_NAME)
  if note is not None:
    print(note)
  if args.publish and readme_blocks.embed("claims", report.readme_table(records.read_json(out_dir / report.JSON_NAME))):
    print("updated the claims table in README.md")
  failed = [result.id for result in results if result.failed]
  if failed:
    print(f"FAILED: claim(s) {', '.join(failed)}; counterexamples in {out_dir}")
    return 1
  return 0
