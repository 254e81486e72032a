"""experiments.statistics: power against an independent integral, curve edges, cell counts, verdict lines and checks."""

from __future__ import annotations

import dataclasses
import fractions
import math
import tracemalloc

import numpy as np
import pytest
from scipy import integrate, stats

from experiments import statistics
from tests.helpers import one_line_error, sign_flip_rejects, within

# --- power ----------------------------------------------------------------------------------------------------------


def t_test_power(noncentrality: float, df: int, alpha: float, two_sided: bool) -> float:
  """Rejection probability of the t test, integrating the normal over the chi-square of the variance (no nct).

  T = (Z + nc) / sqrt(V / df) with Z standard normal and V chi-square(df): given V = v the test rejects upward when
  Z > c sqrt(v / df) - nc and downward when Z < -c sqrt(v / df) - nc.
  """
  critical = stats.t.ppf(1 - alpha / 2 if two_sided else 1 - alpha, df)

  def given_v(v):
    scale = critical * math.sqrt(v / df)
    return (stats.norm.cdf(noncentrality - scale) + two_sided * stats.norm.cdf(-noncentrality - scale)) * \
        stats.chi2.pdf(v, df)

  return integrate.quad(given_v, 0, np.inf, epsabs=1e-14, epsrel=1e-12, limit=200)[0]


@pytest.mark.parametrize("n_seeds", [2, 3, 5, 10])
@pytest.mark.parametrize("alternative", ["greater", "two-sided"])
def test_minimum_detectable_effect_has_the_power_of_the_integral(n_seeds, alternative):
  effect = within(30, statistics.minimum_detectable_effect, 1.0, n_seeds, alternative=alternative)
  assert isinstance(effect, float)
  power = t_test_power(effect * math.sqrt(n_seeds), n_seeds - 1, 0.05, alternative == "two-sided")
  assert power == pytest.approx(0.8, abs=1e-9)


@pytest.mark.parametrize("power, alpha", [(0.1, 0.05), (0.06, 0.05), (0.5, 0.01), (0.99, 0.2)])
def test_low_and_high_power_targets(power, alpha):
  for alternative in ("greater", "two-sided"):
    effect = within(30, statistics.minimum_detectable_effect, 2.0, 5, alpha=alpha, power=power,
                    alternative=alternative)
    achieved = t_test_power(effect / 2.0 * math.sqrt(5), 4, alpha, alternative == "two-sided")
    assert achieved == pytest.approx(power, abs=1e-9)


def test_minimum_detectable_effect_broadcasts_over_sds_and_seed_counts():
  got = statistics.minimum_detectable_effect(np.array([[1.0], [3.0]]), np.array([2, 4, 4, 9]))
  assert got.shape == (2, 4) and got.dtype == np.float64
  for i, sd in enumerate((1.0, 3.0)):
    for j, n in enumerate((2, 4, 4, 9)):
      assert got[i, j] == pytest.approx(sd * statistics.minimum_detectable_effect(1.0, n), rel=1e-12)
  assert statistics.minimum_detectable_effect(0.0, 5) == 0.0  # no spread: any effect is detected
  assert statistics.minimum_detectable_effect(1, 5) == statistics.minimum_detectable_effect(1.0, 5.0)
  assert statistics.minimum_detectable_effect(fractions.Fraction(1, 2), 5) == pytest.approx(
      statistics.minimum_detectable_effect(0.5, 5), rel=1e-15)  # exact numbers are numbers too
  empty = statistics.minimum_detectable_effect(np.zeros(0), np.zeros(0, dtype=int))
  assert empty.shape == (0,) and empty.dtype == np.float64


@pytest.mark.parametrize("kwargs, message", [
    ({"alternative": "up"}, "alternative 'up' is not allowed; allowed: 'greater', 'less', 'two-sided'"),
    ({"alpha": 0.0}, "alpha 0.0 and power 0.8 are not allowed; allowed: 0 < alpha < power < 1"),
    ({"alpha": 0.8}, "alpha 0.8 and power 0.8 are not allowed; allowed: 0 < alpha < power < 1"),
    ({"power": 1.0}, "alpha 0.05 and power 1.0 are not allowed; allowed: 0 < alpha < power < 1"),
    ({"power": 1.5}, "alpha 0.05 and power 1.5 are not allowed; allowed: 0 < alpha < power < 1"),
    ({"sd": float("inf")}, "sd inf and n_seeds 5 are not allowed; allowed: finite sd >= 0 and integer n_seeds >= 2"),
    ({"sd": float("nan")}, "sd nan and n_seeds 5 are not allowed; allowed: finite sd >= 0 and integer n_seeds >= 2"),
    ({"sd": -0.5}, "sd -0.5 and n_seeds 5 are not allowed; allowed: finite sd >= 0 and integer n_seeds >= 2"),
    ({"n_seeds": 1}, "sd 1.0 and n_seeds 1 are not allowed; allowed: finite sd >= 0 and integer n_seeds >= 2"),
    ({"n_seeds": 2.5}, "sd 1.0 and n_seeds 2.5 are not allowed; allowed: finite sd >= 0 and integer n_seeds >= 2"),
])
def test_bad_power_inputs_are_named(kwargs, message):
  arguments = {"sd": 1.0, "n_seeds": 5} | kwargs
  assert one_line_error(statistics.minimum_detectable_effect, arguments.pop("sd"), arguments.pop("n_seeds"),
                        **arguments) == message


# --- Holm -----------------------------------------------------------------------------------------------------------


def test_holm_accepts_the_boundaries_and_exact_fractions():
  assert statistics.holm([1.0, 0.0]).tolist() == [1.0, 0.0]
  assert statistics.holm([fractions.Fraction(1, 32), fractions.Fraction(1, 2)]).tolist() == [1 / 16, 1 / 2]
  assert statistics.holm([0.02, 0.02, 0.01]).tolist() == pytest.approx([0.04, 0.04, 0.03])  # ties share a value


@pytest.mark.parametrize("p_values", [[[0.1, 0.2]], [float("nan")], [0.1, -0.01], [1.0 + 1e-12], 0.3])
def test_holm_refuses_what_is_not_a_list_of_probabilities(p_values):
  assert one_line_error(statistics.holm, p_values).startswith(
      f"p_values must be a 1-D array of numbers in [0, 1], got {p_values!r}")


