"""Tests of proofs_check: every claim's pass path, planted errors that each check must catch, determinism."""

import contextlib
import dataclasses
import json
import math

import hypothesis
import numpy as np
import pytest

import proofs_check
from proofs_check import claims, constants, report, run, stationary_checks
from theory import compression, elasticity, mixture, symbolic


def _examples() -> int:
  """Examples per claim from the active hypothesis profile (tests/conftest.py: fast or thorough)."""
  return hypothesis.settings().max_examples


EXPECTED_STATUS = {
    "1a": run.VERIFIED, "1b": run.REFUTED, "1c": run.VERIFIED, "2": run.PROVEN, "3": run.PROVEN, "4": run.PROVEN,
    "5a": run.PROVEN, "5b": run.CONDITIONAL, "6a": run.PROVEN, "6b": run.PROVEN, "7a": run.CONDITIONAL,
    "7b": run.REFUTED, "8a": run.MEASURED, "8b": run.REFUTED, "9": run.PROVEN, "10": run.PROVEN,
}


def test_registry_covers_issue_claims_in_order():
  assert [c.id for c in claims.CLAIMS] == list(EXPECTED_STATUS)
  assert sorted({c.number for c in claims.CLAIMS}) == list(range(1, 11))
  for claim in claims.CLAIMS:
    assert claim.kind in claims.KINDS
    assert claim.statement and claim.latex and claim.error_kind and claim.tolerance
    assert all(name in symbolic.ALL_STEPS for name in claim.derivations)
    if claim.kind in ("refuted", "conditional"):
      assert claim.counterexample is not None, claim.id


@pytest.mark.parametrize("claim_id", list(EXPECTED_STATUS))
def test_claim_pass_path(claim_id):
  result = proofs_check.run_claim(claim_id, examples=_examples(), seed=0)
  assert result.status == EXPECTED_STATUS[claim_id], (result.shrunk_counterexample, result.counterexample)
  assert result.tried >= 1
  assert all(step["holds"] for step in result.symbolic_steps)
  assert result.failure_reason is None
  if result.kind in ("holds", "conditional", "measured"):  # a measured claim's exact relation must hold too
    assert result.shrunk_counterexample is None
    assert result.share_holding == 1.0 or math.isnan(result.share_holding)


def _scaled_derivatives(monkeypatch, factors):
  original = elasticity.rate_derivatives

  def wrong(P, sizes, **kwargs):
    return original(P, sizes, **kwargs) * np.asarray(factors)

  monkeypatch.setattr(elasticity, "rate_derivatives", wrong)


def _wrong_signs(monkeypatch):
  original = elasticity.rate_derivatives

  def paper_signs_forced(P, sizes, **kwargs):
    d = original(P, sizes, **kwargs)
    return np.stack([-np.abs(d[..., 0]), np.abs(d[..., 1]), d[..., 2]], axis=-1)

  monkeypatch.setattr(elasticity, "rate_derivatives", paper_signs_forced)


def _plant(monkeypatch, claim_id):
  """Replaces the formula claim `claim_id` checks by a deliberately wrong one."""
  if claim_id == "1a":
    original = compression.huffman_code_lengths
    monkeypatch.setattr(compression, "huffman_code_lengths", lambda p: original(p) + (np.asarray(p) > 0))
  elif claim_id == "1b":  # the paper's formula replaced by the exact Huffman length: no counterexample left
    monkeypatch.setattr(compression, "paper_ideal_code_length",
                        lambda p, x, d: compression.block_count(x, d) * compression.expected_code_length(p, p))
  elif claim_id == "1c":
    monkeypatch.setattr(compression, "paper_ideal_code_length",
                        lambda p, x, d: compression.block_count(x, d) * (np.ceil(compression.entropy_bits(p)) + 1))
  elif claim_id == "2":  # a mixture that ignores the sizes
    monkeypatch.setattr(mixture, "size_weighted_mixture", lambda P, sizes: np.asarray(P).mean(axis=-2))
  elif claim_id in ("3", "9"):
    _scaled_derivatives(monkeypatch, [1.0, 1.0 + 1e-4, 1.0])
  elif claim_id == "4":
    _scaled_derivatives(monkeypatch, [1.0, 1.01, 1.0])
  elif claim_id == "5a":
    original = elasticity.derivative_ratio
    monkeypatch.setattr(elasticity, "derivative_ratio", lambda P, sizes, **kw: original(P, sizes, **kw) * 1.001)
  elif claim_id == "5b":
    _scaled_derivatives(monkeypatch, [1.0, 1.01, 1.0])
  elif claim_id == "6a":
    _scaled_derivatives(monkeypatch, [1.0, 1.0, -1.0])
  elif claim_id == "6b":
    _scaled_derivatives(monkeypatch, [1.0, 0.9, 1.0])
  elif claim_id == "7a":
    original = elasticity.alignment_expectation
    monkeypatch.setattr(elasticity, "alignment_expectation", lambda P, sizes, **kw: 2 - original(P, sizes, **kw))
  elif claim_id in ("7b", "8b"):  # derivatives that always have the paper's signs: nothing left to refute
    _wrong_signs(monkeypatch)
  elif claim_id == "8a":  # the exact relation -ratio/k = 1 + (l/k) D_t/D_p breaks when D_a is off by 1%
    _scaled_derivatives(monkeypatch, [1.0, 1.01, 1.0])
  elif claim_id == "10":  # an implicit derivative off by 0.1%: only the finite differences of refits can see it
    original = stationary_checks.implicit_derivative
    monkeypatch.setattr(stationary_checks, "implicit_derivative", lambda *a: 1.001 * original(*a))
  else:
    raise KeyError(claim_id)


