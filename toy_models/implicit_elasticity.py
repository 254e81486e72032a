"""Exact joint-regime elasticity d gamma_i / dl of any differentiable toy model, by the implicit function theorem.

Three datasets D_p, D_a, D_t (axes theory.conventions.PRETRAIN, ALIGN, PERTURB) with leaf distributions P_i and
sizes n_i (responses; l = n_t / n_a) define the joint objective J(theta, l) = sum_i n_i CE_i(theta), CE_i =
-sum_x P_i(x) ln q_theta(x) in nats per response, so J is in nats (x responses). Training minimises the
token-normalised version (likelihood.weighted_token_nll with weights n_i P_i): the normaliser does not depend on
theta, so both have the same stationary points for each l.

At a stationary point theta*(l), grad J = 0 for all l; differentiating in l gives H d theta*/dl = -n_a grad CE_t
(H = the Hessian of J), and then d gamma_i / dl = grad gamma_i . d theta*/dl with gamma_i = CE_i / ln 2 in bits per
response. H is applied matrix-free (a forward-over-reverse Hessian-vector product) and the system is solved with a
Krylov method, so models of any size work on one run at a time (vmap or loop over runs).

Singular and indefinite Hessians. The tabular and n-gram models are softmax tables: J is convex in their logits
and H is positive semi-definite, singular along the shift of each row (softmax is shift-invariant), on rows of the
forced-EOS layer and on rows no dataset reaches. grad CE_t has no component on that null space (a shift does not
change q), so H x = b is consistent and CG started from 0 stays in range(H) and returns the minimum-norm solution
(the null-space part of d theta/dl changes no rate anyway). A transformer's H is positive semi-definite at a local
minimum (singular along its continuous symmetries) but indefinite away from one: CG then meets a direction with
p^T H p <= 0 and is flagged (negative_curvature); 'auto' reruns the solve with MINRES, which handles symmetric
indefinite systems, and 'damped_cg' solves (H + lambda I) x = b instead (biased by O(lambda)). At a point that is
not stationary the formula is still computed, but it is no longer the derivative of a minimiser's path: the
weighted identity then fails by exactly grad J . d theta/dl / ln 2, returned as stationarity_term_bits.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from theory import conventions, token_tree
from toy_models import shared_prefixes
from toy_models.models import Model

SOLVERS = ("auto", "cg", "minres", "damped_cg")
"""Krylov solvers of H x = b: 'cg' conjugate gradients (H positive semi-definite), 'minres' MINRES (any symmetric
H), 'damped_cg' CG on (H + damping I), 'auto' CG with a MINRES rerun when CG meets non-positive curvature."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class SolverConfig:
  """How the linear system H d theta/dl = -n_a grad CE_t is solved."""

  method: str = "auto"  # one of SOLVERS.
  max_iterations: int = 2000  # Krylov iterations at most (per solver).
  tolerance: float = 1e-12  # stop when the recursive residual is <= tolerance * ||b|| (relative).
  damping: float = 0.0  # 'damped_cg' only: lambda > 0 in (H + lambda I) x = b (nats x responses per unit^2).

  def __post_init__(self):
    if self.method not in SOLVERS:
      raise ValueError(f"unknown solver method {self.method!r}; allowed: {', '.join(SOLVERS)}")
    if isinstance(self.max_iterations, bool) or not isinstance(self.max_iterations, int) or self.max_iterations < 1:
      raise ValueError(f"max_iterations={self.max_iterations!r} is not allowed; allowed: an integer >= 1")
    if not 0 < self.tolerance < 1:
      raise ValueError(f"tolerance={self.tolerance!r} is not allowed; allowed: 0 < tolerance < 1")
    if not math.isfinite(self.damping) or self.damping < 0 or (self.method == "damped_cg") != (self.damping > 0):
      raise ValueError(f"damping={self.damping!r} with method={self.method!r} is not allowed; allowed: damping > 0 "
                       "with 'damped_cg', 0 otherwise")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ConvergeConfig:
  """How converge_joint drives a model to a stationary point of J (full-batch, exact expected objective)."""

  adam_steps: int = 1000  # full-batch Adam steps on J / sum_i n_i (nats per response) before the Newton phase.
  adam_learning_rate: float = 0.02  # constant Adam step size of that phase.
  newton_steps: int = 60  # Newton-CG iterations at most.
  cg_iterations: int = 1000  # CG iterations per Newton step at most.
  gradient_tolerance: float = 1e-11  # stop once ||grad J|| <= this (nats x responses per parameter unit).

  def __post_init__(self):
    for name in ("adam_steps", "newton_steps", "cg_iterations"):
      value = getattr(self, name)
      if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name}={value!r} is not allowed; allowed: an integer >= 0")
    if not math.isfinite(self.adam_learning_rate) or self.adam_learning_rate <= 0:
      raise ValueError(f"adam_learning_rate={self.adam_learning_rate!r} is not allowed; allowed: a number > 0")
    if not math.isfinite(self.gradient_tolerance) or self.gradient_tolerance <= 0:
      raise ValueError(f"gradient_tolerance={self.gradient_tolerance!r} is not allowed; allowed: a number > 0")


