"""Registry of the claims checked by `elasticity check`: statement, assumptions, symbolic and numeric checks.

Claims are numbered 1..10 (docs/THEORY.md §6 maps them to the paper); a claim is split into parts (1a, 1b, ...)
where its parts have different verdicts. Each claim's `kind` says what the check expects: 'holds' (must hold
everywhere it is drawn), 'conditional' (holds under the listed assumptions, and a recomputed counterexample shows
they are needed), 'refuted' (a recomputed counterexample shows the statement false; the run measures how often it
fails) or 'measured' (a quantity the paper leaves open, reported as numbers, next to an exact relation checked at
every configuration, which can fail).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import sympy as sp
from hypothesis import strategies as st

from proofs_check import (
    coding_checks,
    constants,
    elasticity_checks,
    mixture_checks,
    pareto_study,
    simulated,
    stationary_checks,
    strategies,
)
from theory import symbolic

KINDS = ("holds", "conditional", "refuted", "measured")

# Symbols used only to typeset statements.
_H, _L, _x, _d = sp.symbols("H L |x| d", nonnegative=True)
_E_a, _E_i, _chi2, _c1, _c2 = sp.symbols(r"E_{P_t}[P_a/q] E_{P_t}[P_i/q] \chi^2(P_t\|q) c_1 c_2",
                                         positive=True)
_N, _n_t = sp.symbols("N n_t", positive=True)
_gamma = sp.Function(r"\gamma")(symbolic.l)
_CE_q, _CE_m = sp.symbols(r"\sum_i\,n_i\,CE_i(q) \sum_i\,n_i\,CE_i(m)")
_M, _H_i = sp.symbols("M H(P_i)", positive=True)
_D_p, _D_a, _D_t, _k, _l, _n_a, _n_p = (symbolic.D_p, symbolic.D_a, symbolic.D_t, symbolic.k, symbolic.l,
                                         symbolic.n_a, symbolic.n_p)


def _latex(expr) -> str:
  return sp.latex(expr)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Claim:
  """One claim: what it says, under which assumptions, and how it is checked."""

  id: str  # '1a', '5b', ...: the claim number plus a part letter.
  title: str  # short statement for tables.
  statement: str  # the claim in words.
  latex: str  # the claim as a LaTeX formula, typeset by sympy.
  assumptions: tuple[str, ...]  # conditions under which it is checked (and, for 'conditional', needed).
  kind: str  # one of KINDS.
  strategy: Callable[[], st.SearchStrategy]  # builds the hypothesis strategy of configurations.
  evaluate: Callable  # configuration -> proofs_check.runner.Outcome.
  error_kind: str  # what 'worst error' measures, with its unit.
  tolerance: str  # when a configuration counts as holding.
  derivations: tuple[str, ...] = ()  # keys of theory.symbolic.ALL_STEPS proving it step by step.
  counterexample: Callable[[], dict] | None = None  # recomputes a fixed counterexample (refuted/conditional).
  summarize: Callable | None = None  # Sample -> dict of extra measured numbers.
  min_in_scope: float = 0.0  # share of configurations that must be in scope, else FAILED (skipping all tests nothing).
  simulated_evidence: Callable[[], dict] | None = None  # evidence from trained toy models; None: not attached here.
  note: str = ""  # one line for the claims table.

  @property
  def number(self) -> int:
    """The claim number (the id without its part letter)."""
    return int(self.id.rstrip("abcdefgh"))


def _elastic(**kwargs) -> Callable[[], st.SearchStrategy]:
  return lambda: strategies.elasticity_configs(**kwargs)


_COVERED_LAYOUTS = ("shared", "nested", "overlapping", "unaligned")
_SMALL_L = strategies.perturbation_sizes(include_zero=True).filter(lambda size_ratio: size_ratio <= 1e-2)

CLAIMS: tuple[Claim, ...] = (
    Claim(
        id="1a", title="Huffman: H <= E[L] < H + 1, optimal",
        statement="A Huffman code of the leaf distribution has expected length in [H, H + 1) bits, satisfies "
                  "Kraft, equals the brute-force optimum on small alphabets, and coding P with another "
                  "model's Huffman code costs at least H(P).",
        latex=_latex(sp.And(sp.Le(_H, _L), sp.Lt(_L, _H + 1))),
        assumptions=("a source of at least one symbol; length 0 for a single symbol",),
        kind="holds", strategy=strategies.code_configs, evaluate=coding_checks.huffman_bound,
        error_kind="largest violation, bits", tolerance="violations <= 1e-9 bits, E[L] < H + 1 strictly",
        note="Huffman 1952; Cover & Thomas Thm 5.8.1; brute force up to 6 symbols"),
    Claim(
        id="1b", title="Paper Thm 3.4: E[L] = ceil(|x|/d) ceil(H) exactly",
        statement="The paper's ideal code length ceil(|x|/d) * ceil(H) equals the Huffman code's expected "
                  "length.",
        latex=_latex(sp.Eq(_L * sp.ceiling(_x / _d), sp.ceiling(_x / _d) * sp.ceiling(_H))),
        assumptions=("H in bits over the leaves of the pruned tree",),
        kind="refuted", strategy=strategies.code_configs, evaluate=coding_checks.paper_formula_exact,
        error_kind="|paper - Huffman|, bits per response", tolerance="exact within 1e-9 bits",
        counterexample=coding_checks.paper_formula_counterexample,
        note="p = (1/2, 1/4, 1/4): H = E[L] = 1.5 bits, ceil(H) = 2"),
    Claim(
        id="1c", title="Paper Thm 3.4 within 1 bit per block",
        statement="Per block, ceil(H) and the Huffman length differ by less than one bit (both lie in "
                  "[H, H + 1)).",
        latex=_latex(sp.Lt(sp.Abs(sp.ceiling(_H) - _L), 1)),
        assumptions=(), kind="holds", strategy=strategies.code_configs,
        evaluate=coding_checks.paper_formula_within_one,
        error_kind="|ceil(H) - E[L]|, bits (must stay < 1)", tolerance="< 1 bit",
        note="what holds of Thm 3.4: an approximation within one bit per block"),
    Claim(
        id="2", title="Size-weighted mixture minimises sum_i n_i CE_i",
        statement="The size-weighted mixture q minimises the weighted total code length sum_i n_i CE_i(m) "
                  "over all models m.",
        latex=_latex(sp.Le(_CE_q, _CE_m)),
        assumptions=("m ranges over the probability simplex of the leaves",),
        kind="holds", strategy=_elastic(), evaluate=mixture_checks.mixture_optimality,
        error_kind="max(0, total(q) - best competitor) / max(total(q), N), relative",
        tolerance="<= 1e-12 relative", derivations=("log_inequality", "mixture_optimality"),
        note="sympy: stationarity, and sum_i n_i CE_i(m) - sum_i n_i CE_i(q) = N KL(q||m) >= 0 via ln x <= x - 1 "
             "(proven by Taylor's theorem); numeric competitors: random simplex perturbations, scipy L-BFGS-B up "
             "to 31 leaves"),
    Claim(
        id="3", title="dgamma_i/dl = (n_a/N)(1 - E_{P_t}[P_i/q]) / ln 2",
        statement="The derivative of each dataset's rate with respect to l is "
                  "(n_a/N)(1 - E_{P_t}[P_i/q]) / ln 2 bits per response (docs/THEORY.md §4.2, (4.2)).",
        latex=_latex(sp.Eq(sp.Derivative(_gamma, _l), _n_a * (1 - _E_i) / (_N * sp.log(2)))),
        assumptions=("l >= 0; -inf for D_t at l = 0 if it has mass outside supp(q)",),
        kind="holds", strategy=_elastic(), evaluate=elasticity_checks.derivative_formula,
        error_kind="|theory - finite difference| / scale, relative",
        tolerance="<= 1e-6 * scale + float64 rounding allowance; closed form within 1e-10",
        derivations=("derivative",), summarize=elasticity_checks.fd_coverage,
        note="5-point finite differences of compression_rates; scale = (n_a/N)(1+E)/ln 2"),
    Claim(
        id="4", title="n_p dgamma_p/dl + n_a dgamma_a/dl + n_t dgamma_t/dl = 0",
        statement="The size-weighted derivatives sum to zero at every l >= 0 (at l = 0, n_t dgamma_t/dl "
                  "read as its limit l -> 0+).",
        latex=_latex(sp.Eq(_n_p * _D_p + _n_a * _D_a + _n_t * _D_t, 0)),
        assumptions=("at l = 0, n_t dgamma_t/dl is its limit l -> 0+ (nonzero if D_t has mass outside "
                     "supp(q))",),
        kind="holds", strategy=_elastic(), evaluate=elasticity_checks.weighted_identity,
        error_kind="|sum_i n_i dgamma_i/dl| / sum_i n_i scale_i, relative",
        tolerance="<= 1e-10 relative; limit at l = 1e-9 within 1e-6", derivations=("identity",),
        simulated_evidence=simulated.attach(("hooke", "tabular/joint"), ("hooke", "ngram/joint")),
        note="the limit term is also compared with n_t dgamma_t/dl at l = 1e-9"),
    Claim(
        id="5a", title="ratio = -k - l (dgamma_t/dl)/(dgamma_p/dl), l > 0",
        statement="For every l > 0, (dgamma_a/dl)/(dgamma_p/dl) = -k - l (dgamma_t/dl)/(dgamma_p/dl).",
        latex=_latex(sp.Eq(_D_a / _D_p, -_k - _l * _D_t / _D_p)),
        assumptions=("l > 0", "dgamma_p/dl != 0 (|dgamma_p/dl| > 1e-9 of its scale; others skipped)"),
        kind="holds", strategy=_elastic(l_values=strategies.perturbation_sizes(include_zero=False)),
        evaluate=elasticity_checks.ratio_formula,
        error_kind="|direct ratio - formula| / |formula| / condition number",
        tolerance="<= 1e-12 after dividing by the condition number", derivations=("identity", "ratio"),
        note="direct D_a/D_p against the formula and theory.predicted_ratio"),
    Claim(
        id="5b", title="ratio = -k exactly at l = 0",
        statement="At l = 0 the ratio (dgamma_a/dl)/(dgamma_p/dl) is exactly -k.",
        latex=_latex(sp.Eq((_D_a / _D_p).subs(_l, 0), -_k)),
        assumptions=("supp(P_t) within supp(q) = supp(P_p) U supp(P_a) (else the ratio is +1 when D_t is "
                     "disjoint from both)", "dgamma_p/dl != 0"),
        kind="conditional", strategy=_elastic(layouts=_COVERED_LAYOUTS, l_values=st.just(0.0)),
        evaluate=elasticity_checks.ratio_at_zero,
        error_kind="|ratio + k| / k / condition number",
        tolerance="<= 1e-12 after dividing by the condition number", derivations=("ratio",),
        counterexample=elasticity_checks.disjoint_counterexample,
        note="needs supp(P_t) within supp(q): disjoint D_t gives ratio +1 at every l"),
    Claim(
        id="6a", title="dgamma_t/dl = -(n_a/N) chi^2(P_t||q)/ln 2 <= 0",
        statement="The perturbation's own rate never rises: "
                  "dgamma_t/dl = -(n_a/N) chi^2(P_t || q) / ln 2 <= 0.",
        latex=_latex(sp.And(sp.Eq(_D_t, -_n_a * _chi2 / (_N * sp.log(2))), sp.Le(_D_t, 0))),
        assumptions=("l >= 0 (-inf at l = 0 if D_t has mass outside supp(q))",),
        kind="holds", strategy=_elastic(), evaluate=elasticity_checks.perturbation_rate_sign,
        error_kind="max(violation, |theory - chi^2 form|) / scale, relative", tolerance="<= 1e-10 relative",
        derivations=("perturbation_sign",), note="chi^2 form computed independently of theory"),
    Claim(
        id="6b", title="dgamma_p/dl < 0 => |dgamma_a/dl| >= k |dgamma_p/dl|",
        statement="Whenever the pre-training rate falls, the alignment rate rises at least k times as "
                  "fast, at every l >= 0 (the elasticity bound).",
        latex=_latex(sp.Implies(sp.Lt(_D_p, 0), sp.Ge(sp.Abs(_D_a), _k * sp.Abs(_D_p)))),
        assumptions=("dgamma_p/dl < 0 (vacuous otherwise; those configurations are skipped)",),
        kind="holds", strategy=_elastic(), evaluate=elasticity_checks.elasticity_bound,
        error_kind="max(0, k|D_p| - |D_a|) / (k|D_p|) / condition number",
        tolerance="<= 1e-12 after dividing by the condition number",
        derivations=("identity", "perturbation_sign", "bound"),
        note="derived: claim 4 solved for D_a (sympy solve), claim 6a's D_t <= 0 substituted"),
    Claim(
        id="7a", title="At l = 0: dgamma_a/dl > 0 <=> dgamma_p/dl < 0 <=> E_{P_t}[P_a/q] < 1",
        statement="At l = 0 the three conditions are equivalent.",
        latex=_latex(sp.Equivalent(sp.Gt(_D_a, 0), sp.Lt(_D_p, 0), sp.Lt(_E_a, 1))),
        assumptions=("supp(P_t) within supp(q) (else dgamma_p/dl, dgamma_a/dl can both be > 0)",
                     "E_{P_t}[P_a/q] != 1 (ties skipped)"),
        kind="conditional", strategy=_elastic(layouts=_COVERED_LAYOUTS, l_values=st.just(0.0)),
        evaluate=elasticity_checks.sign_equivalence, error_kind="sign disagreements (0 or 1)",
        tolerance="signs agree", derivations=("derivative", "ratio"),
        counterexample=elasticity_checks.uncovered_sign_counterexample,
        note="a condition on D_t (less alignment-like than q), not on Pareto masses"),
    Claim(
        id="7b", title="Paper's signs dgamma_p/dl < 0 < dgamma_a/dl for any D_t",
        statement="For small l the pre-training rate falls and the alignment rate rises, whatever the "
                  "perturbation.",
        latex=_latex(sp.And(sp.Lt(_D_p, 0), sp.Gt(_D_a, 0))),
        assumptions=("l in {0} U [1e-6, 1e-2]",),
        kind="refuted", strategy=_elastic(l_values=_SMALL_L), evaluate=elasticity_checks.paper_signs,
        error_kind="configurations with wrong signs (0 or 1)", tolerance="signs as stated",
        counterexample=elasticity_checks.alignment_like_counterexample,
        note="D_t = D_a flips both signs; the ratio stays -k at l = 0"),
    Claim(
        id="8a", title="Thm 4.2 under Pareto: c1 <= -ratio/k <= c2, l << 1",
        statement="Under Pareto leaf masses and l << 1, dgamma_a/dl = Theta(-k dgamma_p/dl): measured "
                  "constants c1 <= -ratio/k <= c2, over all configurations and over those with the paper's "
                  "signs; the exact relation -ratio/k = 1 + (l/k) D_t/D_p is checked at every configuration.",
        latex=_latex(sp.And(sp.Le(_c1, -_D_a / (_k * _D_p)), sp.Le(-_D_a / (_k * _D_p), _c2),
                            sp.Eq(-_D_a / (_k * _D_p), 1 + _l * _D_t / (_k * _D_p)))),
        assumptions=("Pareto masses (shape 1.05..4) for D_p, D_a, D_t", "l in [1e-4, 1e-2], k in [1, 1e6]",
                     "D_t 'unaligned' (outside supp(D_a), inside supp(D_p)) or 'generic' (independent, "
                     "whole tree)"),
        kind="measured", strategy=strategies.pareto_configs, evaluate=pareto_study.pareto_point,
        error_kind="|-ratio/k - (1 + (l/k) D_t/D_p)| / |.| / condition number (the relation; c1, c2 measured)",
        tolerance="relation <= 1e-12 after dividing by the condition number; c1, c2 measured",
        derivations=("ratio",), summarize=pareto_study.summarize,
        note="c1, c2 are measurements: over all configurations they give the spread a Theta(k) law must "
             "cover (c1 < 1 where the paper's signs fail); with the paper's signs c1 >= 1 is forced by claim 6b "
             "(a selection effect, no test of Thm 4.2) and c2 is set by the most extreme draw"),
    Claim(
        id="8b", title="Thm 4.2 under Pareto: paper's signs",
        statement="Under Pareto leaf masses and l << 1, dgamma_p/dl < 0 < dgamma_a/dl.",
        latex=_latex(sp.And(sp.Lt(_D_p, 0), sp.Gt(_D_a, 0))),
        assumptions=("as 8a",), kind="refuted", strategy=strategies.pareto_configs,
        evaluate=pareto_study.pareto_signs, error_kind="configurations with wrong signs (0 or 1)",
        tolerance="signs as stated", counterexample=pareto_study.pareto_sign_counterexample,
        note="Pareto masses do not fix the signs; E_{P_t}[P_a/q] < 1 does (claim 7a)"),
    Claim(
        id="9", title="Derivatives equal under both normalizations",
        statement="d/dl of the normalized rate is the same for gamma - log2 M and for gamma - H(P_i) "
                  "(= KL), and equals dgamma/dl.",
        latex=_latex(sp.Eq(sp.Derivative(_gamma - sp.log(_M, 2), _l), sp.Derivative(_gamma - _H_i, _l))),
        assumptions=("l >= 0",), kind="holds", strategy=_elastic(),
        evaluate=elasticity_checks.normalization_invariance,
        error_kind="worst |difference| / scale, relative", tolerance="<= 1e-6 * scale + rounding allowance",
        derivations=("normalization",), summarize=elasticity_checks.fd_coverage,
        note="finite differences of theory.mixture.normalized_rates"),
    Claim(
        id="10", title="sum_i n_i dgamma_i/dl = 0 at any stationary point of sum_i n_i CE_i",
        statement="For any differentiable model q_theta, at a stationary point theta*(l) of the count-weighted "
                  "objective J = sum_i n_i CE_i(theta) (n_t = l n_a) with invertible Hessian, the rates "
                  "gamma_i(l) = CE_i(theta*(l)) satisfy sum_i n_i dgamma_i/dl = 0.",
        latex=_latex(sp.Eq(_n_p * _D_p + _n_a * _D_a + _n_t * _D_t, 0)),
        assumptions=("theta* a stationary point of J with invertible Hessian (implicit function theorem)",
                     "numeric: models softmax(A theta) (fewer than n_leaves - 1 parameters) or softmax of a "
                     "sine layer, on 7..31 leaves; fits that reach no stationary point, or a singular Hessian, "
                     "are outside the premise (skipped)"),
        kind="holds", strategy=strategies.stationary_configs, evaluate=stationary_checks.stationary_identity,
        error_kind="max(identity residual, implicit d theta/dl vs refits beyond their allowance, early-stop "
                   "mismatch) / scale, relative",
        tolerance="residual <= 1e-9; Richardson-extrapolated finite differences of re-fitted models within 1e-6 "
                  "(+ fit and truncation allowance) of the implicit derivative; >= 25% of fits stationary",
        derivations=("stationary_identity",), summarize=stationary_checks.summarize,
        min_in_scope=constants.STATIONARY_MIN_IN_SCOPE,
        simulated_evidence=simulated.attach(("sequential", "sequential/joint/")),
        note="a consistency check of first-order optimality (it holds by construction at any stationary "
             "point), not evidence for the compression picture; the implicit derivative is checked against "
             "finite differences of re-fitted models; trained toy models: not part of this check"),
)
"""All claims, in the order of their numbers."""

BY_ID: dict[str, Claim] = {claim.id: claim for claim in CLAIMS}
"""Claim id -> Claim."""


def select(selector: str | int | None) -> tuple[Claim, ...]:
  """The claims named by `selector`: None (all), a number ('5' or 5: every part of claim 5) or an id ('5b').

  Raises ValueError naming the selector and the allowed values if it matches nothing.
  """
  if selector is None:
    return CLAIMS
  text = str(selector).strip().lower()
  chosen = tuple(c for c in CLAIMS if c.id == text or str(c.number) == text)
  if not chosen:
    numbers = sorted({c.number for c in CLAIMS})
    raise ValueError(f"unknown claim {selector!r}; allowed: a number {numbers[0]}..{numbers[-1]} or an id "
                     "among "
                     f"{', '.join(c.id for c in CLAIMS)}")
  return chosen