# --- rebound curves -------------------------------------------------------------------------------------------------


def test_half_life_of_one_curve_and_of_a_curve_that_only_touches_the_share():
  n = np.array([0.0, 100.0, 300.0])
  assert statistics.half_life(n, np.array([0.0, 0.25, 0.75])) == pytest.approx(200.0)  # a single curve, shape ()
  assert statistics.half_life(n, np.array([0.0, 0.5, 0.5])) == 100.0  # reaching the share counts
  assert statistics.half_life(n, np.array([[0.1, 0.2, 0.9]]), share=0.9).tolist() == [300.0]
  batch = statistics.half_life(n, np.array([[[0.0, 0.5, 1.0]], [[0.6, 0.7, 0.8]]]))
  assert batch.shape == (2, 1) and batch.tolist() == [[100.0], [0.0]]


def test_early_share_anywhere_on_the_grid():
  n = np.array([0.0, 100.0, 300.0, 700.0])
  u = np.array([[0.0, 0.4, 0.6, 1.0], [0.2, 0.2, 0.2, 0.2]])
  assert statistics.early_share(n, u, 0.0).tolist() == [0.0, 0.2]  # the first grid point is allowed
  assert statistics.early_share(n, u, 50.0) == pytest.approx([0.2, 0.2])  # between the first two points
  assert statistics.early_share(n, u, 300.0) == pytest.approx([0.6, 0.2])
  assert statistics.early_share(n, u, 500.0) == pytest.approx([0.8, 0.2])
  assert statistics.early_share(n, u[0], 200.0) == pytest.approx(0.5)
  for outside in (-1.0, 700.5):
    assert one_line_error(statistics.early_share, n, u, outside) == (
        f"n_early {outside} is not allowed; allowed: numbers within the grid [0, 700]")
  assert one_line_error(statistics.early_share, [1.5, 2.5, 4.0], [0, 1, 2], 5.0) == (
      "n_early 5.0 is not allowed; allowed: numbers within the grid [1.5, 4]")


def test_curve_inputs_are_checked():
  assert one_line_error(statistics.half_life, [0, 100, 100], [0.0, 0.5, 1.0]) == (
      "n [0.0, 100.0, 100.0] is not allowed; allowed: strictly increasing numbers of examples")
  assert one_line_error(statistics.half_life, [0, 100], [[0.0, 0.5, 1.0]]) == (
      "undone_share must have shape (..., 2) to match n, got (1, 3)")
  assert one_line_error(statistics.half_life, [5.0], [0.0]) == (
      "n must have at least 2 values along its last axis, got shape (1,)")
  assert one_line_error(statistics.half_life, [[0, 1]], [0.0, 1.0]) == "n must have 1 dimension(s), got shape (1, 2)"
  assert one_line_error(statistics.half_life, [0, 1], [0.0, np.inf]) == (
      "undone_share must be finite, got [inf] among its values")


# --- cells ----------------------------------------------------------------------------------------------------------


CELL_MEANS = np.array([0.5, -0.25, 0.0, 0.75])  # one cell per row; every seed of a cell moves alike


def cells(n_seeds: int = 5) -> tuple[np.ndarray, np.ndarray]:
  a = CELL_MEANS[:, None] + np.linspace(-0.1, 0.1, n_seeds)[None, :] * (CELL_MEANS[:, None] != 0)
  return a, np.zeros_like(a)


@pytest.mark.parametrize("alternative, in_direction", [("greater", 2), ("less", 1), ("two-sided", 3)])
def test_cells_count_the_direction_and_the_small_p_values(alternative, in_direction):
  a, b = cells()
  result = statistics.cells_consistent(a, b, alternative=alternative)
  assert (result.n_cells, result.n_in_direction) == (4, in_direction)
  np.testing.assert_array_equal(result.cell_means, (a - b).mean(axis=1))
  for cell in range(4):
    single = statistics.paired_difference(a[cell], b[cell], alternative=alternative)
    assert result.cell_p_values[cell] == single.test.p_value
  assert result.n_significant == int(np.sum(result.cell_p_values < 0.05))
  assert result.text() == (f"{in_direction}/4 cells in the direction, {result.n_significant}/4 with per-cell p < "
                           f"0.05 ({result.label})")


def test_cells_significance_is_strictly_below_alpha():
  a, b = cells()
  exact = statistics.cells_consistent(a, b, alternative="greater")
  assert exact.cell_p_values[[0, 3]].tolist() == [1 / 32, 1 / 32] and exact.n_significant == 2
  assert statistics.cells_consistent(a, b, alternative="greater", alpha=1 / 32).n_significant == 0


def test_cells_monte_carlo_passes_its_draws_and_seed_on():
  a, b = cells(n_seeds=6)
  for kwargs in ({"seed": 3}, {}):
    sampled = statistics.cells_consistent(a, b, alternative="two-sided", max_exact_seeds=3, n_resamples=101, **kwargs)
    for cell in range(4):
      single = statistics.paired_difference(a[cell], b[cell], alternative="two-sided", max_exact_seeds=3,
                                            n_resamples=101, **kwargs)
      assert sampled.cell_p_values[cell] == single.test.p_value
  counts = sampled.cell_p_values * 102  # the observed arrangement and 101 draws
  np.testing.assert_allclose(counts, np.round(counts), atol=1e-9)


def test_cells_inputs_are_named():
  a, b = cells()
  assert one_line_error(statistics.cells_consistent, a, b[:, :4], alternative="less") == (
      "a and b must have the same shape (n_cells, n_seeds), got (4, 5) and (4, 4)")
  assert one_line_error(statistics.cells_consistent, a[0], b, alternative="less") == (
      "a must have 2 dimension(s), got shape (5,)")
  assert one_line_error(statistics.cells_consistent, a, b[0], alternative="less") == (
      "b must have 2 dimension(s), got shape (5,)")
  assert one_line_error(statistics.cells_consistent, a, b, alternative="lower") == (
      "alternative 'lower' is not allowed; allowed: 'greater', 'less', 'two-sided'")


# --- effects and verdicts -------------------------------------------------------------------------------------------


