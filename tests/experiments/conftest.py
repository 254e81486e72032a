"""Every registered experiment run once at its tiny scale, shared by the tests of this folder."""

import concurrent.futures
import multiprocessing

import pytest

from experiments import pipeline, registry, runner
from experiments.run_dir import RunDir
from toy_models import compilation

# Seconds of each tiny run on 2 cores with nothing compiled (measured 2026-11-27), only to start the longest first.
TINY_SECONDS = {"mitigations": 33.0, "sequential": 11.0, "rebound": 6.0, "model-size": 6.0, "hooke": 4.4,
                "resistance": 3.6}


def tiny_chain(names: tuple[str, ...], root) -> dict[str, dict]:
  """The summaries of experiments `names` run one after another at their tiny scale under root (a worker process)."""
  summaries = {}
  for name in names:
    experiment = registry.get(name)
    summaries[name] = runner.run(experiment, experiment.config("tiny"), root / name, show_progress=False)
  return summaries


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory):
  """name -> (experiment, config, summary, read-only RunDir) of a tiny run of every registered experiment.

  The experiments run in worker processes, as `elasticity reproduce` runs them (tests/experiments/test_pipeline.py
  checks that a worker gives the numbers this process gives).
  """
  root = tmp_path_factory.mktemp("tiny")
  names = list(registry.EXPERIMENTS)
  chains = pipeline.chains(list(registry.EXPERIMENTS.values()), lambda e: TINY_SECONDS.get(e.name, 1.0))
  summaries = {}
  with concurrent.futures.ProcessPoolExecutor(pipeline.default_jobs(), mp_context=multiprocessing.get_context("spawn"),
                                              initializer=pipeline.prepare_worker,
                                              initargs=(None, compilation.preset())) as pool:
    for future in [pool.submit(tiny_chain, tuple(e.name for e in chain), root) for chain in chains]:
      summaries.update(future.result())
  runs = {}
  for name in names:
    experiment = registry.get(name)
    config = experiment.config("tiny")
    runs[name] = (experiment, config, summaries[name], RunDir(root / name, config, experiment=name, writable=False))
  return runs
