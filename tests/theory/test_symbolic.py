"""Tests of theory.symbolic: every derivation step holds, planted errors are caught, numerics match sympy."""

import numpy as np
import pytest
import sympy as sp

from theory import symbolic


@pytest.mark.parametrize("name", sorted(symbolic.ALL_STEPS))
def test_every_derivation_step_holds(name):
  steps = symbolic.ALL_STEPS[name]()
  assert steps
  for step in steps:
    assert step.holds, f"{name}: {step.claim}"
    assert step.latex()


def test_planted_errors_are_not_accepted():
  wrong = {
      "missing ln 2": symbolic.n_a * symbolic.P_i * (1 - symbolic.P_t / symbolic.q) / symbolic.N,
      "sign flipped": -symbolic.RATE_DERIVATIVE_TERM,
      "n_p instead of n_a": symbolic.RATE_DERIVATIVE_TERM * symbolic.N0 / symbolic.n_a,
  }
  for label, expression in wrong.items():
    assert not symbolic._step(label, symbolic.RATE_DERIVATIVE_TERM_RAW, expression).holds, label


def test_ratio_at_l_zero_is_not_an_arbitrary_constant():
  ratio_step = symbolic.ratio_steps()[1]
  assert not symbolic._step("wrong", ratio_step.lhs, -2 * symbolic.k).holds


def test_sum_over_leaves_uses_the_totals_and_rejects_non_affine_input():
  p_p, p_a = symbolic.p_p, symbolic.p_a
  M = sp.Symbol("M", positive=True)
  cases = {2 * p_p + 3 * p_a + 1: 5 + M, p_p - p_a: 0}
  for expression, expected in cases.items():
    assert sp.simplify(symbolic.sum_over_leaves(expression) - expected) == 0
  with pytest.raises(ValueError, match="not affine"):
    symbolic.sum_over_leaves(p_p * p_a)


def test_lambdified_numerics_equal_sympy_evaluation():
  rng = np.random.default_rng(0)
  for _ in range(20):
    values = dict(zip((symbolic.P_t, symbolic.R, symbolic.N0, symbolic.n_a, symbolic.l),
                      rng.uniform(0.05, 5.0, 5), strict=True))
    expected = float(symbolic.CODE_LENGTH_DERIVATIVE.subs(values))
    got = symbolic.code_length_derivative_numeric(*values.values())
    assert got == pytest.approx(expected, rel=1e-13)
  p, m = 0.3, 0.2
  assert symbolic.cross_entropy_term_numeric(p, m) == pytest.approx(-p * np.log2(m), rel=1e-15)


def test_inequality_steps_need_an_exact_certificate_that_sympy_proves_nonnegative():
  q, m = sp.symbols("q m", positive=True)
  g = sp.Symbol("g", nonnegative=True)
  lemma = {g: symbolic.LOG_LEMMA.subs(symbolic.LOG_LEMMA_VARIABLE, m / q)}
  good = symbolic._inequality_step("q ln(q/m) >= q - m", q * sp.log(q / m), q - m, q * g, definitions=lemma,
                                   justification="lemma")
  assert good.holds and good.relation == ">=" and r"\geq" in good.latex()
  wrong_rhs = symbolic._inequality_step("q ln(q/m) >= q + m", q * sp.log(q / m), q + m, q * g, definitions=lemma,
                                        justification="lemma")
  unsigned = symbolic._inequality_step("certificate of unknown sign", q * sp.log(q / m), q - m,
                                       q * sp.log(q / m) - q + m, justification="none")
  assert not wrong_rhs.holds  # lhs - rhs is not the certificate
  assert not unsigned.holds  # sympy cannot show q ln(q/m) - q + m >= 0 without the lemma


def test_log_lemma_and_gibbs_steps_catch_planted_errors():
  x = symbolic.LOG_LEMMA_VARIABLE
  assert not symbolic._step("f(1) = 0 for f = x - ln x", (x - sp.log(x)).subs(x, 1), 0).holds
  steps = symbolic.mixture_optimality_steps()
  assert [step.relation for step in steps] == ["=", "=", "=", ">=", ">=", ">="]
  per_leaf = steps[2]
  assert not symbolic._step("N q log2(m/q) (sign flipped)", per_leaf.lhs, -per_leaf.rhs).holds
  lemma_steps = symbolic.log_inequality_steps()
  assert lemma_steps[3].holds and not symbolic._step("Taylor without (x - 1)^2", lemma_steps[3].lhs,
                                                     lemma_steps[3].rhs / (x - 1) ** 2).holds


def test_bound_is_derived_from_the_identity_and_needs_claim_6a():
  steps = symbolic.bound_steps()
  assert all(step.holds for step in steps)
  solved = steps[0].lhs  # what sympy's solve returned for D_a, not an assumed formula
  assert sp.simplify(solved - (-symbolic.k * symbolic.D_p - symbolic.l * symbolic.D_t)) == 0
  # With D_t > 0 (claim 6a violated) the excess over k|D_p| is negative and the bound is not provable.
  abs_p, rise = sp.Symbol("|D_p|", positive=True), sp.Symbol("r", positive=True)
  signed = solved.subs({symbolic.D_p: -abs_p, symbolic.D_t: rise})
  assert not symbolic._inequality_step("D_a >= k|D_p| with D_t > 0", signed, symbolic.k * abs_p,
                                       -symbolic.l * rise, justification="none").holds


def test_stationary_identity_steps_in_other_dimensions_and_their_premise():
  for n_params in (1, 3):
    assert all(step.holds for step in symbolic.stationary_identity_steps(n_params))
  steps = symbolic.stationary_identity_steps()
  assert not symbolic._step("weighted sum is 0 without stationarity", steps[0].lhs, 0).holds
  assert not symbolic._step("implicit derivative, sign flipped", steps[2].lhs, -steps[2].rhs).holds
  with pytest.raises(ValueError, match="n_params=0"):
    symbolic.stationary_identity_steps(0)
