"""Tests of the main job's scheduling: experiments in worker processes give the results they give in this process."""

import pathlib
import re

import jax
import numpy as np
import pytest

from experiments import pipeline, records, registry
from toy_models import compilation


def _run(tmp_path: pathlib.Path, jobs: int, names: tuple[str, ...]) -> dict[str, dict]:
  config = pipeline.ReproduceConfig(scale="tiny", out_dir=tmp_path / f"jobs{jobs}", only=names, jobs=jobs)
  lines = []
  outcomes = pipeline.run_experiments(config, [registry.get(n) for n in names], lines.append)
  assert [o.experiment.name for o in outcomes] == list(names)  # in the given order, whatever finished first
  assert sum("done in" in line for line in lines) == len(names)
  for outcome in outcomes:  # each experiment's compile counts, measured where it ran (here or in its worker)
    assert outcome.compiled["programs"] >= outcome.compiled["cache_hits"] >= 0
    by_program = outcome.compiled["by_program"]  # the same programs by function name, back from the worker too
    assert sum(r["programs"] for r in by_program) == outcome.compiled["programs"]
    assert sum(r["loaded"] for r in by_program) == outcome.compiled["cache_hits"]
    assert any(line.endswith(f"({compilation.describe(outcome.compiled)})") for line in lines)
  assert next(o for o in outcomes if o.experiment.name == "example").compiled["programs"] > 0  # it trains
  for outcome in outcomes:
    assert outcome.files and all(pathlib.Path(f).exists() for f in outcome.files)
    saved = records.read_json(outcome.run_dir / "summary.json")
    assert records.plain(saved["summary"]) == records.plain(outcome.summary)
  return {o.experiment.name: records.plain(o.summary) for o in outcomes}


def test_experiments_in_worker_processes_equal_experiments_run_here(tmp_path):
  names = ("theory", "example")  # example trains a transformer
  here = _run(tmp_path, 1, names)
  workers = _run(tmp_path, 2, names)
  assert workers == here  # same configs and seeds: the same numbers, bit for bit, in another process


def test_experiments_sharing_a_config_class_share_a_chain():
  experiments = [registry.get(n) for n in ("theory", "rebound", "mitigations", "model-size", "families")]
  seconds = {"theory": 1.0, "rebound": 5.0, "model-size": 5.0, "families": 5.0, "mitigations": 12.0}
  chains = pipeline.chains(experiments, lambda e: seconds[e.name])
  assert [[e.name for e in chain] for chain in chains] == [["rebound", "model-size", "families"], ["mitigations"],
                                                           ["theory"]]  # 15 s, 12 s, 1 s: the longest first


def test_a_bad_job_count_is_a_one_line_error():
  for jobs in (0, -1, True, 1.5):
    with pytest.raises(ValueError, match=r"jobs=.* is not allowed; allowed: an integer >= 1"):
      pipeline.ReproduceConfig(jobs=jobs)


def test_the_longest_expected_experiment_starts_first(tmp_path):
  config = pipeline.ReproduceConfig(scale="tiny", out_dir=tmp_path)
  theory, hooke = registry.get("theory"), registry.get("hooke")
  for experiment, seconds in ((theory, 5.0), (hooke, 50.0)):
    records.write_json(config.data / experiment.name / "summary.json", {"compute_seconds": seconds})
  assert pipeline.expected_seconds(config, theory) == 5.0 and pipeline.expected_seconds(config, hooke) == 50.0
  mitigations = registry.get("mitigations")  # no run in the folder: the seconds its scales.toml records
  assert pipeline.expected_seconds(config, mitigations) == mitigations.expected_seconds("tiny") > 0
  for experiment in registry.EXPERIMENTS.values():  # every experiment says how long its first runs take
    assert all((experiment.expected_seconds(scale) or 0) > 0
               for scale in (("tiny", "quick") if experiment.in_reproduce else ("tiny",))), experiment.name
  assert pipeline.default_jobs() >= 1 and pipeline.default_jobs("paper") == 1  # paper: one process's memory at once


def test_a_worker_error_keeps_the_worker_traceback(tmp_path):
  """An unexpected error in a worker (here: the units folder of its run is a file) reaches the caller with the
  worker's frames."""
  config = pipeline.ReproduceConfig(scale="tiny", out_dir=tmp_path, only=("theory", "example"), jobs=2)
  (config.data / "theory").mkdir(parents=True)
  (config.data / "theory" / "units").write_text("not a folder")
  with pytest.raises(OSError) as raised:
    pipeline.run_experiments(config, [registry.get("theory"), registry.get("example")], lambda line: None)
  assert "_run_in_worker" in str(raised.value.__cause__)  # the traceback text of the worker process


def test_the_job_ends_with_its_compile_counts_in_all_and_by_function(tmp_path):
  def preface(target):  # stands in for the claims check, which runs in this process
    jax.jit(lambda x: x * 7.0 - 1.0)(np.arange(5.0)).block_until_ready()
    return []

  lines = []
  config = pipeline.ReproduceConfig(scale="tiny", out_dir=tmp_path, only=("theory",), jobs=1)
  pipeline.reproduce(config, preface=preface, log=lines.append)
  total = next(line for line in lines if line.startswith("compilation, every step and process together: "))
  by_function = next(line for line in lines if line.startswith("compile time by function, every step and process "
                                                                 "together: "))
  programs = int(total.split(": ")[1].split()[0])
  assert programs >= 1 and "jit(<lambda>) " in by_function
  named = [int(re.search(r"(\d+) programs?\b", part)[1]) for part in by_function.split(": ", 1)[1].split("; ")]
  assert sum(named) == programs  # every program of the job, named or among the others
