"""Tests of experiments.statistics on synthetic data whose answer is known, against brute-force enumerations."""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as hs
from scipy import stats

from experiments import statistics
from tests.helpers import sign_flip_rejects

GRID = np.array([0, 50, 100, 200, 300, 500, 1000, 2000.0])


def brute_sign_flip_p(differences, alternative):
  """p-value of the mean difference over all 2**n sign patterns, by explicit enumeration."""
  differences = np.asarray(differences, dtype=np.float64)
  observed = differences.sum()
  count = 0
  patterns = list(itertools.product((1.0, -1.0), repeat=differences.size))
  for signs in patterns:
    flipped = float(np.dot(signs, differences))
    count += {"greater": flipped >= observed, "less": flipped <= observed,
              "two-sided": abs(flipped) >= abs(observed)}[alternative]
  return count / len(patterns)


def page_statistic(values, weights):
  """Page's L of values (n_levels, n_seeds) with the given level weights, within-seed midranks."""
  return float(sum(np.dot(weights, stats.rankdata(values[:, s])) for s in range(values.shape[1])))


def brute_trend_p(values, alternative):
  """Page's L p-value over all (n_levels!)**n_seeds within-seed orders, by explicit enumeration."""
  n_levels, n_seeds = values.shape
  weights = np.arange(1, n_levels + 1.0)
  if alternative == "decreasing":
    weights = weights[::-1]
  observed = page_statistic(values, weights)
  per_seed = [list(itertools.permutations(values[:, s])) for s in range(n_seeds)]
  null = np.array([page_statistic(np.array(columns).T, weights) for columns in itertools.product(*per_seed)])
  if alternative == "two-sided":
    centre = null.mean()
    return np.mean(np.abs(null - centre) >= abs(observed - centre) - 1e-9)
  return np.mean(null >= observed - 1e-9)


def holm_by_closed_testing(p_values):
  """Holm's adjusted p-values as closed testing with Bonferroni local tests: max over subsets containing i."""
  m = len(p_values)
  adjusted = []
  for i in range(m):
    worst = 0.0
    for size in range(1, m + 1):
      for subset in itertools.combinations(range(m), size):
        if i in subset:
          worst = max(worst, min(1.0, size * min(p_values[j] for j in subset)))
    adjusted.append(worst)
  return np.array(adjusted)


# --- mean_ci ------------------------------------------------------------------------------------------------------


def test_mean_ci_is_the_t_interval_and_nan_for_one_sample():
  samples = np.array([1.0, 2.0, 3.0, 4.0])
  mean, half = statistics.mean_ci(samples)
  assert mean == 2.5
  assert half == pytest.approx(3.182446305284263 * np.std(samples, ddof=1) / 2, rel=1e-12)
  mean, half = statistics.mean_ci(np.array([[3.0], [4.0]]), axis=1)
  assert mean.tolist() == [3.0, 4.0] and np.isnan(half).all()


# --- paired sign-flip test ------------------------------------------------------------------------------------------


@given(hs.lists(hs.integers(-5, 5), min_size=1, max_size=8), hs.sampled_from(["greater", "less", "two-sided"]))
def test_sign_flip_p_matches_brute_force(integers, alternative):
  differences = np.array(integers, dtype=np.float64)  # integers: ties are exact, sums exact in float64.
  result = statistics.paired_difference(differences, np.zeros_like(differences), alternative=alternative)
  assert result.test.exact and result.test.n_permutations == 2 ** differences.size
  assert result.test.p_value == pytest.approx(brute_sign_flip_p(differences, alternative), abs=1e-12)
  assert result.test.p_floor <= result.test.p_value


def test_sign_flip_floor_is_one_over_two_to_the_seeds():
  a = np.array([1.3, 0.4, 2.2, 0.9, 0.1])
  greater = statistics.paired_difference(a, np.zeros(5), alternative="greater")
  assert greater.test.p_value == greater.test.p_floor == 1 / 32
  assert statistics.paired_difference(a, np.zeros(5), alternative="two-sided").test.p_value == 2 / 32
  assert statistics.paired_difference(a, np.zeros(5), alternative="less").test.p_value == 1.0
  assert statistics.paired_difference(a, a, alternative="greater").test.p_value == 1.0
  assert math.isinf(greater.exact_effect.ci_low) and math.isinf(greater.exact_effect.ci_high)  # 5 seeds at 95%
  decimals = np.array([0.1, 0.2, -0.3, 0.4, 0.7])  # 0.1 + 0.2 - 0.3 != 0 in float64: a tie only up to round-off.
  for alternative in ("greater", "less", "two-sided"):
    p = statistics.paired_difference(decimals, np.zeros(5), alternative=alternative).test.p_value
    assert p == brute_sign_flip_p([1, 2, -3, 4, 7], alternative)


