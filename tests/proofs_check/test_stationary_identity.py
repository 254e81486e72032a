"""Claim 10's numeric machinery: model derivatives, fits, implicit derivatives, and what breaks the identity."""

import math

import hypothesis
import numpy as np
import pytest
from hypothesis import given

from proofs_check import stationary_checks, strategies
from proofs_check.configs import ALIGN, PERTURB, ElasticityConfig, StationaryConfig
from theory import mixture, token_tree
from theory.distributions import DatasetSpec


def _config(model="two_layer", width=2, n_features=1, k=30.0, l=0.5, depth=4, seed=3) -> StationaryConfig:
  datasets = ElasticityConfig(depth=depth, pretrain=DatasetSpec(family="pareto", seed=seed),
                              align=DatasetSpec(family="zipf", param=1.2, support=(0,), seed=seed + 1),
                              perturb=DatasetSpec(family="pareto", support=(1,), seed=seed + 2), layout="unaligned",
                              k=k, l=l)
  return StationaryConfig(datasets=datasets, model=model, width=width, n_features=n_features, model_seed=seed)


def _central(function, theta, step=1e-6):
  """Central finite differences of `function` (array-valued) along every coordinate of theta."""
  columns = []
  for j in range(len(theta)):
    shift = np.zeros_like(theta)
    shift[j] = step
    columns.append((np.asarray(function(theta + shift)) - np.asarray(function(theta - shift))) / (2 * step))
  return np.stack(columns, axis=-1)


@pytest.mark.parametrize("model, width, n_features", [("linear", 5, 0), ("two_layer", 2, 2)])
def test_logit_and_cross_entropy_derivatives_match_finite_differences(model, width, n_features):
  config = _config(model=model, width=width, n_features=n_features)
  net, _ = stationary_checks.build_model(config)
  theta = np.random.default_rng(0).normal(size=net.n_params)
  z, jac, second = net.logits(theta)
  np.testing.assert_allclose(jac, _central(lambda t: net.logits(t)[0], theta), rtol=1e-7, atol=1e-8)
  np.testing.assert_allclose(second, _central(lambda t: net.logits(t)[1], theta), rtol=1e-7, atol=1e-8)
  target = config.datasets.probabilities()[0]
  point = stationary_checks.evaluate(net, theta)
  assert np.exp(point.log_probs).sum() == pytest.approx(1.0, abs=1e-14)
  cross_entropy = lambda t: stationary_checks.evaluate(net, t).cross_entropy(target)  # noqa: E731
  np.testing.assert_allclose(point.gradient(target), _central(cross_entropy, theta), rtol=1e-7, atol=1e-9)
  gradient = lambda t: stationary_checks.evaluate(net, t).gradient(target)  # noqa: E731
  np.testing.assert_allclose(point.hessian(target), _central(gradient, theta), rtol=1e-6, atol=1e-8)


def test_linear_fit_is_the_minimiser_not_the_mixture():
  config = _config(model="linear", width=4, n_features=0)
  P, sizes = config.datasets.probabilities(), config.datasets.sizes()
  q = mixture.size_weighted_mixture(P, sizes)
  net, theta0 = stationary_checks.build_model(config)
  theta, _ = stationary_checks.fit(net, theta0, q)
  point = stationary_checks.evaluate(net, theta)
  assert np.linalg.norm(net.features.T @ (point.probs - q)) < 1e-12  # stationarity A^T (q_theta - q) = 0
  assert np.abs(point.probs - q).max() > 1e-3  # 4 parameters for 15 leaves: not the free simplex
  rng = np.random.default_rng(1)  # convex objective: any other theta is worse
  for direction in rng.normal(size=(20, net.n_params)):
    assert stationary_checks.evaluate(net, theta + 1e-3 * direction).cross_entropy(q) > point.cross_entropy(q)


