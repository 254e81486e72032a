"""Runs (or resumes) one experiment into a run directory with progress, and saves summary.json with provenance."""

from __future__ import annotations

import os
import pathlib
import time

from experiments import config_io, records
from experiments.progress import UnitProgress
from experiments.protocol import Experiment
from experiments.run_dir import RunDir, run_units, saved_experiment
from toy_models import compilation

COMPILE_CHOICES = ("auto", *compilation.PRESETS)
COMPILE_HELP = ("XLA options of the training loops on a CPU: fast-compile compiles about twice as fast and trains "
                "about 9%% slower, unoptimized compiles faster still and trains about 50%% slower; both also train "
                "batches in calls of 4 runs, which share one loop (auto: unoptimized at the tiny scale, "
                "fast-compile at the quick scale, optimized at the others)")


def use_compile_preset(scale: str, choice: str = "auto") -> str:
  """Sets the compile preset of training loops for a run at `scale` ('auto': the scale's, compilation.SCALE_PRESETS:
  unoptimised programs at the tiny scale, fast compilation at the quick scale, optimised programs at the default and
  paper scales); returns it."""
  name = compilation.SCALE_PRESETS.get(scale, "optimized") if choice == "auto" else choice
  compilation.set_preset(name)
  return name


def run(experiment: Experiment, config, out_dir: str | os.PathLike, *, fresh: bool = False, publishing: bool = False,
        show_progress: bool | str = True) -> dict:
  """Runs every unit of `config` not yet saved in `out_dir`, then summarises the run; returns the summary.

  The config is validated and the folder checked (and locked) before anything is written. Each unit is saved as
  soon as it finishes, with the seconds it took, so an interrupted run loses no finished unit. summary.json holds
  the provenance (experiment, config, config hash, seed, package versions, git commit), the summary, the compute
  seconds of all units (training time, however many calls it took) and the seconds of this call.

  Args:
    experiment: the experiment (experiments.registry).
    config: its config (experiment.config(...)).
    out_dir: the run directory.
    fresh: delete the run's earlier files there first (only files this tool writes).
    publishing: allow a folder inside the published results (only `elasticity reproduce --publish` does).
    show_progress: a progress bar on a terminal, log lines otherwise; 'lines': log lines even on a terminal.
  """
  start = time.perf_counter()
  experiment.validate(config)
  out_dir = pathlib.Path(out_dir)
  with RunDir(out_dir, config, experiment=experiment.name, fresh=fresh, publishing=publishing) as run_dir:
    units = experiment.units(config)
    progress = (UnitProgress(len(units), experiment.name, bar=show_progress != "lines") if show_progress
                else None)

    def run_unit(unit, steps):
      unit_start = time.perf_counter()
      summary, arrays = experiment.run_unit(config, unit, run_dir, steps)
      return {**summary, "seconds": round(time.perf_counter() - unit_start, 2)}, arrays

    try:
      run_units(run_dir, units, run_unit, progress)
    finally:
      if progress is not None:
        progress.close()
    summary = experiment.summarize(config, run_dir)
    compute = sum(records.read_json(run_dir.unit_path(u.name)).get("seconds", 0.0) for u in units)
    records.write_json(out_dir / "summary.json", {
        **records.provenance(config, seed=getattr(config, "seed", None), experiment=experiment.name),
        "compute_seconds": round(compute, 1), "seconds_this_call": round(time.perf_counter() - start, 1),
        "summary": summary})
  return summary


def load(path: str | os.PathLike, registry: dict[str, Experiment]):
  """(experiment, config, read-only RunDir) of a saved run directory, from the experiment its config.json names."""
  name, saved = saved_experiment(path)
  if name not in registry:
    raise ValueError(f"{path} holds a run of experiment {name!r}, which this version does not know; allowed: runs "
                     f"of {', '.join(registry)}")
  experiment = registry[name]
  config = config_io.build(experiment.config_class, config_io.merge(config_io.as_dict(experiment.config_class()),
                                                                   saved))
  return experiment, config, RunDir(path, config, experiment=name, writable=False)
