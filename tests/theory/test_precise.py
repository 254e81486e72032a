"""theory.precise: high-precision rates and differences against float64, the closed-form derivative, log1p."""

import numpy as np
import pytest

from tests import helpers
from theory import elasticity, hooke_curves, mixture, precise


def test_rates_agree_with_float64_where_float64_is_accurate():
  for seed in range(5):
    P, sizes = helpers.random_config(seed)
    np.testing.assert_allclose(precise.compression_rates(P, sizes), mixture.compression_rates(P, sizes),
                               rtol=1e-13)


def test_large_differences_agree_with_float64():
  for seed in range(5):
    P, sizes = helpers.random_config(seed)
    reference = sizes * np.array([1.0, 1.0, 0.0])
    sizes = sizes + np.array([0.0, 0.0, 0.5])
    rates = mixture.compression_rates(P, sizes)[:2]
    float64 = rates - mixture.compression_rates(P, reference)[:2]
    resolution = 32 * np.finfo(np.float64).eps * np.abs(rates).max()  # float64's rounding of the two rates
    np.testing.assert_allclose(precise.rate_differences(P, sizes, reference)[:2], float64, rtol=0, atol=resolution)
    assert np.abs(float64).max() > 1e3 * resolution  # the comparison is informative


def _stable_differences(P, k, l):
  """gamma_i(l) - gamma_i(0) = -sum_x P_i log2(1 + (l / (k + 1 + l))(P_t / q_0 - 1)), with log1p (float64)."""
  q0 = (k * P[0] + P[1]) / (k + 1)
  ratio = np.where(q0 > 0, P[2] / np.where(q0 > 0, q0, 1.0), 0.0)
  change = np.log1p(l / (k + 1 + l) * (ratio - 1)) / np.log(2)
  return -(P[:2] * change).sum(axis=-1)


def test_tiny_differences_follow_the_derivative_where_float64_cannot():
  config = hooke_curves.TheoryFiguresConfig()
  P = hooke_curves.three_datasets(config.depth, config.family, config.param, config.seed)
  k = 1e4
  derivative = elasticity.rate_derivatives(P, [k, 1.0, 0.0])[:2]
  gaps = []
  for l in (1e-5, 1e-6):
    sizes, reference = np.array([k, 1.0, l]), np.array([k, 1.0, 0.0])
    exact = precise.rate_differences(P, sizes, reference)[:2]
    gap = np.abs(exact / (l * derivative) - 1)  # the O(l) term of the Taylor expansion
    gaps.append(gap)
    np.testing.assert_allclose(exact, _stable_differences(P, k, l), rtol=1e-10)  # a third computation
    float64 = mixture.compression_rates(P, sizes)[:2] - mixture.compression_rates(P, reference)[:2]
    assert abs(float64[0] / exact[0] - 1) > 10 * gap[0]  # D_p's difference: float64 cancellation dominates
  assert gaps[0] / gaps[1] == pytest.approx([10.0, 10.0], rel=0.05)  # the gap is O(l): 10 x l, 10 x gap


def test_mp_rates_carry_the_requested_digits():
  P, sizes = helpers.random_config(0)
  low = precise.compression_rates_mp(P, sizes, digits=20)
  high = precise.compression_rates_mp(P, sizes, digits=60)
  for a, b in zip(low, high, strict=True):
    assert 0 < abs(a - b) <= 1e-17 * abs(b)  # 20 digits agree with 60 up to the 20-digit rounding


def test_uncovered_dataset_is_infinite_and_differences_follow():
  P = np.array([[0.5, 0.5, 0.0], [0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
  rates = precise.compression_rates(P, [1.0, 1.0, 0.0])
  assert np.isinf(rates[2]) and np.isfinite(rates[:2]).all()
  differences = precise.rate_differences(P, [1.0, 1.0, 0.5], [1.0, 1.0, 0.0])
  assert np.isneginf(differences[2]) and np.isfinite(differences[:2]).all()  # finite - inf
  assert np.isnan(precise.rate_differences(P, [1.0, 1.0, 0.0], [2.0, 1.0, 0.0])[2])  # inf - inf


def test_hooke_curves_use_the_precise_differences():
  config = hooke_curves.TheoryFiguresConfig(depth=5, n_l=5, k_curves=(10.0, 1e4), l_min=1e-6, l_max=1.0)
  curves = hooke_curves.hooke_curves(config)
  P = hooke_curves.three_datasets(config.depth, config.family, config.param, config.seed)
  k, l = curves["k"][1], curves["l"][0]
  np.testing.assert_allclose(curves["delta_rates"][1, 0, :2], _stable_differences(P, k, l), rtol=1e-10)
  k, l = curves["k"][0], curves["l"][3]  # a large difference: float64 is accurate there
  rates = mixture.compression_rates(P, [k, 1.0, l])
  direct = rates - mixture.compression_rates(P, [k, 1.0, 0.0])
  rounding = 64 * np.finfo(np.float64).eps * np.abs(rates[:2])  # float64's error on a difference of two rates
  np.testing.assert_allclose(curves["delta_rates"][0, 3, :2], direct[:2], rtol=0, atol=rounding.max())
  np.testing.assert_allclose(curves["delta_rates"][..., 2],
                             mixture.compression_rates(np.broadcast_to(P, (2, 5, 3, P.shape[-1])),
                                                       np.stack(np.broadcast_arrays(
                                                           curves["k"][:, None], 1.0, curves["l"][None, :]),
                                                           axis=-1))[..., 2])


@pytest.mark.parametrize("digits", [15, 2.5, True])
def test_bad_digits_are_rejected(digits):
  with pytest.raises(ValueError, match=f"digits={digits!r}"):
    precise.compression_rates(np.array([[1.0]]), [1.0], digits=digits)
