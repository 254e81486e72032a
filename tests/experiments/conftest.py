"""Every registered experiment run once at its tiny scale, shared by the tests of this folder."""

import pytest

from experiments import registry, runner
from experiments.run_dir import RunDir


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory):
  """name -> (experiment, config, summary, read-only RunDir) of a tiny run of every registered experiment."""
  root = tmp_path_factory.mktemp("tiny")
  runs = {}
  for name, experiment in registry.EXPERIMENTS.items():
    config = experiment.config("tiny")
    summary = runner.run(experiment, config, root / name, show_progress=False)
    runs[name] = (experiment, config, summary, RunDir(root / name, config, experiment=name, writable=False))
  return runs
