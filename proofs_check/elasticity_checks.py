"""Claims 3-7 and 9: derivatives, weighted identity, ratio, signs, bound, each against a second computation.

Every function takes an ElasticityConfig and returns an Outcome. Derivative errors are relative to the
derivative's scale (n_a / N)(1 + E_{P_t}[P_i / q]) / ln 2 (see proofs_check.derivatives.closed_form).
"""

from __future__ import annotations

import math

import numpy as np

from proofs_check import constants, derivatives
from proofs_check.configs import ALIGN, PERTURB, PRETRAIN, ElasticityConfig
from proofs_check.runner import Outcome
from theory import elasticity, mixture


def _analytic(config: ElasticityConfig) -> np.ndarray:
  return elasticity.rate_derivatives(config.probabilities(), config.sizes())


def _compare(reference: np.ndarray, rounding: np.ndarray, got: np.ndarray, scale: np.ndarray):
  """Worst |got - reference| / scale over datasets where the finite difference `reference` is informative
  (finite, rounding allowance <= FD_MAX_ROUNDING * scale), and whether all are within FD_RTOL * scale +
  rounding. A finite difference is uninformative when the dataset has mass on a leaf whose log q bends on
  a tiny l-scale (e.g. q ~ 1e-30 there), forcing a step too small for float64."""
  usable = np.isfinite(reference) & (rounding <= constants.FD_MAX_ROUNDING * scale)
  if not usable.any():
    return math.nan, True
  diff = np.abs(got[usable] - reference[usable])
  allowed = constants.FD_RTOL * scale[usable] + rounding[usable]
  return float((diff / scale[usable]).max()), bool(np.all(diff <= allowed))


def derivative_formula(config: ElasticityConfig) -> Outcome:
  """Claim 3: theory's d gamma_i / dl vs finite differences of compression_rates and vs the closed form.

  Where a finite difference is impossible (the perturbation's rate at l = 0 with mass the mixture lacks),
  the analytic value must be -inf, as the closed form says.
  """
  got = _analytic(config)
  closed, scale = derivatives.closed_form(config)
  fd, rounding = derivatives.finite_differences(config)
  fd_error, fd_ok = _compare(fd, rounding, got, scale)
  finite = np.isfinite(closed)
  closed_error = float((np.abs(got[finite] - closed[finite]) / scale[finite]).max()) if finite.any() else 0.0
  infinite_ok = bool(np.all(got[~finite] == closed[~finite]))
  holds = fd_ok and closed_error <= constants.IDENTITY_RTOL and infinite_ok
  return Outcome(error=max(fd_error, closed_error) if not math.isnan(fd_error) else closed_error, holds=holds,
                 values={"fd_error": fd_error, "closed_form_error": closed_error,
                         "fd_informative": _informative(fd, rounding, scale)})


def _informative(fd: np.ndarray, rounding: np.ndarray, scale: np.ndarray) -> int:
  return int((np.isfinite(fd) & (rounding <= constants.FD_MAX_ROUNDING * scale)).sum())


def fd_coverage(sample) -> dict:
  """How many (configuration, dataset) derivatives a finite difference actually tested (claims 3 and 9)."""
  tested = sum(o.values.get("fd_informative", 0) for o in sample.outcomes)
  return {"fd_tested_derivatives": tested, "derivatives": 3 * sample.tried,
          "note": "the rest (mass where log q bends on a tiny l-scale, or D_t at l = 0 outside supp(q)) are "
                  "checked against the closed form only"}


def weighted_identity(config: ElasticityConfig) -> Outcome:
  """Claim 4: sum_i n_i d gamma_i / dl = 0 (theory's residual), relative to sum_i n_i scale_i.

  scale_i = (n_a / N)(1 + E_{P_t}[P_i / q]) / ln 2 bounds |d gamma_i / dl| and does not vanish when the
  derivatives do (identical datasets), so rounding noise is not mistaken for a failure.

  At l = 0 the perturbation's term is the l -> 0+ limit of n_t d gamma_t / dl; where that limit is not 0
  (the perturbation has mass the mixture lacks) it is also compared with n_t d gamma_t / dl at l = LIMIT_L.
  """
  P, sizes = config.probabilities(), config.sizes()
  residual = float(elasticity.weighted_identity_residual(P, sizes))
  term = float(elasticity.perturbation_term(P, sizes))
  _, scales = derivatives.closed_form(config)
  finite = np.isfinite(scales)
  scale = float((sizes[finite] * scales[finite]).sum()) + abs(term)
  error = abs(residual) / scale
  holds = error <= constants.IDENTITY_RTOL
  limit_error = math.nan
  if config.l == 0 and term != 0:
    near = config.with_l(constants.LIMIT_L)
    near_d = elasticity.rate_derivatives(near.probabilities(), near.sizes())
    near_term = near.sizes()[PERTURB] * near_d[PERTURB]
    limit_error = abs(near_term - term) / abs(term)
    holds = holds and limit_error <= constants.LIMIT_RTOL
  return Outcome(error=error, holds=holds, values={"limit_error": limit_error})


