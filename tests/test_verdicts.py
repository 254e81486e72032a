"""Tests of proofs_check.verdicts on synthetic data whose answer is known, both ways."""

import numpy as np
import pytest

from proofs_check import verdicts


def test_mean_ci_matches_the_t_interval():
  samples = np.array([1.0, 2.0, 3.0, 4.0])
  mean, half = verdicts.mean_ci(samples)
  assert mean == 2.5
  assert half == pytest.approx(3.182446305284263 * np.std(samples, ddof=1) / 2)


def test_resistance_verdict_both_ways():
  rng = np.random.default_rng(0)
  forward = 0.2 + 0.01 * rng.standard_normal((9, 5))
  shown, differences, p_values = verdicts.resistance_verdict(forward, forward - 0.05)
  assert shown.holds and (differences < 0).all() and (p_values < 0.05).all()
  not_shown, _, _ = verdicts.resistance_verdict(forward, forward + 0.05)
  assert not not_shown.holds and "against the paper" in not_shown.line()
  noise, _, _ = verdicts.resistance_verdict(forward, forward + 0.01 * rng.standard_normal((9, 5)))
  assert not noise.holds


def test_fast_then_slow_both_ways():
  x = np.array([0, 100, 200, 500, 1000, 2000.0])
  rng = np.random.default_rng(1)
  noise = 0.002 * rng.standard_normal((3, 6, 5))
  convex = 0.3 + 0.6 * np.exp(-x / 80)[None, :, None] + noise
  assert verdicts.fast_then_slow_verdict(x, convex).holds
  linear = 0.9 - 0.0003 * x[None, :, None] + noise
  assert not verdicts.fast_then_slow_verdict(x, linear).holds
  concave = 0.9 - 0.2 * (x / 2000) ** 3
  assert not verdicts.fast_then_slow_verdict(x, np.broadcast_to(concave[None, :, None], (3, 6, 5))).holds


def test_increasing_trend_both_ways():
  rng = np.random.default_rng(2)
  factor = np.array([1000, 2000, 5000, 10000.0])
  growing = np.log(factor)[:, None] + 0.1 * rng.standard_normal((4, 5))
  assert verdicts.increasing_trend_verdict("grows", factor, growing).holds
  assert not verdicts.increasing_trend_verdict("grows", factor, -growing).holds
  assert not verdicts.increasing_trend_verdict("grows", factor, rng.standard_normal((4, 5))).holds


def test_examples_to_threshold_interpolates_and_reports_never():
  n = np.array([0, 100, 200, 500.0])
  curves = np.array([[0.2, 0.05, 0.005, 0.001], [0.2, 0.1, 0.05, 0.02], [0.001, 0.0, 0.0, 0.0]])
  got = verdicts.examples_to_threshold(n, curves, 0.01)
  assert got[0] == pytest.approx(100 + (0.05 - 0.01) / (0.05 - 0.005) * 100)
  assert got[1] == np.inf and got[2] == 0.0


def test_bad_shapes_are_rejected():
  with pytest.raises(ValueError, match="same shape"):
    verdicts.resistance_verdict(np.zeros((2, 3)), np.zeros((2, 4)))
  with pytest.raises(ValueError, match="increasing with at least 3 points"):
    verdicts.early_late_slopes([0, 1], np.zeros(2))