def effect(estimate=-0.05, low=-0.08, high=-0.02, units="nats per token", **kwargs) -> statistics.Effect:
  return statistics.Effect(estimate=estimate, ci_low=low, ci_high=high, units=units, what="gap", **kwargs)


def test(p=0.001, alternative="less", exact=True, floor=1e-6, n_permutations=1 << 20) -> statistics.TestResult:
  return statistics.TestResult(name="sign-flip test", statistic=-0.05, p_value=p, alternative=alternative,
                               exact=exact, n_permutations=n_permutations, p_floor=floor)


test.__test__ = False  # a helper, not a test


def verdict(**kwargs) -> statistics.Verdict:
  arguments = dict(family="f", claim="inverse below forward", effect=effect(), test=test(),
                   paper_direction="negative") | kwargs
  return statistics.Verdict(**arguments)


def test_effect_text_has_the_interval_units_and_method():
  assert effect().text() == "gap = -0.05 [-0.08, -0.02] nats per token (95% CI, t)"
  assert effect(units="", confidence=0.9, interval="sign-flip inversion").text() == (
      "gap = -0.05 [-0.08, -0.02] (90% CI, sign-flip inversion)")


def test_verdict_lines_say_everything_the_status_depends_on():
  shown = statistics.VerdictFamily(name="f", verdicts=[verdict(), verdict(test=test(p=0.2))]).adjust().verdicts
  assert shown[0].line() == ("inverse below forward: gap = -0.05 [-0.08, -0.02] nats per token (95% CI, t); "
                             "sign-flip test (exact, less): p = 0.001, Holm-adjusted p = 0.002 (2 tests in 'f'); "
                             "SHOWN")
  assert shown[1].line().endswith("p = 0.2, Holm-adjusted p = 0.2 (2 tests in 'f'); NOT SHOWN — inconclusive")
  drawn = dataclasses.replace(shown[0], test=test(exact=False, n_permutations=20001))
  assert "sign-flip test (20001 draws, less): p = 0.001" in drawn.line()
  against = dataclasses.replace(shown[1], effect=effect(0.05, 0.02, 0.08))
  assert against.line().endswith("; NOT SHOWN — evidence of absence (against the paper: the interval lies on the "
                                 "other side of 0)")
  unreachable = dataclasses.replace(shown[1], test=test(p=0.2, floor=0.03125))
  assert unreachable.line().endswith("; NOT SHOWN — inconclusive (this design cannot show it: smallest attainable "
                                     "Holm p = 2 x 0.0312 >= 0.05)")
  at_alpha = dataclasses.replace(shown[1], test=test(p=0.2, floor=0.025))  # 2 x 0.025 = alpha: still cannot show
  assert "this design cannot show it" in at_alpha.line()
  below_alpha = dataclasses.replace(shown[1], test=test(p=0.2, floor=0.02))
  assert "cannot show" not in below_alpha.line()
  small = dataclasses.replace(shown[0], smallest_effect_of_interest=0.5)
  assert small.line().endswith("; SHOWN (but smaller than the smallest effect of interest, 0.5: detectable, yet far "
                               "from the predicted size)")


def test_consistency_check_lines_say_whether_they_hold():
  holds = verdict(consistency_check=True, test=test(p=0.01))
  assert holds.line() == ("inverse below forward: gap = -0.05 [-0.08, -0.02] nats per token (95% CI, t); "
                          "sign-flip test (exact, less): p = 0.01; CONSISTENCY CHECK (not evidence): holds by "
                          "construction")
  for failing in (verdict(consistency_check=True, test=test(p=0.05)),  # p must be below alpha
                  verdict(consistency_check=True, test=test(p=0.01), effect=effect(0.05, 0.02, 0.08))):
    assert failing.line().endswith("; CONSISTENCY CHECK (not evidence): fails by construction")


def test_unadjusted_verdicts_refuse_a_line():
  message = one_line_error(lambda: verdict().line())
  assert message == ("verdict 'inverse below forward' has no adjusted p-value; allowed: a verdict from "
                     "VerdictFamily.adjust()")


def test_families_keep_given_adjustments_and_tuples():
  family = statistics.VerdictFamily(name="f", verdicts=[verdict(), verdict(test=test(p=0.2))])
  assert isinstance(family.verdicts, tuple)
  # p_adjusted set elsewhere (e.g. a correction over the whole report) is what lines() reports.
  wider = statistics.VerdictFamily(name="f", verdicts=[dataclasses.replace(v, p_adjusted=0.5, family_size=9)
                                                       for v in family.verdicts])
  assert all("Holm-adjusted p = 0.5 (9 tests in 'f')" in line for line in wider.lines())
  mixed = statistics.VerdictFamily(name="f", verdicts=[family.verdicts[0], verdict(consistency_check=True)])
  assert "Holm-adjusted p = 0.001 (1 tests in 'f')" in mixed.lines()[0]


def test_can_show_compares_the_smallest_floor_with_alpha():
  def family(*floors, consistency=()):
    return statistics.VerdictFamily(name="f", verdicts=[verdict(test=test(floor=f)) for f in floors] +
                                    [verdict(consistency_check=True, test=test(floor=f)) for f in consistency])
  assert family(0.01, 0.04).can_show()  # 2 x 0.01 < 0.05
  assert not family(0.025, 0.03).can_show()  # 2 x 0.025 = 0.05 is not below
  assert family(0.03).can_show() and not family(0.06).can_show()
  assert not family(consistency=(1e-9,)).can_show()  # consistency checks are no tests
  assert family(0.03, consistency=(1e-9, 1e-9)).can_show()  # the size counts tests only: 1 x 0.03 < 0.05
  strict = statistics.VerdictFamily(name="f", verdicts=[verdict(test=test(floor=0.03)),
                                                        verdict(test=test(floor=0.3), alpha=0.1)])
  assert not strict.can_show()  # the smallest alpha of the family: 2 x 0.03 >= 0.05


