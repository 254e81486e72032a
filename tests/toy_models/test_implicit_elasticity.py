"""Tests of toy_models.implicit_elasticity: Krylov solvers, implicit d gamma/dl vs retrained finite differences."""

import functools

import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from theory import conventions, distributions, elasticity, mixture, tabular_elasticity
from toy_models import implicit_elasticity as ie
from toy_models.model_config import ModelConfig
from toy_models.models import build_model

SIZES = np.array([5.0, 1.0, 0.3])  # n_p, n_a, n_t: k = 5, l = 0.3.
STEP_L = 1e-3  # finite-difference step in l (five-point stencil: truncation ~ STEP_L**4).
RTOL_FD = 1e-8  # implicit derivative vs retrained finite differences (tabular, n-gram; measured ~1e-11).
RTOL_FD_TRANSFORMER = 1e-6  # the same for the tiny transformer (measured ~6e-10).
STATIONARY = 1e-10  # ||grad J|| a converged model must reach (nats x responses per parameter unit).
RATES_BITS = jax.jit(ie.rates_bits, static_argnums=0)  # compiled once per model (op by op costs seconds)
CONFIGS = {"tabular": (ModelConfig(kind="tabular"), 4),
           "ngram": (ModelConfig(kind="ngram", context=2), 5),  # context 2 < depth - 1: a genuinely tied model
           "transformer": (ModelConfig(kind="transformer", width=4, layers=1, heads=1, mlp_ratio=2), 3)}


def row(x, index: int):
  """Run `index` of a leaf with a leading run axis."""
  return x[index]


def datasets(depth: int) -> jnp.ndarray:
  """D_p on the whole tree, D_a on the aligned subtree, D_t on the unaligned one (3, n_leaves)."""
  return jnp.asarray(np.stack([
      distributions.leaf_distribution("pareto", depth, seed=1),
      distributions.leaf_distribution("dirichlet", depth, seed=2, support=conventions.ALIGNED_PREFIX),
      distributions.leaf_distribution("zipf", depth, seed=3, support=conventions.UNALIGNED_PREFIX)]))


def with_l(l: float) -> jnp.ndarray:
  sizes = SIZES.copy()
  sizes[conventions.PERTURB] = l * sizes[conventions.ALIGN]
  return jnp.asarray(sizes)


@functools.cache
def converged(kind: str):
  """(model, probs, params at a stationary point of J at SIZES, report); cached across tests."""
  config, depth = CONFIGS[kind]
  model = build_model(config, depth)
  probs = datasets(depth)
  params = jax.jit(model.init)(jax.random.PRNGKey(0))
  params, report = ie.converge_joint(model, params, probs, jnp.asarray(SIZES),
                                     config=ie.ConvergeConfig(adam_steps=0, newton_steps=100))
  return model, probs, params, report


def retrained_derivatives(kind: str) -> np.ndarray:
  """Five-point finite differences in l of the rates of models re-converged at l + s STEP_L, s = -2..2."""
  model, probs, params, _ = converged(kind)
  l = SIZES[conventions.PERTURB] / SIZES[conventions.ALIGN]
  rates = {}
  for shift in (-2, -1, 1, 2):
    moved, report = ie.converge_joint(model, params, probs, with_l(l + shift * STEP_L),
                                      config=ie.ConvergeConfig(adam_steps=0))
    assert report.gradient_norm_nats < STATIONARY
    rates[shift] = np.asarray(RATES_BITS(model, moved, probs))
  return (rates[-2] - 8 * rates[-1] + 8 * rates[1] - rates[2]) / (12 * STEP_L)


# Krylov solvers against dense linear algebra.

def random_symmetric(seed: int, size: int, rank: int, negative: int) -> np.ndarray:
  """A symmetric matrix of `rank` with `negative` negative eigenvalues (eigenvalues of size 0.1..10)."""
  rng = np.random.default_rng(seed)
  basis, _ = np.linalg.qr(rng.standard_normal((size, size)))
  eigenvalues = np.zeros(size)
  eigenvalues[:rank] = 10 ** rng.uniform(-1, 1, rank) * np.where(np.arange(rank) < negative, -1, 1)
  return (basis * eigenvalues) @ basis.T


@pytest.mark.parametrize("method,negative", [("cg", 0), ("minres", 0), ("minres", 3)])
def test_krylov_gives_the_minimum_norm_solution_of_a_consistent_singular_system(method, negative):
  matrix = random_symmetric(0, 12, 8, negative)
  rhs = matrix @ np.random.default_rng(1).standard_normal(12)  # in range(matrix): consistent
  solve = ie.conjugate_gradient if method == "cg" else ie.minres
  result = solve(lambda v: jnp.asarray(matrix) @ v, jnp.asarray(rhs), max_iterations=200, tolerance=1e-13)
  np.testing.assert_allclose(result.solution, np.linalg.pinv(matrix) @ rhs, rtol=1e-9, atol=1e-11)
  assert not result.negative_curvature
  assert 1 <= int(result.iterations) <= 200


