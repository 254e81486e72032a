"""theory.distributions and theory.token_tree: each family's documented draw and default, and the messages that name
a bad value."""

import numpy as np
import pytest

from theory import distributions, token_tree

DEPTH = 4
N = token_tree.n_leaves(DEPTH)


def normalised(masses: np.ndarray) -> np.ndarray:
  return masses / masses.sum()


@pytest.mark.parametrize("seed", [0, 7])
def test_each_family_is_its_documented_draw(seed):
  pareto = normalised(1.0 + np.random.default_rng(seed).pareto(2.0, N))  # classical Pareto, scale 1
  np.testing.assert_array_equal(distributions.leaf_distribution("pareto", DEPTH, seed=seed, shape=2.0), pareto)
  ranks = np.random.default_rng(seed).permutation(N) + 1.0
  np.testing.assert_array_equal(distributions.leaf_distribution("zipf", DEPTH, seed=seed, exponent=1.7),
                                normalised(ranks ** -1.7))
  gamma = np.random.default_rng(seed).gamma(0.3, size=N)  # normalised gamma draws are a Dirichlet draw
  np.testing.assert_array_equal(distributions.leaf_distribution("dirichlet", DEPTH, seed=seed, concentration=0.3),
                                normalised(gamma))
  assert distributions.leaf_distribution("uniform", DEPTH, seed=seed).tolist() == [1 / N] * N


def test_documented_defaults():
  for family, name, default in [("pareto", "shape", 1.5), ("zipf", "exponent", 1.0),
                                ("dirichlet", "concentration", 1.0)]:
    np.testing.assert_array_equal(distributions.leaf_distribution(family, DEPTH, seed=3),
                                  distributions.leaf_distribution(family, DEPTH, seed=3, **{name: default}))
    np.testing.assert_array_equal(distributions.leaf_distribution(family, DEPTH),
                                  distributions.leaf_distribution(family, DEPTH, seed=0))


def test_a_dirichlet_draw_that_underflows_puts_all_mass_on_one_leaf():
  probs = distributions.leaf_distribution("dirichlet", DEPTH, seed=1, concentration=1e-300)
  assert probs.dtype == np.float64 and sorted(probs.tolist()) == [0.0] * (N - 1) + [1.0]
  on_support = distributions.leaf_distribution("dirichlet", DEPTH, seed=2, concentration=1e-300, support=(1,))
  assert on_support.sum() == 1.0 and on_support[token_tree.prefix_mask(DEPTH, (1,))].max() == 1.0


@pytest.mark.parametrize("family, name", [("pareto", "shape"), ("zipf", "exponent"), ("dirichlet", "concentration")])
@pytest.mark.parametrize("value", [0.0, -1.0, float("inf")])
def test_family_parameters_must_be_positive_and_finite(family, name, value):
  with pytest.raises(ValueError) as error:
    distributions.leaf_distribution(family, DEPTH, **{name: value})
  assert str(error.value) == f"{name}={value!r} is not allowed; allowed: a finite number > 0"


def test_unknown_families_list_the_known_ones():
  with pytest.raises(ValueError) as error:
    distributions.leaf_distribution("gauss", DEPTH)
  assert str(error.value) == "unknown distribution family 'gauss'; allowed: dirichlet, pareto, uniform, zipf"


def test_token_tree_messages_name_the_bad_value():
  with pytest.raises(ValueError) as error:
    token_tree.leaf_index((0, 2, 1))
  assert str(error.value) == "bits must be 0 or 1, got (0, 2, 1)"
  with pytest.raises(ValueError) as error:
    token_tree.prefix_mask(3, (0, 1, 0))
  assert str(error.value) == "prefix (0, 1, 0) is longer than depth-1=2; no leaf of the tree has it"
  with pytest.raises(ValueError) as error:
    token_tree.prefix_mask(3, (0, 5))
  assert str(error.value) == "prefix must contain only tokens 0 and 1, got (0, 5)"
  with pytest.raises(ValueError) as error:
    token_tree.leaf_bits(-1, 3)
  assert str(error.value) == "leaf index -1 is out of range; allowed: 0..6 for depth 3"
  assert token_tree.prefix_mask(3, (1, 1)).tolist() == [False] * 6 + [True]  # the longest prefix allowed