@pytest.mark.parametrize("kwargs, message", [
    ({"paper_direction": "up"}, "paper_direction 'up' is not allowed; allowed: 'positive', 'negative'"),
    ({"paper_direction": "positive"}, "test alternative 'less' does not match paper_direction 'positive'; allowed: "
                                      "greater, two-sided"),
    ({"alpha": 0.0}, "alpha 0.0 is not allowed; allowed: numbers in (0, 1)"),
    ({"alpha": 1.0}, "alpha 1.0 is not allowed; allowed: numbers in (0, 1)"),
    ({"alpha": 1.5}, "alpha 1.5 is not allowed; allowed: numbers in (0, 1)"),
    ({"smallest_effect_of_interest": float("inf")}, "smallest_effect_of_interest inf is not allowed; allowed: finite "
                                                     "numbers >= 0"),
    ({"smallest_effect_of_interest": -0.1}, "smallest_effect_of_interest -0.1 is not allowed; allowed: finite "
                                             "numbers >= 0"),
])
def test_bad_verdicts_are_named(kwargs, message):
  assert one_line_error(verdict, **kwargs) == message


def test_two_sided_tests_suit_either_direction():
  for direction in ("positive", "negative"):
    made = verdict(paper_direction=direction, test=test(alternative="two-sided"))
    assert made.paper_direction == direction
  assert verdict(alpha=0.999, smallest_effect_of_interest=0.0).alpha == 0.999


def test_exact_cells_beyond_one_chunk_equal_one_test_per_cell():
  # 20 seeds: 2**20 sign patterns per cell, so a chunk holds 4 cells; 22 cells take six chunks.
  rng = np.random.default_rng(12)
  a, b = rng.normal(0.2, 1.0, (22, 20)), np.zeros((22, 20))
  tracemalloc.start()
  try:
    result = statistics.cells_consistent(a, b, alternative="greater")
    peak = tracemalloc.get_traced_memory()[1]
  finally:
    tracemalloc.stop()
  # At most _CHUNK null statistics (float64) at once, plus a few temporaries of that size; all 22 cells at once
  # would hold 22 x 2**20.
  assert peak < 6 * 8 * statistics._CHUNK
  assert result.cell_p_values.shape == (22,)
  for cell in (0, 5, 21):
    single = statistics.paired_difference(a[cell], b[cell], alternative="greater")
    assert result.cell_p_values[cell] == single.test.p_value


# --- paired and clustered comparisons -------------------------------------------------------------------------------


def test_paired_comparison_record():
  a, b = np.array([3.0, 1.0, 2.5, 4.0, 0.5, 2.0]), np.array([1.0, 1.5, 1.0, 1.0, 0.0, 0.5])
  result = statistics.paired_difference(a, b, alternative="greater", units="nats", what="gain")
  differences = a - b
  assert result.per_seed.tolist() == differences.tolist()
  assert result.test.name == "exact sign-flip permutation test of the mean paired difference"
  assert (result.test.statistic, result.test.alternative, result.test.exact) == (differences.mean(), "greater", True)
  assert result.test.n_permutations == 64 and result.test.p_floor == 1 / 64
  assert (result.effect.units, result.effect.what, result.effect.interval) == ("nats", "gain", "t")
  assert (result.exact_effect.units, result.exact_effect.what) == ("nats", "gain")
  assert result.exact_effect.interval == "sign-flip inversion" and result.exact_effect.estimate == differences.mean()
  assert result.cohens_dz == pytest.approx(differences.mean() / differences.std(ddof=1), rel=1e-14)
  two_sided = statistics.paired_difference(a, b, alternative="two-sided")
  assert two_sided.test.p_floor == 2 / 64  # the most extreme arrangement counts on both sides
  assert statistics.paired_difference(a, b, alternative="less").test.p_floor == 1 / 64


@pytest.mark.parametrize("differences, dz", [([0.4, 0.2], 0.3 / math.sqrt(0.02)), ([0.5, 0.4, 0.6], 5.0),
                                             ([1.0], math.nan), ([0.25, 0.25, 0.25], math.nan)])
def test_cohens_dz_is_mean_over_sd_when_the_seeds_spread(differences, dz):
  got = statistics.paired_difference(differences, np.zeros(len(differences)), alternative="greater").cohens_dz
  assert (math.isnan(got) and math.isnan(dz)) or got == pytest.approx(dz, rel=1e-12)


def test_monte_carlo_comparisons_are_seeded_and_named():
  rng = np.random.default_rng(13)
  a, b = rng.normal(0.3, 1.0, 9), np.zeros(9)
  kwargs = dict(alternative="greater", max_exact_seeds=4, n_resamples=500)
  first, again = (statistics.paired_difference(a, b, seed=7, **kwargs) for _ in range(2))
  other = statistics.paired_difference(a, b, seed=8, **kwargs)
  default, zero = statistics.paired_difference(a, b, **kwargs), statistics.paired_difference(a, b, seed=0, **kwargs)
  assert first.test.name == "Monte Carlo sign-flip permutation test of the mean paired difference"
  assert not first.test.exact and first.test.n_permutations == 501 and first.test.p_floor == 1 / 501
  assert (first.test.p_value, first.exact_effect.ci_low, first.exact_effect.ci_high) == (
      again.test.p_value, again.exact_effect.ci_low, again.exact_effect.ci_high)
  assert (first.test.p_value, first.exact_effect.ci_low) != (other.test.p_value, other.exact_effect.ci_low)
  assert (default.test.p_value, default.exact_effect.ci_low) == (zero.test.p_value, zero.exact_effect.ci_low)
  one_draw = statistics.paired_difference(a, b, alternative="greater", max_exact_seeds=4, n_resamples=1)
  assert one_draw.test.n_permutations == 2 and one_draw.test.p_value in (0.5, 1.0)
  assert one_line_error(statistics.paired_difference, a, b, alternative="greater", n_resamples=0) == (
      "n_resamples 0 is not allowed; allowed: integers >= 1")