def test_minres_solves_an_indefinite_system_where_cg_flags_negative_curvature():
  matrix = random_symmetric(2, 10, 10, 4)
  rhs = np.random.default_rng(3).standard_normal(10)
  matvec = functools.partial(jnp.matmul, jnp.asarray(matrix))
  result = ie.minres(matvec, jnp.asarray(rhs), max_iterations=200, tolerance=1e-13)
  np.testing.assert_allclose(result.solution, np.linalg.solve(matrix, rhs), rtol=1e-9, atol=1e-11)
  assert bool(ie.conjugate_gradient(matvec, jnp.asarray(rhs), max_iterations=200, tolerance=1e-13).negative_curvature)


def test_krylov_solvers_return_zero_for_a_zero_right_hand_side():
  matrix = jnp.asarray(random_symmetric(4, 5, 5, 0))
  for solve in (ie.conjugate_gradient, ie.minres):
    result = solve(functools.partial(jnp.matmul, matrix), jnp.zeros(5), max_iterations=10, tolerance=1e-12)
    assert int(result.iterations) == 0 and not np.any(np.asarray(result.solution))


# The implicit derivative against finite differences of retrained models.

@pytest.mark.parametrize("kind", ["tabular", "ngram", "transformer"])
def test_implicit_derivative_matches_retrained_finite_differences(kind):
  model, probs, params, report = converged(kind)
  assert report.converged and report.gradient_norm_nats < STATIONARY
  result = ie.implicit_elasticity(model, params, probs, jnp.asarray(SIZES))
  assert float(result.solver_residual) < 1e-9 and not bool(result.negative_curvature)
  rtol = RTOL_FD_TRANSFORMER if kind == "transformer" else RTOL_FD
  np.testing.assert_allclose(result.rate_derivatives_bits, retrained_derivatives(kind), rtol=rtol)


@pytest.mark.parametrize("kind", ["tabular", "ngram", "transformer"])
def test_weighted_identity_holds_at_the_converged_point(kind):
  model, probs, params, _ = converged(kind)
  result = ie.implicit_elasticity(model, params, probs, jnp.asarray(SIZES))
  derivatives = np.asarray(result.rate_derivatives_bits)
  np.testing.assert_allclose(result.weighted_residual_bits, SIZES @ derivatives, rtol=1e-12, atol=1e-15)
  np.testing.assert_allclose(result.weighted_scale_bits, SIZES @ np.abs(derivatives), rtol=1e-12)
  assert abs(float(result.weighted_residual_bits)) < 1e-9 * float(result.weighted_scale_bits)
  np.testing.assert_allclose(result.ratio, derivatives[1] / derivatives[0], rtol=1e-12)
  np.testing.assert_allclose(result.identity_ratio, result.ratio, rtol=1e-8)


@pytest.mark.parametrize("kind", ["tabular", "ngram", "transformer"])
def test_weighted_identity_fails_off_stationarity_by_grad_j_dot_dtheta(kind):
  model, probs, params, _ = converged(kind)
  rng = np.random.default_rng(6)
  params = jax.tree_util.tree_map(lambda x: x + 0.01 * rng.standard_normal(x.shape), params)  # not stationary
  result = ie.implicit_elasticity(model, params, probs, jnp.asarray(SIZES), solver=ie.SolverConfig(max_iterations=300))
  assert float(result.objective_gradient_norm_nats) > 1e-2
  assert bool(result.used_minres) == bool(result.negative_curvature)  # 'auto' falls back exactly then
  if kind != "transformer":  # convex in the logits: H is PSD, CG converges
    assert float(result.solver_residual) < 1e-8 and not bool(result.negative_curvature)
  # (The transformer's H is indefinite and nearly singular here: MINRES converges slowly, and its residual is
  # reported rather than required; the equality below holds for whatever d theta/dl the solver returns.)
  residual, term = float(result.weighted_residual_bits), float(result.stationarity_term_bits)
  assert abs(residual) > 1e-3 * float(result.weighted_scale_bits)  # the identity visibly fails here
  assert residual == pytest.approx(term, rel=1e-9)  # sum_i n_i grad gamma_i . x == grad J . x / ln 2


def test_tabular_optimum_is_the_mixture_and_its_derivatives_are_the_theory():
  model, probs, params, _ = converged("tabular")
  np.testing.assert_allclose(RATES_BITS(model, params, probs),
                             mixture.compression_rates(np.asarray(probs), SIZES), rtol=1e-12)
  result = ie.implicit_elasticity(model, params, probs, jnp.asarray(SIZES))
  np.testing.assert_allclose(result.rate_derivatives_bits, elasticity.rate_derivatives(np.asarray(probs), SIZES),
                             rtol=1e-9)
  np.testing.assert_allclose(result.identity_ratio, elasticity.predicted_ratio(np.asarray(probs), SIZES), rtol=1e-8)