@functools.partial(jax.tree_util.register_dataclass,
                   data_fields=["solution", "iterations", "negative_curvature"], meta_fields=[])
@dataclasses.dataclass(frozen=True)
class KrylovResult:
  """Outcome of one Krylov solve of A x = b (flat float64 vectors)."""

  solution: jax.Array  # x, shape (n,).
  iterations: jax.Array  # matrix-vector products spent in the iteration (int).
  negative_curvature: jax.Array  # bool: CG met p^T A p <= 0 and stopped there (always False for MINRES).


@functools.partial(jax.tree_util.register_dataclass,
                   data_fields=["rate_derivatives_bits", "parameter_derivative", "weighted_residual_bits",
                                "weighted_scale_bits", "stationarity_term_bits", "objective_gradient_norm_nats",
                                "solver_residual", "solver_iterations", "negative_curvature", "used_minres",
                                "ratio", "identity_ratio"],
                   meta_fields=[])
@dataclasses.dataclass(frozen=True)
class ImplicitElasticity:
  """d gamma_i / dl of one run and the diagnostics of how far to trust it (JAX arrays; a pytree, vmappable)."""

  rate_derivatives_bits: jax.Array  # (n_datasets,) d gamma_i / dl, bits per response per unit l.
  parameter_derivative: dict  # d theta*/dl, the params' pytree (parameter units per unit l), minimum-norm.
  weighted_residual_bits: jax.Array  # sum_i n_i d gamma_i / dl, bits x responses per unit l (0 at stationarity).
  weighted_scale_bits: jax.Array  # sum_i n_i |d gamma_i / dl|: the size the residual is to be compared with.
  stationarity_term_bits: jax.Array  # grad J . d theta/dl / ln 2: the residual computed from grad J instead.
  objective_gradient_norm_nats: jax.Array  # ||grad J|| at theta: nats x responses per parameter unit.
  solver_residual: jax.Array  # ||H x + n_a grad CE_t|| / ||n_a grad CE_t||, recomputed with one more product.
  solver_iterations: jax.Array  # Hessian-vector products of the solve (CG and MINRES together for 'auto').
  negative_curvature: jax.Array  # bool: CG met p^T H p <= 0 (H not positive semi-definite there).
  used_minres: jax.Array  # bool: the answer comes from MINRES ('minres', or 'auto' after negative curvature).
  ratio: jax.Array  # (d gamma_a / dl) / (d gamma_p / dl), the model's elasticity ratio (paper: about -k).
  identity_ratio: jax.Array  # -k - l (d gamma_t/dl) / (d gamma_p/dl): the same ratio if the identity holds.


@dataclasses.dataclass(frozen=True)
class ConvergeReport:
  """How close converge_joint got to a stationary point of J."""

  gradient_norm_nats: float  # final ||grad J|| (nats x responses per parameter unit).
  objective_nats: float  # final J = sum_i n_i CE_i (nats x responses).
  newton_steps: int  # Newton-CG steps taken.
  gradient_norms_nats: tuple  # ||grad J|| after the Adam phase and after each Newton step.
  converged: bool  # whether gradient_norm_nats <= the config's gradient_tolerance.