def test_cluster_comparison_record_and_inputs():
  rng = np.random.default_rng(14)
  a, b = rng.normal(0.5, 1.0, (4, 6)), rng.normal(0.0, 1.0, (4, 6))
  result = statistics.cluster_mean_difference(a, b, alternative="two-sided", units="bits")
  assert result.test.name == "exact sign-flip permutation test of the seed means of the cell differences"
  assert (result.effect.units, result.effect.what) == ("bits", "mean over cells and seeds of a - b")
  assert result.effect.text().startswith("mean over cells and seeds of a - b = ")
  assert statistics.cluster_mean_difference(a, b, alternative="less").effect.units == ""
  sampled = [statistics.cluster_mean_difference(a, b, alternative="greater", max_exact_seeds=3, n_resamples=300,
                                                **kwargs).test.p_value for kwargs in ({}, {"seed": 0}, {"seed": 11})]
  single = statistics.paired_difference((a - b).mean(axis=0), np.zeros(6), alternative="greater", max_exact_seeds=3,
                                        n_resamples=300, seed=11).test.p_value
  assert sampled[0] == sampled[1] and sampled[2] == single
  assert one_line_error(statistics.cluster_mean_difference, a, b[:, :5], alternative="less") == (
      "a and b must have the same shape (n_cells, n_seeds), got (4, 6) and (4, 5)")
  assert one_line_error(statistics.cluster_mean_difference, a[0], b, alternative="less") == (
      "a must have 2 dimension(s), got shape (6,)")
  assert one_line_error(statistics.cluster_mean_difference, a, b[0], alternative="less") == (
      "b must have 2 dimension(s), got shape (6,)")


# --- the decay test -------------------------------------------------------------------------------------------------


DECAY_N = np.array([50.0, 150.0, 250.0, 450.0])
DECAY_U = np.array([[0.0, 0.6, 0.8, 0.95],  # ceiling 1: reaches 0.9 of it at the last point
                    [0.0, 1.0, 1.6, 1.7]])  # ceiling 2: stays below 1.8
DECAY_CEILING = np.array([1.0, 2.0])


def test_decay_record_on_a_hand_worked_example():
  # Window [50, 250]: seed 1 area ((0 + 0.6) + (0.6 + 0.8)) 100 / 2 = 100, chord 200 (0 + 0.8) / 2 = 80, gap
  # 20 / (200 x 1) = 0.1; seed 2 area 180, chord 160, gap 20 / (200 x 2) = 0.05.
  result = statistics.decay_against_linear(DECAY_N, DECAY_U, ceiling=DECAY_CEILING)
  assert result.testable and result.window_end == 250.0 and result.window_points == 3
  assert result.gaps == pytest.approx([0.1, 0.05], abs=1e-15)
  assert result.note == "window ends before the first grid point where a seed reaches 0.9 of the ceiling"
  assert result.effect.estimate == pytest.approx(0.075) and result.exact_effect.estimate == pytest.approx(0.075)
  assert (result.effect.units, result.effect.what) == ("share of the ceiling",
                                                       "mean gap between the curve and its chord over the window")
  assert result.exact_effect.interval == "sign-flip inversion"
  assert result.test.name == "exact sign-flip permutation test of the mean curve-chord gap"
  assert (result.test.p_value, result.test.alternative) == (0.25, "greater")
  fixed = statistics.decay_against_linear(DECAY_N, DECAY_U, ceiling=DECAY_CEILING, window_end=250.0)
  assert fixed.gaps == pytest.approx(result.gaps, abs=1e-15) and fixed.note == "window fixed in advance"
  whole = statistics.decay_against_linear(DECAY_N, DECAY_U, ceiling=DECAY_CEILING, window_end=450.0)
  assert whole.note == "window fixed in advance; some seeds reach saturation inside it"
  unsaturated = statistics.decay_against_linear(DECAY_N, DECAY_U, ceiling=DECAY_CEILING, saturation=1.0)
  assert unsaturated.note == "no seed reaches saturation on the grid" and unsaturated.window_end == 450.0


def test_decay_saturation_counts_a_curve_exactly_at_the_threshold():
  at_threshold = np.array([[0.0, 0.5, 0.7, 0.9], [0.0, 0.3, 0.6, 0.8]])
  assert statistics.decay_against_linear(DECAY_N, at_threshold).window_end == 250.0
  assert statistics.decay_against_linear(DECAY_N, at_threshold, saturation=0.95).window_end == 450.0


def test_decay_monte_carlo_passes_its_seed_on():
  rng = np.random.default_rng(15)
  n = np.linspace(0, 1000, 6)
  curves = np.sqrt(n / 1000)[None, :] * 0.8 + 0.02 * rng.standard_normal((9, 6))
  kwargs = dict(max_exact_seeds=3, n_resamples=400)
  default, zero, seven = (statistics.decay_against_linear(n, curves, **kwargs, **extra)
                          for extra in ({}, {"seed": 0}, {"seed": 7}))
  single = statistics.paired_difference(seven.gaps, np.zeros(9), alternative="greater", seed=7, **kwargs)
  assert default.test.p_value == zero.test.p_value and seven.test.p_value == single.test.p_value
  assert seven.exact_effect.ci_low == single.exact_effect.ci_low


def test_untestable_decay_record():
  early = np.array([[0.0, 0.95, 1.0, 1.0], [0.0, 0.5, 0.9, 1.0]])  # saturated by the second grid point
  result = statistics.decay_against_linear(DECAY_N, early, alternative="two-sided", confidence=0.9)
  assert not result.testable and result.window_points == 1 and math.isnan(result.window_end)
  assert result.gaps.shape == (2,) and np.isnan(result.gaps).all()
  assert result.note == ("window ends before the first grid point where a seed reaches 0.9 of the ceiling; too few "
                         "grid points to test")
  effect = result.effect
  assert math.isnan(effect.estimate) and (effect.ci_low, effect.ci_high) == (-math.inf, math.inf)
  assert (effect.confidence, effect.units, effect.interval) == (0.9, "share of the ceiling", "none")
  assert effect.what == "mean gap between the curve and its chord over the window"
  assert result.exact_effect == effect
  test = result.test
  assert test.name == ("sign-flip test of the curve-chord gap (untestable: fewer than 3 grid points before "
                       "saturation)")
  assert math.isnan(test.statistic) and (test.p_value, test.alternative, test.exact) == (1.0, "two-sided", True)
  assert (test.n_permutations, test.p_floor) == (0, 1.0)
  two_points = statistics.decay_against_linear(DECAY_N, early, window_end=150.0)
  assert not two_points.testable and two_points.window_points == 2


