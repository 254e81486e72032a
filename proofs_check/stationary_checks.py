"""Claim 10: sum_i n_i d gamma_i/dl = 0 at a stationary point of J = sum_i n_i CE_i, for fitted parametric models.

A small model q_theta over the leaves (proofs_check.configs.MODELS: softmax of a random linear map of fewer than
n_leaves - 1 parameters, or softmax of a tiny sine layer; never the free simplex, so q_theta* differs from the
size-weighted mixture) is fitted with scipy's trust-region Newton method (exact Hessian) to a stationary point
of J(theta, l) = sum_i n_i CE_i(theta), n_t = l n_a. Then:
  - the implicit derivative d theta*/dl = -H^{-1} n_a grad CE_t (H the Hessian of J) gives d gamma_i/dl =
    grad gamma_i . d theta*/dl, and sum_i n_i d gamma_i/dl is compared with 0 relative to its scale;
  - the implicit derivative is compared with finite differences of models re-fitted at nearby l (the check that
    catches a wrong Hessian or a wrong right-hand side: the weighted sum itself is ~0 whatever d theta/dl is);
  - at every iterate of the fit (a model stopped early) the weighted sum is compared with grad J . d theta/dl,
    which the theory says it equals, and recorded against ||grad J|| to show how the identity degrades.
Everything is in numpy/scipy float64. Internally J is divided by N = sum_i n_i (the same stationary points):
J / N = CE(q, q_theta) with q the size-weighted mixture, in nats per response; rates are in bits per response.
The identity holds by construction at any stationary point of any differentiable model: it checks first-order
optimality, not the compression picture.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import scipy.optimize

from proofs_check import constants
from proofs_check.configs import ALIGN, MODELS, PERTURB, StationaryConfig
from proofs_check.runner import Outcome, Sample
from theory import mixture, token_tree
from theory.conventions import LN2

_CENTRAL = (np.array([-2.0, -1.0, 1.0, 2.0]), np.array([1.0, -8.0, 8.0, -1.0]) / 12.0)
_FORWARD = (np.arange(1.0, 5.0), np.array([48.0, -36.0, 16.0, -3.0]) / 12.0)  # the offset-0 weight is -25/12

SIMULATED_EVIDENCE = ("not part of this check: evidence from trained tabular, n-gram and transformer toy models (JAX) "
                      "attaches through the claim's simulated_evidence field; this check is sympy and numpy/scipy "
                      "only")
"""Where evidence from trained toy models belongs (saved in claim 10's summary)."""


@dataclasses.dataclass(frozen=True)
class ParametricModel:
  """Logits z(theta) over the leaves of a fixed-feature model, with their first and second derivatives."""

  kind: str  # 'linear' or 'two_layer' (proofs_check.configs.MODELS).
  features: np.ndarray  # linear: A (n_leaves, width); two_layer: [F, 1] (n_leaves, n_features + 1).
  width: int  # linear: parameters; two_layer: hidden units.

  @property
  def n_params(self) -> int:
    """Length of theta."""
    return self.width if self.kind == "linear" else self.width * (self.features.shape[1] + 1)

  def logits(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """z (n_leaves,), dz/dtheta (n_leaves, n_params) and d2z/dtheta2 (n_leaves, n_params, n_params).

    two_layer: theta = (W flattened row by row (width x (n_features + 1)), v (width)); z_x = sum_j v_j
    sin(W_j . [F_x, 1]). The sine keeps the optimum finite (a saturating tanh layer often has its infimum at
    infinite weights, where no stationary point exists).
    """
    if self.kind == "linear":
      n_leaves = self.features.shape[0]
      return self.features @ theta, self.features, np.zeros((n_leaves, self.n_params, self.n_params))
    inputs = self.features
    n_leaves, n_in = inputs.shape
    weights = theta[:self.width * n_in].reshape(self.width, n_in)
    out = theta[self.width * n_in:]
    pre_activation = inputs @ weights.T  # (n_leaves, width)
    hidden, slope = np.sin(pre_activation), np.cos(pre_activation)  # the activation and its derivative
    curvature = -hidden  # its second derivative
    jac = np.zeros((n_leaves, self.n_params))
    second = np.zeros((n_leaves, self.n_params, self.n_params))
    for j in range(self.width):
      block = slice(j * n_in, (j + 1) * n_in)
      v_index = self.width * n_in + j
      jac[:, block] = (out[j] * slope[:, j])[:, None] * inputs
      jac[:, v_index] = hidden[:, j]
      second[:, block, block] = (out[j] * curvature[:, j])[:, None, None] * inputs[:, :, None] * inputs[:, None, :]
      second[:, block, v_index] = slope[:, j][:, None] * inputs
      second[:, v_index, block] = slope[:, j][:, None] * inputs
    return hidden @ out, jac, second


def build_model(config: StationaryConfig) -> tuple[ParametricModel, np.ndarray]:
  """The model's fixed random features and its initial parameters, both from config.model_seed.

  Args:
    config: the model kind, width, features and seed (the datasets' depth sets the number of leaves).

  Returns:
    (model, theta0): linear models start at theta = 0 (the uniform distribution), two-layer ones at a
    standard normal draw.
  """
  n_leaves = token_tree.n_leaves(config.datasets.depth)
  rng = np.random.default_rng([config.model_seed, 0])
  if config.model == "linear":
    model = ParametricModel(kind="linear", features=rng.standard_normal((n_leaves, config.width)),
                            width=config.width)
    return model, np.zeros(model.n_params)
  inputs = np.hstack([rng.standard_normal((n_leaves, config.n_features)), np.ones((n_leaves, 1))])
  model = ParametricModel(kind="two_layer", features=inputs, width=config.width)
  return model, np.random.default_rng([config.model_seed, 1]).standard_normal(model.n_params)


@dataclasses.dataclass(frozen=True)
class Evaluation:
  """The model at one theta: its probabilities and the derivatives the check needs (nats per response)."""

  log_probs: np.ndarray  # ln q_theta(x), shape (n_leaves,).
  jac: np.ndarray  # dz/dtheta, shape (n_leaves, n_params).
  second: np.ndarray  # d2z/dtheta2, shape (n_leaves, n_params, n_params).

  @property
  def probs(self) -> np.ndarray:
    """q_theta(x)."""
    return np.exp(self.log_probs)

  def cross_entropy(self, target: np.ndarray) -> float:
    """-sum_x target(x) ln q_theta(x), nats per response."""
    return float(-(target * self.log_probs).sum())

  def gradient(self, target: np.ndarray) -> np.ndarray:
    """grad_theta of the cross-entropy of `target` (any vector summing to one): jac^T (q_theta - target)."""
    return self.jac.T @ (self.probs - target)

  def hessian(self, target: np.ndarray) -> np.ndarray:
    """Hessian of the cross-entropy of `target`: jac^T (diag q - q q^T) jac + sum_x (q_x - target_x) d2z_x."""
    probs = self.probs
    mean = self.jac.T @ probs
    fisher = self.jac.T @ (probs[:, None] * self.jac) - np.outer(mean, mean)
    return fisher + np.einsum("x,xij->ij", probs - target, self.second)


def evaluate(model: ParametricModel, theta: np.ndarray) -> Evaluation:
  """The model's log-probabilities and logit derivatives at theta."""
  z, jac, second = model.logits(theta)
  shifted = z - z.max()
  return Evaluation(log_probs=shifted - math.log(np.exp(shifted).sum()), jac=jac, second=second)


def fit(model: ParametricModel, theta: np.ndarray, target: np.ndarray, *, gtol: float | None = None,
        record: list | None = None) -> tuple[np.ndarray, int]:
  """Minimises CE(target, q_theta) from theta with scipy's 'trust-exact' (Newton steps, exact Hessian).

  Args:
    model: the parametric model.
    theta: starting parameters.
    target: the distribution to fit (the size-weighted mixture: J / N = CE(q, q_theta)).
    gtol: stop when ||grad|| <= gtol (nats per response per unit theta); default constants.STATIONARY_GTOL.
    record: if a list, every iterate's theta is appended (the fit stopped early at each of them).

  Returns:
    The last iterate and the number of iterations.

  References:
    Nocedal & Wright, Numerical Optimization, 2nd ed., Section 4.3 (nearly exact trust-region solution).
  """
  gtol = constants.STATIONARY_GTOL if gtol is None else gtol
  cache: dict = {}

  def at(x):
    key = x.tobytes()
    if key not in cache:
      cache.clear()
      cache[key] = evaluate(model, x)
    return cache[key]

  def value_and_gradient(x):
    point = at(x)
    return point.cross_entropy(target), point.gradient(target)

  def callback(intermediate_result):
    record.append(np.array(intermediate_result.x))

  result = scipy.optimize.minimize(value_and_gradient, theta, jac=True, hess=lambda x: at(x).hessian(target),
                                   method="trust-exact", callback=None if record is None else callback,
                                   options={"gtol": gtol, "maxiter": constants.STATIONARY_MAX_ITERATIONS})
  # Near the optimum trust-exact stops once J's decrease is below float64's resolution of J (||grad|| ~ 1e-9);
  # plain Newton steps on the gradient, kept while they shrink it, take it to rounding level.
  theta, iterations = result.x, int(result.nit)
  gradient = at(theta).gradient(target)
  for _ in range(constants.STATIONARY_NEWTON_STEPS):
    if not np.linalg.norm(gradient) > gtol:
      break
    try:
      candidate = theta - np.linalg.solve(at(theta).hessian(target), gradient)
    except np.linalg.LinAlgError:
      break
    candidate_gradient = at(candidate).gradient(target)
    if not np.linalg.norm(candidate_gradient) < np.linalg.norm(gradient):
      break
    theta, gradient, iterations = candidate, candidate_gradient, iterations + 1
    if record is not None:
      record.append(np.array(theta))
  return theta, iterations


def implicit_derivative(point: Evaluation, P: np.ndarray, sizes: np.ndarray) -> np.ndarray:
  """d theta*/dl = -H^{-1} n_a grad CE_t, H the Hessian of J = sum_i n_i CE_i (per unit l = n_t / n_a).

  With J / N = CE(q, q_theta): H = N Hessian(CE(q, .)), so d theta*/dl = -(n_a / N) Hessian^{-1} grad CE_t.

  Args:
    point: the model evaluated at the stationary point.
    P: leaf distributions (D_p, D_a, D_t), shape (3, n_leaves).
    sizes: dataset sizes (n_p, n_a, n_t), shape (3,).

  Returns:
    d theta*/dl, shape (n_params,), per unit l.

  References:
    Krantz & Parks, The Implicit Function Theorem, Birkhauser 2002; Koh & Liang, "Understanding Black-box
    Predictions via Influence Functions", ICML 2017.
  """
  q = mixture.size_weighted_mixture(P, sizes)
  share = sizes[ALIGN] / sizes.sum()
  return -share * np.linalg.solve(point.hessian(q), point.gradient(P[PERTURB]))


def velocity_scale(point: Evaluation, hessian: np.ndarray, P: np.ndarray, sizes: np.ndarray) -> float:
  """(n_a/N)(||H^-1 jac^T q_theta|| + ||H^-1 jac^T P_t||): the two terms of d theta*/dl (H of J / N), its scale.

  It bounds ||d theta*/dl|| and does not vanish when the derivative does (identical datasets), so rounding
  noise there is not mistaken for a failure.
  """
  share = sizes[ALIGN] / sizes.sum()
  return float(share * (np.linalg.norm(np.linalg.solve(hessian, point.jac.T @ point.probs))
                        + np.linalg.norm(np.linalg.solve(hessian, point.jac.T @ P[PERTURB]))))


def _weighted_sum(point: Evaluation, P: np.ndarray, sizes: np.ndarray, velocity: np.ndarray, scale_of_velocity: float):
  """(sum_i n_i d gamma_i/dl) / N in bits, its scale, and d gamma_i/dl (bits per response per unit l).

  The scale is sum_i (n_i / N)(||jac^T q_theta|| + ||jac^T P_i||) / ln 2 (the two terms of grad gamma_i) times
  the scale of d theta/dl: a bound on every term of the sum that does not vanish with them.
  """
  weights = sizes / sizes.sum()
  grads = np.stack([point.gradient(P[i]) for i in range(P.shape[0])]) / LN2  # grad gamma_i, bits per unit theta
  model_term = np.linalg.norm(point.jac.T @ point.probs)
  grad_scales = np.array([model_term + np.linalg.norm(point.jac.T @ P[i]) for i in range(P.shape[0])]) / LN2
  d_gamma = grads @ velocity
  return float(weights @ d_gamma), float(weights @ grad_scales) * scale_of_velocity, d_gamma


def _relative(value: float, scale: float) -> float:
  if scale > 0:
    return abs(value) / scale
  return 0.0 if value == 0 else math.inf


def fit_error(point: Evaluation, target: np.ndarray) -> float:
  """How far a fitted theta can be from the exact stationary point: max(||grad||, its rounding) / lambda_min(H).

  To first order theta - theta_exact = H^{-1} grad; below ~eps * (||jac^T q_theta|| + ||jac^T target||) the
  computed gradient is rounding noise, so that floor bounds what the fit can resolve.
  """
  hessian = point.hessian(target)
  smallest = float(np.abs(np.linalg.eigvalsh(hessian)).min())
  floor = constants.STATIONARY_GRADIENT_ROUNDING * np.finfo(np.float64).eps * (
      np.linalg.norm(point.jac.T @ point.probs) + np.linalg.norm(point.jac.T @ target))
  gradient = max(float(np.linalg.norm(point.gradient(target))), float(floor))
  return gradient / smallest if smallest > 0 else math.inf


@dataclasses.dataclass(frozen=True)
class FiniteDifference:
  """d theta*/dl and d gamma_i/dl from re-fitted models, with the error allowances of the estimate."""

  velocity: np.ndarray  # d theta*/dl, Richardson-extrapolated from the step and the half step, per unit l.
  d_gamma_bits: np.ndarray  # d gamma_i/dl likewise, bits per response per unit l.
  rounding: float  # what the fits' own errors can put into velocity: sum_j |w_j| fit_error_j / h, combined as
  # the extrapolation combines the two steps h.
  truncation: float  # ||velocity(step) - velocity(step / 2)|| / 15: the half step's truncation error, which
  # bounds the extrapolated one's.
  step: float  # the full step in l.


def finite_difference_derivative(model: ParametricModel, theta: np.ndarray, config: StationaryConfig,
                                 velocity_scale_: float) -> FiniteDifference:
  """d theta*/dl and d gamma_i/dl from models re-fitted (warm-started at theta) at l + offsets * step.

  5-point stencils (central where l allows it, forward otherwise: l < 0 is not a size) at the step and at half
  the step. The step is STATIONARY_FD_STEP * (k + 1 + l) (the mixture is a rational function of l with its pole
  at l = -(k + 1)), enlarged where the fit's own error (fit_error) would otherwise dominate: until that error,
  divided by the step, is STATIONARY_FD_ROUNDING_SHARE of the tolerance; never above STATIONARY_FD_MAX_STEP *
  (k + 1 + l). A 4th-order stencil's error at half the step is ~1/15 of the difference between the two
  estimates: that is returned as a (conservative) truncation allowance, and the two are combined by Richardson
  extrapolation, (16 fd(step / 2) - fd(step)) / 15, which cancels the h^4 term.

  References:
    Fornberg, "Generation of Finite Difference Formulas on Arbitrarily Spaced Grids", Math. Comp. 51 (1988);
    Richardson, Phil. Trans. R. Soc. A 210 (1911) (extrapolation to zero step).

  Args:
    model: the parametric model.
    theta: the fitted stationary point at config.datasets.l.
    config: the configuration.
    velocity_scale_: the scale of d theta/dl (see velocity_scale), which sets the tolerance the step aims at.
  """
  datasets = config.datasets
  P = datasets.probabilities()
  distance = datasets.k + 1.0 + datasets.l
  start_error = fit_error(evaluate(model, theta), mixture.size_weighted_mixture(P, datasets.sizes()))
  weight_sum = max(np.abs(_CENTRAL[1]).sum(), np.abs(_FORWARD[1]).sum() + 25.0 / 12.0)
  wanted = weight_sum * start_error / (constants.STATIONARY_FD_ROUNDING_SHARE * constants.STATIONARY_FD_RTOL
                                       * velocity_scale_) if velocity_scale_ > 0 else math.inf
  step = min(max(constants.STATIONARY_FD_STEP * distance, 2 * wanted), constants.STATIONARY_FD_MAX_STEP * distance)
  offsets, weights = _CENTRAL if datasets.l >= 2 * step else _FORWARD
  if offsets is _FORWARD[0]:
    offsets, weights = np.append(offsets, 0.0), np.append(weights, -25.0 / 12.0)
  refits: dict[float, tuple] = {}
  for offset in sorted(set(offsets.tolist()) | set((offsets / 2).tolist())):
    target = mixture.size_weighted_mixture(P, datasets.sizes(datasets.l + offset * step))
    refit = theta if offset == 0 else fit(model, theta, target)[0]
    point = evaluate(model, refit)
    refits[offset] = (refit, [point.cross_entropy(P[i]) / LN2 for i in range(P.shape[0])],
                      start_error if offset == 0 else fit_error(point, target))

  def estimate(scale):
    thetas = np.array([refits[offset * scale][0] for offset in offsets])
    gammas = np.array([refits[offset * scale][1] for offset in offsets])
    errors = np.array([refits[offset * scale][2] for offset in offsets])
    return weights @ thetas / (scale * step), weights @ gammas / (scale * step), float(np.abs(weights) @ errors)

  full_velocity, full_gamma, full_errors = estimate(1.0)
  half_velocity, half_gamma, half_errors = estimate(0.5)
  rounding = (16.0 * half_errors / (step / 2) + full_errors / step) / 15.0
  return FiniteDifference(velocity=(16.0 * half_velocity - full_velocity) / 15.0,
                          d_gamma_bits=(16.0 * half_gamma - full_gamma) / 15.0, rounding=rounding,
                          truncation=float(np.linalg.norm(full_velocity - half_velocity)) / 15.0, step=step)


def stationary_identity(config: StationaryConfig) -> Outcome:
  """Claim 10 at one configuration: fit, implicit derivative, weighted identity, finite differences, early stops.

  Skipped (outside the claim's premise) where the fit did not reach a stationary point (||grad J/N|| above
  STATIONARY_SCOPE_GTOL within the iteration budget: a slow, ill-conditioned valley) or where the Hessian there is
  singular up to STATIONARY_HESSIAN_RCOND (the implicit function theorem needs it invertible: e.g. a hidden unit
  with v_j = 0 leaves W_j flat); the claim requires a share of configurations in scope.

  Error: the largest of
    - the identity's relative residual |sum_i n_i d gamma_i/dl| / scale (see _weighted_sum);
    - the finite-difference error beyond its allowance, max(0, ||fd - implicit|| - allowance) / scale of
      d theta/dl (see velocity_scale; the allowance is the fits' own error plus the truncation estimate, see
      finite_difference_derivative), allowed STATIONARY_FD_RTOL; not counted (uninformative) where the
      allowance exceeds STATIONARY_FD_MAX_ROUNDING of the scale;
    - over the fit's iterates, |sum_i n_i d gamma_i/dl - grad J . d theta/dl| relative to the residual's scale.

  Args:
    config: datasets, sizes and model.

  Returns:
    The Outcome, with the per-configuration numbers (residual, gradient norm at the stop, Hessian condition,
    finite-difference error and allowance, the early-stop pairs (||grad J/N||, relative residual)) in values.

  References:
    Krantz & Parks, The Implicit Function Theorem, Birkhauser 2002; Nocedal & Wright, Numerical Optimization,
    2nd ed., 2006.
  """
  datasets = config.datasets
  P, sizes = datasets.probabilities(), datasets.sizes()
  q = mixture.size_weighted_mixture(P, sizes)
  model, theta0 = build_model(config)
  iterates: list = []
  theta, iterations = fit(model, theta0, q, record=iterates)
  point = evaluate(model, theta)
  hessian = point.hessian(q)
  eigenvalues = np.abs(np.linalg.eigvalsh(hessian))
  condition = float(eigenvalues.max() / eigenvalues.min()) if eigenvalues.min() > 0 else math.inf
  grad_norm = float(np.linalg.norm(point.gradient(q)))
  values = {"model": config.model, "n_params": model.n_params, "iterations": iterations,
            "grad_norm_at_stop": grad_norm, "hessian_condition": condition}
  stationary = grad_norm <= constants.STATIONARY_SCOPE_GTOL
  invertible = eigenvalues.min() > constants.STATIONARY_HESSIAN_RCOND * eigenvalues.max()
  if not (stationary and invertible):
    values["skip_reason"] = "no stationary point reached" if not stationary else "singular Hessian"
    return Outcome(error=math.nan, skipped=True, values=values)
  velocity = implicit_derivative(point, P, sizes)
  scale_of_velocity = velocity_scale(point, hessian, P, sizes)
  weighted, scale, d_gamma = _weighted_sum(point, P, sizes, velocity, scale_of_velocity)
  residual = _relative(weighted, scale)
  fd = finite_difference_derivative(model, theta, config, scale_of_velocity)
  allowance = float(fd.rounding + fd.truncation)
  fd_informative = bool(allowance <= constants.STATIONARY_FD_MAX_ROUNDING * scale_of_velocity)
  fd_gap = float(np.linalg.norm(fd.velocity - velocity))
  fd_error = _relative(fd_gap, scale_of_velocity) if fd_informative else math.nan
  fd_excess = _relative(max(0.0, fd_gap - allowance), scale_of_velocity) if fd_informative else 0.0
  weights = sizes / sizes.sum()
  early = _early_stops(model, iterates[:-1], P, sizes)
  early_error = max((e["consistency_error"] for e in early), default=0.0)
  error = max(residual, fd_excess, early_error)
  holds = (residual <= constants.STATIONARY_RTOL and fd_excess <= constants.STATIONARY_FD_RTOL
           and early_error <= constants.STATIONARY_RTOL)
  values.update({"relative_residual": residual, "fd_error": fd_error, "fd_excess": fd_excess,
                 "fd_informative": fd_informative,
                 "fd_allowance": allowance / scale_of_velocity if scale_of_velocity else math.inf,
                 "early_consistency_error": early_error, "d_gamma_bits": d_gamma.tolist(),
                 "fd_d_gamma_bits": fd.d_gamma_bits.tolist(), "fd_step": float(fd.step),
                 "fd_weighted_sum_relative": _relative(float(weights @ fd.d_gamma_bits),
                                                       float(weights @ np.abs(fd.d_gamma_bits))),
                 "velocity_over_scale": _relative(float(np.linalg.norm(velocity)), scale_of_velocity),
                 "early_stops": [(e["grad_norm"], e["relative_residual"]) for e in early]})
  return Outcome(error=error, holds=holds, values=values)


def _early_stops(model: ParametricModel, iterates: list, P: np.ndarray, sizes: np.ndarray) -> list[dict]:
  """At each iterate (a model stopped early): ||grad J/N||, the identity's relative residual, and how far it is
  from the theory's grad J . d theta/dl (relative to the residual's scale). Iterates with a singular Hessian
  (no implicit derivative) are left out."""
  q = mixture.size_weighted_mixture(P, sizes)
  out = []
  for theta in iterates:
    point = evaluate(model, theta)
    hessian = point.hessian(q)
    eigenvalues = np.abs(np.linalg.eigvalsh(hessian))
    if not eigenvalues.min() > constants.STATIONARY_HESSIAN_RCOND * eigenvalues.max():
      continue
    velocity = implicit_derivative(point, P, sizes)
    weighted, scale, _ = _weighted_sum(point, P, sizes, velocity, velocity_scale(point, hessian, P, sizes))
    grad = point.gradient(q)
    predicted = float(grad @ velocity) / LN2  # grad (J/N) . d theta/dl, bits
    out.append({"grad_norm": float(np.linalg.norm(grad)), "relative_residual": _relative(weighted, scale),
                "consistency_error": _relative(weighted - predicted, scale)})
  return out


def summarize(sample: Sample) -> dict:
  """Claim 10's numbers: residuals, finite-difference errors, gradient norms at the fits' stops, skips, and the
  early-stopping law (log10 relative residual against log10 ||grad J / N|| over every iterate of every fit)."""
  scoped = [o for o in sample.in_scope if "relative_residual" in o.values]
  skipped = [o for o in sample.outcomes if o.skipped]
  reasons = [o.values.get("skip_reason", "other") for o in skipped]
  summary = {"tried": sample.tried, "in_scope": len(scoped),
             "skipped": {reason: reasons.count(reason) for reason in sorted(set(reasons))},
             "simulated_evidence": SIMULATED_EVIDENCE}
  if not scoped:
    return summary

  def stats(key, outcomes=scoped):
    values = np.array([o.values[key] for o in outcomes], dtype=np.float64)
    values = values[~np.isnan(values)]
    return {"max": float(values.max()), "median": float(np.median(values))} if values.size else None

  summary.update({"relative_residual": stats("relative_residual"), "fd_error": stats("fd_error"),
                  "fd_allowance": stats("fd_allowance", [o for o in scoped if o.values["fd_informative"]]),
                  "fd_excess": stats("fd_excess"),
                  "grad_norm_at_stop": stats("grad_norm_at_stop"),
                  "velocity_over_scale": stats("velocity_over_scale"),
                  "fd_tested": int(sum(o.values["fd_informative"] for o in scoped)),
                  "by_model": {kind: sum(o.values["model"] == kind for o in scoped) for kind in MODELS}})
  slopes = []
  for outcome in scoped:
    pairs = np.array([pair for pair in outcome.values["early_stops"] if pair[0] > 0 and pair[1] > 0],
                     dtype=np.float64).reshape(-1, 2)
    if len(pairs) >= 3 and np.ptp(np.log10(pairs[:, 0])) >= 1:
      slopes.append(float(np.polyfit(np.log10(pairs[:, 0]), np.log10(pairs[:, 1]), 1)[0]))
  if slopes:
    summary["early_stopping"] = {
        "fits": len(slopes), "median_slope": float(np.median(slopes)),
        "slope_quartiles": [float(x) for x in np.percentile(slopes, [25, 75])],
        "reading": "per fit, the slope of log10 (relative residual of the identity) against log10 ||grad (J/N)|| "
                   "over its iterates (models stopped early): the residual is grad J . d theta/dl, so it shrinks "
                   "with the gradient (slope ~1) and vanishes only at the stationary point"}
  return summary
