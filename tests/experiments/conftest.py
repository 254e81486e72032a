"""Every registered experiment run once at its tiny scale, shared by the tests of this folder."""

import atexit
import pathlib
import shutil
import tempfile

import pytest

from experiments import pipeline, registry, runner
from experiments.run_dir import RunDir

_started: dict = {}  # the background tiny runs of this session: root folder and futures (start_tiny_runs)


def tiny_chain(names: tuple[str, ...], root) -> dict[str, dict]:
  """The summaries of experiments `names` run one after another at their tiny scale under root (a worker process)."""
  summaries = {}
  for name in names:
    experiment = registry.get(name)
    summaries[name] = runner.run(experiment, experiment.config("tiny"), root / name, show_progress=False)
  return summaries


def start_tiny_runs() -> None:
  """Starts the tiny runs in worker processes (once per session), chained as `elasticity reproduce` chains them."""
  if _started:
    return
  root = pathlib.Path(tempfile.mkdtemp(prefix="elasticity-tiny-"))
  atexit.register(shutil.rmtree, root, ignore_errors=True)
  chains = pipeline.chains(list(registry.EXPERIMENTS.values()), lambda e: e.expected_seconds("tiny") or 0.0)
  pool = pipeline.worker_pool(pipeline.default_jobs())
  atexit.register(pool.shutdown, cancel_futures=True)
  _started.update(root=root, pool=pool,
                  futures=[pool.submit(tiny_chain, tuple(e.name for e in chain), root) for chain in chains])


def pytest_collection_finish(session):
  """When a collected test needs the tiny runs, they start now and train while the tests before it run."""
  if any("tiny_runs" in getattr(item, "fixturenames", ()) for item in session.items):
    start_tiny_runs()


@pytest.fixture(scope="session")
def tiny_runs():
  """name -> (experiment, config, summary, read-only RunDir) of a tiny run of every registered experiment.

  The experiments run in worker processes, as `elasticity reproduce` runs them (tests/experiments/test_pipeline.py
  checks that a worker gives the numbers this process gives), started when collection finished.
  """
  start_tiny_runs()
  summaries = {}
  for future in _started["futures"]:
    summaries.update(future.result())
  runs = {}
  for name in registry.EXPERIMENTS:
    experiment = registry.get(name)
    config = experiment.config("tiny")
    runs[name] = (experiment, config, summaries[name],
                  RunDir(_started["root"] / name, config, experiment=name, writable=False))
  return runs