@given(hs.lists(hs.integers(-20, 20), min_size=6, max_size=9))
def test_exact_interval_inverts_the_sign_flip_test(integers):
  differences = np.array(integers, dtype=np.float64)
  result = statistics.paired_difference(differences, np.zeros_like(differences), alternative="two-sided")
  low, high = result.exact_effect.ci_low, result.exact_effect.ci_high
  assert low <= differences.mean() <= high

  def rejected(delta):  # either one-sided sign-flip test at 2.5% rejects the shift delta (exact rationals).
    return sign_flip_rejects(integers, delta, 0.025)

  eps = 1e-6  # subset means of integers are at least 1/72 apart: no other end lies within eps.
  if low == high:
    assert not rejected(low) and rejected(low - eps) and rejected(high + eps)
  else:
    assert not rejected(low + eps) and not rejected(high - eps)
    assert rejected(low - eps) and rejected(high + eps)


def test_paired_effect_dz_and_t_interval():
  rng = np.random.default_rng(3)
  a, b = rng.normal(1.0, 1.0, 7), rng.normal(0.0, 1.0, 7)
  result = statistics.paired_difference(a, b, alternative="greater", units="nats per token")
  mean, half = statistics.mean_ci(a - b)
  assert result.effect.estimate == pytest.approx(mean) and result.effect.ci_high == pytest.approx(mean + half)
  assert result.cohens_dz == pytest.approx((a - b).mean() / (a - b).std(ddof=1))
  assert "nats per token" in result.effect.text()


def test_sign_flip_null_is_calibrated_and_an_effect_is_found():
  rng = np.random.default_rng(4)
  n_repeats, n_seeds = 4000, 8
  null = statistics.cells_consistent(rng.standard_normal((n_repeats, n_seeds)), np.zeros((n_repeats, n_seeds)),
                                     alternative="greater")
  level = 12 / 256  # largest attainable p-value <= 0.05 with 8 seeds; P(p <= level) = level exactly.
  rate = np.mean(null.cell_p_values <= level + 1e-12)
  assert abs(rate - level) < 4 * math.sqrt(level * (1 - level) / n_repeats)
  shifted = statistics.cells_consistent(rng.standard_normal((400, n_seeds)) + 2.0, np.zeros((400, n_seeds)),
                                        alternative="greater")
  assert np.mean(shifted.cell_p_values <= 0.05) > 0.95


def test_monte_carlo_sign_flip_agrees_with_exact_and_is_seeded():
  rng = np.random.default_rng(5)
  differences = rng.normal(0.4, 1.0, 12)
  exact = statistics.paired_difference(differences, np.zeros(12), alternative="greater")
  sampled = statistics.paired_difference(differences, np.zeros(12), alternative="greater", max_exact_seeds=4,
                                         n_resamples=20_000, seed=1)
  again = statistics.paired_difference(differences, np.zeros(12), alternative="greater", max_exact_seeds=4,
                                       n_resamples=20_000, seed=1)
  assert not sampled.test.exact and sampled.test.n_permutations == 20_001
  assert sampled.test.p_value == again.test.p_value
  p = exact.test.p_value
  assert abs(sampled.test.p_value - p) < 4 * math.sqrt(p * (1 - p) / 20_000)
  assert sampled.exact_effect.ci_low == pytest.approx(exact.exact_effect.ci_low, abs=0.15)


# --- stratified trend -----------------------------------------------------------------------------------------------


@given(hs.lists(hs.integers(0, 3), min_size=9, max_size=9),
       hs.sampled_from(["increasing", "decreasing", "two-sided"]))