def conjugate_gradient(matvec, rhs: jax.Array, *, max_iterations: int, tolerance: float) -> KrylovResult:
  """Conjugate gradients from x = 0 for A x = rhs with A symmetric positive semi-definite (matrix-free).

  On a consistent singular system the iterates stay in the Krylov space of rhs, inside range(A), so the limit is
  the minimum-norm solution. The iteration stops at relative residual <= tolerance, after max_iterations, or
  when a search direction has p^T A p <= 0 (A is not positive definite there: negative_curvature is set and the
  iterate before that step is returned, as in truncated Newton).

  Args:
    matvec: v -> A v on flat float64 vectors (traceable).
    rhs: b, shape (n,).
    max_iterations: iterations at most (may be traced).
    tolerance: relative residual ||r|| / ||b|| to stop at.

  Returns:
    KrylovResult.

  References:
    Hestenes & Stiefel, "Methods of conjugate gradients for solving linear systems", J. Res. NBS 1952;
    Nocedal & Wright, "Numerical Optimization", 2nd ed. 2006, Alg. 5.2 and Alg. 7.1 (truncated Newton-CG).
  """
  target = (tolerance * jnp.linalg.norm(rhs)) ** 2

  def keep_going(state):
    _, _, _, residual_sq, step, negative = state
    return (step < max_iterations) & (residual_sq > target) & ~negative

  def body(state):
    x, r, p, residual_sq, step, _ = state
    Ap = matvec(p)
    curvature = p @ Ap
    negative = curvature <= 0
    alpha = jnp.where(negative, 0.0, residual_sq / jnp.where(negative, 1.0, curvature))
    x, r = x + alpha * p, r - alpha * Ap
    new_sq = r @ r
    p = r + (new_sq / jnp.where(residual_sq > 0, residual_sq, 1.0)) * p
    return x, r, p, new_sq, step + 1, negative

  start = (jnp.zeros_like(rhs), rhs, rhs, rhs @ rhs, jnp.asarray(0), jnp.asarray(False))
  x, _, _, _, steps, negative = jax.lax.while_loop(keep_going, body, start)
  return KrylovResult(solution=x, iterations=steps, negative_curvature=negative)


def minres(matvec, rhs: jax.Array, *, max_iterations: int, tolerance: float) -> KrylovResult:
  """MINRES from x = 0 for A x = rhs with A symmetric, possibly indefinite or singular (matrix-free).

  Each iterate minimises ||A x - b|| over the Krylov space (Lanczos vectors with Givens rotations); on a
  consistent system the iterates lie in range(A), so the limit is the minimum-norm solution there too.

  Args:
    matvec: v -> A v on flat float64 vectors (traceable).
    rhs: b, shape (n,).
    max_iterations: iterations at most (may be traced).
    tolerance: stop when the residual estimate ||r|| / ||b|| is <= tolerance.

  Returns:
    KrylovResult (negative_curvature is always False).

  References:
    Paige & Saunders, "Solution of sparse indefinite systems of linear equations", SIAM J. Numer. Anal. 1975;
    Choi, Paige & Saunders, "MINRES-QLP", SIAM J. Sci. Comput. 2011, Table 2.5 (the MINRES recurrences).
  """
  beta_1 = jnp.linalg.norm(rhs)
  target = tolerance * beta_1
  zeros = jnp.zeros_like(rhs)
  tiny = jnp.finfo(rhs.dtype).tiny

  def keep_going(state):
    step, phibar, beta = state[0], state[7], state[3]
    return (step < max_iterations) & (phibar > target) & (beta > 0)

  def body(state):
    step, x, v_prev, beta, v, cs, sn, phibar, dbar, epsilon, w, w_prev = state
    p = matvec(v) - beta * v_prev
    alpha = v @ p
    p = p - alpha * v
    beta_next = jnp.linalg.norm(p)
    # Apply the previous rotation to the new column of the tridiagonal matrix, then make the next rotation.
    old_epsilon = epsilon
    delta = cs * dbar + sn * alpha
    gbar = sn * dbar - cs * alpha
    epsilon = sn * beta_next
    dbar = -cs * beta_next
    gamma = jnp.hypot(gbar, beta_next)
    safe_gamma = jnp.where(gamma > tiny, gamma, 1.0)
    cs, sn = jnp.where(gamma > tiny, gbar / safe_gamma, 1.0), jnp.where(gamma > tiny, beta_next / safe_gamma, 0.0)
    phi = cs * phibar
    phibar = sn * phibar
    w_new = jnp.where(gamma > tiny, (v - old_epsilon * w_prev - delta * w) / safe_gamma, 0.0)
    x = x + phi * w_new
    v_next = p / jnp.where(beta_next > 0, beta_next, 1.0)
    return step + 1, x, v, beta_next, v_next, cs, sn, phibar, dbar, epsilon, w_new, w

  one = jnp.ones((), rhs.dtype)
  start = (jnp.asarray(0), zeros, zeros, beta_1, rhs / jnp.where(beta_1 > 0, beta_1, 1.0), -one, 0 * one, beta_1,
           0 * one, 0 * one, zeros, zeros)
  state = jax.lax.while_loop(keep_going, body, start)
  return KrylovResult(solution=state[1], iterations=state[0], negative_curvature=jnp.asarray(False))