@pytest.mark.parametrize("kwargs, message", [
    ({"ceiling": 0.0}, "ceiling [0.0, 0.0] is not allowed; allowed: finite positive numbers"),
    ({"ceiling": [1.0, -1.0]}, "ceiling [1.0, -1.0] is not allowed; allowed: finite positive numbers"),
    ({"ceiling": [1.0, np.inf]}, "ceiling [1.0, inf] is not allowed; allowed: finite positive numbers"),
    ({"saturation": 1.5}, "saturation 1.5 is not allowed; allowed: numbers in (0, 1]"),
    ({"saturation": 0.0}, "saturation 0.0 is not allowed; allowed: numbers in (0, 1]"),
    ({"window_end": 100.0}, "window_end 100.0 is not allowed; allowed: a grid point of n [50.0, 150.0, 250.0, 450.0]"),
])
def test_bad_decay_inputs_are_named(kwargs, message):
  assert one_line_error(statistics.decay_against_linear, DECAY_N, DECAY_U, **kwargs) == message


def test_decay_needs_one_curve_per_seed():
  assert one_line_error(statistics.decay_against_linear, DECAY_N, DECAY_U[0]) == (
      "undone_share must have shape (n_seeds, n_points), got (4,)")
  assert statistics.decay_against_linear(DECAY_N, DECAY_U, ceiling=[1, 2]).gaps == pytest.approx([0.1, 0.05])
  exact = statistics.decay_against_linear(DECAY_N, DECAY_U, ceiling=fractions.Fraction(2))
  assert exact.gaps.tolist() == statistics.decay_against_linear(DECAY_N, DECAY_U, ceiling=2.0).gaps.tolist()


def test_paired_defaults_and_inputs():
  result = statistics.paired_difference([2.0, 3.0, 5.0], [1.0, 1.0, 1.0], alternative="greater")
  assert (result.effect.units, result.effect.what) == ("", "mean paired difference a - b")
  half = stats.t.ppf(0.975, 2) * math.sqrt(7 / 3) / math.sqrt(3)  # differences 1, 2, 4: mean 7/3, sd sqrt(7/3)
  assert result.effect.text() == (f"mean paired difference a - b = {7 / 3:+.3g} [{7 / 3 - half:+.3g}, "
                                  f"{7 / 3 + half:+.3g}] (95% CI, t)")
  assert one_line_error(statistics.paired_difference, np.ones((2, 3)), np.ones((2, 3)), alternative="less") == (
      "a must have 1 dimension(s), got shape (2, 3)")
  assert one_line_error(statistics.paired_difference, np.ones(3), np.ones((1, 3)), alternative="less") == (
      "b must have 1 dimension(s), got shape (1, 3)")
  assert one_line_error(statistics.paired_difference, [1.0, 2.0], [1.0, 2.0, 3.0], alternative="less") == (
      "a and b must have the same shape (n_seeds,), got (2,) and (3,)")
  assert one_line_error(statistics.paired_difference, [], [], alternative="less") == (
      "a must have at least 1 values along its last axis, got shape (0,)")


def test_a_null_sum_exactly_at_the_tie_tolerance_counts_as_a_tie():
  # Differences (1, b): the arrangement 1 - b lies exactly the tolerance 1e-12 (1 + b) + 1e-300 below the observed
  # 1 + b (checked first, in float64), so it ties with it and counts as at least as extreme.
  b = 4.9994e-13
  assert 1.0 - b == (1.0 + b) - (statistics._TIES_RELATIVE * (1.0 + b) + 1e-300)
  assert statistics.paired_difference([1.0, b], [0.0, 0.0], alternative="greater").test.p_value == 0.5
  assert statistics.paired_difference([-1.0, -b], [0.0, 0.0], alternative="less").test.p_value == 0.5
  assert statistics.paired_difference([1.0, b], [0.0, 0.0], alternative="two-sided").test.p_value == 1.0
  assert statistics.paired_difference([1.0, 1e-9], [0.0, 0.0], alternative="greater").test.p_value == 0.25


def test_a_gap_exactly_at_the_round_off_threshold_counts_as_linear():
  # The curve (0, 2e-12, 0) on (0, 1, 2) bends by a gap of exactly 2e-12 / 2 = 1e-12 of the ceiling: round-off.
  curves = np.tile([0.0, 2e-12, 0.0], (5, 1))
  result = statistics.decay_against_linear([0.0, 1.0, 2.0], curves)
  assert result.gaps.tolist() == [0.0] * 5 and result.test.p_value == 1.0
  bent = statistics.decay_against_linear([0.0, 1.0, 2.0], np.tile([0.0, 4e-12, 0.0], (5, 1)))
  assert bent.gaps.tolist() == [2e-12] * 5 and bent.test.p_value == 1 / 32


# --- the trend test -------------------------------------------------------------------------------------------------


TREND_LEVELS = np.array([1.0, 2.0, 4.0, 8.0])
TREND_VALUES = np.array([[0.1, 0.5, 0.2], [0.4, 0.6, 0.2], [0.3, 0.9, 0.2], [0.8, 1.0, 0.2]])  # seed 3 all tied


def test_trend_record():
  result = statistics.stratified_trend(TREND_LEVELS, TREND_VALUES, confidence=0.9)
  x = np.log2(TREND_LEVELS)
  slopes = [np.polyfit(x, TREND_VALUES[:, s], 1)[0] for s in range(3)]
  np.testing.assert_allclose(result.slopes, slopes, rtol=1e-12, atol=1e-15)
  assert result.test.name == "Page's L trend test, exact seed-stratified permutation"
  assert (result.test.alternative, result.test.exact, result.test.n_permutations) == ("greater", True, 24**3)
  assert (result.effect.units, result.effect.what) == ("per doubling of the level",
                                                       "mean over seeds of the per-seed slope")
  assert (result.effect.interval, result.effect.confidence) == ("t", 0.9)
  half = stats.t.ppf(0.95, 2) * np.std(slopes, ddof=1) / math.sqrt(3)
  assert (result.effect.ci_low, result.effect.ci_high) == pytest.approx((np.mean(slopes) - half,
                                                                          np.mean(slopes) + half), rel=1e-12)
  assert result.exact_effect.interval == "sign-flip inversion"
  assert result.exact_effect.estimate == result.effect.estimate
  assert (result.exact_effect.ci_low, result.exact_effect.ci_high) == (-math.inf, math.inf)  # 8 sign patterns
  np.testing.assert_allclose(result.level_means, TREND_VALUES.mean(axis=1), rtol=1e-15)
  np.testing.assert_allclose(result.level_ci, stats.t.ppf(0.95, 2) * TREND_VALUES.std(axis=1, ddof=1) / math.sqrt(3),
                             rtol=1e-12)
  # Spearman with the level order: seeds 1 and 2 by scipy (0.8 and 1), seed 3 is all tied (0 by convention).
  rho = [stats.spearmanr(np.arange(4), TREND_VALUES[:, s]).statistic for s in (0, 1)]
  assert rho == pytest.approx([0.8, 1.0]) and result.mean_spearman == pytest.approx(sum(rho) / 3, rel=1e-12)
  decreasing = statistics.stratified_trend(TREND_LEVELS, TREND_VALUES, alternative="decreasing")
  assert decreasing.test.alternative == "less"
  assert statistics.stratified_trend(TREND_LEVELS, TREND_VALUES, alternative="two-sided").test.alternative == (
      "two-sided")


