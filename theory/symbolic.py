"""SymPy derivations of THEORY.md section 3: rate derivatives, the weighted identity, the ratio and signs.

Every numeric function of the elasticity theory is lambdified from an expression here, so the formula is
written once. Units: bits (log base 2) per response; l = |D_t| / |D_a| is the perturbation-to-alignment ratio.

Per-leaf notation: a leaf x has probability P_i = P_i(x) under dataset i and P_t under the perturbation data;
R = sum_{j != t} n_j P_j(x) is the size-weighted mass of the other datasets at x and N0 = sum_{j != t} n_j
their total size. With n_t = l n_a, the mixture at x is q = (R + n_t P_t) / (N0 + n_t).
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import sympy as sp

# Per-leaf symbols of the general (any number of datasets) derivation.
P_i, P_t, R, N0, n_a, l = sp.symbols("P_i P_t R N_0 n_a l", positive=True)
n_t = l * n_a
N = N0 + n_t
q = (R + n_t * P_t) / N

# Generic cross-entropy symbols: data probability p, model probability m.
p_sym, m_sym = sp.symbols("p m", positive=True)
CROSS_ENTROPY_TERM = -p_sym * sp.log(m_sym) / sp.log(2)
"""-p log2 m: one leaf's contribution to the cross-entropy of data p coded with model m, in bits."""

CODE_LENGTH_DERIVATIVE = n_a * (1 - P_t / q) / (N * sp.log(2))
"""THEORY.md closed form of d/dl [-log2 q(x)], the change of leaf x's ideal code length, in bits per unit l."""

RATE_TERM = -P_i * sp.log(q) / sp.log(2)
"""One leaf's contribution to gamma_i(l) = -sum_x P_i log2 q, in bits per response."""

RATE_DERIVATIVE_TERM_RAW = sp.diff(RATE_TERM, l)
"""d/dl of RATE_TERM, exactly as sympy differentiates it."""

RATE_DERIVATIVE_TERM = P_i * CODE_LENGTH_DERIVATIVE
"""THEORY.md closed form of one leaf's d gamma_i / dl: (n_a / N) P_i (1 - P_t / q) / ln 2 (bits per response).

Summed over leaves with sum_x P_i = 1 it gives d gamma_i / dl = (n_a / N)(1 - E_{x~P_t}[P_i(x) / q(x)]) / ln 2.
"""

# Three-dataset per-leaf symbols: pre-training p, alignment a, perturbation t.
n_p = sp.Symbol("n_p", positive=True)
k = sp.Symbol("k", positive=True)
p_p, p_a, p_t = sp.symbols("p_p p_a p_t", positive=True)
N3 = n_p + n_a + l * n_a
q3 = (n_p * p_p + n_a * p_a + l * n_a * p_t) / N3
LEAF_SYMBOLS = (p_p, p_a, p_t)


def _three_dataset_term(prob: sp.Expr) -> sp.Expr:
  return sp.diff(-prob * sp.log(q3) / sp.log(2), l)


D_p_leaf, D_a_leaf, D_t_leaf = (_three_dataset_term(x) for x in LEAF_SYMBOLS)
D_p, D_a, D_t = sp.symbols("D_p D_a D_t", real=True)  # leaf-summed derivatives d gamma_i / dl.


@dataclasses.dataclass(frozen=True)
class ProofStep:
  """One symbolic step: `claim` reads 'lhs = rhs'; `holds` is whether sympy reduced lhs - rhs to zero."""

  claim: str
  lhs: sp.Expr
  rhs: sp.Expr
  holds: bool

  def latex(self) -> str:
    """The step as a LaTeX equation."""
    return f"{sp.latex(self.lhs)} = {sp.latex(self.rhs)}"


def _step(claim: str, lhs: sp.Expr, rhs: sp.Expr) -> ProofStep:
  difference = sp.simplify(sp.expand_log(lhs - rhs, force=True))
  return ProofStep(claim, lhs, rhs, difference == 0)


