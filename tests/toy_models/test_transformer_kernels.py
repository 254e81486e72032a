"""The transformer's hand-written pieces (closed-form LayerNorm derivative, flattened dense layer) against the
plain formulas they replace, in float64."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from toy_models import transformer


def _plain_standardise(x):
  """The textbook formula, differentiated by autodiff: the reference for the closed-form rule."""
  mean = x.mean(axis=-1, keepdims=True)
  return (x - mean) / jnp.sqrt(((x - mean) ** 2).mean(axis=-1, keepdims=True) + 1e-6)


@pytest.fixture(name="x")
def _x():
  return 3.0 * jax.random.normal(jax.random.PRNGKey(7), (3, 5, 8), jnp.float64) + 1.5


def _scalar(standardise):
  weights = jnp.linspace(-1.0, 2.0, 8)
  return lambda x: jnp.sum(jnp.sin(standardise(x)) * weights.reshape(1, 1, 8))


def test_standardise_values_gradient_and_hessian_equal_autodiff_of_the_formula(x):
  np.testing.assert_allclose(transformer.standardise(x), _plain_standardise(x), rtol=1e-13, atol=1e-14)
  ours, plain = _scalar(transformer.standardise), _scalar(_plain_standardise)
  np.testing.assert_allclose(jax.grad(ours)(x), jax.grad(plain)(x), rtol=1e-11, atol=1e-13)
  row = x[0, 0]  # the Hessian in one row's 8 inputs (a row is standardised on its own)
  hessians = [jax.jit(jax.hessian(lambda r, f=f: f(x.at[0, 0].set(r))))(row) for f in (ours, plain)]
  np.testing.assert_allclose(*hessians, rtol=1e-10, atol=1e-12)


def test_standardise_forward_mode_equals_the_formula(x):
  tangent = jnp.cos(x)
  _, ours = jax.jvp(transformer.standardise, (x,), (tangent,))
  _, plain = jax.jvp(_plain_standardise, (x,), (tangent,))
  np.testing.assert_allclose(ours, plain, rtol=1e-11, atol=1e-13)


def test_dense_layer_is_x_times_w_plus_b_at_every_rank():
  key_w, key_x = jax.random.split(jax.random.PRNGKey(3))
  params = {"w": jax.random.normal(key_w, (4, 6), jnp.float64), "b": jnp.arange(6.0)}
  for shape in ((4,), (5, 4), (2, 5, 4)):
    x = jax.random.normal(key_x, shape, jnp.float64)
    expected = jnp.einsum("...i,ij->...j", x, params["w"]) + params["b"].reshape((1,) * (x.ndim - 1) + (6,))
    np.testing.assert_allclose(transformer._apply(params, x), expected, rtol=1e-13)
