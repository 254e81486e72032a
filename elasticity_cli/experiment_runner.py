"""Runs (or resumes) one experiment with a progress bar and saves its summary.json with provenance."""

from __future__ import annotations

import pathlib
import time

from elasticity_cli.progress import UnitProgress
from theory import records
from toy_models.run_dir import RunDir


def run_with_progress(config, out_dir: pathlib.Path, *, fresh: bool, label: str, units, run, summarize) -> dict:
  """Checks out_dir against `config`, runs run(config, out_dir, progress=...) under a bar over units(config),
  then writes out_dir/summary.json = provenance, seconds and summarize(config, run_dir); returns the summary."""
  start = time.perf_counter()
  RunDir(out_dir, config, fresh=fresh)  # refuses another config's directory before any progress is shown
  progress = UnitProgress(len(units(config)), label)
  try:
    run_dir = run(config, out_dir, progress=progress)
  finally:
    progress.close()
  summary = summarize(config, run_dir)
  records.write_json(out_dir / "summary.json", {**records.provenance(config, seed=config.seed),
                                                 "seconds": round(time.perf_counter() - start, 1),
                                                 "summary": summary})
  return summary