def test_trend_on_a_linear_scale_and_with_two_levels():
  result = statistics.stratified_trend(TREND_LEVELS, TREND_VALUES, scale="linear", units="score")
  slopes = [np.polyfit(TREND_LEVELS, TREND_VALUES[:, s], 1)[0] for s in range(3)]
  np.testing.assert_allclose(result.slopes, slopes, rtol=1e-12, atol=1e-15)
  assert result.effect.units == "score per unit of the level"
  two = statistics.stratified_trend([1.0, 3.0], np.array([[0.0, 2.0, 1.0], [1.0, 1.0, 3.0]]))
  assert two.mean_spearman == pytest.approx((1 - 1 + 1) / 3)  # two seeds rise, one falls: +-1 each
  assert two.test.p_value == pytest.approx(0.5) and two.test.p_floor == pytest.approx(1 / 8)


def test_two_sided_trend_floor_and_exact_size_limit():
  values = np.arange(3, dtype=np.float64)[:, None] + 10.0 * np.arange(4)[None, :]  # every seed rises
  result = statistics.stratified_trend([1.0, 2.0, 4.0], values, alternative="two-sided")
  assert result.test.p_value == pytest.approx(2 / 6**4) and result.test.p_floor == pytest.approx(2 / 6**4)
  at_limit = statistics.stratified_trend([1.0, 2.0, 4.0], values, max_exact_levels=3)
  assert at_limit.test.exact and at_limit.test.n_permutations == 6**4


def test_monte_carlo_trend_is_seeded_and_counts_its_draws():
  rng = np.random.default_rng(16)
  values = rng.standard_normal((4, 5)) + 0.4 * np.arange(4)[:, None]
  kwargs = dict(max_exact_levels=3, n_resamples=999)
  first, again = (statistics.stratified_trend(TREND_LEVELS, values, seed=5, **kwargs) for _ in range(2))
  default, zero = (statistics.stratified_trend(TREND_LEVELS, values, **kwargs, **extra) for extra in ({}, {"seed": 0}))
  assert first.test.name == "Page's L trend test, Monte Carlo seed-stratified permutation"
  assert not first.test.exact and first.test.n_permutations == 1000 and first.test.p_floor == 1 / 1000
  assert first.test.p_value == again.test.p_value and default.test.p_value == zero.test.p_value
  assert first.test.p_value * 1000 == pytest.approx(round(first.test.p_value * 1000), abs=1e-9)  # a count of 1000
  exact = statistics.stratified_trend(TREND_LEVELS, values)
  p = exact.test.p_value
  assert abs(first.test.p_value - p) < 4 * math.sqrt(p * (1 - p) / 999) + 2e-3
  two_sided = statistics.stratified_trend(TREND_LEVELS, values, alternative="two-sided", **kwargs)
  assert two_sided.test.p_value >= first.test.p_value


def test_trend_slopes_of_many_seeds_get_a_seeded_monte_carlo_interval():
  rng = np.random.default_rng(17)
  values = rng.standard_normal((2, 22)) + np.array([[0.0], [0.5]])
  a, b = (statistics.stratified_trend([1.0, 2.0], values, n_resamples=300, seed=4) for _ in range(2))
  assert (a.exact_effect.ci_low, a.exact_effect.ci_high) == (b.exact_effect.ci_low, b.exact_effect.ci_high)
  assert a.exact_effect.ci_low < a.effect.estimate < a.exact_effect.ci_high


@pytest.mark.parametrize("args, kwargs, message", [
    (([1.0, 1.0, 2.0], np.zeros((3, 2))), {}, "levels [1.0, 1.0, 2.0] are not allowed; allowed: strictly increasing "
                                              "positive numbers (scale 'log2')"),
    (([2.0, 1.0], np.zeros((2, 2))), {"scale": "linear"}, "levels [2.0, 1.0] are not allowed; allowed: strictly "
                                                          "increasing numbers"),
    (([-1.0, 1.0], np.zeros((2, 2))), {"scale": "linear"}, None),
    (([[1.0, 2.0]], np.zeros((2, 2))), {}, "levels must have 1 dimension(s), got shape (1, 2)"),
    (([1.0], np.zeros((1, 2))), {}, "levels must have at least 2 values along its last axis, got shape (1,)"),
    (([1.0, 2.0], np.zeros(2)), {}, "values must have 2 dimension(s), got shape (2,)"),
    (([1.0, 2.0], np.zeros((2, 2))), {"alternative": "up"}, "alternative 'up' is not allowed; allowed: 'increasing', "
                                                            "'decreasing', 'two-sided'"),
    (([1.0, 2.0], np.zeros((2, 2))), {"scale": "log10"}, "scale 'log10' is not allowed; allowed: 'log2', 'linear'"),
])
def test_trend_inputs(args, kwargs, message):
  if message is None:  # negative levels are fine on a linear scale
    assert statistics.stratified_trend(*args, **kwargs).test.p_value == 1.0
  else:
    assert one_line_error(statistics.stratified_trend, *args, **kwargs) == message


# --- effects of seeds -----------------------------------------------------------------------------------------------


