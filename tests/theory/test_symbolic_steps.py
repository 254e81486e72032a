"""theory.symbolic's proof steps as saved data: every step labelled, inequalities justified, relations known."""

import pytest
import sympy as sp

from theory import symbolic, tabular_elasticity


def derivations():
  return {**symbolic.ALL_STEPS, "tabular_node_gradient": tabular_elasticity.node_gradient_steps}


@pytest.mark.parametrize("name", sorted(derivations()))
def test_every_step_has_a_one_line_label_and_inequalities_a_justification(name):
  steps = derivations()[name]()
  labels = [step.claim for step in steps]
  assert all(isinstance(label, str) and label.strip() and "\n" not in label for label in labels), labels
  assert len(set(labels)) == len(labels)  # each step says what it checks, differently from the others
  for step in steps:
    assert step.relation in symbolic.RELATIONS and step.holds is True
    if step.relation == "=":
      assert step.justification == ""
    else:
      assert isinstance(step.justification, str) and step.justification.strip() and "\n" not in step.justification
    assert step.latex().count(symbolic.RELATIONS[step.relation]) >= 1


def test_strict_steps_say_so():
  # f'' > 0 and the remainder's integrand > 0 are strict; the lemma itself is f >= 0.
  assert [step.relation for step in symbolic.log_inequality_steps()] == ["=", "=", ">", "=", "=", ">", ">="]
  assert [step.relation for step in symbolic.bound_steps()] == ["=", "=", ">=", ">="]
  assert [step.relation for step in symbolic.perturbation_sign_steps()] == ["=", "=", "=", ">="]


def test_a_strict_inequality_needs_a_positive_certificate():
  x = sp.Symbol("x", real=True)
  square = symbolic._inequality_step("x^2 >= 0", x**2, sp.Integer(0), x**2, justification="a square")
  assert square.holds and square.relation == ">="
  strict = symbolic._inequality_step("x^2 > 0", x**2, sp.Integer(0), x**2, justification="a square", strict=True)
  assert not strict.holds and strict.relation == ">"  # x = 0 is allowed: x^2 is only known to be >= 0
  assert strict.latex() == r"x^{2} > 0" and square.latex() == r"x^{2} \geq 0"
  step = symbolic.ProofStep("label", x + 1, sp.Integer(2), False)
  assert step.latex() == "x + 1 = 2" and step.relation == "=" and step.justification == ""


def test_sum_over_leaves_uses_the_given_leaf_count():
  p_p, p_a = symbolic.p_p, symbolic.p_a
  assert symbolic.sum_over_leaves(2 * p_p + 3, n_leaves=sp.Integer(5)) == 17  # 2 * 1 + 3 * 5
  assert symbolic.sum_over_leaves(p_a - 1, n_leaves=sp.Integer(4)) == -3


def test_stationary_identity_default_and_premise():
  default, two = symbolic.stationary_identity_steps(), symbolic.stationary_identity_steps(2)
  assert [(a.lhs, a.rhs) == (b.lhs, b.rhs) for a, b in zip(default, two, strict=True)] == [True] * 4
  assert len(default[2].lhs) == 2  # d theta*/dl has one entry per parameter: two by default
  # The last step substitutes the stationarity condition solved for grad CE_p: no g_p is left in it.
  assert not {s for s in default[3].lhs.free_symbols if s.name.startswith("g_p")}
  with pytest.raises(ValueError, match=r"^n_params=2\.0 is not allowed; allowed: an integer >= 1$"):
    symbolic.stationary_identity_steps(2.0)