def test_trend_p_matches_brute_force_with_ties(integers, alternative):
  values = np.array(integers, dtype=np.float64).reshape(3, 3)  # heavy ties within seeds.
  result = statistics.stratified_trend([1.0, 2.0, 4.0], values, alternative=alternative)
  assert result.test.exact and result.test.n_permutations == 6 ** 3
  assert result.test.p_value == pytest.approx(brute_trend_p(values, alternative), abs=1e-12)


def test_trend_without_ties_matches_scipy_exact_page_test():
  rng = np.random.default_rng(6)
  for n_levels, n_seeds in ((3, 4), (4, 5), (5, 3)):
    values = rng.standard_normal((n_levels, n_seeds)) + 0.4 * np.arange(n_levels)[:, None]
    result = statistics.stratified_trend(2.0 ** np.arange(n_levels), values)
    reference = stats.page_trend_test(values.T, method="exact")
    assert result.test.statistic == reference.statistic
    assert result.test.p_value == pytest.approx(reference.pvalue, rel=1e-10)
    per_seed = [stats.spearmanr(np.arange(n_levels), values[:, s]).statistic for s in range(n_seeds)]
    assert result.mean_spearman == pytest.approx(np.mean(per_seed))


@pytest.mark.parametrize(("n_levels", "n_seeds"), [(2, 5), (3, 3), (4, 2), (2, 10)])
def test_perfect_trend_has_the_exact_design_p(n_levels, n_seeds):
  values = np.arange(n_levels, dtype=np.float64)[:, None] + 10.0 * np.arange(n_seeds)[None, :]
  result = statistics.stratified_trend(2.0 ** np.arange(n_levels), values)
  assert result.test.p_value == pytest.approx(1.0 / math.factorial(n_levels) ** n_seeds, rel=1e-12)
  assert result.test.p_floor == pytest.approx(result.test.p_value, rel=1e-12)
  falling = statistics.stratified_trend(2.0 ** np.arange(n_levels), -values, alternative="two-sided")
  assert falling.test.p_value == pytest.approx(2.0 / math.factorial(n_levels) ** n_seeds, rel=1e-12)
  assert falling.test.alternative == "two-sided"


def test_the_252_example_is_the_pooled_p_and_the_design_p_is_1_over_32():
  levels, n_seeds = np.array([1000.0, 10000.0]), 5
  values = np.array([[0.80, 0.82, 0.85, 0.86, 0.88], [0.97, 0.98, 0.985, 0.99, 0.995]])  # every seed rises.
  blocked = statistics.stratified_trend(levels, values)
  assert blocked.test.p_value == pytest.approx(1 / 32, rel=1e-12)
  # Pooled: all C(10, 5) splits of the ten values into the two levels, statistic = sum at the upper level.
  pooled = values.ravel()
  observed = values[1].sum()
  splits = list(itertools.combinations(range(10), n_seeds))
  pooled_p = np.mean([pooled[list(split)].sum() >= observed - 1e-12 for split in splits])
  assert len(splits) == 252 and pooled_p == pytest.approx(1 / 252)
  assert pooled_p == pytest.approx(math.factorial(n_seeds) ** 2 / math.factorial(2 * n_seeds))
  approximate = stats.spearmanr(np.repeat(levels, n_seeds), pooled, alternative="greater")
  assert approximate.statistic == pytest.approx(0.870, abs=1e-3)
  assert approximate.pvalue < pooled_p < blocked.test.p_value  # the t approximation overstates the evidence.


def test_trend_effect_both_ways_and_null_calibration():
  rng = np.random.default_rng(7)
  levels = np.array([1000, 2000, 5000, 10000.0])
  seed_effects = 5.0 * rng.standard_normal(6)
  growing = 0.3 * np.log2(levels)[:, None] + seed_effects[None, :] + 0.05 * rng.standard_normal((4, 6))
  found = statistics.stratified_trend(levels, growing, units="score")
  assert found.test.p_value < 1e-3 and found.effect.ci_low < 0.3 < found.effect.ci_high
  assert found.effect.units == "score per doubling of the level"
  for s in range(6):
    assert found.slopes[s] == pytest.approx(np.polyfit(np.log2(levels), growing[:, s], 1)[0])
  assert statistics.stratified_trend(levels, -growing).test.p_value > 0.99
  assert statistics.stratified_trend(levels, -growing, alternative="decreasing").test.p_value < 1e-3
  rejections = 0
  n_repeats = 400
  for _ in range(n_repeats):  # null: large seed effects, no level effect.
    values = 5.0 * rng.standard_normal((1, 4)) + rng.standard_normal((3, 4))
    rejections += statistics.stratified_trend([1.0, 2.0, 4.0], values).test.p_value <= 0.05
  assert rejections / n_repeats < 0.05 + 3 * math.sqrt(0.05 * 0.95 / n_repeats)