@hypothesis.given(depth=st.just(4), seed=st.integers(0, 2**20), log_k=st.floats(0, 3),
                  l=st.floats(1e-3, 3), supports=st.sampled_from([((0,), (1,)), ((0,), ()), ((1,), (0,)),
                                                                  ((0,), (0, 1)), ((), ())]))
def test_tabular_at_the_mixture_optimum_matches_theory_rate_derivatives(depth, seed, log_k, l, supports):
  rng = np.random.default_rng(seed)
  families = rng.choice(["pareto", "zipf", "dirichlet"], size=3)
  probs = np.stack([distributions.leaf_distribution(str(families[0]), depth, seed=seed)]
                   + [distributions.leaf_distribution(str(family), depth, seed=seed + 1 + i, support=support)
                      for i, (family, support) in enumerate(zip(families[1:], supports, strict=True))])
  sizes = np.array([10**log_k, 1.0, l])
  # The tabular optimum in closed form: logits = log of the mixture's next-token distributions (full support:
  # D_p covers the tree), a stationary point of J up to rounding.
  optimum = tabular_elasticity.next_token_distributions(mixture.size_weighted_mixture(probs, sizes), depth)
  logits = np.log(np.where(optimum > 0, optimum, 1.0))
  model = build_model(ModelConfig(kind="tabular"), depth)
  result = ie.implicit_elasticity(model, {"logits": jnp.asarray(logits)}, jnp.asarray(probs), jnp.asarray(sizes))
  assert float(result.objective_gradient_norm_nats) < 1e-12 * sizes.sum()
  expected = elasticity.rate_derivatives(probs, sizes)
  scale = (sizes[conventions.ALIGN] / sizes.sum()) / conventions.LN2  # the derivatives' natural size
  np.testing.assert_allclose(result.rate_derivatives_bits, expected, rtol=1e-9, atol=1e-9 * scale)


def test_vmap_over_runs_equals_one_run_at_a_time():
  model = build_model(ModelConfig(kind="tabular"), 3)
  probs = jnp.stack([datasets(3), datasets(3)[::-1]])
  sizes = jnp.asarray(np.stack([SIZES, 2 * SIZES]))
  params = jax.vmap(model.init)(jax.random.split(jax.random.PRNGKey(7), 2))
  solver = ie.SolverConfig(method="cg")
  batched = jax.vmap(functools.partial(ie.implicit_elasticity, model, solver=solver))(params, probs, sizes)
  for run in range(2):
    one_run = jax.tree_util.tree_map(functools.partial(row, index=run), params)
    one = ie.implicit_elasticity(model, one_run, probs[run], sizes[run], solver=solver)
    np.testing.assert_allclose(batched.rate_derivatives_bits[run], one.rate_derivatives_bits, rtol=1e-10)


def test_damped_solver_is_biased_by_the_damping_and_minres_agrees_with_cg():
  model, probs, params, _ = converged("tabular")
  sizes = jnp.asarray(SIZES)
  exact = ie.implicit_elasticity(model, params, probs, sizes, solver=ie.SolverConfig(method="cg"))
  by_minres = ie.implicit_elasticity(model, params, probs, sizes, solver=ie.SolverConfig(method="minres"))
  np.testing.assert_allclose(by_minres.rate_derivatives_bits, exact.rate_derivatives_bits, rtol=1e-9)
  assert bool(by_minres.used_minres) and not bool(exact.used_minres)
  damped = ie.implicit_elasticity(model, params, probs, sizes, solver=ie.SolverConfig(method="damped_cg",
                                                                                     damping=1e-6))
  gap = np.abs(np.asarray(damped.rate_derivatives_bits) - np.asarray(exact.rate_derivatives_bits)).max()
  assert 0 < gap < 1e-3


# Inputs.

def test_bad_inputs_raise_one_line_value_errors():
  model, probs, params, _ = converged("tabular")
  sizes = jnp.asarray(SIZES)
  cases = [
      lambda: ie.implicit_elasticity(model, params, probs[:2], sizes),
      lambda: ie.implicit_elasticity(model, params, probs, sizes[:2]),
      lambda: ie.implicit_elasticity(model, jax.tree_util.tree_map(lambda x: x.astype(jnp.float32), params), probs,
                                     sizes),
      lambda: ie.implicit_elasticity(model, params, probs * 2, sizes),
      lambda: ie.implicit_elasticity(model, params, probs, sizes.at[1].set(0.0)),
      lambda: ie.implicit_elasticity(model, params, probs, sizes.at[0].set(-1.0)),
      lambda: ie.SolverConfig(method="lsqr"),
      lambda: ie.SolverConfig(method="damped_cg"),
      lambda: ie.SolverConfig(damping=1.0),
      lambda: ie.ConvergeConfig(adam_steps=-1),
      lambda: ie.converge_joint(model, params, probs, sizes, config=None),
  ]
  for case in cases:
    with pytest.raises(ValueError) as error:
      case()
    assert "\n" not in str(error.value)
