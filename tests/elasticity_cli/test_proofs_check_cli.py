"""Tests of `elasticity check` run in-process: outputs, single-claim reruns, exit codes, bad input."""

import json

import numpy as np
import pytest

from elasticity_cli import main as cli
from proofs_check import claims
from theory import elasticity


def test_check_writes_json_and_markdown(tmp_path, capsys):
  assert cli.main(["check", "--examples", "4", "--seed", "3", "--out-dir", str(tmp_path)]) == 0
  printed = capsys.readouterr().out
  assert "claim" in printed and "worst error" in printed and "refuted (counterexample)" in printed
  record = json.loads((tmp_path / "data/claims.json").read_text())
  assert [c["id"] for c in record["claims"]] == [c.id for c in claims.CLAIMS]
  assert record["provenance"]["seed"] == 3 and "git_commit" in record["provenance"]
  table = (tmp_path / "claims_table.md").read_text().splitlines()
  assert table[1].startswith("| claim | statement | status | tried | worst error | note |")
  assert len([line for line in table if line.startswith("| ")]) == 1 + len(claims.CLAIMS)


def test_check_one_claim_leaves_full_table_alone(tmp_path):
  assert cli.main(["check", "--claim", "5", "--examples", "6", "--out-dir", str(tmp_path)]) == 0
  record = json.loads((tmp_path / "data/claims_5.json").read_text())
  assert [c["id"] for c in record["claims"]] == ["5a", "5b"]
  assert all(c["examples"] == 6 for c in record["claims"])
  assert not (tmp_path / "claims_table.md").exists() and not (tmp_path / "data/claims.json").exists()


def test_check_exits_nonzero_when_a_holding_claim_fails(tmp_path, monkeypatch, capsys):
  original = elasticity.rate_derivatives
  monkeypatch.setattr(elasticity, "rate_derivatives",
                      lambda P, sizes, **kw: original(P, sizes, **kw) * np.array([1.0, 1.01, 1.0]))
  assert cli.main(["check", "--claim", "4", "--examples", "20", "--out-dir", str(tmp_path)]) == 1
  assert "FAILED" in capsys.readouterr().out
  record = json.loads((tmp_path / "data/claims_4.json").read_text())
  assert record["claims"][0]["shrunk_counterexample"] is not None


@pytest.mark.parametrize("argv, words", [
    (["--claim", "42"], ["'42'", "allowed"]),
    (["--claim", "x"], ["'x'", "allowed"]),
    (["--examples", "0"], ["examples=0", "allowed"]),
    (["--seed", "-3"], ["seed=-3", "allowed"]),
])
def test_check_bad_input_is_one_line_error(tmp_path, capsys, argv, words):
  assert cli.main(["check", "--out-dir", str(tmp_path), *argv]) == 2
  error = capsys.readouterr().err.strip()
  assert error.startswith("elasticity: error:") and len(error.splitlines()) == 1
  for word in words:
    assert word in error


def test_a_check_under_another_hypothesis_release_says_so(tmp_path, monkeypatch, capsys):
  import hypothesis

  from elasticity_cli import check_command

  published = tmp_path / "claims.json"
  published.write_text(json.dumps({"provenance": {"package_versions": {"hypothesis": hypothesis.__version__}}}))
  assert check_command.hypothesis_version_note(published) is None
  assert check_command.hypothesis_version_note(tmp_path / "absent.json") is None
  assert check_command.hypothesis_version_note(None) is None
  published.write_text(json.dumps({"provenance": {"package_versions": {"hypothesis": "6.100.0"}}}))
  note = check_command.hypothesis_version_note(published)
  assert f"hypothesis 6.100.0, this is {hypothesis.__version__}" in note and "\n" not in note
  monkeypatch.setattr(hypothesis, "__version__", "0.0.1")  # the published claims.json of the checkout, another release
  assert cli.main(["check", "--claim", "4", "--examples", "2", "--out-dir", str(tmp_path / "out")]) == 0
  assert "this is 0.0.1: a seed draws other configurations" in capsys.readouterr().out
