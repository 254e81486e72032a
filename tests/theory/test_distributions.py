"""Tests of theory.distributions: normalisation, supports, seeding, parameters and errors."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from theory import distributions, token_tree


@given(family=st.sampled_from(sorted(distributions.FAMILIES)), depth=st.integers(1, 9),
       seed=st.integers(0, 2**31), prefix=st.sampled_from([(), (0,), (1,), (1, 1)]))
def test_distributions_are_normalised_on_their_support(family, depth, seed, prefix):
  if len(prefix) > depth - 1:
    return
  probs = distributions.leaf_distribution(family, depth, seed=seed, support=prefix)
  mask = token_tree.prefix_mask(depth, prefix)
  assert probs.dtype == np.float64
  assert abs(probs.sum() - 1) < 1e-12
  assert (probs[~mask] == 0).all()
  assert (probs[mask] > 0).all() or family == "dirichlet"


def test_same_seed_same_vector_other_seed_other_vector():
  a = distributions.leaf_distribution("pareto", 6, seed=3, shape=1.2)
  b = distributions.leaf_distribution("pareto", 6, seed=3, shape=1.2)
  c = distributions.leaf_distribution("pareto", 6, seed=4, shape=1.2)
  assert np.array_equal(a, b)
  assert not np.array_equal(a, c)


def test_zipf_masses_follow_the_power_law():
  probs = distributions.leaf_distribution("zipf", 6, seed=0, exponent=1.3)
  ranked = np.sort(probs)[::-1]
  ranks = np.arange(1, len(ranked) + 1)
  slope = np.polyfit(np.log(ranks), np.log(ranked), 1)[0]
  assert slope == pytest.approx(-1.3, abs=1e-9)


def test_pareto_tail_gets_heavier_with_smaller_shape():
  def top_share(shape):
    shares = [np.sort(distributions.leaf_distribution("pareto", 10, seed=s, shape=shape))[-10:].sum()
              for s in range(20)]
    return np.mean(shares)
  assert top_share(0.8) > top_share(3.0)


def test_dataset_spec_passes_its_parameter():
  spec = distributions.DatasetSpec(family="zipf", param=2.0, support=(1,), seed=5)
  assert np.array_equal(spec.probabilities(5),
                        distributions.leaf_distribution("zipf", 5, seed=5, support=(1,), exponent=2.0))


@pytest.mark.parametrize("call, message", [
    (lambda: distributions.leaf_distribution("gauss", 4), "unknown distribution family 'gauss'"),
    (lambda: distributions.leaf_distribution("pareto", 4, shape=-1.0), "shape=-1.0"),
    (lambda: distributions.leaf_distribution("zipf", 4, exponent=float("nan")), "exponent=nan"),
    (lambda: distributions.leaf_distribution("pareto", 4, alpha=2.0), "bad parameters"),
    (lambda: distributions.leaf_distribution("uniform", 3, support=np.zeros(7, bool)), "selects no leaf"),
    (lambda: distributions.leaf_distribution("uniform", 3, support=np.ones(5, bool)), "support mask"),
])
def test_bad_input_gives_one_line_error(call, message):
  with pytest.raises(ValueError, match=message) as info:
    call()
  assert "\n" not in str(info.value)


def test_dirichlet_draw_is_normalised_gamma_draws_of_the_seeded_generator():
  # A Dirichlet(c) vector is a vector of independent Gamma(c, 1) draws divided by their sum (Devroye 1986, XI.4);
  # small concentrations make sums below 1 common, so the underflow fallback must leave them alone.
  for concentration in (0.05, 0.3, 1.0):
    gammas = np.random.default_rng(11).gamma(concentration, size=2**3 - 1)
    assert 0 < gammas.sum()
    probs = distributions.leaf_distribution("dirichlet", 3, seed=11, concentration=concentration)
    np.testing.assert_allclose(probs, gammas / gammas.sum(), rtol=1e-15, atol=0)