def cross_entropies_nats(model: Model, params, probs: jax.Array) -> jax.Array:
  """CE_i = -sum_x P_i(x) ln q_theta(x) of each dataset, nats per response, shape (n_datasets,).

  Args:
    model: the model (toy_models.models.build_model).
    params: parameters of one run (float64 pytree).
    probs: leaf distributions (n_datasets, 2**depth - 1), float64.

  Returns:
    float64 array (n_datasets,).

  References:
    Ji et al., "Language Models Resist Alignment", ACL 2025, Def. 3.3 (compression rate).
  """
  log_q = shared_prefixes.tree_leaf_log_probs(model, params, model.depth)
  return -(probs * log_q[None, :]).sum(axis=-1)


def rates_bits(model: Model, params, probs: jax.Array) -> jax.Array:
  """gamma_i = CE_i / ln 2, bits per response, shape (n_datasets,) (see cross_entropies_nats)."""
  return cross_entropies_nats(model, params, probs) / conventions.LN2


def joint_objective_nats(model: Model, params, probs: jax.Array, sizes: jax.Array) -> jax.Array:
  """J(theta) = sum_i n_i CE_i(theta), nats x responses (the count-weighted NLL of the union, unnormalised).

  References:
    Ji et al., "Language Models Resist Alignment", ACL 2025, Section 3 (training on the union of datasets).
  """
  return sizes @ cross_entropies_nats(model, params, probs)


def _check_inputs(model: Model, params, probs, sizes) -> None:
  """Shape, dtype and (for concrete arrays) value checks; one-line ValueError."""
  if not isinstance(model, Model):
    raise ValueError(f"model must be a toy_models.models.Model, got {type(model).__name__}")
  dtypes = {str(leaf.dtype) for leaf in jax.tree_util.tree_leaves(params)}
  if dtypes != {"float64"}:
    raise ValueError(f"params have dtype {', '.join(sorted(dtypes))}; allowed: float64 (ModelConfig dtype='float64' "
                     "with jax_enable_x64 on)")
  n_leaves = token_tree.n_leaves(model.depth)
  if np.ndim(probs) != 2 or np.shape(probs)[1] != n_leaves or np.shape(probs)[0] <= conventions.PERTURB:
    raise ValueError(f"probs have shape {np.shape(probs)}; allowed: (n_datasets >= 3, {n_leaves})")
  if np.shape(sizes) != np.shape(probs)[:1]:
    raise ValueError(f"sizes have shape {np.shape(sizes)}; allowed: ({np.shape(probs)[0]},), one per dataset")
  for name, array in (("probs", probs), ("sizes", sizes)):
    if isinstance(array, jax.core.Tracer):
      continue
    if jnp.asarray(array).dtype != jnp.float64:
      raise ValueError(f"{name} have dtype {jnp.asarray(array).dtype}; allowed: float64 (jax_enable_x64 on)")
    values = np.asarray(array)
    if not np.all(np.isfinite(values) & (values >= 0)):
      raise ValueError(f"{name} contain {values[~(np.isfinite(values) & (values >= 0))][0]!r}; allowed: finite "
                       "numbers >= 0")
  if not isinstance(probs, jax.core.Tracer) and np.max(np.abs(np.asarray(probs).sum(axis=1) - 1)) > 1e-9:
    raise ValueError(f"probs rows sum to {np.asarray(probs).sum(axis=1).tolist()}; allowed: 1 within 1e-9")
  if not isinstance(sizes, jax.core.Tracer) and not np.asarray(sizes)[conventions.ALIGN] > 0:
    raise ValueError(f"sizes[ALIGN]={np.asarray(sizes)[conventions.ALIGN]!r} is not allowed; allowed: n_a > 0 "
                     "(l = n_t / n_a)")


