"""SymPy derivations of docs/THEORY.md §3-§5: rate derivatives, the weighted identity, the ratio and signs.

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
"""docs/THEORY.md (4.1): d/dl [-log2 q(x)], the change of leaf x's ideal code length, in bits per unit l."""

RATE_TERM = -P_i * sp.log(q) / sp.log(2)
"""One leaf's contribution to gamma_i(l) = -sum_x P_i log2 q, in bits per response."""

RATE_DERIVATIVE_TERM_RAW = sp.diff(RATE_TERM, l)
"""d/dl of RATE_TERM, exactly as sympy differentiates it."""

RATE_DERIVATIVE_TERM = P_i * CODE_LENGTH_DERIVATIVE
"""docs/THEORY.md (4.2): one leaf's d gamma_i / dl: (n_a / N) P_i (1 - P_t / q) / ln 2 (bits per response).

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


RELATIONS = {"=": "=", ">=": r"\geq", ">": ">"}
"""Relations a ProofStep can assert, with their LaTeX."""


@dataclasses.dataclass(frozen=True)
class ProofStep:
  """One symbolic step asserting 'lhs relation rhs'; `holds` is whether sympy checked it.

  relation '=': sympy reduced lhs - rhs to zero. relation '>=' (or '>'): sympy reduced lhs - rhs - certificate
  to zero, where the certificate is an expression sympy's assumptions prove nonnegative (positive); the
  certificate may contain placeholder symbols declared nonnegative, each standing for an expression whose
  sign a named standard fact (`justification`, often proven by another derivation) gives.
  """

  claim: str
  lhs: sp.Expr
  rhs: sp.Expr
  holds: bool
  relation: str = "="  # a key of RELATIONS.
  justification: str = ""  # for an inequality: the named fact that makes the certificate nonnegative.

  def latex(self) -> str:
    """The step as a LaTeX (in)equation."""
    return f"{sp.latex(self.lhs)} {RELATIONS[self.relation]} {sp.latex(self.rhs)}"


def _reduces_to_zero(expr) -> bool:
  if isinstance(expr, sp.MatrixBase):
    return all(_reduces_to_zero(entry) for entry in expr)
  return sp.simplify(sp.expand_log(expr, force=True)) == 0


def _step(claim: str, lhs: sp.Expr, rhs: sp.Expr) -> ProofStep:
  return ProofStep(claim, lhs, rhs, _reduces_to_zero(lhs - rhs))


def _inequality_step(claim: str, lhs: sp.Expr, rhs: sp.Expr, certificate: sp.Expr, *,
                     definitions: dict | None = None, justification: str, strict: bool = False) -> ProofStep:
  """lhs >= rhs (lhs > rhs if strict): lhs - rhs equals `certificate` (with its placeholder symbols replaced by
  `definitions`), and sympy's assumptions prove the certificate nonnegative (positive)."""
  definitions = definitions or {}
  reduced = _reduces_to_zero(lhs - rhs - certificate.subs(definitions))
  sign = certificate.is_positive if strict else certificate.is_nonnegative
  return ProofStep(claim, lhs, rhs, bool(reduced and sign is True), ">" if strict else ">=", justification)


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
  """Claim 3: the per-leaf derivative equals docs/THEORY.md (4.2), and its leaf sum."""
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
      _inequality_step("per leaf: (p_t - q)^2/q >= 0, so chi^2(P_t||q) >= 0 and D_t <= 0", chi_leaf, sp.Integer(0),
                       chi_leaf, justification="a square over a positive q; sums of nonnegative terms are >= 0"),
  ]


LOG_LEMMA_VARIABLE = sp.Symbol("x", positive=True)
LOG_LEMMA = LOG_LEMMA_VARIABLE - 1 - sp.log(LOG_LEMMA_VARIABLE)
"""f(x) = x - 1 - ln x, which log_inequality_steps proves >= 0 for every x > 0 (i.e. ln x <= x - 1)."""


