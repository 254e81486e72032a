"""benchmarks/paper_memory.py: every experiment of the main job is measured, and its overrides give a valid config
with the paper scale's sizes."""

import importlib.util
import pathlib
import sys

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


def test_a_run_past_its_timeout_is_interrupted_and_reported(tmp_path):
  sleeper = [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"]
  code, peak, seconds, timed_out = paper_memory.peak_of(sleeper, tmp_path / "log", timeout=1.0)
  assert timed_out and code != 0 and seconds < 20 and peak > 0
  assert (tmp_path / "log").read_text().startswith("up")
  code, _, _, timed_out = paper_memory.peak_of([sys.executable, "-c", "pass"], tmp_path / "log", timeout=30.0)
  assert (code, timed_out) == (0, False)


def test_full_budgets_run_the_paper_scale_as_it_is():
  full = paper_memory.command_of("hooke", pathlib.Path("out"), full_budgets=True)
  cut = paper_memory.command_of("hooke", pathlib.Path("out"), full_budgets=False)
  assert full[-4:] == ["--scale", "paper", "--out-dir", "out"] and "--set" not in full
  assert cut[:len(full)] == full and cut.count("--set") == len(paper_memory.SETTINGS["hooke"])