def _solve(matvec, rhs: jax.Array, method: str, max_iterations, tolerance) -> tuple[KrylovResult, jax.Array]:
  """(result, used_minres) of A x = rhs by 'cg', 'minres' or 'auto' (CG, then MINRES under lax.cond)."""
  options = {"max_iterations": max_iterations, "tolerance": tolerance}
  if method == "minres":
    return minres(matvec, rhs, **options), jnp.asarray(True)
  first = conjugate_gradient(matvec, rhs, **options)
  if method == "cg":
    return first, jnp.asarray(False)

  def fallback(_):
    second = minres(matvec, rhs, **options)
    return KrylovResult(solution=second.solution, iterations=first.iterations + second.iterations,
                        negative_curvature=first.negative_curvature)

  result = jax.lax.cond(first.negative_curvature, fallback, lambda _: first, None)
  return result, first.negative_curvature


@functools.partial(jax.jit, static_argnames=("model", "method"))
def _linear_response(model: Model, method: str, params, probs, sizes, rhs_weights, damping, tolerance,
                     max_iterations) -> dict:
  """Solves (H + damping I) x = -grad (rhs_weights . CE) at params, H = Hessian of J; one program per method.

  rhs_weights = n_a e_t gives d theta*/dl (implicit_elasticity), rhs_weights = sizes the Newton step of J
  (converge_joint): both share this compiled program. Returns flat vectors and diagnostics in a dict.
  """
  flat, unravel = ravel_pytree(params)

  def cross_entropies(vector):
    return cross_entropies_nats(model, unravel(vector), probs)

  def objective(vector):
    return joint_objective_nats(model, unravel(vector), probs, sizes)

  # Linearising grad J once keeps the primal and gradient passes out of the Krylov loop (smaller program, and
  # each product costs only the tangent pass).
  gradient, hessian_product = jax.linearize(jax.grad(objective), flat)
  rhs = -jax.grad(lambda vector: rhs_weights @ cross_entropies(vector))(flat)
  result, used_minres = _solve(lambda v: hessian_product(v) + damping * v, rhs, method, max_iterations, tolerance)
  solution = result.solution
  rhs_norm = jnp.linalg.norm(rhs)
  # The residual of the undamped system: with damping > 0 it shows the bias the damping causes.
  residual = jnp.linalg.norm(hessian_product(solution) - rhs) / jnp.where(rhs_norm > 0, rhs_norm, 1.0)
  # grad CE_i . x for every dataset at once (forward mode), apart from grad J . x (the residual's second path).
  directional = jax.jvp(cross_entropies, (flat,), (solution,))[1]
  return {"solution": unravel(solution), "gradient": unravel(gradient), "directional_nats": directional,
          "slope_nats": gradient @ solution, "gradient_norm_nats": jnp.linalg.norm(gradient), "residual": residual,
          "iterations": result.iterations, "negative_curvature": result.negative_curvature,
          "used_minres": used_minres}


def _implicit(model: Model, method: str, solver: SolverConfig, params, probs, sizes) -> ImplicitElasticity:
  """implicit_elasticity with `method` ('cg', 'minres' or traced 'auto'); damped_cg runs as 'cg' with damping."""
  rhs_weights = sizes[conventions.ALIGN] * jax.nn.one_hot(conventions.PERTURB, probs.shape[0], dtype=sizes.dtype)
  out = _linear_response(model, method, params, probs, sizes, rhs_weights, solver.damping, solver.tolerance,
                         solver.max_iterations)
  derivatives = out["directional_nats"] / conventions.LN2
  pretrain, align, perturb = conventions.PRETRAIN, conventions.ALIGN, conventions.PERTURB
  k, l = sizes[pretrain] / sizes[align], sizes[perturb] / sizes[align]
  return ImplicitElasticity(
      rate_derivatives_bits=derivatives, parameter_derivative=out["solution"],
      weighted_residual_bits=sizes @ derivatives, weighted_scale_bits=sizes @ jnp.abs(derivatives),
      stationarity_term_bits=out["slope_nats"] / conventions.LN2,
      objective_gradient_norm_nats=out["gradient_norm_nats"], solver_residual=out["residual"],
      solver_iterations=out["iterations"], negative_curvature=out["negative_curvature"],
      used_minres=out["used_minres"], ratio=derivatives[align] / derivatives[pretrain],
      identity_ratio=-k - l * derivatives[perturb] / derivatives[pretrain])