def log_inequality_steps() -> list[ProofStep]:
  """The lemma ln x <= x - 1 for x > 0: f(x) = x - 1 - ln x >= 0, by Taylor's theorem at x = 1 with f'' > 0.

  f(1) = 0 and f'(1) = 0, and f(x) = (x - 1)^2 int_0^1 (1 - t) f''(1 + t(x - 1)) dt (Taylor's theorem with
  integral remainder), whose integrand is positive for t in (0, 1), so f(x) >= 0.

  References:
    Cover & Thomas, Elements of Information Theory, 2nd ed., Thm. 2.6.3 (proof via ln x <= x - 1).
  """
  x = LOG_LEMMA_VARIABLE
  t, u = sp.symbols("t u", positive=True)  # t in (0, 1) and u = 1 - t
  second = sp.diff(LOG_LEMMA, x, 2)
  integrand = (1 - t) * second.subs(x, 1 + t * (x - 1))
  remainder = sp.Integral(integrand, (t, 0, 1))
  integrand_positive = u / (u + t * x) ** 2
  integral = sp.Symbol("I", nonnegative=True)  # stands for the remainder integral
  remainder_value = remainder.doit()
  return [
      _step("f(1) = 0", LOG_LEMMA.subs(x, 1), sp.Integer(0)),
      _step("f'(1) = 0", sp.diff(LOG_LEMMA, x).subs(x, 1), sp.Integer(0)),
      _inequality_step("f''(x) = 1/x^2 > 0 for x > 0", second, sp.Integer(0), second,
                       justification="x > 0", strict=True),
      _step("Taylor at 1 with integral remainder: f(x) = (x - 1)^2 int_0^1 (1 - t) f''(1 + t(x - 1)) dt",
            LOG_LEMMA, (x - 1) ** 2 * remainder_value),
      _step("the integrand, with u = 1 - t > 0: (1 - t) f''(1 + t(x - 1)) = u / (u + t x)^2",
            integrand.subs(t, 1 - u), integrand_positive.subs(t, 1 - u)),
      _inequality_step("u / (u + t x)^2 > 0 for t, u = 1 - t in (0, 1) and x > 0", integrand_positive,
                       sp.Integer(0), integrand_positive, justification="t, u, x > 0", strict=True),
      _inequality_step("f(x) = (x - 1)^2 I >= 0 with I the remainder integral", LOG_LEMMA, sp.Integer(0),
                       (x - 1) ** 2 * integral, definitions={integral: remainder_value},
                       justification="I >= 0: the integral over [0, 1] of the positive integrand above "
                                     "(monotonicity of the integral)"),
  ]


def bound_steps() -> list[ProofStep]:
  """Claim 6b from claims 4 and 6a: D_a solved from the identity; with D_p < 0 and D_t <= 0, |D_a| >= k|D_p|.

  D_a is not assumed: sympy solves n_p D_p + n_a D_a + n_t D_t = 0 (claim 4) for it. Claim 6a gives
  D_t = -(n_a/N) chi^2 / ln 2 with chi^2 >= 0; then D_a = k|D_p| + l (n_a/N) chi^2 / ln 2 >= k|D_p| > 0.

  References:
    Ji et al., "Language Models Resist Alignment", ACL 2025, Thm. 4.2 (the elasticity bound it states).
  """
  abs_p = sp.Symbol("|D_p|", positive=True)  # D_p = -|D_p| < 0: the bound's premise.
  chi2 = sp.Symbol(r"\chi^2", nonnegative=True)  # chi^2(P_t || q) >= 0 (claim 6a, derivation perturbation_sign).
  total = sp.Symbol("N", positive=True)
  solved_D_a = sp.solve(sp.Eq(n_p * D_p + n_a * D_a + l * n_a * D_t, 0), D_a)[0].subs(n_p, k * n_a)
  D_t_claim_6a = -n_a * chi2 / (total * sp.log(2))
  D_a_signed = solved_D_a.subs({D_p: -abs_p, D_t: D_t_claim_6a})
  excess = l * n_a * chi2 / (total * sp.log(2))
  return [
      _step("claim 4 solved for D_a (sympy solve, n_p = k n_a): D_a = -k D_p - l D_t", solved_D_a,
            -k * D_p - l * D_t),
      _step("with D_p = -|D_p| < 0 and claim 6a's D_t = -(n_a/N) chi^2/ln 2: D_a = k|D_p| + l (n_a/N) chi^2/ln 2",
            D_a_signed, k * abs_p + excess),
      _inequality_step("D_a - k|D_p| = l (n_a/N) chi^2 / ln 2 >= 0", D_a_signed, k * abs_p, excess,
                       justification="l >= 0 and chi^2(P_t||q) >= 0 (claim 6a)"),
      _inequality_step("|D_a| >= k|D_p|: D_a >= k|D_p| > 0, so |D_a| = D_a", sp.Abs(D_a_signed), k * abs_p, excess,
                       justification="the previous step and k|D_p| > 0"),
  ]