def _degenerate(d: np.ndarray, scale: np.ndarray) -> bool:
  return not abs(d[PRETRAIN]) > constants.DEGENERATE_RTOL * scale[PRETRAIN]


def condition_number(d: np.ndarray, scale: np.ndarray) -> float:
  """max(scale_p / |d gamma_p/dl|, scale_a / |d gamma_a/dl|, 1): how much float64 rounding in the two terms
  of each derivative (1 and E_{P_t}[P_i / q]) is amplified in their ratio. Ratio errors are divided by it."""
  with np.errstate(divide="ignore"):
    return float(max(scale[PRETRAIN] / abs(d[PRETRAIN]), scale[ALIGN] / abs(d[ALIGN]), 1.0))


def ratio_formula(config: ElasticityConfig) -> Outcome:
  """Claim 5a (l > 0): (d gamma_a/dl) / (d gamma_p/dl) = -k - l (d gamma_t/dl) / (d gamma_p/dl).

  Compares theory's direct ratio with its predicted_ratio. Skipped where d gamma_p / dl is within
  DEGENERATE_RTOL of 0 relative to its scale (the ratio is then undefined). Error: |direct - formula| /
  |formula|, divided by the condition number: that of the derivatives (see condition_number, with D_t's
  included) times the cancellation (k + |l D_t / D_p|) / |formula| of the formula's two terms.
  """
  P, sizes = config.probabilities(), config.sizes()
  d = elasticity.rate_derivatives(P, sizes)
  _, scale = derivatives.closed_form(config)
  if _degenerate(d, scale):
    return Outcome(error=math.nan, skipped=True)
  direct = float(elasticity.derivative_ratio(P, sizes))
  formula = -config.k - config.l * d[PERTURB] / d[PRETRAIN]
  predicted = float(elasticity.predicted_ratio(P, sizes))
  relative = max(abs(direct - formula), abs(predicted - formula)) / abs(formula)
  correction = abs(config.l * d[PERTURB] / d[PRETRAIN])
  with np.errstate(divide="ignore"):
    perturbation_condition = scale[PERTURB] / abs(d[PERTURB]) if correction > 0 else 1.0
  cancellation = max(1.0, (config.k + correction) / abs(formula))
  error = relative / (max(condition_number(d, scale), perturbation_condition) * cancellation)
  return Outcome(error=error, holds=error <= constants.RATIO_RTOL,
                 values={"ratio": direct, "relative": relative})


def ratio_at_zero(config: ElasticityConfig) -> Outcome:
  """Claim 5b (l = 0, supp(P_t) inside supp(q)): the ratio is exactly -k.

  Error: |ratio + k| / k, divided by the condition number (see condition_number).
  Configurations outside the assumption, or with d gamma_p / dl = 0, are skipped.
  """
  config = config.with_l(0.0)
  if not derivatives.covered_at_zero(config):
    return Outcome(error=math.nan, skipped=True)
  d = _analytic(config)
  _, scale = derivatives.closed_form(config)
  if _degenerate(d, scale):
    return Outcome(error=math.nan, skipped=True)
  ratio = float(elasticity.derivative_ratio(config.probabilities(), config.sizes()))
  relative = abs(ratio + config.k) / config.k
  error = relative / condition_number(d, scale)
  return Outcome(error=error, holds=error <= constants.RATIO_RTOL,
                 values={"ratio": ratio, "relative": relative})


