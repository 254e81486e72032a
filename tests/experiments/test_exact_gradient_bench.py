"""benchmarks/exact_gradient.py: every chunk size gives the unchunked gradient, and each is timed apart."""

import importlib.util
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SPEC = importlib.util.spec_from_file_location("exact_gradient_bench", ROOT / "benchmarks" / "exact_gradient.py")
bench = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(bench)


def test_chunked_gradients_equal_the_unchunked_one_and_are_timed():
  rows = bench.measure(depth=3, width=8, layers=1, heads=2, runs=2, dtype="float64", chunks=[2, 7], repeats=1)
  # 7 responses and 4 longest ones at depth 3: one chunk of each (7 covers both), then 4 and 2 chunks of 2
  assert [(r["method"], r["chunk"], r["chunks"]) for r in rows] == [
      ("responses", 7, 1), ("rows", 7, 1), ("responses", 2, 4), ("rows", 2, 2)]
  assert rows[0]["max_relative_difference"] == 0.0
  assert all(r["max_relative_difference"] < 1e-12 for r in rows[1:])
  assert all(r["ms_per_gradient"] > 0 and r["compile_seconds"] > 0 for r in rows)


def test_bad_chunks_are_one_line_errors(capsys):
  with pytest.raises(SystemExit):
    bench.main(["--chunks", "256,x"])
  assert "--chunks '256,x': allowed: comma-separated integers >= 1" in capsys.readouterr().err
