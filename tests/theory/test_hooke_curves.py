"""theory.hooke_curves: the theory figures' data recomputed from their documented recipe, and the config's checks.

Every draw of a figure derives from the config's seed (theory.seeding), so the same config gives the same figure:
the recipes below (which datasets, which random configurations) are that promise written out independently.
"""

import re

import numpy as np
import pytest

from theory import compression, distributions, elasticity, hooke_curves, mixture, precise, seeding, token_tree

SMALL = dict(depth=5, n_l=4, n_ratio_configs=5, n_huffman=6, k_curves=(10.0, 1e4), l_min=1e-4, l_max=0.5)


def documented_datasets(depth, family, param, seed):
  """Pre-training on the whole tree, alignment on responses starting with 0, perturbation on those starting with 1."""
  names = {"pareto": "shape", "zipf": "exponent", "dirichlet": "concentration"}
  return np.stack([distributions.leaf_distribution(family, depth, seed=seeding.derive(seed, "dataset", i),
                                                   support=support, **{names[family]: param})
                   for i, support in enumerate([(), (0,), (1,)])])


@pytest.mark.parametrize("family, param", [("pareto", 2.5), ("zipf", 1.2), ("dirichlet", 0.7)])
def test_three_datasets_are_the_documented_draws(family, param):
  P = hooke_curves.three_datasets(5, family, param, 11)
  np.testing.assert_array_equal(P, documented_datasets(5, family, param, 11))
  assert P.shape == (3, 31)
  aligned, unaligned = token_tree.prefix_mask(5, (0,)), token_tree.prefix_mask(5, (1,))
  assert np.all(P[1, ~aligned] == 0) and np.all(P[2, ~unaligned] == 0) and np.all(P[0] > 0)  # the two subtrees


def test_hooke_curves_are_high_precision_rate_differences():
  config = hooke_curves.TheoryFiguresConfig(**SMALL, param=2.5, seed=4)
  curves = hooke_curves.hooke_curves(config)
  P = documented_datasets(5, "pareto", 2.5, 4)
  l = np.geomspace(1e-4, 0.5, 4)
  np.testing.assert_array_equal(curves["l"], l)
  assert curves["k"].tolist() == [10.0, 1e4] and curves["k"].dtype == np.float64
  sizes = np.stack([np.stack([np.array([k, 1.0, x]) for x in l]) for k in (10.0, 1e4)])  # (n_k, n_l, 3)
  reference = sizes * np.array([1.0, 1.0, 0.0])
  np.testing.assert_array_equal(curves["delta_rates"][..., :2], precise.rate_differences(P, sizes, reference)[..., :2])
  np.testing.assert_array_equal(curves["delta_rates"][..., 2], mixture.compression_rates(P, sizes)[..., 2])
  np.testing.assert_array_equal(curves["derivative_ratio"], elasticity.derivative_ratio(P, sizes))
  # Where float64 keeps enough digits the differences agree with it; at k = 1e4, l = 1e-4 they are ~1e-9 of the rates.
  float64 = mixture.compression_rates(P, sizes) - mixture.compression_rates(P, reference)
  np.testing.assert_allclose(curves["delta_rates"][0, -1, :2], float64[0, -1, :2], rtol=1e-9)
  assert np.all(curves["delta_rates"][..., 0] < 0) and np.all(curves["delta_rates"][..., 1] > 0)  # the paper's signs


def test_hooke_curves_use_the_requested_digits():
  config = hooke_curves.TheoryFiguresConfig(**SMALL)
  P = documented_datasets(5, "pareto", 1.5, 0)
  sizes = np.array([1e4, 1.0, 1e-4])
  coarse = hooke_curves.hooke_curves(config, digits=17)["delta_rates"][1, 0, :2]
  np.testing.assert_array_equal(coarse, precise.rate_differences(P, sizes, sizes * [1, 1, 0], digits=17)[:2])
  assert not np.array_equal(coarse, hooke_curves.hooke_curves(config)["delta_rates"][1, 0, :2])
  with pytest.raises(ValueError, match="digits=10 is not allowed"):
    hooke_curves.hooke_curves(config, digits=10)