def sum_over_leaves(expr: sp.Expr, totals: dict | None = None, n_leaves: sp.Expr | None = None) -> sp.Expr:
  """Sums over all leaves an expression that is affine in per-leaf quantities with known totals.

  Args:
    expr: an expression affine in the keys of `totals`.
    totals: per-leaf symbol -> its sum over the leaves; default: each of p_p, p_a, p_t sums to 1.
    n_leaves: number of leaves M, multiplying a constant term (default: the symbol M).

  Raises ValueError if `expr` is not affine in those symbols (the sum is then not fixed by the totals).
  """
  totals = {x: sp.Integer(1) for x in LEAF_SYMBOLS} if totals is None else totals
  n_leaves = sp.Symbol("M", positive=True) if n_leaves is None else n_leaves
  symbols = list(totals)
  poly = sp.Poly(sp.expand(expr), *symbols)
  if poly.total_degree() > 1:
    raise ValueError(f"expression is not affine in the per-leaf symbols {symbols}: {expr}")
  total = sp.Integer(0)
  for monomial, coefficient in poly.terms():
    if sum(monomial) == 0:
      total += coefficient * n_leaves
    else:
      total += coefficient * totals[symbols[monomial.index(1)]]
  return sp.simplify(total)


def derivative_steps() -> list[ProofStep]:
  """Claim 3: the per-leaf derivative equals THEORY.md's closed form, and its leaf sum."""
  expectation = sp.Symbol("E_{P_t}[P_i/q]", positive=True)
  w = sp.Symbol("w", positive=True)  # per leaf: w(x) = P_i(x) P_t(x) / q(x), whose leaf sum is the expectation.
  affine = n_a * (P_i - w) / (N * sp.log(2))
  return [
      _step("d/dl[-P_i log2 q] = (n_a/N) P_i (1 - P_t/q) / ln 2", RATE_DERIVATIVE_TERM_RAW, RATE_DERIVATIVE_TERM),
      _step("d/dl[-log2 q] = (n_a/N)(1 - P_t/q) / ln 2", sp.diff(-sp.log(q) / sp.log(2), l),
            CODE_LENGTH_DERIVATIVE),
      _step("d log q / d n_t = P_t/(N q) - 1/N", sp.diff(sp.log(q), l) / n_a, P_t / (N * q) - 1 / N),
      _step("per leaf, with w = P_i P_t / q: (n_a/N)(P_i - w)/ln 2", affine.subs(w, P_i * P_t / q),
            RATE_DERIVATIVE_TERM),
      _step("sum_x (n_a/N)(P_i - w)/ln 2 = (n_a/N)(1 - E_{P_t}[P_i/q])/ln 2 (sum P_i = 1, sum w = E)",
            sum_over_leaves(affine, {P_i: sp.Integer(1), w: expectation}),
            n_a * (1 - expectation) / (N * sp.log(2))),
  ]


def identity_steps() -> list[ProofStep]:
  """Claim 4: n_p D_p + n_a D_a + n_t D_t = 0 at every l >= 0, leaf by leaf and then summed."""
  weighted_leaf = n_p * D_p_leaf + n_a * D_a_leaf + l * n_a * D_t_leaf
  affine = n_a * (q3 - p_t) / sp.log(2)
  return [
      _step("per leaf: n_p d_p + n_a d_a + n_t d_t = n_a (q - p_t) / ln 2", weighted_leaf, affine),
      _step("summed over leaves (sum q = sum p_t = 1): n_p D_p + n_a D_a + n_t D_t = 0",
            sum_over_leaves(affine), sp.Integer(0)),
  ]


def ratio_steps() -> list[ProofStep]:
  """Claim 5: D_a / D_p = -k - l D_t / D_p, which is -k at l = 0 (k = n_p / n_a)."""
  solved_D_a = sp.solve(sp.Eq(n_p * D_p + n_a * D_a + l * n_a * D_t, 0), D_a)[0]
  ratio = (solved_D_a / D_p).subs(n_p, k * n_a)
  formula = -k - l * D_t / D_p
  return [
      _step("D_a / D_p = -k - l D_t / D_p", ratio, formula),
      _step("at l = 0: D_a / D_p = -k", ratio.subs(l, 0), -k),
  ]