def test_monte_carlo_trend_agrees_with_exact():
  rng = np.random.default_rng(8)
  values = rng.standard_normal((4, 5)) + 0.3 * np.arange(4)[:, None]
  exact = statistics.stratified_trend([1, 2, 4, 8], values)
  sampled = statistics.stratified_trend([1, 2, 4, 8], values, max_exact_levels=2, n_resamples=20_000, seed=3)
  assert not sampled.test.exact and sampled.test.statistic == exact.test.statistic
  p = exact.test.p_value
  assert abs(sampled.test.p_value - p) < 4 * math.sqrt(p * (1 - p) / 20_000) + 1e-4


# --- cells that share seeds -----------------------------------------------------------------------------------------


def test_cluster_test_is_the_sign_flip_test_of_seed_means():
  rng = np.random.default_rng(9)
  a, b = rng.standard_normal((27, 6)), rng.standard_normal((27, 6))
  result = statistics.cluster_mean_difference(a, b, alternative="less")
  seed_means = np.array([np.mean(a[:, s] - b[:, s]) for s in range(6)])
  assert result.per_seed == pytest.approx(seed_means)
  assert result.test.p_value == pytest.approx(brute_sign_flip_p(seed_means, "less"))
  assert result.effect.estimate == pytest.approx((a - b).mean())
  consistency = statistics.cells_consistent(a, b, alternative="less")
  for cell in (0, 13, 26):
    single = statistics.paired_difference(a[cell], b[cell], alternative="less")
    assert consistency.cell_p_values[cell] == pytest.approx(single.test.p_value)
  assert consistency.n_in_direction == int(((a - b).mean(axis=1) < 0).sum())
  assert "not independent" in consistency.text()


def test_cluster_test_holds_its_level_where_a_sign_test_over_cells_does_not():
  rng = np.random.default_rng(10)
  n_repeats, n_cells, n_seeds = 300, 27, 8
  cluster_rejections = cell_rejections = 0
  for _ in range(n_repeats):  # null: each seed shifts every cell alike (shared sources and checkpoints).
    seed_shift = rng.standard_normal(n_seeds)
    differences = seed_shift[None, :] + 0.2 * rng.standard_normal((n_cells, n_seeds))
    test = statistics.cluster_mean_difference(differences, np.zeros_like(differences), alternative="less").test
    cluster_rejections += test.p_value <= 0.05
    lower = int((differences.mean(axis=1) < 0).sum())
    cell_rejections += stats.binomtest(lower, n_cells, 0.5, alternative="greater").pvalue <= 0.05
  assert cluster_rejections / n_repeats < 0.05 + 3 * math.sqrt(0.05 * 0.95 / n_repeats)
  assert cell_rejections / n_repeats > 0.3  # the naive test treats 27 correlated cells as independent.
  effect = -1.5 + rng.standard_normal(n_seeds)[None, :] * 0.5 + 0.2 * rng.standard_normal((n_cells, n_seeds))
  found = statistics.cluster_mean_difference(effect, np.zeros_like(effect), alternative="less")
  assert found.test.p_value == 1 / 256 and found.effect.ci_high < 0


# --- Holm -----------------------------------------------------------------------------------------------------------


def test_holm_hand_worked_example():
  # sorted: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 = 0.04 -> running max 0.06.
  assert statistics.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
  assert statistics.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
  assert statistics.holm([]).size == 0


@given(hs.lists(hs.sampled_from([0.0, 0.001, 0.01, 0.02, 0.03, 0.2, 0.5, 1.0]) | hs.floats(0, 1), min_size=1,
                max_size=6))
def test_holm_equals_closed_testing(p_values):
  adjusted = statistics.holm(p_values)
  assert adjusted == pytest.approx(holm_by_closed_testing(p_values), abs=1e-15)
  order = np.argsort(p_values, kind="stable")
  assert np.all(np.diff(adjusted[order]) >= 0) and np.all(adjusted <= 1) and np.all(adjusted >= p_values)


