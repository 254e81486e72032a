"""`elasticity bench`: every measurement is present, consistent and finite; bad flags give one-line errors."""

import json
import math

import jax
import numpy as np
import pytest

from elasticity_cli import main
from experiments import bench
from toy_models import compilation

SMALL = dict(workloads=("w16",), dtypes=("float32",), runs=(1, 3), steps_scale=0.02, warmup_steps=1,
             sweep_runs=2, sweep_steps=3, accuracy=False)
"""Every loop of the bench at its smallest: one float type (both are trained throughout the other tests), two run
counts, both sweep presets (each sweep compiles from scratch: 10.5 s with both float types, 2-core CPU)."""


def test_run_benchmark_times_every_workload_dtype_and_run_count():
  lines = []
  result = bench.run_benchmark(bench.BenchConfig(**SMALL), log=lines.append)
  rows = result["training"]
  assert [(r["dtype"], r["runs"]) for r in rows] == [("float32", 1), ("float32", 3)]
  for row in rows:
    assert row["steps"] == 2 and row["workload"] == "w16" and row["parameter_count"] > 0
    for field in ("seconds", "steps_per_second", "run_steps_per_second", "compile_seconds_included"):
      assert math.isfinite(row[field]) and row[field] > 0, (field, row)
    assert row["steps_per_second"] == pytest.approx(row["steps"] / row["seconds"], rel=1e-2)
    assert row["run_steps_per_second"] == pytest.approx(row["runs"] * row["steps_per_second"], rel=1e-2)
    assert row["programs_compiled"] >= 0 and math.isfinite(row["final_loss_nats_per_token"])
  assert [(s["preset"], s["dtype"]) for s in result["sweep"]] == [("optimized", "float32"), ("fast-compile", "float32")]
  assert all(s["runs"] == 2 and s["steps"] == 3 and s["seconds"] > 0 for s in result["sweep"])
  assert len({s["programs_compiled"] for s in result["sweep"]}) == 1  # each sweep from scratch: the same programs
  assert result["compilation"]["programs"] >= sum(r["programs_compiled"] for r in rows)
  assert result["device"]["device_count"] >= 1 and len(lines) == len(rows) + len(result["sweep"])
  assert result["runs_per_call"] == compilation.runs_per_call()  # the table's: the preset of this process
  cap = compilation.CPU_RUNS_PER_CALL * len(jax.local_devices())
  assert [s["runs_per_call"] for s in result["sweep"]] == [None, cap]  # optimized: one call; fast-compile: shared


def test_the_sweep_keeps_the_fastest_of_its_repeats_each_compiled_without_the_persistent_cache(monkeypatch):
  before = jax.config.jax_enable_compilation_cache
  seen, times = [], iter([3.0, 2.0, 2.5])

  def fake_train(workload, dtype, runs, steps, seed):
    seconds = next(times)
    seen.append((jax.config.jax_enable_compilation_cache, compilation.preset(), workload.name, runs, steps))
    return seconds, np.array([seconds, seconds]), compilation.CompileStats(programs=int(2 * seconds),
                                                                            compile_seconds=seconds / 2)

  monkeypatch.setattr(bench, "_train", fake_train)
  row = bench.sweep(bench.BenchConfig(sweep_runs=8, sweep_steps=800, sweep_repeats=3), "float32", "fast-compile")
  assert seen == [(False, "fast-compile", "w16", 8, 800)] * 3
  assert jax.config.jax_enable_compilation_cache == before and compilation.preset() != "fast-compile"
  assert row["seconds"] == 2.0 and row["seconds_each"] == [3.0, 2.0, 2.5]
  assert row["programs_compiled"] == 4 and row["compile_seconds"] == 1.0 and row["final_loss_nats_per_token"] == 2.0
  assert row["ms_per_run_step"] == pytest.approx(2000 / 6400, rel=1e-3)
  with pytest.raises(ValueError, match=r"sweep_repeats=0 is not allowed; allowed: an integer 1\.\."):
    bench.BenchConfig(sweep_repeats=0)