def disjoint_counterexample() -> dict:
  """Recomputes the counterexample to 'ratio = -k at l = 0 for every perturbation' (claim 5b's assumption).

  The 'disjoint' layout: D_p and D_a live in the aligned subtree, D_t in the unaligned one (outside supp(q) at
  l = 0). Then d gamma_p/dl = d gamma_a/dl = (n_a / N) / ln 2 > 0 and the ratio is +1, at l = 0 and at every l.
  """
  from proofs_check.configs import layout_supports
  from theory.distributions import DatasetSpec

  pretrain, align, perturb = layout_supports("disjoint", 4)
  base = ElasticityConfig(depth=4, pretrain=DatasetSpec(family="pareto", support=pretrain, seed=1),
                          align=DatasetSpec(family="pareto", support=align, seed=2),
                          perturb=DatasetSpec(family="pareto", support=perturb, seed=3), layout="disjoint",
                          k=100.0)
  rows = []
  for size_ratio in (0.0, 1e-3, 1.0):
    config = base.with_l(size_ratio)
    P, sizes = config.probabilities(), config.sizes()
    d = elasticity.rate_derivatives(P, sizes)
    rows.append({"l": size_ratio, "d_gamma_p": float(d[PRETRAIN]), "d_gamma_a": float(d[ALIGN]),
                 "ratio": float(elasticity.derivative_ratio(P, sizes)),
                 "predicted_ratio": float(elasticity.predicted_ratio(P, sizes))})
  reproduced = all(abs(r["ratio"] - 1.0) < 1e-12 and r["d_gamma_p"] > 0 and r["d_gamma_a"] > 0 for r in rows)
  return {"config": base.as_dict(), "k": base.k, "by_l": rows, "reproduced": reproduced,
          "reading": "D_t outside supp(D_p) and supp(D_a): both rates rise equally, ratio +1 (not -k) at "
                     "every l"}


def perturbation_rate_sign(config: ElasticityConfig) -> Outcome:
  """Claim 6a: d gamma_t / dl <= 0, and it equals -(n_a/N) chi^2(P_t || q) / ln 2 (computed directly).

  Error: max(violation of <= 0, |theory - chi^2 form|), relative to the scale of d gamma_t / dl.
  """
  d = _analytic(config)
  _, scale = derivatives.closed_form(config)
  chi = derivatives.chi_square_form(config)
  if math.isinf(chi) or math.isinf(d[PERTURB]):
    same = chi == d[PERTURB]
    return Outcome(error=0.0 if same else math.inf, holds=same, values={"uncovered": True})
  violation = max(0.0, d[PERTURB]) / scale[PERTURB]
  mismatch = abs(d[PERTURB] - chi) / scale[PERTURB]
  error = max(violation, mismatch)
  holds = violation <= constants.IDENTITY_RTOL and mismatch <= constants.IDENTITY_RTOL
  return Outcome(error=error, holds=holds)


def elasticity_bound(config: ElasticityConfig) -> Outcome:
  """Claim 6b: whenever d gamma_p / dl < 0, |d gamma_a / dl| >= k |d gamma_p / dl| (every l >= 0).

  Skipped (vacuous) where d gamma_p / dl >= 0 or is 0 up to rounding (DEGENERATE_RTOL of its scale).
  Error: max(0, k|D_p| - |D_a|) / (k |D_p|), divided by the condition number (see condition_number).
  """
  d = _analytic(config)
  _, scale = derivatives.closed_form(config)
  if _degenerate(d, scale) or not d[PRETRAIN] < 0:
    return Outcome(error=math.nan, skipped=True)
  bound = config.k * abs(d[PRETRAIN])
  violation = max(0.0, bound - abs(d[ALIGN])) / bound / condition_number(d, scale)
  return Outcome(error=violation, holds=violation <= constants.RATIO_RTOL and d[ALIGN] > 0,
                 values={"excess": (abs(d[ALIGN]) - bound) / bound})


def sign_equivalence(config: ElasticityConfig) -> Outcome:
  """Claim 7a (l = 0, supp(P_t) inside supp(q)): d gamma_a/dl > 0 <=> d gamma_p/dl < 0 <=> E_{P_t}[P_a/q] < 1.

  Ties (|1 - E| < SIGN_RTOL, where all three are 0 up to rounding) and uncovered perturbations are
  skipped. Error: 1 if the three signs disagree, else 0.
  """
  config = config.with_l(0.0)
  if not derivatives.covered_at_zero(config):
    return Outcome(error=math.nan, skipped=True)
  P, sizes = config.probabilities(), config.sizes()
  expectation = float(elasticity.alignment_expectation(P, sizes))
  if abs(1 - expectation) < constants.SIGN_RTOL:
    return Outcome(error=math.nan, skipped=True)
  d = elasticity.rate_derivatives(P, sizes)
  agree = (d[ALIGN] > 0) == (d[PRETRAIN] < 0) == (expectation < 1)
  return Outcome(error=0.0 if agree else 1.0, holds=agree,
                 values={"paper_signs": bool(d[ALIGN] > 0 and d[PRETRAIN] < 0)})