def test_t_effects_of_few_or_equal_seeds():
  two = statistics.paired_difference([1.0, 2.0], [0.0, 0.0], alternative="greater", confidence=0.9)
  half = stats.t.ppf(0.95, 1) * math.sqrt(0.5) / math.sqrt(2)  # differences 1 and 2: sd sqrt(1/2)
  assert (two.effect.ci_low, two.effect.ci_high) == pytest.approx((1.5 - half, 1.5 + half), rel=1e-12)
  assert (two.effect.confidence, two.exact_effect.confidence) == (0.9, 0.9)
  one = statistics.paired_difference([1.0], [0.0], alternative="greater")
  assert math.isnan(one.effect.ci_low) and math.isnan(one.effect.ci_high)
  assert (one.exact_effect.ci_low, one.exact_effect.ci_high) == (-math.inf, math.inf)
  equal = statistics.paired_difference([0.25, 0.25, 0.25], [0.0, 0.0, 0.0], alternative="greater")
  assert (equal.effect.ci_low, equal.effect.ci_high) == (0.25, 0.25)


def test_mean_ci_along_an_axis_and_of_exact_numbers():
  samples = np.array([[1.0, 2.0, 4.0], [2.0, 2.0, 5.0]])
  mean, half = statistics.mean_ci(samples, axis=1, confidence=0.8)
  assert mean.tolist() == [7 / 3, 3.0]
  np.testing.assert_allclose(half, stats.t.ppf(0.9, 2) * samples.std(axis=1, ddof=1) / math.sqrt(3), rtol=1e-14)
  mean, half = statistics.mean_ci(samples, axis=0)
  np.testing.assert_allclose(half, stats.t.ppf(0.975, 1) * samples.std(axis=0, ddof=1) / math.sqrt(2), rtol=1e-14)
  mean, half = statistics.mean_ci([fractions.Fraction(1, 2), fractions.Fraction(3, 2)])
  assert mean == 1.0 and half == pytest.approx(stats.t.ppf(0.975, 1) * math.sqrt(0.5) / math.sqrt(2))


@pytest.mark.parametrize("confidence", [0.0, 1.0, 1.5, -0.5])
def test_confidence_must_lie_strictly_between_0_and_1(confidence):
  assert one_line_error(statistics.mean_ci, [1.0, 2.0], confidence=confidence) == (
      f"confidence {confidence} is not allowed; allowed: numbers in (0, 1)")


def test_non_finite_inputs_show_the_first_three_bad_values():
  assert one_line_error(statistics.paired_difference, [np.nan, np.inf, 1.0, -np.inf, np.nan], np.zeros(5),
                        alternative="less") == "a must be finite, got [ nan  inf -inf] among its values"


def test_cells_tolerances_are_per_cell():
  # Cell 0's arrangements 1 - 1e-9 and 1 + 1e-9 differ by 2e-9, far above its own tolerance 1e-12 x 1: no tie, p = 1/4.
  # A tolerance from all cells (1e-12 x 2e4) would make them tie.
  result = statistics.cells_consistent(np.array([[1.0, 1e-9], [1e4, 1e4]]), np.zeros((2, 2)), alternative="greater")
  assert result.cell_p_values.tolist() == [0.25, 0.25]


def test_monte_carlo_null_flips_signs():
  # All-equal differences: a draw ties with the observed sum only when it flips no sign, 1 in 2**12.
  result = statistics.paired_difference(np.full(12, 0.5), np.zeros(12), alternative="greater", max_exact_seeds=4,
                                        n_resamples=4000, seed=2)
  assert result.test.p_value < 5 / 4001
  mixed = statistics.paired_difference(np.array([1.0, -1.0] * 6), np.zeros(12), alternative="greater",
                                       max_exact_seeds=4, n_resamples=4000, seed=2)
  exact = statistics.paired_difference(np.array([1.0, -1.0] * 6), np.zeros(12), alternative="greater")
  assert abs(mixed.test.p_value - exact.test.p_value) < 4 * math.sqrt(0.25 / 4000)


def test_exact_tests_up_to_the_size_limit():
  result = statistics.paired_difference(np.arange(1.0, 7.0), np.zeros(6), alternative="greater", max_exact_seeds=6)
  assert result.test.exact and result.test.n_permutations == 64 and result.test.p_value == 1 / 64


@pytest.mark.parametrize("integers", [[3, -1, 4, 1], [2, 7, 1, 8, 2], [5, -3, 2, 2, 6, -1]])
def test_sign_flip_interval_at_a_confidence_that_hits_an_arrangement_count_exactly(integers):
  # At 50% the one-sided level 1/4 times 2**n arrangements is an integer: the end is the last shift whose one-sided
  # p-value exceeds 1/4 (an exact rational check of the inversion, as for 95% in test_statistics.py).
  result = statistics.paired_difference(np.array(integers, float), np.zeros(len(integers)), alternative="two-sided",
                                        confidence=0.5)
  low, high = result.exact_effect.ci_low, result.exact_effect.ci_high

  def rejected(delta):
    return sign_flip_rejects(integers, delta, 0.25)

  eps = 1e-6
  assert not rejected(low + eps) and not rejected(high - eps) and rejected(low - eps) and rejected(high + eps)


def test_monte_carlo_trend_permutes_within_seeds_only():
  # Strong seed effects, a modest trend: permuting values across seeds too (a pooled test) would give a p-value
  # several standard errors away from the exact seed-stratified one.
  rng = np.random.default_rng(0)
  for _ in range(6):
    values = (rng.standard_normal((4, 5)) + 0.3 * np.arange(4)[:, None] + 3 * rng.standard_normal(5)[None, :])
  exact = statistics.stratified_trend(TREND_LEVELS, values).test.p_value
  sampled = statistics.stratified_trend(TREND_LEVELS, values, max_exact_levels=3, n_resamples=20_000, seed=1)
  assert 0.003 < exact < 0.01
  assert abs(sampled.test.p_value - exact) < 4 * math.sqrt(exact / 20_000)


def test_monte_carlo_signs_are_plus_or_minus_one():
  # Twelve equal differences, two-sided: only flipping no sign or every sign reaches |sum| = 12 x 0.5.
  result = statistics.paired_difference(np.full(12, 0.5), np.zeros(12), alternative="two-sided", max_exact_seeds=4,
                                        n_resamples=4000, seed=3)
  assert result.test.p_value < 8 / 4001