def implicit_elasticity(model: Model, params, probs, sizes, *, solver: SolverConfig = SolverConfig()
                        ) -> ImplicitElasticity:
  """d gamma_i / dl at a stationary point theta* of J(theta, l) = sum_i n_i CE_i, by the implicit function theorem.

  grad J(theta*(l), l) = 0 for every l gives H d theta*/dl = -d(grad J)/dl = -n_a grad CE_t(theta*), with H the
  Hessian of J (Hessian-vector products: forward-over-reverse, jax.linearize of jax.grad, float64) solved by a
  Krylov method (see the module docstring for singular and indefinite H), and then d gamma_i / dl =
  grad gamma_i . d theta*/dl.

  Args:
    model: the model (toy_models.models.build_model with dtype='float64').
    params: parameters of one run (the model's init(key) structure), float64; vmap over runs if needed.
    probs: leaf distributions (n_datasets, 2**depth - 1), float64, datasets on theory.conventions' axes.
    sizes: (n_datasets,) float64 masses n_i (responses); l = sizes[PERTURB] / sizes[ALIGN].
    solver: how the linear system is solved.

  Returns:
    ImplicitElasticity: rates' derivatives in bits per response per unit l, d theta*/dl, the weighted identity's
    residual sum_i n_i d gamma_i / dl and its scale, the same residual from grad J (stationarity_term_bits),
    ||grad J||, the solver's true relative residual and iterations, and the ratio (d gamma_a/dl)/(d gamma_p/dl).

  References:
    Ji et al., "Language Models Resist Alignment", ACL 2025, Thm. 4.2 and Section 4 (elasticity);
    Krantz & Parks, "The Implicit Function Theorem", Birkhauser 2002; Pearlmutter, "Fast exact multiplication by
    the Hessian", Neural Computation 1994; Koh & Liang, "Understanding black-box predictions via influence
    functions", ICML 2017.
  """
  if not isinstance(solver, SolverConfig):
    raise ValueError(f"solver must be a SolverConfig, got {type(solver).__name__}")
  _check_inputs(model, params, probs, sizes)
  probs, sizes = jnp.asarray(probs), jnp.asarray(sizes)
  traced = any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves((params, probs, sizes)))
  method = "cg" if solver.method == "damped_cg" else solver.method
  if method != "auto" or traced:
    return _implicit(model, method, solver, params, probs, sizes)  # traced 'auto' branches with lax.cond
  # Concrete 'auto': run MINRES (compiled on first use) only when CG met non-positive curvature.
  first = _implicit(model, "cg", solver, params, probs, sizes)
  if not bool(first.negative_curvature):
    return first
  second = _implicit(model, "minres", solver, params, probs, sizes)
  return dataclasses.replace(second, solver_iterations=first.solver_iterations + second.solver_iterations,
                             negative_curvature=first.negative_curvature)


# Converging a model to a stationary point of J.

@functools.partial(jax.jit, static_argnames=("model",))
def _adam_phase(model: Model, params, probs, sizes, steps, learning_rate):
  optimizer = optax.adam(learning_rate)

  def loss(p):
    return joint_objective_nats(model, p, probs, sizes) / sizes.sum()

  def step(_, carry):
    p, state = carry
    updates, state = optimizer.update(jax.grad(loss)(p), state, p)
    return optax.apply_updates(p, updates), state

  return jax.lax.fori_loop(0, steps, step, (params, optimizer.init(params)))[0]


@functools.partial(jax.jit, static_argnames=("model",))
def _evaluate_along(model: Model, params, direction, step, probs, sizes):
  """(J, ||grad J||, params + step * direction) at the moved parameters (one program for every evaluation)."""
  moved = jax.tree_util.tree_map(lambda p, d: p + step * d, params, direction)
  value, gradient = jax.value_and_grad(joint_objective_nats, argnums=1)(model, moved, probs, sizes)
  return value, jnp.linalg.norm(ravel_pytree(gradient)[0]), moved