def paper_signs(config: ElasticityConfig) -> Outcome:
  """Claim 7b: the paper's signs d gamma_p/dl < 0 < d gamma_a/dl, stated for every perturbation.

  Error: 1 where the signs fail, else 0. Records E_{P_t}[P_a / q] and the ratio / (-k).
  """
  P, sizes = config.probabilities(), config.sizes()
  d = elasticity.rate_derivatives(P, sizes)
  _, scale = derivatives.closed_form(config)
  if _degenerate(d, scale):
    return Outcome(error=math.nan, skipped=True)
  holds = bool(d[PRETRAIN] < 0 < d[ALIGN])
  return Outcome(error=0.0 if holds else 1.0, holds=holds,
                 values={"alignment_expectation": float(elasticity.alignment_expectation(P, sizes)),
                         "minus_ratio_over_k": float(-d[ALIGN] / d[PRETRAIN] / config.k)})


def alignment_like_counterexample() -> dict:
  """Recomputes the counterexample to claim 7b: D_t = D_a (alignment-like data) flips both signs.

  E_{P_a}[P_a / q] = sum P_a^2 / q >= 1 (Cauchy-Schwarz, equality iff P_a = q), so d gamma_a/dl <= 0 <=
  d gamma_p/dl, while the ratio stays -k at l = 0.
  """
  from theory.distributions import DatasetSpec

  align = DatasetSpec(family="pareto", seed=2)
  config = ElasticityConfig(depth=4, pretrain=DatasetSpec(family="pareto", seed=1), align=align,
                            perturb=align,
                            layout="shared", k=100.0, l=0.0)
  P, sizes = config.probabilities(), config.sizes()
  d = elasticity.rate_derivatives(P, sizes)
  ratio = float(elasticity.derivative_ratio(P, sizes))
  expectation = float(elasticity.alignment_expectation(P, sizes))
  reproduced = bool(d[ALIGN] < 0 < d[PRETRAIN] and abs(ratio + config.k) / config.k < constants.RATIO_RTOL)
  return {"config": config.as_dict(), "d_gamma_p": float(d[PRETRAIN]), "d_gamma_a": float(d[ALIGN]),
          "alignment_expectation": expectation, "ratio": ratio, "reproduced": reproduced,
          "reading": "D_t = D_a: gamma_a falls and gamma_p rises (signs flipped), ratio still -k at l = 0"}


def uncovered_sign_counterexample() -> dict:
  """Recomputes the counterexample to claim 7a without its assumption: both derivatives positive at l = 0."""
  example = disjoint_counterexample()
  at_zero = example["by_l"][0]
  return {"config": example["config"], "d_gamma_p": at_zero["d_gamma_p"], "d_gamma_a": at_zero["d_gamma_a"],
          "alignment_expectation": 0.0, "reproduced": example["reproduced"],
          "reading": "D_t outside supp(q): E_{P_t}[P_a/q] = 0 < 1 and d gamma_a/dl > 0, but d gamma_p/dl > "
                     "0 too"}


def normalization_invariance(config: ElasticityConfig) -> Outcome:
  """Claim 9: finite differences of both normalized rates ('log_leaves', 'kl') agree with each other and with
  theory's d gamma / dl. Error: worst difference relative to the derivative's scale."""
  got = _analytic(config)
  _, scale = derivatives.closed_form(config)
  worst, holds, informative = 0.0, True, 0
  references = []
  for normalization in mixture.NORMALIZATIONS:
    fd, rounding = derivatives.finite_differences(
        config, lambda P, sizes, n=normalization: mixture.normalized_rates(P, sizes, n))
    references.append((fd, rounding))
    informative += _informative(fd, rounding, scale)
    error, ok = _compare(fd, rounding, got, scale)
    if not math.isnan(error):
      worst = max(worst, error)
    holds = holds and ok
  (fd_log, r_log), (fd_kl, r_kl) = references
  error, ok = _compare(fd_log, r_log + r_kl, fd_kl, scale)
  if not math.isnan(error):
    worst = max(worst, error)
  return Outcome(error=worst, holds=holds and ok, values={"fd_informative": informative // 2})