def perturbation_sign_steps() -> list[ProofStep]:
  """Claim 6: D_t = -(n_a/N) chi^2(P_t || q) / ln 2 <= 0, via sum_x (p_t - q)^2 / q = sum p_t^2/q - 1."""
  chi_leaf = (p_t - q3) ** 2 / q3
  expanded = sp.expand(chi_leaf)
  square_over_q = p_t**2 / q3
  affine_rest = sp.simplify(expanded - sp.expand(square_over_q))
  return [
      _step("per leaf: (p_t - q)^2/q = p_t^2/q - 2 p_t + q", chi_leaf, square_over_q - 2 * p_t + q3),
      _step("sum_x (-2 p_t + q) = -1", sum_over_leaves(affine_rest), sp.Integer(-1)),
      _step("per leaf: d_t = (n_a/N)(p_t - p_t^2/q)/ln 2", D_t_leaf, n_a * (p_t - square_over_q) / (N3 * sp.log(2))),
  ]


def bound_steps() -> list[ProofStep]:
  """Claim 6 (bound): with D_t <= 0 and D_p < 0, D_a = k|D_p| + l|D_t| >= k|D_p|."""
  abs_p, abs_t = sp.symbols("|D_p| |D_t|", nonnegative=True)
  D_a_value = -k * D_p - l * D_t
  return [
      _step("D_a = k |D_p| + l |D_t| when D_p = -|D_p|, D_t = -|D_t|",
            D_a_value.subs({D_p: -abs_p, D_t: -abs_t}), k * abs_p + l * abs_t),
  ]


def mixture_optimality_steps() -> list[ProofStep]:
  """Claim 2: sum_i n_i CE_i(m) = N CE(q, m), minimised over m by m = q (Gibbs); stationarity per leaf."""
  lagrange = sp.Symbol("lambda", positive=True)
  m = sp.Symbol("m", positive=True)
  weighted = -(n_p * p_p + n_a * p_a + l * n_a * p_t) * sp.log(m)
  stationary = sp.solve(sp.Eq(sp.diff(weighted + lagrange * m, m), 0), m)[0]
  return [
      _step("stationary point of sum_i n_i CE_i + lambda (sum m - 1) at m = N q / lambda",
            stationary, N3 * q3 / lagrange),
      _step("sum_x N q / lambda = 1 gives lambda = N, so m = q", sum_over_leaves(N3 * q3), N3),
  ]


def normalization_steps() -> list[ProofStep]:
  """Claim 9: subtracting log2 M or the entropy H(P_i) (both free of l) leaves d gamma / dl unchanged."""
  gamma = sp.Function("gamma")(l)
  M, H = sp.symbols("M H_i", positive=True)
  return [
      _step("d/dl (gamma - log2 M) = d gamma / dl", sp.diff(gamma - sp.log(M, 2), l), sp.diff(gamma, l)),
      _step("d/dl (gamma - H(P_i)) = d gamma / dl", sp.diff(gamma - H, l), sp.diff(gamma, l)),
  ]


ALL_STEPS = {
    "derivative": derivative_steps,
    "identity": identity_steps,
    "ratio": ratio_steps,
    "perturbation_sign": perturbation_sign_steps,
    "bound": bound_steps,
    "mixture_optimality": mixture_optimality_steps,
    "normalization": normalization_steps,
}
"""Registry: derivation name -> function returning its proof steps."""


@functools.cache
def _lambdified(expr_name: str):
  if expr_name == "cross_entropy":
    return sp.lambdify((p_sym, m_sym), CROSS_ENTROPY_TERM, modules="numpy", cse=True)
  if expr_name == "code_length_derivative":
    return sp.lambdify((P_t, R, N0, n_a, l), CODE_LENGTH_DERIVATIVE, modules="numpy", cse=True)
  raise KeyError(expr_name)


def cross_entropy_term_numeric(p: np.ndarray, m: np.ndarray) -> np.ndarray:
  """Vectorised CROSS_ENTROPY_TERM: -p log2 m elementwise (m must be > 0), bits."""
  return _lambdified("cross_entropy")(p, m)


def code_length_derivative_numeric(P_t_: np.ndarray, R_: np.ndarray, N0_: np.ndarray, n_a_: np.ndarray,
                                   l_: np.ndarray) -> np.ndarray:
  """Vectorised CODE_LENGTH_DERIVATIVE, d/dl[-log2 q(x)] (arguments broadcast), bits per unit l."""
  return _lambdified("code_length_derivative")(P_t_, R_, N0_, n_a_, l_)