def test_first_calls_compile_without_the_persistent_cache_and_the_setting_comes_back(monkeypatch):
  before = jax.config.jax_enable_compilation_cache
  seen = []

  def fake_train(workload, dtype, runs, steps, seed):
    seen.append((jax.config.jax_enable_compilation_cache, workload.name, runs, steps))
    return 1.0, np.array([1.0] * runs), compilation.CompileStats(programs=1, compile_seconds=0.5)

  monkeypatch.setattr(bench, "_train", fake_train)
  config = bench.BenchConfig(workloads=("w16",), dtypes=("float32",), runs=(1, 4), steps_scale=0.02, warmup_steps=1,
                             sweep_runs=0, accuracy=False)
  result = bench.run_benchmark(config)
  assert seen == [(False, "w16", 1, 1), (False, "w16", 1, 2), (False, "w16", 4, 1), (False, "w16", 4, 2)]
  assert [row["runs"] for row in result["training"]] == [1, 4]
  assert jax.config.jax_enable_compilation_cache == before

def test_cli_prints_a_table_and_saves_the_json(tmp_path, capsys):
  out = tmp_path / "new" / "dir" / "bench.json"
  argv = ["bench", "--workloads", "w16", "--dtypes", "float64", "--runs", "2", "--steps-scale", "0.02",
          "--sweep-runs", "0", "--accuracy", "false", "--out", str(out)]
  assert main.main(argv) == 0
  printed = capsys.readouterr().out
  saved = json.loads(out.read_text())
  assert "w16" in printed and "run-steps/s" in printed and saved["sweep"] == []
  assert saved["config"]["runs"] == [2] and saved["git_commit"] and saved["training"][0]["runs"] == 2
  counts = saved["compilation"]  # the last line: what the whole measurement compiled, in reproduce's words
  assert counts["programs"] >= saved["training"][0]["programs_compiled"] > 0
  assert printed.strip().splitlines()[-1] == f"in all: {compilation.describe(counts)}"
  by_program = saved["compilation_by_program"]  # the same programs by function name, each printed on its line
  assert sum(row["programs"] for row in by_program) == counts["programs"]
  assert sum(row["loaded"] for row in by_program) == counts["cache_hits"]
  assert sum(row["seconds"] for row in by_program) == pytest.approx(counts["compile_seconds"])
  assert "jit(_segment)" in {row["name"] for row in by_program}  # the training loop
  lines = printed.strip().splitlines()
  for row in by_program:
    assert any(line.split()[:3] == [row["name"], str(row["programs"]), "programs,"] for line in lines), row


@pytest.mark.parametrize("flags, message", [
    (["--runs", "0"], "runs=[0]"),
    (["--runs", "1,1"], "repeats"),
    (["--workloads", "w99"], "workloads=['w99']"),
    (["--dtypes", "float16"], "dtypes=['float16']"),
    (["--warmup-steps", "0"], "warmup_steps=0"),
    (["--steps-scale", "-1"], "steps_scale=-1"),
])
def test_bad_flags_give_one_line_errors(flags, message, tmp_path, capsys):
  out = tmp_path / "b.json"
  assert main.main(["bench", "--out", str(out), *flags]) == 2
  err = capsys.readouterr().err.strip()
  assert err.startswith("elasticity: error:") and message in err and len(err.splitlines()) == 1
  assert not out.exists()


