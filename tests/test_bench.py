"""`elasticity bench`: every measurement is present, positive and finite; bad flags give one-line errors."""

import functools
import json
import math

import pytest

from elasticity_cli import bench_command, main
from experiments import bench as benchmark
from experiments.hooke.config import HookeConfig
from experiments.hooke.plans import TrainingPlan
from toy_models.stage_config import StageConfig

SMALL = HookeConfig(depth=4, transformer_width=8, k_grid=(10.0,), l_grid=(0.1,), seeds=1, models=("tabular",),
                    regimes=("joint",), tabular_plan=TrainingPlan(joint=StageConfig(steps=20)))
"""A small transformer, and a one-unit hooke experiment (both tests use it, so they share compilations)."""
RATES = ("seconds", "steps_per_second", "run_steps_per_second", "warmup_seconds", "final_loss_nats_per_token")


def _check_rows(rows, gradients, batches, steps):
  assert [(row["gradient"], row["runs"]) for row in rows] == [(g, r) for g in gradients for r in batches]
  for row in rows:
    assert row["steps"] == steps
    for field in RATES:
      assert math.isfinite(row[field]) and row[field] > 0, (field, row)
    assert row["steps_per_second"] == pytest.approx(steps / row["seconds"], rel=1e-2)
    assert row["run_steps_per_second"] == pytest.approx(row["runs"] * row["steps_per_second"], rel=1e-2)


def test_run_benchmark_on_a_small_model_times_training_and_hooke():
  config = benchmark.BenchConfig(steps=3, warmup_steps=2, batches=(2,), gradients=("minibatch",), hooke=SMALL)
  lines = []
  result = benchmark.run_benchmark(config, log=lines.append)
  _check_rows(result["training"], ("minibatch",), (2,), 3)
  assert math.isfinite(result["simulate_hooke_seconds"]) and result["simulate_hooke_seconds"] > 0
  device = result["device"]
  assert device["device_count"] == len(device["devices"]) >= 1 and device["cpu_count"] >= 1
  assert device["platform"] and device["jax_version"]
  model = result["model"]
  assert model["kind"] == "transformer" and model["width"] == 8 and model["depth"] == 4
  assert model["parameter_count"] > 0 and model["dtype"] == "float64" and model["stage"]["gradient"] == "minibatch"
  assert len(lines) == 3  # hooke started, hooke finished, one line per training row


def test_cli_prints_and_saves_the_json(tmp_path, capsys, monkeypatch):
  monkeypatch.setattr(bench_command, "BenchConfig", functools.partial(benchmark.BenchConfig, hooke=SMALL))
  out = tmp_path / "new" / "dir" / "bench.json"
  assert main.main(["bench", "--steps", "2", "--batches", "2", "--skip-hooke", "--out", str(out)]) == 0
  printed = json.loads(capsys.readouterr().out)
  saved = json.loads(out.read_text())
  assert printed == saved
  _check_rows(saved["training"], ("minibatch", "expected"), (2,), 2)
  assert saved["model"]["parameter_count"] > 0 and saved["model"]["width"] == 8
  assert saved["device"]["device_count"] >= 1 and saved["git_commit"]
  assert saved["config"]["steps"] == 2 and saved["config"]["batches"] == [2]
  assert "simulate_hooke_seconds" not in saved


@pytest.mark.parametrize("flags, message", [
    (["--steps", "0"], "steps=0"),
    (["--steps", "x"], "--steps 'x'"),
    (["--steps", "1,2"], "--steps '1,2'"),
    (["--batches", "0"], "batches=[0]"),
    (["--batches", "1,1"], "repeats"),
    (["--batches", ""], "batches=[]"),
    (["--batches", "8,a"], "--batches '8,a'"),
])
def test_bad_flags_give_one_line_errors(flags, message, tmp_path, capsys):
  out = tmp_path / "b.json"
  assert main.main(["bench", "--skip-hooke", "--out", str(out), *flags]) == 2
  err = capsys.readouterr().err.strip()
  assert err.startswith("elasticity: error:") and message in err and len(err.splitlines()) == 1
  assert not out.exists()


@pytest.mark.parametrize("fields", [{"warmup_steps": 0}, {"gradients": ("fast",)}, {"gradients": ()},
                                    {"seed": -1}, {"steps": True}, {"batches": (2.0,)}])
def test_bench_config_refuses_bad_values(fields):
  with pytest.raises(ValueError, match="not allowed"):
    benchmark.BenchConfig(**fields)