# --- verdicts -------------------------------------------------------------------------------------------------------


def make_verdict(estimate, low, high, p, *, family="f", direction="negative", floor=1e-6, **kwargs):
  effect = statistics.Effect(estimate=estimate, ci_low=low, ci_high=high, units="nats per token", what="gap")
  test = statistics.TestResult(name="exact sign-flip test", statistic=estimate, p_value=p,
                               alternative="less" if direction == "negative" else "greater", exact=True,
                               n_permutations=1 << 20, p_floor=floor)
  return statistics.Verdict(family=family, claim="inverse below forward", effect=effect, test=test,
                            paper_direction=direction, **kwargs)


def test_verdict_statuses_follow_the_adjusted_p():
  family = statistics.VerdictFamily(name="f", verdicts=(
      make_verdict(-0.05, -0.08, -0.02, 0.001),  # shown: 3 x 0.001 < 0.05.
      make_verdict(-0.01, -0.03, 0.01, 0.03),  # raw p < alpha, adjusted 2 x 0.03 = 0.06: not shown.
      make_verdict(0.047, 0.03, 0.06, 0.9),  # the interval lies on the other side: evidence of absence.
      make_verdict(-0.5, -0.9, -0.1, 1e-9, consistency_check=True),  # not evidence, not in the correction.
  )).adjust()
  first, second, third, check = family.verdicts
  assert family.size == 3 and first.family_size == 3 and check.p_adjusted is None
  assert first.p_adjusted == pytest.approx(0.003) and first.status == statistics.SHOWN
  assert second.p_adjusted == pytest.approx(0.06) and second.status == statistics.INCONCLUSIVE
  assert third.status == statistics.ABSENT and "against the paper" in third.line()
  assert check.status == statistics.CONSISTENCY and "not evidence" in check.line()
  line = first.line()
  for piece in ("-0.05", "[-0.08, -0.02]", "nats per token", "exact sign-flip test", "p = 0.001",
                "Holm-adjusted p = 0.003", "SHOWN"):
    assert piece in line


def test_evidence_of_absence_needs_the_interval_below_the_smallest_effect_of_interest():
  small = make_verdict(-0.01, -0.02, 0.005, 0.2, smallest_effect_of_interest=0.05)
  assert statistics.VerdictFamily(name="f", verdicts=[small]).adjust().verdicts[0].status == statistics.ABSENT
  wide = make_verdict(-0.01, -0.09, 0.005, 0.2, smallest_effect_of_interest=0.05)
  assert statistics.VerdictFamily(name="f", verdicts=[wide]).adjust().verdicts[0].status == statistics.INCONCLUSIVE
  wrong_way = make_verdict(0.3, 0.1, 0.5, 0.001)  # a two-sided test significant the other way is no evidence.
  wrong_way = dataclasses.replace(wrong_way, test=dataclasses.replace(wrong_way.test, alternative="two-sided"))
  assert statistics.VerdictFamily(name="f", verdicts=[wrong_way]).adjust().verdicts[0].status == statistics.ABSENT


def test_a_five_seed_family_says_it_cannot_be_shown():
  family = statistics.VerdictFamily(name="f", verdicts=[make_verdict(-0.05, -0.08, -0.02, 1 / 32, floor=1 / 32),
                                                        make_verdict(-0.04, -0.07, -0.01, 1 / 32, floor=1 / 32)])
  assert not family.can_show()
  lines = family.lines()
  assert all("cannot show" in line and statistics.INCONCLUSIVE in line for line in lines)


def test_verdict_rejects_inconsistent_input():
  with pytest.raises(ValueError, match="does not match paper_direction"):
    dataclasses.replace(make_verdict(-0.1, -0.2, 0.0, 0.01), paper_direction="positive")
  with pytest.raises(ValueError, match="no adjusted p-value"):
    _ = make_verdict(-0.1, -0.2, 0.0, 0.01).status
  with pytest.raises(ValueError, match="does not match the family"):
    statistics.VerdictFamily(name="g", verdicts=[make_verdict(-0.1, -0.2, 0.0, 0.01)])