def test_torch_comparison_pairs_like_with_like_and_reads_only_torch_loop_output(tmp_path):
  reference = {"torch": "2.13.0+cpu", "threads": 2, "rows": [
      {"workload": "w16", "dtype": "float32", "runs": 8, "steps": 800, "seconds": 10.0, "ms_per_run_step": 1.5625},
      {"workload": "w64", "dtype": "float32", "runs": 4, "steps": 100, "seconds": 4.0, "ms_per_run_step": 10.0}]}
  saved = {"torch_reference": reference,
           "sweep": [{"dtype": "float32", "runs": 8, "steps": 800, "seconds": 2.5},  # no preset: optimized
                     {"dtype": "float32", "preset": "fast-compile", "runs": 8, "steps": 800, "seconds": 2.0,
                      "cache_hits": 3}],
           "training": [{"workload": "w64", "dtype": "float32", "runs": 1, "run_steps_per_second": 50.0},
                        {"workload": "w64", "dtype": "float32", "runs": 8, "run_steps_per_second": 200.0},
                        {"workload": "w16", "dtype": "float32", "runs": 1, "run_steps_per_second": 1.0}]}
  lines = bench.torch_comparison_lines(saved)
  assert lines[2:] == ["| workload | float32 |", "|---|---|",
                       "| w16, 8 runs × 800 steps (s; ours compiling included, optimized) | 10 / 2.5 / 4.00 |",
                       "| w16, 8 runs × 800 steps (s; ours programs loaded from the persistent cache, fast-compile) "
                       "| 10 / 2 / 5.00 |",
                       "| w64, 1 run (ms per run-step) | 10 / 20 / 0.50 |",  # 50 run-steps/s = 20 ms
                       "| w64, best vmapped (ms per run-step) | 10 / 5 / 2.00 (8 runs) |"]
  one_run_best = [{**saved["training"][0], "run_steps_per_second": 250.0}, saved["training"][1]]
  assert (bench.torch_comparison_lines({**saved, "training": one_run_best})[-1]
          == "| w64, best vmapped (ms per run-step) | 10 / 4 / 2.50 (1 run) |")
  assert "one run after another, run on this machine" in lines[0]  # one time per row: no "fastest of"
  repeated = {**reference, "rows": [{**row, "seconds_each": [row["seconds"], 11.0]} for row in reference["rows"]]}
  assert "one run after another, fastest of 2, run on" in bench.torch_comparison_lines(
      {**saved, "torch_reference": repeated})[0]
  path = tmp_path / "torch.json"
  path.write_text(json.dumps(reference))
  assert bench.read_torch_reference(path) == reference
  path.write_text(json.dumps({"rows": []}))
  with pytest.raises(ValueError, match=r"is not the JSON of benchmarks/torch_loop\.py"):
    bench.read_torch_reference(path)
  with pytest.raises(ValueError, match=r"cannot be read"):
    bench.read_torch_reference(tmp_path / "missing.json")


def test_the_speed_block_names_the_processor_on_a_cpu_and_the_accelerator_elsewhere():
  device = {"platform": "cpu", "device_kind": "cpu", "cpu_model": "Some CPU 9000", "cpu_count": 2,
            "load_average_1min": 1.0, "jax_version": "0"}
  saved = {"device": device, "compilation": {"cache_hits": 0, "programs": 1}, "sweep": [], "training": []}
  assert "Measured on Some CPU 9000 (cpu, 2 CPUs" in bench.markdown(saved)
  sweep = {"dtype": "float32", "preset": "fast-compile", "runs": 8, "steps": 800, "seconds": 3.3,
           "seconds_each": [3.5, 3.3, 3.4]}
  assert ("- Sweep of 8 runs × 800 steps from scratch, with compilation (fastest of 3): 3.3 s in float32 "
          "(fast-compile XLA options)") in bench.markdown({**saved, "sweep": [sweep]})
  older = {**saved, "device": {key: value for key, value in device.items() if key != "cpu_model"}}
  assert "Measured on cpu (cpu, 2 CPUs" in bench.markdown(older)
  gpu = {**saved, "device": {**device, "platform": "gpu", "device_kind": "NVIDIA H200"}}
  assert "Measured on NVIDIA H200 (gpu" in bench.markdown(gpu)
  assert "the table's batches train in calls of 4 runs" in bench.markdown({**saved, "runs_per_call": 4})
  assert "calls of" not in bench.markdown(gpu) + bench.markdown({**gpu, "runs_per_call": None})
  split = [{**sweep, "preset": "optimized", "runs_per_call": None}, {**sweep, "runs_per_call": 4}]
  text = bench.markdown({**saved, "sweep": split})
  assert "(fast-compile XLA options, in calls of 4 runs)" in text and "(optimized XLA options)" in text
  assert bench.cpu_model() and bench.device_info()["cpu_model"] == bench.cpu_model()


def test_sweep_lines_of_a_log_keep_their_preset_and_older_logs_read_as_optimized():
  text = ("bench: sweep of 8 runs x 800 steps, float64: 3.7 s with compilation (3 programs, 1.5 s compiling)\n"
          "bench: sweep of 8 runs x 800 steps, float32 fast-compile: 2.1 s with compilation (3 programs, 0.7 s "
          "compiling)\n")
  _, sweeps = bench.rows_from_log(text)
  assert [(s["dtype"], s["preset"], s["seconds"], s["compile_seconds"]) for s in sweeps] == [
      ("float64", "optimized", 3.7, 1.5), ("float32", "fast-compile", 2.1, 0.7)]
  with pytest.raises(ValueError, match=r"sweep_presets=\['fastest'\] is not allowed"):
    bench.BenchConfig(sweep_presets=("fastest",))