def converge_joint(model: Model, params, probs, sizes, *, config: ConvergeConfig = ConvergeConfig()
                   ) -> tuple[dict, ConvergeReport]:
  """Drives one run to a stationary point of J(theta) = sum_i n_i CE_i (exact expected objective, float64).

  Full-batch Adam on J / sum_i n_i first (robust far from the optimum), then regularised Newton-CG on J: each step
  solves (H + ||grad J|| I) d = -grad J by CG up to a forcing tolerance min(0.1, sqrt(||grad J||)) (truncated at
  non-positive curvature; steepest descent if that happens at once), then backtracks until J passes an Armijo
  test that tolerates rounding-level changes of J; a step that J cannot confirm is kept only if it shrinks
  ||grad J||, else the loop ends (the rounding floor). The damping bounds the steps along H's null directions
  (softmax shifts, symmetries) and vanishes with grad J, so the convergence is superlinear even where the
  minimisers form a manifold: ||grad J|| reaches ~1e-13 for the tabular and n-gram models. Where the infimum
  lies at infinite logits (a next-token probability 0 in the optimum, e.g. a tabular node that only datasets
  without some continuation reach) ||grad J|| only falls slowly: give such runs a full-support D_p.

  Args:
    model: the model (float64).
    params: starting parameters of one run (e.g. the model's init(key), or a neighbouring optimum).
    probs: leaf distributions (n_datasets, 2**depth - 1), float64.
    sizes: (n_datasets,) masses n_i, float64.
    config: the budgets and the target ||grad J||.

  Returns:
    (params, report): the last parameters and ConvergeReport (final ||grad J||, J, the history of ||grad J||).

  References:
    Kingma & Ba, "Adam", ICLR 2015; Dembo, Eisenstat & Steihaug, "Inexact Newton methods", SIAM J. Numer. Anal.
    1982; Nocedal & Wright, "Numerical Optimization", 2nd ed. 2006, Alg. 7.1 (line search Newton-CG);
    Li, Fukushima, Qi & Yamashita, "Regularized Newton methods for convex minimization problems with singular
    solutions", Comput. Optim. Appl. 2004.
  """
  if not isinstance(config, ConvergeConfig):
    raise ValueError(f"config must be a ConvergeConfig, got {type(config).__name__}")
  _check_inputs(model, params, probs, sizes)
  probs, sizes = jnp.asarray(probs), jnp.asarray(sizes)
  if config.adam_steps:
    params = _adam_phase(model, params, probs, sizes, config.adam_steps, config.adam_learning_rate)
  zero = jax.tree_util.tree_map(jnp.zeros_like, params)
  value, norm, _ = _evaluate_along(model, params, zero, 0.0, probs, sizes)
  value, norm = float(value), float(norm)
  history, steps, stalled = [norm], 0, 0
  while norm > config.gradient_tolerance and steps < config.newton_steps and stalled < 3:
    # Regularised Newton: (H + ||grad J|| I) d = -grad J. The damping keeps the step finite along H's null
    # directions, where grad J holds only rounding noise that undamped CG would divide by ~0 curvature, and it
    # fades as grad J -> 0, so the convergence stays superlinear. Forcing term: Eisenstat-Walker style.
    out = _linear_response(model, "cg", params, probs, sizes, sizes, norm, min(0.1, math.sqrt(norm)),
                           config.cg_iterations)
    direction, slope = out["solution"], float(out["slope_nats"])
    if not any(np.any(np.asarray(leaf)) for leaf in jax.tree_util.tree_leaves(direction)):
      direction = jax.tree_util.tree_map(jnp.negative, out["gradient"])  # curvature <= 0 at once: steepest descent
      slope = -norm**2
    slack = 64 * np.finfo(np.float64).eps * abs(value)  # J can only be compared up to rounding
    step, accepted = 1.0, None
    for _ in range(40):
      candidate_value, candidate_norm, candidate = _evaluate_along(model, params, direction, step, probs, sizes)
      armijo = value + 1e-4 * step * float(slope)
      if float(candidate_value) <= armijo + slack:
        accepted = candidate
        break
      step /= 2
    if accepted is None:
      break
    if float(candidate_value) > armijo and float(candidate_norm) >= norm:
      break  # at the rounding floor of J: a step that J cannot confirm must at least shrink the gradient
    params, value, steps = accepted, float(candidate_value), steps + 1
    stalled = stalled + 1 if float(candidate_norm) > 0.9 * norm else 0
    norm = float(candidate_norm)
    history.append(norm)
  report = ConvergeReport(gradient_norm_nats=norm, objective_nats=value, newton_steps=steps,
                          gradient_norms_nats=tuple(history), converged=norm <= config.gradient_tolerance)
  return params, report