# --- power ----------------------------------------------------------------------------------------------------------


def test_minimum_detectable_effect_has_the_stated_power():
  rng = np.random.default_rng(11)
  n_seeds, sd = 6, 0.02
  effect = statistics.minimum_detectable_effect(sd, n_seeds, alpha=0.05, power=0.8)
  samples = effect + sd * rng.standard_normal((20_000, n_seeds))
  t = samples.mean(axis=1) / (samples.std(axis=1, ddof=1) / math.sqrt(n_seeds))
  assert np.mean(t > stats.t.ppf(0.95, n_seeds - 1)) == pytest.approx(0.8, abs=0.015)
  large = statistics.minimum_detectable_effect(1.0, 5000)
  assert large == pytest.approx((stats.norm.ppf(0.95) + stats.norm.ppf(0.8)) / math.sqrt(5000), rel=2e-3)
  both = statistics.minimum_detectable_effect([1.0, 2.0], 5, alternative="two-sided")
  assert both[1] == pytest.approx(2 * both[0]) and both[0] > statistics.minimum_detectable_effect(1.0, 5)
  assert statistics.minimum_detectable_effect(1.0, 5, alternative="less") == statistics.minimum_detectable_effect(
      1.0, 5)


# --- rebound curves -------------------------------------------------------------------------------------------------


def test_half_life_and_early_share_interpolate_like_a_dense_grid():
  n = np.array([0, 100, 200, 500.0])
  curves = np.array([[0.0, 0.3, 0.7, 0.9], [0.0, 0.1, 0.2, 0.4], [0.6, 0.8, 0.9, 1.0], [0.0, 0.6, 0.4, 0.8]])
  got = statistics.half_life(n, curves)
  assert got[0] == pytest.approx(100 + (0.5 - 0.3) / 0.4 * 100)
  assert got[1] == np.inf and got[2] == 0.0 and got[3] == pytest.approx(100 * 0.5 / 0.6)
  dense = np.linspace(0, 500, 500_001)
  for curve, expected in zip(curves[:1], got[:1], strict=True):
    assert dense[np.argmax(np.interp(dense, n, curve) >= 0.5)] == pytest.approx(expected, abs=2e-3)
  assert statistics.early_share(n, curves, 150.0) == pytest.approx([np.interp(150, n, c) for c in curves])
  assert statistics.early_share(n, curves, 500.0) == pytest.approx(curves[:, -1])


def test_exponential_decay_passes_the_decay_test():
  rng = np.random.default_rng(12)
  curves = 1 - np.exp(-GRID / 250.0)[None, :] + 0.01 * rng.standard_normal((5, GRID.size))
  result = statistics.decay_against_linear(GRID, curves)
  assert result.testable and result.window_end == 500.0
  assert result.test.p_value == 1 / 32 and result.effect.ci_low > 0


@pytest.mark.parametrize("kink", [120.0, 200.0, 333.0, 500.0, 777.0, 1000.0, 1500.0, 2000.0, 4000.0])
def test_linear_curve_that_flattens_at_one_does_not_pass(kink):
  curves = np.tile(np.minimum(1.0, GRID / kink), (6, 1))
  result = statistics.decay_against_linear(GRID, curves)
  assert result.test.p_value == 1.0 and np.all(result.gaps == 0.0)
  early = (curves[:, 1] - curves[:, 0]) / GRID[1]
  late = (curves[:, -1] - curves[:, 1]) / (GRID[-1] - GRID[1])
  if kink < 1000:
    assert np.all(early > 2 * late)  # the early-against-late statistic would call it 'fast then slow'.


def test_decay_test_is_calibrated_on_noisy_linear_curves_with_a_floor():
  rng = np.random.default_rng(13)
  n_repeats, n_seeds = 400, 10
  rejections = 0
  for _ in range(n_repeats):
    kink = rng.uniform(150, 2500)
    curves = np.minimum(1.0, GRID / kink)[None, :] + 0.05 * rng.standard_normal((n_seeds, GRID.size))
    rejections += statistics.decay_against_linear(GRID, curves).test.p_value <= 0.05
  assert rejections / n_repeats < 0.05 + 3 * math.sqrt(0.05 * 0.95 / n_repeats)


