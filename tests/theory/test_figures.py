"""The theory figures' curves (theory.hooke_curves): seeded, equal to mixture rate differences, config errors."""

import numpy as np
import pytest

from theory import hooke_curves, mixture

SMALL = dict(depth=5, n_l=5, n_ratio_configs=8, n_huffman=6, k_curves=(10.0, 100.0))


def test_same_seed_same_curves_other_seed_other_curves():
  a = hooke_curves.ratio_against_k(hooke_curves.TheoryFiguresConfig(**SMALL))
  b = hooke_curves.ratio_against_k(hooke_curves.TheoryFiguresConfig(**SMALL))
  c = hooke_curves.ratio_against_k(hooke_curves.TheoryFiguresConfig(**SMALL, seed=1))
  assert np.array_equal(a["ratio"], b["ratio"]) and not np.array_equal(a["ratio"], c["ratio"])


def test_hooke_curves_are_rate_differences_of_the_mixture():
  config = hooke_curves.TheoryFiguresConfig(**SMALL)
  curves = hooke_curves.hooke_curves(config)
  P = hooke_curves.three_datasets(config.depth, config.family, config.param, config.seed)
  k, l = curves["k"][1], curves["l"][2]
  direct = mixture.compression_rates(P, [k, 1.0, l]) - mixture.compression_rates(P, [k, 1.0, 0.0])
  assert curves["delta_rates"][1, 2, :2] == pytest.approx(direct[:2], rel=1e-12)


@pytest.mark.parametrize("kwargs, message", [
    ({"l_min": 0.0}, "need 0 < l_min < l_max"),
    ({"k_curves": (10.0, -1.0)}, "k_curves must be finite and > 0"),
    ({"n_l": 1}, "n_l=1 is too small"),
])
def test_bad_theory_config_is_rejected(kwargs, message):
  with pytest.raises(ValueError, match=message):
    hooke_curves.TheoryFiguresConfig(**kwargs)
