"""`elasticity bench`: the JSON has every measurement, positive and finite; bad flags give one-line errors."""

import json
import math

import pytest

from elasticity_cli import main


def test_bench_reports_throughput_for_each_batch_and_gradient(tmp_path, capsys):
  out = tmp_path / "bench.json"
  assert main.main(["bench", "--steps", "3", "--batches", "2", "--skip-hooke", "--out", str(out)]) == 0
  saved = json.loads(out.read_text())
  rows = saved["training"]
  assert {(row["gradient"], row["runs"]) for row in rows} == {(g, r) for g in ("minibatch", "expected") for r in (2,)}
  for row in rows:
    for field in ("seconds", "steps_per_second", "run_steps_per_second", "final_loss_nats_per_token"):
      assert math.isfinite(row[field]) and row[field] > 0
    assert row["run_steps_per_second"] == pytest.approx(row["runs"] * row["steps_per_second"], rel=1e-2)
  assert saved["model"]["parameter_count"] > 0 and saved["device"]["device_count"] >= 1
  assert "git_commit" in saved and "simulate_hooke_seconds" not in saved
  assert '"training"' in capsys.readouterr().out


@pytest.mark.parametrize("flags, message", [(["--steps", "0"], "steps=0"), (["--batches", "0"], "batches=[0]")])
def test_bad_flags_give_one_line_errors(flags, message, tmp_path, capsys):
  assert main.main(["bench", "--skip-hooke", "--out", str(tmp_path / "b.json"), *flags]) == 2
  err = capsys.readouterr().err.strip()
  assert message in err and len(err.splitlines()) == 1