def test_decay_test_both_directions_window_and_untestable_grid():
  accelerating = np.tile((GRID / 2000.0) ** 2, (5, 1))
  assert statistics.decay_against_linear(GRID, accelerating).test.p_value == 1.0
  assert statistics.decay_against_linear(GRID, accelerating, alternative="less").test.p_value == 1 / 32
  concave = np.tile(np.sqrt(GRID / 2000.0) * 0.8, (5, 1))
  fixed = statistics.decay_against_linear(GRID, concave, window_end=200.0)
  assert fixed.window_end == 200.0 and fixed.window_points == 4 and fixed.test.p_value == 1 / 32
  beyond = statistics.decay_against_linear([0, 100, 200.0], np.tile([0.0, 1.3, 1.1], (5, 1)), window_end=200.0)
  assert beyond.gaps == pytest.approx(np.full(5, (50 + 100 - 100) / 200))  # clipped at 1: [0, 1, 1].
  assert "saturation inside it" in beyond.note
  coarse = np.array([0, 100, 200, 500, 1000, 2000.0])  # the rebound grid: back at pre-training by 100 examples.
  overshoot = np.tile([0.0, 1.3, 1.6, 1.75, 1.9, 1.94], (5, 1))
  untestable = statistics.decay_against_linear(coarse, overshoot)
  assert not untestable.testable and untestable.test.p_value == 1.0 and math.isinf(untestable.effect.ci_high)
  whole_fall = statistics.decay_against_linear(coarse, overshoot, ceiling=np.full(5, 1.98))
  assert whole_fall.testable and whole_fall.window_end == 500.0 and whole_fall.test.p_value == 1 / 32
  with pytest.raises(ValueError, match="window_end 300.0 is not allowed"):
    statistics.decay_against_linear(coarse, overshoot, window_end=300.0)


# --- bad input ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("call", "message"), [
    (lambda: statistics.paired_difference([1, 2], [1, 2, 3], alternative="less"), "same shape"),
    (lambda: statistics.paired_difference([1, 2], [1, 2], alternative="lower"), "alternative 'lower'"),
    (lambda: statistics.paired_difference([1, np.nan], [1, 2], alternative="less"), "must be finite"),
    (lambda: statistics.stratified_trend([2, 1], np.zeros((2, 3))), "strictly increasing"),
    (lambda: statistics.stratified_trend([0, 1], np.zeros((2, 3))), "positive"),
    (lambda: statistics.stratified_trend([1, 2, 3], np.zeros((2, 3))), "n_levels=3"),
    (lambda: statistics.cluster_mean_difference(np.zeros(3), np.zeros(3), alternative="less"), "2 dimension"),
    (lambda: statistics.holm([0.2, 1.5]), "in \\[0, 1\\]"),
    (lambda: statistics.minimum_detectable_effect(1.0, 1), "n_seeds"),
    (lambda: statistics.half_life([0, 1], np.zeros((2, 3))), "to match n"),
    (lambda: statistics.early_share([0, 1], np.zeros(2), 2.0), "n_early 2.0"),
    (lambda: statistics.decay_against_linear(GRID, np.zeros((2, GRID.size)), saturation=0), "saturation 0"),
])
def test_bad_input_raises_one_line(call, message):
  with pytest.raises(ValueError, match=message) as error:
    call()
  assert "\n" not in str(error.value)


def test_a_shown_effect_below_the_smallest_effect_of_interest_says_so():
  effect = statistics.Effect(estimate=0.03, ci_low=0.02, ci_high=0.05, units="per unit log k", what="slope")
  test = statistics.TestResult(name="sign-flip", statistic=0.03, p_value=0.001, alternative="greater", exact=True,
                               n_permutations=1024, p_floor=1 / 1024)
  family = statistics.VerdictFamily(name="f", verdicts=(statistics.Verdict(
      family="f", claim="grows with k", effect=effect, test=test, paper_direction="positive",
      smallest_effect_of_interest=0.5),)).adjust()
  (verdict,) = family.verdicts
  assert verdict.status == statistics.SHOWN and verdict.below_interest
  assert "smaller than the smallest effect of interest, 0.5" in verdict.line()
  wide = dataclasses.replace(verdict, effect=dataclasses.replace(effect, ci_high=0.6))
  assert not wide.below_interest and "smaller than" not in wide.line()
