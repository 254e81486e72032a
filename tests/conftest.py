"""Test settings: float64 JAX, strict rank promotion, seeded keys, hypothesis profiles (fast / thorough)."""

import os

import hypothesis
import jax
import pytest

from toy_models import compilation

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")
compilation.set_preset("fast-compile")  # the tests compile far more than they train (as the tiny scale does)

hypothesis.settings.register_profile("fast", max_examples=25, deadline=None, derandomize=True,
                                     database=None, print_blob=True)
hypothesis.settings.register_profile("thorough", max_examples=500, deadline=None, database=None,
                                     print_blob=True)
hypothesis.settings.load_profile(os.environ.get("ELASTICITY_HYPOTHESIS_PROFILE", "fast"))


@pytest.fixture
def getkey():
  """Returns a function that yields fresh JAX keys, all derived from seed 0."""
  key = jax.random.PRNGKey(0)

  def _next():
    nonlocal key
    key, sub = jax.random.split(key)
    return sub

  return _next