@pytest.mark.parametrize("claim_id", list(EXPECTED_STATUS))
def test_planted_error_is_caught(monkeypatch, claim_id):
  _plant(monkeypatch, claim_id)
  result = proofs_check.run_claim(claim_id, examples=max(_examples(), 40), seed=0)
  assert result.status == run.FAILED, result
  assert result.failed and result.failure_reason


def test_claim_10_catches_a_gauss_newton_hessian(monkeypatch):
  """Dropping the second-derivative term of the Hessian (exact for the linear model, wrong for the sine layer)
  leaves every fit stationary and the weighted sum ~0, but the implicit derivative disagrees with refits."""

  def gauss_newton(self, target):
    probs = self.probs
    mean = self.jac.T @ probs
    return self.jac.T @ (probs[:, None] * self.jac) - np.outer(mean, mean)

  monkeypatch.setattr(stationary_checks.Evaluation, "hessian", gauss_newton)
  result = proofs_check.run_claim("10", examples=max(_examples(), 40), seed=0)
  assert result.status == run.FAILED
  assert result.shrunk_counterexample["config"]["model"] == "two_layer"


def test_claim_10_fails_when_fits_stop_early(monkeypatch):
  monkeypatch.setattr(constants, "STATIONARY_GTOL", 1e-3)
  monkeypatch.setattr(constants, "STATIONARY_NEWTON_STEPS", 0)
  result = proofs_check.run_claim("10", examples=max(_examples(), 40), seed=0)
  assert result.status == run.FAILED


def test_claim_10_fails_when_no_configuration_is_in_scope(monkeypatch):
  """A check whose every configuration is skipped tests nothing: below the in-scope share the claim FAILS."""
  monkeypatch.setattr(constants, "STATIONARY_SCOPE_GTOL", 0.0)  # no fit counts as stationary
  result = proofs_check.run_claim("10", examples=max(_examples(), 40), seed=0)
  assert result.status == run.FAILED and "in scope" in result.failure_reason
  assert result.in_scope == 0 and result.summary["skipped"]["no stationary point reached"] == result.tried


def test_planted_symbolic_error_is_caught(monkeypatch):
  wrong = symbolic._step("n_p D_p + n_a D_a = 1 (wrong)", symbolic.n_p * symbolic.D_p, symbolic.n_p * symbolic.D_p + 1)
  assert not wrong.holds
  monkeypatch.setitem(symbolic.ALL_STEPS, "identity", lambda: [wrong])
  result = proofs_check.run_claim("4", examples=3, seed=0)
  assert result.status == run.FAILED
  assert [step["holds"] for step in result.symbolic_steps] == [False]


def test_failing_holds_claim_reports_shrunk_counterexample(monkeypatch):
  _scaled_derivatives(monkeypatch, [1.0, 1.01, 1.0])
  result = proofs_check.run_claim("4", examples=40, seed=0)
  shrunk = result.shrunk_counterexample
  assert shrunk is not None
  config = proofs_check.configs.ElasticityConfig.from_dict(shrunk["config"])
  assert not claims.BY_ID["4"].evaluate(config).holds  # still wrong under the planted formula
  monkeypatch.undo()
  assert claims.BY_ID["4"].evaluate(config).holds  # and fine under the real one


def test_measured_claim_8_reports_constants_and_drivers():
  result = proofs_check.run_claim("8a", examples=max(_examples(), 40), seed=0)
  summary = result.summary
  assert summary["relation"]["holds_everywhere"] and result.worst_error <= 1e-12
  with_signs = summary["all"]["with_paper_signs"]
  any_signs = summary["all"]["any_signs"]
  assert 1.0 - 1e-9 <= with_signs["c1"] <= with_signs["c2"]  # c1 >= 1 by the bound (claim 6b)
  assert any_signs["c1"] <= with_signs["c1"] and any_signs["c2"] >= with_signs["c2"]
  assert summary["unaligned"]["share_paper_signs"] == 1.0  # E_{P_t}[P_a/q] = 0 < 1 for unaligned D_t
  if summary["all"]["share_paper_signs"] < 1.0:  # where the signs fail, D_p > 0 and -ratio/k = 1 - (l/k)|D_t|/D_p < 1
    assert any_signs["c1"] < 1.0
  for extreme in (with_signs["at_c1"], with_signs["at_c2"], any_signs["at_c1"]):
    assert extreme["minus_ratio_over_k"] - 1 == pytest.approx(extreme["excess_from_drivers"], rel=1e-6, abs=1e-9)