def mixture_optimality_steps() -> list[ProofStep]:
  """Claim 2: the mixture q is stationary, and sum_i n_i CE_i(m) - sum_i n_i CE_i(q) = N KL(q || m) >= 0.

  Per leaf x (m = m(x) > 0 the model, q = q(x) > 0 the mixture, w = sum_i n_i P_i(x) = N q):
  sum_i n_i (-P_i log2 m) - sum_i n_i (-P_i log2 q) = N q log2(q / m), and q ln(q / m) >= q - m by the lemma
  ln x <= x - 1 at x = m / q (log_inequality_steps). Summed over supp(q): sum (q - m) = 1 - m(supp q) >= 0.
  Leaves with q = 0 have w = 0 and add nothing to either total; a model with m = 0 where q > 0 has total +inf.

  References:
    Cover & Thomas, Elements of Information Theory, 2nd ed., Thm. 2.6.3 (Gibbs' inequality).
  """
  lagrange = sp.Symbol("lambda", positive=True)
  m = sp.Symbol("m", positive=True)
  weights = n_p * p_p + n_a * p_a + l * n_a * p_t
  weighted = -weights * sp.log(m)
  stationary = sp.solve(sp.Eq(sp.diff(weighted + lagrange * m, m), 0), m)[0]
  q_leaf, m_leaf = sp.symbols("q m", positive=True)  # one leaf of supp(q), any model value there
  lemma_value = sp.Symbol("f(m/q)", nonnegative=True)  # f(x) = x - 1 - ln x at x = m/q
  mass_outside = sp.Symbol("m_out", nonnegative=True)  # model mass outside supp(q): sum_{supp q} m = 1 - m_out
  kl_sum, gap_sum = sp.symbols(r"K S", real=True)  # K = sum_x q ln(q/m), S = sum_x (q - m), over supp(q)
  kl_excess, gap_nonnegative = sp.symbols("K-S S_+", nonnegative=True)
  return [
      _step("stationary point of sum_i n_i CE_i + lambda (sum m - 1) at m = N q / lambda",
            stationary, N3 * q3 / lagrange),
      _step("sum_x N q / lambda = 1 gives lambda = N, so m = q", sum_over_leaves(N3 * q3), N3),
      _step("per leaf: sum_i n_i (-P_i log2 m) - sum_i n_i (-P_i log2 q) = N q log2(q/m)",
            (weighted + weights * sp.log(q3)) / sp.log(2), N3 * q3 * sp.log(q3 / m) / sp.log(2)),
      _inequality_step("per leaf: q ln(q/m) >= q - m", q_leaf * sp.log(q_leaf / m_leaf), q_leaf - m_leaf,
                       q_leaf * lemma_value,
                       definitions={lemma_value: LOG_LEMMA.subs(LOG_LEMMA_VARIABLE, m_leaf / q_leaf)},
                       justification="ln x <= x - 1 at x = m/q (derivation log_inequality), times q > 0"),
      _inequality_step("summed over supp(q): sum (q - m) = 1 - (1 - m_out) >= 0",
                       sum_over_leaves(q_leaf - m_leaf, {q_leaf: sp.Integer(1), m_leaf: 1 - mass_outside}),
                       sp.Integer(0), mass_outside, justification="m_out >= 0: model mass outside supp(q)"),
      _inequality_step("sum_i n_i CE_i(m) - sum_i n_i CE_i(q) = N KL(q||m) / ln 2 >= N S / ln 2 >= 0 (KL = K in nats)",
                       N3 * kl_sum / sp.log(2), sp.Integer(0), N3 * (kl_excess + gap_nonnegative) / sp.log(2),
                       definitions={kl_excess: kl_sum - gap_sum, gap_nonnegative: gap_sum},
                       justification="K - S >= 0: the per-leaf inequality summed over supp(q) (sums keep >=); "
                                     "S >= 0: the previous step"),
  ]


def normalization_steps() -> list[ProofStep]:
  """Claim 9: subtracting log2 M or the entropy H(P_i) (both free of l) leaves d gamma / dl unchanged."""
  gamma = sp.Function("gamma")(l)
  M, H = sp.symbols("M H_i", positive=True)
  return [
      _step("d/dl (gamma - log2 M) = d gamma / dl", sp.diff(gamma - sp.log(M, 2), l), sp.diff(gamma, l)),
      _step("d/dl (gamma - H(P_i)) = d gamma / dl", sp.diff(gamma - H, l), sp.diff(gamma, l)),
  ]


