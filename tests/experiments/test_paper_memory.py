"""benchmarks/paper_memory.py: every experiment of the main job is measured, and its overrides give a valid config
with the paper scale's sizes."""

import importlib.util
import pathlib

import pytest

from elasticity_cli import config_flags
from elasticity_cli.main import build_parser
from experiments import registry

ROOT = pathlib.Path(__file__).resolve().parents[2]
SPEC = importlib.util.spec_from_file_location("paper_memory", ROOT / "benchmarks" / "paper_memory.py")
paper_memory = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(paper_memory)


def test_every_trained_experiment_of_the_main_job_is_measured():
  trained = {e.name for e in registry.EXPERIMENTS.values() if e.in_reproduce and e.name != "theory"}
  assert set(paper_memory.SETTINGS) == trained


@pytest.mark.parametrize("name", sorted(paper_memory.SETTINGS))
def test_the_overrides_give_a_valid_paper_config_with_the_same_sizes(name):
  argv = ["simulate", name, "--scale", "paper", *paper_memory.EXTRA_FLAGS.get(name, [])]
  for setting in paper_memory.SETTINGS[name]:
    argv += ["--set", setting]
  args = build_parser().parse_args(argv)
  experiment = registry.get(name)
  cut = experiment.config("paper", config_flags.overrides(args, experiment.config_class))
  paper = experiment.config("paper", {})
  for field in ("depth", "seeds", "model_sizes", "width", "layers", "transformer_width", "transformer_widths"):
    assert getattr(cut, field, None) == getattr(paper, field, None), field  # memory depends on the sizes
  assert cut != paper
