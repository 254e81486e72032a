"""End-to-end `elasticity simulate hooke` on a tiny grid: results, resuming, config checks, interruption."""

import json
import time

import pytest

from elasticity_cli import simulate_hooke
from elasticity_cli.main import build_parser, main
from toy_models import hooke

FLAGS = ["--models", "tabular,ngram", "--k-grid", "10,100", "--l-grid", "0.01", "--seeds", "2", "--depth", "4",
         "--steps", "300"]
TOML = """
models = ["tabular", "ngram"]
k_grid = [10, 100]
l_grid = [0.01]
seeds = 2
depth = 4
[tabular_plan.joint]
steps = 300
[ngram_plan.joint]
steps = 300
[transformer_plan.joint]
steps = 300
"""


def simulate(out_dir, *extra):
  return main(["simulate", "hooke", *extra, "--out-dir", str(out_dir)])


def unit_times(out_dir) -> dict[str, int]:
  return {path.name: path.stat().st_mtime_ns for path in sorted((out_dir / "units").iterdir())}


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
  """A finished run of FLAGS: its directory and how long it took."""
  out_dir = tmp_path_factory.mktemp("hooke")
  start = time.perf_counter()
  assert simulate(out_dir, *FLAGS) == 0
  return out_dir, time.perf_counter() - start


def test_run_saves_units_and_a_summary_with_acceptance(first_run):
  out_dir, _ = first_run
  summary = json.loads((out_dir / "summary.json").read_text())["summary"]
  assert {"acceptance", "tabular/joint", "tabular/sequential", "ngram/joint", "ngram/sequential"} <= set(summary)
  assert isinstance(summary["acceptance"]["passed"], bool)
  names = {u.name for u in hooke.units(simulate_hooke.config_from_args(build_parser().parse_args(
      ["simulate", "hooke", *FLAGS])))}
  assert len(names) == 8
  assert set(unit_times(out_dir)) == {f"{n}{suffix}" for n in names for suffix in (".json", ".npz")}


def test_rerun_skips_finished_units(first_run):
  out_dir, first_seconds = first_run
  before = unit_times(out_dir)
  start = time.perf_counter()
  assert simulate(out_dir, *FLAGS) == 0
  assert time.perf_counter() - start < first_seconds / 2
  assert unit_times(out_dir) == before


def test_changed_config_in_the_same_dir_is_refused(first_run, capsys):
  out_dir, _ = first_run
  before = unit_times(out_dir)
  assert simulate(out_dir, *FLAGS, "--seeds", "3") == 2
  err = capsys.readouterr().err.rstrip().splitlines()
  assert err[-1].startswith("elasticity: error: ") and "differs in seeds" in err[-1]
  assert unit_times(out_dir) == before


def test_config_file_gives_the_same_config_as_the_flags(first_run, tmp_path):
  out_dir, _ = first_run
  path = tmp_path / "hooke.toml"
  path.write_text(TOML)
  parse = build_parser().parse_args
  from_flags = simulate_hooke.config_from_args(parse(["simulate", "hooke", *FLAGS]))
  assert simulate_hooke.config_from_args(parse(["simulate", "hooke", "--config", str(path)])) == from_flags
  before = unit_times(out_dir)
  assert simulate(out_dir, "--config", str(path)) == 0  # the run directory accepts it as its own config
  assert unit_times(out_dir) == before


def test_interrupted_run_keeps_finished_units_and_resumes(tmp_path, monkeypatch, capsys):
  flags = [*FLAGS, "--regimes", "joint"]
  calls = []
  run_unit = hooke.run_unit

  def interrupt_second(*args, **kwargs):
    calls.append(args[1].name)
    if len(calls) == 2:
      raise KeyboardInterrupt
    return run_unit(*args, **kwargs)

  monkeypatch.setattr(hooke, "run_unit", interrupt_second)
  assert simulate(tmp_path, *flags) == 130
  assert "interrupted" in capsys.readouterr().err
  first = calls[0]
  assert set(unit_times(tmp_path)) == {f"{first}.json", f"{first}.npz"}
  assert not (tmp_path / "summary.json").exists()
  saved = unit_times(tmp_path)
  monkeypatch.setattr(hooke, "run_unit", run_unit)
  assert simulate(tmp_path, *flags) == 0
  times = unit_times(tmp_path)
  assert len(times) == 2 * 4 and all(times[name] == saved[name] for name in saved)
  assert (tmp_path / "summary.json").exists()
