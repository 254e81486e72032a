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