def test_integer_k_curves_are_float64():
  curves = hooke_curves.hooke_curves(hooke_curves.TheoryFiguresConfig(**{**SMALL, "k_curves": (10, 100)}))
  assert curves["k"].dtype == np.float64 and curves["k"].tolist() == [10.0, 100.0]


def test_ratio_against_k_is_the_documented_random_panel():
  config = hooke_curves.TheoryFiguresConfig(**SMALL, ratio_l=0.02, family="zipf", param=1.3, seed=6)
  panel = hooke_curves.ratio_against_k(config)
  rng = np.random.default_rng(seeding.derive(6, "ratio against k"))
  P = np.stack([documented_datasets(5, "zipf", 1.3, int(s)) for s in rng.integers(0, 2**31, 5)])
  k = 10 ** rng.uniform(0, 6, 5)
  sizes = np.stack([k, np.ones(5), np.full(5, 0.02)], axis=-1)
  np.testing.assert_array_equal(panel["k"], k)
  np.testing.assert_array_equal(panel["ratio"], elasticity.derivative_ratio(P, sizes))
  np.testing.assert_array_equal(panel["predicted"], elasticity.predicted_ratio(P, sizes))
  np.testing.assert_allclose(panel["ratio"], panel["predicted"], rtol=1e-9)  # claim 5a: the identity's prediction
  assert np.all((1 <= panel["k"]) & (panel["k"] <= 1e6))


def test_huffman_panel_is_the_documented_random_sample():
  config = hooke_curves.TheoryFiguresConfig(**{**SMALL, "n_huffman": 7}, seed=2)
  panel = hooke_curves.huffman_against_entropy(config)
  rng = np.random.default_rng(seeding.derive(2, "huffman against entropy"))
  families = ["dirichlet", "pareto", "uniform", "zipf"]
  expected = {"entropy": [], "huffman": [], "paper": []}
  for _ in range(7):
    depth = int(rng.integers(2, 9))  # depths 2..8
    family = families[int(rng.integers(4))]
    probs = distributions.leaf_distribution(family, depth, seed=int(rng.integers(2**31)))
    expected["entropy"].append(compression.entropy_bits(probs))
    expected["huffman"].append(compression.expected_code_length(probs, probs))
    expected["paper"].append(compression.paper_ideal_code_length(probs, 1, depth))
  for name in ("entropy", "huffman", "paper"):
    assert panel[name].shape == (7,)
    np.testing.assert_array_equal(panel[name], expected[name])
  assert np.all(panel["entropy"] <= panel["huffman"] + 1e-12) and np.all(panel["huffman"] < panel["entropy"] + 1)


@pytest.mark.parametrize("changes, message", [
    ({"l_min": 0.0}, "need 0 < l_min < l_max, got l_min=0.0, l_max=1.0"),
    ({"l_min": -1e-3}, "need 0 < l_min < l_max, got l_min=-0.001, l_max=1.0"),
    ({"l_min": 0.5, "l_max": 0.5}, "need 0 < l_min < l_max, got l_min=0.5, l_max=0.5"),
    ({"k_curves": (10.0, 0.0)}, "k_curves must be finite and > 0, got (10.0, 0.0)"),
    ({"k_curves": (float("inf"),)}, "k_curves must be finite and > 0, got (inf,)"),
    ({"k_curves": (float("nan"), 1.0)}, "k_curves must be finite and > 0, got (nan, 1.0)"),
    ({"n_l": 1}, "n_l=1 is too small; allowed: >= 2"),
    ({"n_ratio_configs": 0}, "n_ratio_configs=0 is too small; allowed: >= 2"),
    ({"n_huffman": 1}, "n_huffman=1 is too small; allowed: >= 2"),
])
def test_bad_configs_are_named_in_one_line(changes, message):
  with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
    hooke_curves.TheoryFiguresConfig(**changes)


def test_smallest_allowed_configs_are_accepted():
  config = hooke_curves.TheoryFiguresConfig(n_l=2, n_ratio_configs=2, n_huffman=2, l_min=1e-9, l_max=2e-9,
                                            k_curves=(1e-3,))
  assert (config.n_l, config.n_ratio_configs, config.n_huffman) == (2, 2, 2)