def stationary_identity_steps(n_params: int = 2) -> list[ProofStep]:
  """Claim 10: at any stationary point of J = sum_i n_i CE_i(theta), sum_i n_i d gamma_i / dl = 0.

  A general differentiable model with `n_params` parameters: CE_p, CE_a, CE_t are undefined sympy functions
  of theta, n_t = l n_a, and theta*(l) is a path of stationary points, grad J(theta*(l), l) = 0 for all l
  (it exists near l where the Hessian H of J is invertible: implicit function theorem). gamma_i(l) =
  CE_i(theta*(l)). Steps: the chain rule; d/dl of the stationarity condition; its solution
  d theta*/dl = -H^{-1} n_a grad CE_t; and the weighted sum with the stationarity condition substituted.
  The identity holds by construction at any stationary point: it tests first-order optimality, not the
  compression picture.

  Args:
    n_params: number of model parameters (>= 1); the algebra is the same in any dimension.

  Returns:
    Four equality steps: chain rule, implicit differentiation, its solution, the identity.

  References:
    Krantz & Parks, The Implicit Function Theorem, Birkhauser 2002, Thm. 3.3.1; Koh & Liang, "Understanding
    Black-box Predictions via Influence Functions", ICML 2017 (d theta*/d weight = -H^{-1} grad).
  """
  if isinstance(n_params, bool) or not isinstance(n_params, int) or n_params < 1:
    raise ValueError(f"n_params={n_params!r} is not allowed; allowed: an integer >= 1")
  path = [sp.Function(f"theta_{j + 1}")(l) for j in range(n_params)]
  n_p_ = sp.Symbol("n_p", positive=True)
  sizes = {"p": n_p_, "a": n_a, "t": l * n_a}
  losses = {name: sp.Function(f"CE_{name}")(*path) for name in sizes}

  def gradient(expr):
    return sp.Matrix([sp.diff(expr, theta) for theta in path])

  objective = sum(sizes[name] * losses[name] for name in sizes)
  grad_objective = gradient(objective)
  hessian = grad_objective.jacobian(sp.Matrix(path))
  velocity = sp.Matrix([sp.diff(theta, l) for theta in path])
  weighted_derivatives = sum(sizes[name] * sp.diff(losses[name], l) for name in sizes)
  # The same linear algebra on plain symbols: g_i = grad CE_i(theta*), H = Hessian of J (symmetric), v = d theta*/dl.
  grads = {name: sp.Matrix(sp.symbols(f"g_{name}1:{n_params + 1}", real=True)) for name in sizes}
  hess = sp.Matrix(n_params, n_params, lambda i, j: sp.Symbol(f"H_{min(i, j) + 1}{max(i, j) + 1}", real=True))
  v = sp.Matrix(sp.symbols(f"v_1:{n_params + 1}", real=True))
  solved = v.subs(sp.solve(list(hess * v + n_a * grads["t"]), list(v), dict=True)[0])
  grad_J = sum((sizes[name] * grads[name] for name in sizes), sp.zeros(n_params, 1))
  stationarity = sp.solve(list(grad_J), list(grads["p"]), dict=True)[0]
  return [
      _step("chain rule: sum_i n_i d gamma_i/dl = grad J(theta*(l)) . d theta*/dl", weighted_derivatives,
            (grad_objective.T * velocity)[0]),
      _step("d/dl of the stationarity condition grad J(theta*(l), l) = 0: H d theta*/dl + n_a grad CE_t = 0",
            sp.diff(grad_objective, l), hessian * velocity + n_a * gradient(losses["t"])),
      _step("solved (sympy solve, H invertible): d theta*/dl = -H^{-1} n_a grad CE_t", solved,
            -hess.inv() * n_a * grads["t"]),
      _step("at a stationary point (grad J = 0, solved for grad CE_p): sum_i n_i d gamma_i/dl = 0",
            (grad_J.T * solved)[0].subs(stationarity), sp.Integer(0)),
  ]


ALL_STEPS = {
    "derivative": derivative_steps,
    "identity": identity_steps,
    "ratio": ratio_steps,
    "perturbation_sign": perturbation_sign_steps,
    "bound": bound_steps,
    "log_inequality": log_inequality_steps,
    "mixture_optimality": mixture_optimality_steps,
    "normalization": normalization_steps,
    "stationary_identity": stationary_identity_steps,
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