def test_measured_claim_headline_shows_both_ranges():
  result = proofs_check.run_claim("8a", examples=20, seed=0)
  cell = report.headline(result)
  assert cell.startswith("all: c1=") and "paper's signs: c1=" in cell


def _strip_volatile(record: dict) -> dict:
  claims_only = [{k: v for k, v in c.items() if k != "seconds"} for c in record["claims"]]
  return json.loads(json.dumps(claims_only))


def test_same_seed_gives_same_numbers(tmp_path):
  first = proofs_check.run_all(examples=8, seed=5, out_dir=tmp_path / "a")
  second = proofs_check.run_all(examples=8, seed=5, out_dir=tmp_path / "b")
  a = json.loads((tmp_path / "a/data/claims.json").read_text())
  b = json.loads((tmp_path / "b/data/claims.json").read_text())
  assert _strip_volatile(a) == _strip_volatile(b)
  assert [r.worst_error for r in first] == pytest.approx([r.worst_error for r in second], nan_ok=True)
  assert a["provenance"]["seed"] == 5 and a["provenance"]["config"]["examples"] == 8


def test_different_seed_draws_different_configurations():
  a = proofs_check.run_claim("3", examples=8, seed=1)
  b = proofs_check.run_claim("3", examples=8, seed=2)
  assert a.worst_error != b.worst_error


@pytest.mark.parametrize("kwargs, match", [
    ({"examples": 0}, "examples=0"), ({"examples": 2.5}, "examples=2.5"), ({"seed": -1}, "seed=-1"),
    ({"claim": "42"}, "'42'.*allowed"), ({"claim": "5c"}, "'5c'.*allowed"),
])
def test_run_all_rejects_bad_input(kwargs, match):
  with pytest.raises(ValueError, match=match):
    proofs_check.run_all(out_dir=None, **{"examples": 2, **kwargs})


def test_run_claim_rejects_a_number_with_several_parts():
  with pytest.raises(ValueError, match="several parts"):
    proofs_check.run_claim("5", examples=2)


def test_select_by_number_and_id():
  assert [c.id for c in proofs_check.select(5)] == ["5a", "5b"]
  assert [c.id for c in proofs_check.select("7b")] == ["7b"]
  assert len(proofs_check.select(None)) == len(claims.CLAIMS)


def test_results_are_plain_data():
  result = proofs_check.run_claim("1b", examples=5, seed=0)
  record = dataclasses.asdict(result)
  json.dumps(record, default=float)
  assert result.counterexample["reproduced"]


def test_the_draws_ignore_the_literals_of_local_modules(tmp_path, monkeypatch):
  """Hypothesis draws some values from the literals of the local modules a process imported; the claims' draws
  must not move when a module with other literals is imported (they did: an edit to toy_models moved claim 8a's
  published c1). Without runner.without_local_constants the same planted module moves them."""
  from hypothesis import strategies

  from proofs_check import runner

  def draws() -> list:
    sample = runner.run_property(strategies.lists(strategies.floats(0, 1000), min_size=3, max_size=3),
                                 lambda x: runner.Outcome(error=0.0), examples=60, seed=7, mode="measure")
    return sample.configs

  monkeypatch.syspath_prepend(str(tmp_path))
  planted = iter(range(2))

  def plant() -> None:
    index = next(planted)
    name = f"elasticity_planted_constants_{index}"
    literals = ", ".join(f"{value:.6g}" for value in np.random.default_rng(index).uniform(0, 1000, 200))
    (tmp_path / f"{name}.py").write_text(f"VALUES = [{literals}]\n")
    __import__(name)

  before = draws()
  plant()
  assert draws() == before
  with monkeypatch.context() as patched:
    patched.setattr(runner, "without_local_constants", contextlib.nullcontext)
    unguarded = draws()
    plant()
    assert draws() != unguarded


def test_a_hypothesis_without_local_constants_needs_no_guard(monkeypatch):
  """Hypothesis before 6.131 (pyproject allows 6.100) has no pool of local constants: the guard then does nothing
  and the check runs as it did."""
  import types

  from proofs_check import runner

  monkeypatch.setattr(runner, "hypothesis_providers", types.SimpleNamespace())
  with runner.without_local_constants():
    assert vars(runner.hypothesis_providers) == {}
  result = proofs_check.run_claim("3", examples=8, seed=1)
  assert result.tried >= 8 and math.isfinite(result.worst_error)