def test_implicit_derivative_matches_refits_and_a_second_formula():
  """At a stationary point, -(n_a/N) H^-1 grad CE_t equals (n_a/N) H^-1 jac^T (P_t - q) (they differ by
  grad J, zero there) and finite differences of models re-fitted at l +- h."""
  config = _config()
  P, sizes = config.datasets.probabilities(), config.datasets.sizes()
  q = mixture.size_weighted_mixture(P, sizes)
  net, theta0 = stationary_checks.build_model(config)
  theta, _ = stationary_checks.fit(net, theta0, q)
  point = stationary_checks.evaluate(net, theta)
  velocity = stationary_checks.implicit_derivative(point, P, sizes)
  share = sizes[ALIGN] / sizes.sum()
  second_form = share * np.linalg.solve(point.hessian(q), point.jac.T @ (P[PERTURB] - q))
  np.testing.assert_allclose(velocity, second_form, rtol=1e-8, atol=1e-14)
  step = 1e-4 * (config.datasets.k + 1 + config.datasets.l)
  refits = []
  for offset in (-1.0, 1.0):
    target = mixture.size_weighted_mixture(P, config.datasets.sizes(config.datasets.l + offset * step))
    refits.append(stationary_checks.fit(net, theta, target)[0])
  central = (refits[1] - refits[0]) / (2 * step)  # a 3-point stencil, independent of the module's 5-point one
  assert np.linalg.norm(central - velocity) <= 1e-5 * np.linalg.norm(velocity)


def test_away_from_stationarity_the_residual_is_grad_J_dot_velocity_and_not_zero():
  config = _config()
  P, sizes = config.datasets.probabilities(), config.datasets.sizes()
  q = mixture.size_weighted_mixture(P, sizes)
  net, theta0 = stationary_checks.build_model(config)
  point = stationary_checks.evaluate(net, theta0)  # the initial, unfitted model
  velocity = stationary_checks.implicit_derivative(point, P, sizes)
  d_gamma = np.array([point.gradient(P[i]) @ velocity for i in range(3)]) / math.log(2)
  weighted = sizes @ d_gamma / sizes.sum()
  objective = lambda t: stationary_checks.evaluate(net, t).cross_entropy(q)  # noqa: E731  (J / N)
  predicted = _central(objective, theta0) @ velocity / math.log(2)
  assert weighted == pytest.approx(predicted, rel=1e-6)
  assert abs(weighted) > 1e-6 * np.abs(sizes @ np.abs(d_gamma) / sizes.sum())


def test_weight_decay_breaks_the_identity_by_exactly_minus_lambda_theta_dot_velocity():
  """The identity is a property of the count-weighted objective: with J + (Lambda/2)||theta||^2 the weighted
  sum of rate derivatives at the (regularised) stationary point is -Lambda theta . d theta/dl, not 0."""
  config = _config(model="linear", width=4, n_features=0)
  P, sizes = config.datasets.probabilities(), config.datasets.sizes()
  total = sizes.sum()
  q = mixture.size_weighted_mixture(P, sizes)
  net, theta = stationary_checks.build_model(config)
  decay = 0.05 * total  # Lambda, in the units of J (nats x responses per unit theta^2)
  for _ in range(50):  # Newton's method on the regularised objective (strictly convex)
    point = stationary_checks.evaluate(net, theta)
    gradient = total * point.gradient(q) + decay * theta
    theta = theta - np.linalg.solve(total * point.hessian(q) + decay * np.eye(net.n_params), gradient)
  point = stationary_checks.evaluate(net, theta)
  assert np.linalg.norm(total * point.gradient(q) + decay * theta) < 1e-9 * total
  hessian = total * point.hessian(q) + decay * np.eye(net.n_params)
  velocity = -np.linalg.solve(hessian, sizes[ALIGN] * point.gradient(P[PERTURB]))
  weighted = sum(sizes[i] * point.gradient(P[i]) @ velocity for i in range(3))  # nats x responses per unit l
  assert weighted == pytest.approx(-decay * theta @ velocity, rel=1e-8)
  assert abs(weighted) > 1e-3 * sum(sizes[i] * abs(point.gradient(P[i]) @ velocity) for i in range(3))


@hypothesis.settings(max_examples=15)
@given(strategies.stationary_configs())
def test_stationary_configs_are_never_the_free_simplex(config):
  n_leaves = token_tree.n_leaves(config.datasets.depth)
  assert 1 <= config.n_params <= n_leaves - 2
  net, theta0 = stationary_checks.build_model(config)
  assert net.n_params == config.n_params == len(theta0)
  assert config.datasets.layout in strategies.STATIONARY_LAYOUTS
  assert np.all(mixture.size_weighted_mixture(config.datasets.probabilities(), config.datasets.sizes()) > 0)
  assert StationaryConfig.from_dict(config.as_dict()) == config


@pytest.mark.parametrize("kwargs, match", [
    ({"model": "mlp"}, "unknown model 'mlp'"),
    ({"model": "linear", "width": 14}, "14 parameters for 15 leaves"),
])
def test_stationary_config_rejects_bad_input(kwargs, match):
  with pytest.raises(ValueError, match=match):
    _config(**kwargs)
