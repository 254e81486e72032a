"""experiments/gpu_paper.py: the docs block is the saved device output; units and outcomes are read correctly."""

import json
import pathlib

from experiments import gpu_paper, readme_blocks

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_docs_block_is_the_saved_device_output():
  block = readme_blocks.block((ROOT / "docs" / "USAGE.md").read_text(), "gpu-paper")
  assert block is not None and block.strip() == gpu_paper.markdown().strip()


def test_units_done_counts_each_unit_once():
  log = ("[x 1.0 s] unit 1/5 a started\n[x 2.0 s] unit 1/5 a done and saved\n[x 2.0 s] unit 2/5 b started\n"
         "[x 3.0 s] unit 2/5 b done and saved\nelasticity: interrupted\n[x 3.0 s] unit 2/5 b done and saved\n"
         "[x 3.0 s] unit 3/5 c started\n")
  assert gpu_paper.units_done(log) == (2, 5)
  assert gpu_paper.units_done("[x 0.0 s] unit 1/5 a started\n") == (0, None)


def _row(name, code, timed_out, seconds):
  return {"experiment": name, "exit_code": code, "timed_out": timed_out, "peak_resident_bytes": 2.5e9,
          "seconds": seconds, "command": "..."}


def test_markdown_reports_each_outcome_and_corrects_the_finished_runs_verdicts(tmp_path):
  (tmp_path / "gpu.txt").write_text("Some GPU, 80 GiB, 1.0\njax 9 [GpuDevice]\n")
  (tmp_path / "gpu_call2.txt").write_text("Other GPU, 40 GiB, 2.0\njax 10 [GpuDevice]\n"
                                          "training's exact gradient in chunks of 64\n")
  (tmp_path / "provenance.json").write_text(json.dumps({"sessions": [
      {"calls": [1], "date_utc": "2026-01-01", "code": "commit abc"},
      {"calls": [2], "date_utc": "2026-01-02", "code": "commit def"}]}))
  rows = [_row("a", 0, False, 12.0), _row("b", 1, False, 3.0), _row("c", -9, True, 40.0)]
  (tmp_path / "full_call1.json").write_text(json.dumps({"cpu_count": 4, "jobs": 2, "timeout_seconds": 40.0,
                                                        "rows": rows}))
  (tmp_path / "full_call2.json").write_text(json.dumps({"cpu_count": 8, "jobs": 8, "timeout_seconds": 50.0,
                                                        "rows": [_row("c", 0, False, 7.0)]}))
  (tmp_path / "logs").mkdir()
  (tmp_path / "logs" / "full_call1_c.log").write_text("[c 5 s] unit 1/3 u done and saved\n")
  (tmp_path / "logs" / "full_call2_c.log").write_text("[c 5 s] unit 2/3 v done and saved\n"
                                                      "[c 6 s] unit 3/3 w done and saved\n")
  (tmp_path / "exact_gradient_call2.json").write_text(json.dumps({"settings": {"dtype": "float64", "runs": 25},
                                                                  "rows": [
      {"method": "responses", "chunk": 8, "chunks": 4, "compile_seconds": 2.0, "ms_per_gradient": 20.0,
       "max_relative_difference": 0.0},
      {"method": "rows", "chunk": 8, "chunks": 2, "compile_seconds": 1.5, "ms_per_gradient": 9.44,
       "max_relative_difference": 2e-15}]}))
  verdict = {"key": "k", "claim": "an effect", "paper_direction": "positive", "smallest_effect_of_interest": 0.1,
             "consistency_check": False,
             "effect": {"estimate": 1.0, "ci_low": 0.5, "ci_high": 1.5, "confidence": 0.95, "units": "u", "what": "w",
                        "interval": "t"},
             "test": {"name": "a test", "statistic": 1.0, "p_value": 0.02, "alternative": "greater", "exact": True,
                      "n_permutations": 1024, "p_floor": 1 / 1024}}
  (tmp_path / "finished" / "a").mkdir(parents=True)
  (tmp_path / "finished" / "a" / "summary.json").write_text(json.dumps({"compute_seconds": 31.4, "summary": {
      "verdicts": [verdict, {**verdict, "key": "k2", "test": {**verdict["test"], "p_value": 0.03}}]}}))
  text = gpu_paper.markdown(tmp_path)
  assert ("- Call 1: Some GPU (jax 9 [GpuDevice]), 4 CPU cores, 2026-01-01, code of commit abc; training's exact "
          "gradient in the chunks of its default then.") in text
  assert ("- Call 2: Other GPU (jax 10 [GpuDevice]), 8 CPU cores, 2026-01-02, code of commit def; training's exact "
          "gradient in chunks of 64.") in text
  assert "2 processes at once sharing the GPU, each stopped after 40 s." in text
  assert "| a | finished in 12 s, 2.5 GB host | — |" in text
  assert "| b | FAILED (exit 1) in 3 s, 2.5 GB host | — |" in text
  assert ("| c | stopped at 40 s, 1/3 units done here, 2.5 GB host | finished in 7 s (2 of 3 units here, the others "
          "resumed), 2.5 GB host |") in text
  table = text.index("| 2 | float64 | 25 | rows | 8 | 2 | 9.4 | 1.5 | 2.0e-15 |")
  assert table < text.index("| 2 | float64 | 25 | responses | 8 | 4 | 20.0 | 2.0 | 0.0e+00 |")  # fastest first
  assert "its units summed over the calls that ran them: a 31 s." in text
  assert "(a), Holm-corrected together (2 tests;" in text
  assert "| a:k: an effect |" in text and "| 0.02 | 0.04 | SHOWN |" in text and "| 0.03 | 0.04 | SHOWN |" in text
