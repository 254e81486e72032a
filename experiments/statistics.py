"""Verdict statistics that respect the design: exact seed-blocked permutation tests, effects with CIs, Holm families.

Designs. Every toy experiment measures each seed at every level or cell, so a seed is a block: values indexed by
(level, seed) are paired, cells that share seeds are clustered by seed, and rebound curves are (seeds, grid points).
Every test below randomises only what the design randomises: signs of per-seed differences (sign-flip tests) or
the order of the levels within each seed (stratified trend test). Tests are exact (full enumeration) wherever the
enumeration is small enough and Monte Carlo with a seeded generator otherwise; a TestResult says which, and also
the smallest p-value the test could have produced on the design (`p_floor`: with 5 seeds the exact sign-flip test
cannot go below 1/32, so a Holm family of two or more such tests cannot reach alpha = 0.05).

Verdicts. A Verdict pairs an Effect (estimate, 95% CI, units) with a TestResult; a VerdictFamily corrects its
verdicts' p-values with Holm's step-down procedure, and each verdict's status follows from the ADJUSTED p-value:
SHOWN, NOT SHOWN — evidence of absence (the CI excludes the smallest effect of interest in the paper's direction),
or NOT SHOWN — inconclusive. A verdict marked as a consistency check (it holds by construction) is left out of the
family's correction and never counts as evidence.

Every array is float64; every random draw comes from numpy's default_rng seeded by the caller (`seed`).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import ClassVar, Literal

import numpy as np
from scipy import optimize, stats

CONFIDENCE = 0.95
"""Level of every two-sided confidence interval."""
ALPHA = 0.05
"""Significance level a verdict compares its Holm-adjusted p-value with."""
MAX_EXACT_SEEDS = 20
"""Sign-flip tests enumerate all 2**n_seeds sign patterns up to this many seeds, Monte Carlo beyond."""
MAX_EXACT_LEVELS = 8
"""The stratified trend test enumerates all n_levels! orders per seed up to this many levels, Monte Carlo beyond."""
N_RESAMPLES = 100_000
"""Monte Carlo draws of a permutation test that is too large to enumerate."""
_TIES_RELATIVE = 1e-12
"""Null statistics within this fraction of the data's scale of the observed one count as ties (float round-off)."""
_ROUND_OFF_GAP = 1e-12
"""Curve-chord gaps (share of the ceiling) at most this large are round-off of an exactly linear curve: set to 0."""
_CHUNK = 1 << 22
"""Largest number of null statistics held in memory at once by the batched sign-flip test."""

Alternative = Literal["greater", "less", "two-sided"]
TrendAlternative = Literal["increasing", "decreasing", "two-sided"]
Direction = Literal["positive", "negative"]

SHOWN = "SHOWN"
ABSENT = "NOT SHOWN — evidence of absence"
INCONCLUSIVE = "NOT SHOWN — inconclusive"
CONSISTENCY = "CONSISTENCY CHECK (not evidence)"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Effect:
  """An effect size: point estimate and confidence interval, with its units and what it measures."""

  estimate: float  # point estimate, in `units` (NaN when the data cannot define it).
  ci_low: float  # lower end of the confidence interval (-inf when the design cannot bound it).
  ci_high: float  # upper end of the confidence interval (+inf when the design cannot bound it).
  confidence: float = CONFIDENCE  # coverage of the interval, two-sided.
  units: str = ""  # e.g. 'nats per token', 'score per doubling of n1', 'share of the alignment gain'.
  what: str = ""  # what the estimate is, e.g. 'mean over seeds of inverse - forward final loss'.
  interval: str = "t"  # how the interval was computed: 't' (Student t over seeds) or 'sign-flip inversion'.

  def text(self) -> str:
    """The effect as text: 'what = estimate [low, high] units (95% CI, method)'."""
    return (f"{self.what} = {self.estimate:+.3g} [{self.ci_low:+.3g}, {self.ci_high:+.3g}] {self.units} "
            f"({100 * self.confidence:g}% CI, {self.interval})").replace("  ", " ")


@dataclasses.dataclass(frozen=True, kw_only=True)
class TestResult:
  """A hypothesis test's outcome: statistic, p-value, and how the p-value was obtained."""

  __test__: ClassVar[bool] = False  # not a pytest test class.

  name: str  # the test, e.g. 'exact sign-flip permutation test of the mean paired difference'.
  statistic: float  # observed value of the test statistic (the mean difference, Page's L, ...).
  p_value: float  # one-sided when `alternative` is directional.
  alternative: str  # 'greater', 'less' or 'two-sided' (for trends: 'greater' = increasing with the level).
  exact: bool  # True: full enumeration of the randomisation; False: Monte Carlo with a seeded generator.
  n_permutations: int  # arrangements enumerated (exact) or random arrangements drawn plus the observed one.
  p_floor: float  # smallest p-value this test could return on this design and these ties (1/32 for 5 signs).


def _floats(values, name: str, ndim: int | None = None, min_last: int = 1) -> np.ndarray:
  array = np.asarray(values, dtype=np.float64)
  if ndim is not None and array.ndim != ndim:
    raise ValueError(f"{name} must have {ndim} dimension(s), got shape {array.shape}")
  if array.ndim == 0 or array.shape[-1] < min_last:
    raise ValueError(f"{name} must have at least {min_last} values along its last axis, got shape {array.shape}")
  if not np.all(np.isfinite(array)):
    raise ValueError(f"{name} must be finite, got {array[~np.isfinite(array)].ravel()[:3]} among its values")
  return array


def _check_choice(value, allowed, name: str) -> None:
  if value not in allowed:
    raise ValueError(f"{name} {value!r} is not allowed; allowed: {', '.join(map(repr, allowed))}")


def _check_confidence(confidence: float) -> None:
  if not 0.0 < confidence < 1.0:
    raise ValueError(f"confidence {confidence} is not allowed; allowed: numbers in (0, 1)")


def mean_ci(samples, axis: int = -1, confidence: float = CONFIDENCE) -> tuple[np.ndarray, np.ndarray]:
  """Mean and half-width of the Student-t confidence interval along `axis`.

  Args:
    samples: values, any shape; `axis` indexes the independent replicates (seeds).
    axis: the replicate axis.
    confidence: two-sided coverage of the interval.

  Returns:
    (mean, half_width), both with `axis` removed; the half-width is NaN where there is one sample.

  References:
    Student (1908), "The probable error of a mean", Biometrika 6, 1-25.
  """
  _check_confidence(confidence)
  samples = np.asarray(samples, dtype=np.float64)
  n = samples.shape[axis]
  mean = samples.mean(axis=axis)
  if n < 2:
    return mean, np.full_like(mean, np.nan)
  sem = samples.std(axis=axis, ddof=1) / np.sqrt(n)
  return mean, stats.t.ppf(0.5 + confidence / 2, n - 1) * sem


def _t_effect(per_seed: np.ndarray, confidence: float, units: str, what: str) -> Effect:
  mean, half = mean_ci(per_seed, confidence=confidence)
  if per_seed.size > 1 and np.ptp(per_seed) == 0.0:
    half = 0.0  # every seed agrees: the t interval degenerates to the point.
  return Effect(estimate=float(mean), ci_low=float(mean - half), ci_high=float(mean + half), confidence=confidence,
                units=units, what=what, interval="t")


# --- sign-flip machinery --------------------------------------------------------------------------------------------


def _sign_flip_null(differences: np.ndarray, n_resamples: int, seed: int, max_exact: int
                    ) -> tuple[np.ndarray, np.ndarray, bool]:
  """Sums of the sign-flipped differences under every arrangement (exact) or random ones (Monte Carlo).

  Returns:
    (sums (..., n_arrangements), flipped (n_arrangements,) number of negated values, exact); arrangement 0 is the
    observed one (no sign flipped), so a p-value counts it among the null arrangements.
  """
  n = differences.shape[-1]
  if n <= max_exact:
    sums = np.zeros(differences.shape[:-1] + (1,))
    flipped = np.zeros(1, dtype=np.int64)
    for i in range(n):  # bit i of an arrangement's index says whether value i is negated.
      value = differences[..., i:i + 1]
      sums = np.concatenate([sums + value, sums - value], axis=-1)
      flipped = np.concatenate([flipped, flipped + 1])
    return sums, flipped, True
  rng = np.random.default_rng(seed)
  negated = rng.integers(0, 2, size=(n_resamples, n), dtype=np.int64)
  signs = np.concatenate([np.ones((1, n)), 1.0 - 2.0 * negated], axis=0)  # (1 + n_resamples, n)
  return differences @ signs.T, np.concatenate([[0], negated.sum(axis=1)]), False


def _tail_p(null: np.ndarray, observed: np.ndarray, tolerance: np.ndarray, alternative: str) -> np.ndarray:
  """Share of the null statistics (..., N) at least as extreme as the observed (..., 1), ties counted."""
  if alternative == "greater":
    return np.mean(null >= observed - tolerance, axis=-1)
  if alternative == "less":
    return np.mean(null <= observed + tolerance, axis=-1)
  return np.mean(np.abs(null) >= np.abs(observed) - tolerance, axis=-1)


def _extreme(null: np.ndarray, alternative: str) -> np.ndarray:
  """The most extreme null statistic in the direction of `alternative`, shape (..., 1)."""
  if alternative == "greater":
    return null.max(axis=-1, keepdims=True)
  if alternative == "less":
    return null.min(axis=-1, keepdims=True)
  return np.abs(null).max(axis=-1, keepdims=True)


def _sign_flip_p(differences: np.ndarray, alternative: str, n_resamples: int, seed: int, max_exact: int
                 ) -> tuple[np.ndarray, np.ndarray, bool, int]:
  """Sign-flip permutation p-values of the mean of `differences` (..., n), batched over leading axes.

  Returns:
    (p (...), p_floor (...), exact, n_arrangements).
  """
  flat = differences.reshape(-1, differences.shape[-1])
  n = flat.shape[-1]
  rows = max(1, _CHUNK >> n) if n <= max_exact else flat.shape[0]
  p_values, floors = [], []
  for start in range(0, flat.shape[0], rows):
    block = flat[start:start + rows]
    sums, _, exact = _sign_flip_null(block, n_resamples, seed, max_exact)
    observed = sums[:, :1]
    tolerance = _TIES_RELATIVE * np.abs(block).sum(axis=-1, keepdims=True) + 1e-300
    p_values.append(_tail_p(sums, observed, tolerance, alternative))
    floors.append(_tail_p(sums, _extreme(sums, alternative), tolerance, alternative) if exact
                  else np.full(block.shape[0], 1.0 / sums.shape[-1]))
  shape = differences.shape[:-1]
  return (np.concatenate(p_values).reshape(shape), np.concatenate(floors).reshape(shape), exact,
          2 ** n if exact else n_resamples + 1)


def _sign_flip_interval(differences: np.ndarray, confidence: float, n_resamples: int, seed: int, max_exact: int
                        ) -> tuple[float, float]:
  """Confidence interval for the centre of symmetry of `differences` (n,), by inverting the sign-flip test.

  Shifting the differences by delta, an arrangement that negates the subset F (non-empty) gives a statistic at
  least the observed one exactly when delta >= mean(differences[F]); so the one-sided p-values are counts of
  subset means, and the interval's ends are order statistics of the subset means (Hartigan 1969).
  """
  sums, flipped, _ = _sign_flip_null(differences[None], n_resamples, seed, max_exact)
  sums = sums[0]
  n_arrangements = sums.size
  nonempty = flipped > 0
  subset_means = np.sort((sums[0] - sums[nonempty]) / (2.0 * flipped[nonempty]))
  allowed = math.floor((1.0 - confidence) / 2.0 * n_arrangements + 1e-9) - int((~nonempty).sum())
  if allowed < 0:
    return -math.inf, math.inf
  return float(subset_means[allowed]), float(subset_means[-1 - allowed])


# --- paired and clustered comparisons -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class Comparison:
  """A paired comparison over seeds: the effect two ways, the exact test, and the standardised effect."""

  effect: Effect  # mean over seeds with the Student-t interval.
  exact_effect: Effect  # same estimate; interval from inverting the sign-flip test (exact if differences symmetric).
  test: TestResult  # sign-flip permutation test of the mean difference.
  cohens_dz: float  # mean / standard deviation of the per-seed values (NaN for one seed or zero spread).
  per_seed: np.ndarray  # the per-seed values tested, shape (n_seeds,).


def _compare(per_seed: np.ndarray, alternative: str, confidence: float, units: str, what: str, name: str,
             n_resamples: int, seed: int, max_exact_seeds: int) -> Comparison:
  _check_choice(alternative, ("greater", "less", "two-sided"), "alternative")
  _check_confidence(confidence)
  if n_resamples < 1:
    raise ValueError(f"n_resamples {n_resamples} is not allowed; allowed: integers >= 1")
  p, floor, exact, n_arrangements = _sign_flip_p(per_seed, alternative, n_resamples, seed, max_exact_seeds)
  low, high = _sign_flip_interval(per_seed, confidence, n_resamples, seed, max_exact_seeds)
  effect = _t_effect(per_seed, confidence, units, what)
  spread = per_seed.std(ddof=1) if per_seed.size > 1 else 0.0
  test = TestResult(name=f"{'exact' if exact else 'Monte Carlo'} sign-flip permutation test of {name}",
                    statistic=float(per_seed.mean()), p_value=float(p), alternative=alternative, exact=exact,
                    n_permutations=n_arrangements, p_floor=float(floor))
  return Comparison(effect=effect, exact_effect=dataclasses.replace(effect, ci_low=low, ci_high=high,
                                                                    interval="sign-flip inversion"),
                    test=test, cohens_dz=float(per_seed.mean() / spread) if spread > 0 else math.nan,
                    per_seed=per_seed)


def paired_difference(a, b, *, alternative: Alternative, confidence: float = CONFIDENCE, units: str = "",
                      what: str = "mean paired difference a - b", n_resamples: int = N_RESAMPLES, seed: int = 0,
                      max_exact_seeds: int = MAX_EXACT_SEEDS) -> Comparison:
  """Paired comparison of a and b over seeds: mean difference, exact sign-flip test, Cohen's d_z.

  Under the null hypothesis each seed's difference a - b is symmetric about zero, so its sign is a fair coin; the
  test enumerates all 2**n_seeds sign patterns (exact; Monte Carlo with `seed` beyond `max_exact_seeds`) and
  compares the mean difference with its null distribution. With n seeds the smallest one-sided p-value is 1/2**n
  (1/32 for 5 seeds), two-sided 2/2**n.

  Args:
    a, b: values per seed, shape (n_seeds,), paired by seed (same sources, samples and initial parameters).
    alternative: 'greater' (a > b), 'less' (a < b) or 'two-sided'.
    confidence: two-sided coverage of both intervals.
    units: units of a and b (e.g. 'nats per token').
    what: what the mean difference is, in words.
    n_resamples: Monte Carlo draws when there are more than `max_exact_seeds` seeds.
    seed: seed of those draws.
    max_exact_seeds: largest number of seeds enumerated exactly.

  Returns:
    A Comparison: `effect` with the t interval, `exact_effect` with the interval from inverting the sign-flip test
    (covers the centre of symmetry of the differences; infinite when 2**n_seeds is too small for the confidence,
    e.g. 5 seeds at 95%), the test, Cohen's d_z = mean / sd of the differences.

  References:
    Fisher (1935), The Design of Experiments, section 21 (the sign-flip randomisation test).
    Hartigan (1969), "Using subsample values as typical values", JASA 64, 1303-1317 (the interval).
    Phipson & Smyth (2010), "Permutation p-values should never be zero", SAGMB 9(1) (Monte Carlo p-values).
    Cohen (1988), Statistical Power Analysis for the Behavioral Sciences, 2nd ed., section 2.3 (d_z).
  """
  a, b = _floats(a, "a", ndim=1), _floats(b, "b", ndim=1)
  if a.shape != b.shape:
    raise ValueError(f"a and b must have the same shape (n_seeds,), got {a.shape} and {b.shape}")
  return _compare(a - b, alternative, confidence, units, what, "the mean paired difference", n_resamples, seed,
                  max_exact_seeds)


def cluster_mean_difference(a, b, *, alternative: Alternative, confidence: float = CONFIDENCE, units: str = "",
                            what: str = "mean over cells and seeds of a - b", n_resamples: int = N_RESAMPLES,
                            seed: int = 0, max_exact_seeds: int = MAX_EXACT_SEEDS) -> Comparison:
  """Difference of a and b over cells that share seeds: one value per seed, then the exact sign-flip test.

  Cells that share a seed share its sources, samples, initial parameters and checkpoints, so they are not
  independent replicates; the seed is the unit. Each seed's differences are averaged over the cells, and the
  seed means are tested as in `paired_difference` (n_seeds values, not n_cells x n_seeds).

  Args:
    a, b: values, shape (n_cells, n_seeds), paired by seed.
    alternative: 'greater' (a > b), 'less' (a < b) or 'two-sided'.
    confidence: two-sided coverage of the intervals.
    units: units of a and b.
    what: what the grand mean difference is, in words.
    n_resamples: Monte Carlo draws when there are more than `max_exact_seeds` seeds.
    seed: seed of those draws.
    max_exact_seeds: largest number of seeds enumerated exactly.

  Returns:
    A Comparison whose `per_seed` are the seed means of the cell differences and whose effect is the grand mean
    difference with intervals over seeds.

  References:
    Donner & Klar (2000), Design and Analysis of Cluster Randomization Trials, chapter 5 (cluster-level analysis).
    Fisher (1935), The Design of Experiments, section 21.
  """
  a, b = _floats(a, "a", ndim=2), _floats(b, "b", ndim=2)
  if a.shape != b.shape:
    raise ValueError(f"a and b must have the same shape (n_cells, n_seeds), got {a.shape} and {b.shape}")
  return _compare((a - b).mean(axis=0), alternative, confidence, units, what,
                  "the seed means of the cell differences", n_resamples, seed, max_exact_seeds)


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class CellsConsistency:
  """Per-cell agreement with a direction: DESCRIPTIVE ONLY, not a test over independent cells."""

  n_cells: int  # number of cells.
  n_in_direction: int  # cells whose mean difference lies in the alternative's direction (nonzero, for two-sided).
  n_significant: int  # cells whose own exact sign-flip p-value is below alpha (uncorrected).
  cell_means: np.ndarray  # mean difference a - b per cell, shape (n_cells,).
  cell_p_values: np.ndarray  # exact sign-flip p-value per cell (uncorrected), shape (n_cells,).
  label: str = ("descriptive: cells share seeds and checkpoints, so per-cell counts and p-values are not "
                "independent tests; the evidence is cluster_mean_difference")  # printed with the counts.

  def text(self) -> str:
    """The counts as one line, with the label."""
    return (f"{self.n_in_direction}/{self.n_cells} cells in the direction, {self.n_significant}/{self.n_cells} "
            f"with per-cell p < {ALPHA} ({self.label})")


def cells_consistent(a, b, *, alternative: Alternative, alpha: float = ALPHA, n_resamples: int = N_RESAMPLES,
                     seed: int = 0, max_exact_seeds: int = MAX_EXACT_SEEDS) -> CellsConsistency:
  """How many cells agree with a direction, and each cell's exact sign-flip p-value: a description, not a test.

  Args:
    a, b: values, shape (n_cells, n_seeds), paired by seed.
    alternative: 'greater' (a > b), 'less' (a < b) or 'two-sided'.
    alpha: threshold of the per-cell count of small p-values (uncorrected; descriptive).
    n_resamples, seed, max_exact_seeds: as in `paired_difference`.

  Returns:
    CellsConsistency with the counts, per-cell mean differences and per-cell p-values.

  References:
    Fisher (1935), The Design of Experiments, section 21.
  """
  _check_choice(alternative, ("greater", "less", "two-sided"), "alternative")
  a, b = _floats(a, "a", ndim=2), _floats(b, "b", ndim=2)
  if a.shape != b.shape:
    raise ValueError(f"a and b must have the same shape (n_cells, n_seeds), got {a.shape} and {b.shape}")
  differences = a - b
  p_values, _, _, _ = _sign_flip_p(differences, alternative, n_resamples, seed, max_exact_seeds)
  means = differences.mean(axis=1)
  in_direction = {"greater": means > 0, "less": means < 0, "two-sided": means != 0}[alternative]
  return CellsConsistency(n_cells=int(means.size), n_in_direction=int(in_direction.sum()),
                          n_significant=int((p_values < alpha).sum()), cell_means=means, cell_p_values=p_values)


# --- trends over levels measured on every seed ------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class Trend:
  """A trend over levels, every seed measured at every level."""

  effect: Effect  # mean over seeds of the per-seed least-squares slope, Student-t interval.
  exact_effect: Effect  # same estimate; interval from inverting the sign-flip test on the per-seed slopes.
  test: TestResult  # Page's L with its exact seed-stratified permutation distribution.
  slopes: np.ndarray  # per-seed slopes, shape (n_seeds,).
  level_means: np.ndarray  # mean over seeds at each level, shape (n_levels,).
  level_ci: np.ndarray  # half-width of the t interval at each level, shape (n_levels,).
  mean_spearman: float  # mean over seeds of the per-seed Spearman correlation with the level order (descriptive).


def _page_null(ranks2: np.ndarray, weights: np.ndarray) -> tuple[int, np.ndarray]:
  """Exact null distribution of 2 * Page's L when each seed's (mid)ranks are permuted uniformly and independently.

  Args:
    ranks2: twice the within-seed midranks, integers, shape (n_seeds, n_levels).
    weights: integer weights of the levels, shape (n_levels,).

  Returns:
    (offset, probabilities): P(2 L = offset + k) = probabilities[k].
  """
  orders = np.array(list(itertools.permutations(range(ranks2.shape[1]))), dtype=np.int64)  # (n_levels!, n_levels)
  offset, distribution = 0, np.ones(1)
  for seed_ranks in ranks2:
    values = seed_ranks[orders] @ weights  # statistic of this seed under each order of its values.
    low = int(values.min())
    distribution = np.convolve(distribution, np.bincount(values - low) / orders.shape[0])
    offset += low
  return offset, distribution


def stratified_trend(levels, values, *, alternative: TrendAlternative = "increasing",
                     scale: Literal["log2", "linear"] = "log2", confidence: float = CONFIDENCE, units: str = "",
                     what: str = "mean over seeds of the per-seed slope", n_resamples: int = N_RESAMPLES,
                     seed: int = 0, max_exact_levels: int = MAX_EXACT_LEVELS) -> Trend:
  """Trend of values over levels with seeds as blocks: Page's L, exact under within-seed permutation.

  Under the null hypothesis the level does not matter, so within each seed the values are exchangeable across
  levels; the randomisation is the n_levels! orders of each seed's values, independently over seeds. The test
  statistic is Page's L = sum over seeds and levels of (level position) x (within-seed midrank); its exact null
  distribution is the convolution of the per-seed distributions over all n_levels! orders (ties in the data are
  permuted as they are, so heavy ties are handled exactly). Without ties L is an affine function of the mean per-seed
  Spearman correlation with the level order, and a perfectly monotone trend has p = 1/(n_levels!)**n_seeds (1/32 for
  2 levels and 5 seeds). Pooling seeds and ignoring the blocks would instead give (n_seeds!)**n_levels /
  (n_levels n_seeds)! (1/252 for 2 levels and 5 seeds): valid only if values of different seeds were exchangeable,
  which shared sources and initial parameters rule out. Beyond `max_exact_levels` levels the same statistic is
  tested with scipy.stats.permutation_test (permutation_type='samples', `n_resamples` draws, rng from `seed`).

  The effect is separate from the test: each seed's least-squares slope of value on log2(level) (a change per
  doubling of the level) or on the level itself, averaged over seeds, with the t interval over seeds.

  Args:
    levels: increasing levels, shape (n_levels,) with n_levels >= 2 (positive for scale 'log2').
    values: shape (n_levels, n_seeds); values[:, s] were all measured with seed s.
    alternative: 'increasing', 'decreasing' or 'two-sided'.
    scale: x of the slope: 'log2' (per doubling) or 'linear' (per unit of the level).
    confidence: two-sided coverage of the intervals.
    units: units of the values (the slope's units are these per doubling / per unit level).
    what: what the slope is, in words.
    n_resamples, seed: Monte Carlo draws and their seed, beyond `max_exact_levels` levels.
    max_exact_levels: largest number of levels enumerated exactly (n_levels! orders per seed).

  Returns:
    A Trend: effect (mean slope, t interval), exact_effect (sign-flip inversion on the slopes), the test (its
    statistic is Page's L with the levels weighted 1..n_levels in the predicted order: reversed for 'decreasing'),
    per-seed slopes, level means with t half-widths, the mean per-seed Spearman correlation (descriptive; 0 for a
    seed whose values are all tied).

  References:
    Page (1963), "Ordered hypotheses for multiple treatments: a significance test for linear ranks", JASA 58,
      216-230.
    Lehmann (1975), Nonparametrics: Statistical Methods Based on Ranks, chapter 3 (blocked randomisation tests).
    Phipson & Smyth (2010), "Permutation p-values should never be zero", SAGMB 9(1).
  """
  _check_choice(alternative, ("increasing", "decreasing", "two-sided"), "alternative")
  _check_choice(scale, ("log2", "linear"), "scale")
  _check_confidence(confidence)
  levels = _floats(levels, "levels", ndim=1, min_last=2)
  values = _floats(values, "values", ndim=2)
  if values.shape[0] != levels.size:
    raise ValueError(f"values must have shape (n_levels={levels.size}, n_seeds), got {values.shape}")
  if np.any(np.diff(levels) <= 0) or (scale == "log2" and levels[0] <= 0):
    raise ValueError(f"levels {levels.tolist()} are not allowed; allowed: strictly increasing"
                     + (" positive numbers (scale 'log2')" if scale == "log2" else " numbers"))
  n_levels, n_seeds = values.shape
  ranks2 = np.rint(2.0 * stats.rankdata(values, axis=0)).astype(np.int64).T  # (seeds, levels), twice the midranks.
  weights = np.arange(1, n_levels + 1, dtype=np.int64)
  if alternative == "decreasing":
    weights = weights[::-1].copy()
  observed2 = int((ranks2 @ weights).sum())
  test_alternative = {"increasing": "greater", "decreasing": "greater", "two-sided": "two-sided"}[alternative]
  if n_levels <= max_exact_levels:
    offset, distribution = _page_null(ranks2, weights)
    support = offset + np.arange(distribution.size)
    if test_alternative == "greater":
      p = distribution[support >= observed2].sum()
      floor = distribution[-1]
    else:
      centre = float(distribution @ support)
      distance = np.abs(support - centre)
      p = distribution[distance >= abs(observed2 - centre) - 1e-9].sum()
      floor = distribution[distance >= distance.max() - 1e-9].sum()
    exact, n_arrangements = True, math.factorial(n_levels) ** n_seeds
  else:
    columns = tuple(ranks2[:, j] / 2.0 for j in range(n_levels))

    def page_l(*samples, axis):
      return sum(w * np.sum(sample, axis=axis) for w, sample in zip(weights, samples, strict=True))

    result = stats.permutation_test(columns, page_l, permutation_type="samples", vectorized=True,
                                    n_resamples=n_resamples, alternative=test_alternative, axis=-1,
                                    rng=np.random.default_rng(seed))
    p, floor, exact, n_arrangements = result.pvalue, 1.0 / (n_resamples + 1), False, n_resamples + 1
  x = np.log2(levels) if scale == "log2" else levels
  centred = x - x.mean()
  slopes = centred @ (values - values.mean(axis=0)) / (centred @ centred)
  per = "per doubling of the level" if scale == "log2" else "per unit of the level"
  effect = _t_effect(slopes, confidence, f"{units} {per}".strip(), what)
  low, high = _sign_flip_interval(slopes, confidence, n_resamples, seed, MAX_EXACT_SEEDS)
  level_means, level_ci = mean_ci(values, axis=1, confidence=confidence)
  rank_centred = ranks2 / 2.0 - (n_levels + 1) / 2.0
  position = np.arange(n_levels) - (n_levels - 1) / 2.0
  norms = np.sqrt((rank_centred ** 2).sum(axis=1) * (position @ position))
  spearman = np.where(norms > 0, rank_centred @ position / np.where(norms > 0, norms, 1.0), 0.0)
  test = TestResult(name=f"Page's L trend test, {'exact' if exact else 'Monte Carlo'} seed-stratified permutation",
                    statistic=observed2 / 2.0, p_value=float(min(1.0, p)),
                    alternative={"increasing": "greater", "decreasing": "less"}.get(alternative, "two-sided"),
                    exact=exact, n_permutations=n_arrangements, p_floor=float(floor))
  return Trend(effect=effect, exact_effect=dataclasses.replace(effect, ci_low=low, ci_high=high,
                                                               interval="sign-flip inversion"),
               test=test, slopes=slopes, level_means=level_means, level_ci=level_ci,
               mean_spearman=float(spearman.mean()))


# --- multiplicity and verdicts ----------------------------------------------------------------------------------


def holm(p_values) -> np.ndarray:
  """Holm-Bonferroni adjusted p-values: step-down, monotone in the raw p-values, capped at 1.

  The i-th smallest raw p-value p_(i) of m becomes max over j <= i of min(1, (m - j + 1) p_(j)); rejecting the
  hypotheses whose adjusted p-value is below alpha controls the family-wise error rate at alpha under any
  dependence between the tests.

  Args:
    p_values: raw p-values in [0, 1], shape (m,).

  Returns:
    Adjusted p-values, shape (m,), in the input order.

  References:
    Holm (1979), "A simple sequentially rejective multiple test procedure", Scand. J. Statist. 6, 65-70.
    Wright (1992), "Adjusted p-values for simultaneous inference", Biometrics 48, 1005-1013.
  """
  p = np.asarray(p_values, dtype=np.float64)
  if p.ndim != 1 or np.any(~np.isfinite(p)) or np.any((p < 0) | (p > 1)):
    raise ValueError(f"p_values must be a 1-D array of numbers in [0, 1], got {p_values!r}")
  m = p.size
  order = np.argsort(p, kind="stable")
  stepped = np.minimum(1.0, (m - np.arange(m)) * p[order])
  adjusted = np.empty(m)
  adjusted[order] = np.maximum.accumulate(stepped) if m else stepped
  return adjusted


@dataclasses.dataclass(frozen=True, kw_only=True)
class Verdict:
  """One claim of the paper against the data: effect, test, Holm-adjusted p-value within its family, status."""

  family: str  # the family of tests whose p-values are Holm-corrected together.
  claim: str  # the paper's effect in words, e.g. 'inverse alignment loss below forward'.
  effect: Effect  # the effect size with its interval.
  test: TestResult  # the test of the claim (one-sided in the paper's direction, or two-sided).
  paper_direction: Direction  # sign of effect.estimate the paper predicts: 'positive' or 'negative'.
  smallest_effect_of_interest: float = 0.0  # magnitude (effect units) below which the claim counts as absent.
  alpha: float = ALPHA  # family-wise significance level.
  consistency_check: bool = False  # True: holds by construction; reported, never evidence, not in the correction.
  p_adjusted: float | None = None  # Holm-adjusted p within the family; filled by VerdictFamily.adjust().
  family_size: int | None = None  # number of tests corrected together; filled by VerdictFamily.adjust().

  def __post_init__(self):
    _check_choice(self.paper_direction, ("positive", "negative"), "paper_direction")
    allowed = {"positive": ("greater", "two-sided"), "negative": ("less", "two-sided")}[self.paper_direction]
    if self.test.alternative not in allowed:
      raise ValueError(f"test alternative {self.test.alternative!r} does not match paper_direction "
                       f"{self.paper_direction!r}; allowed: {', '.join(allowed)}")
    if not 0.0 < self.alpha < 1.0:
      raise ValueError(f"alpha {self.alpha} is not allowed; allowed: numbers in (0, 1)")
    if not (math.isfinite(self.smallest_effect_of_interest) and self.smallest_effect_of_interest >= 0):
      raise ValueError(f"smallest_effect_of_interest {self.smallest_effect_of_interest} is not allowed; allowed: "
                       "finite numbers >= 0")

  @property
  def p_raw(self) -> float:
    """The test's unadjusted p-value."""
    return self.test.p_value

  @property
  def in_paper_direction(self) -> bool:
    """Whether the point estimate has the sign the paper predicts."""
    sign = 1.0 if self.paper_direction == "positive" else -1.0
    return bool(sign * self.effect.estimate > 0)

  @property
  def against_paper(self) -> bool:
    """Whether the whole interval lies on the side opposite to the paper's (excludes zero)."""
    if self.paper_direction == "positive":
      return self.effect.ci_high < 0
    return self.effect.ci_low > 0

  @property
  def below_interest(self) -> bool:
    """Whether the whole interval lies within the smallest effect of interest (|effect| < it): an effect a test may
    detect but too small to be the claimed one."""
    bound = self.smallest_effect_of_interest
    return bound > 0 and max(abs(self.effect.ci_low), abs(self.effect.ci_high)) < bound

  @property
  def status(self) -> str:
    """SHOWN, NOT SHOWN — evidence of absence, NOT SHOWN — inconclusive, or CONSISTENCY CHECK (not evidence).

    SHOWN needs the Holm-adjusted p-value below alpha and the estimate in the paper's direction. Otherwise the
    verdict is evidence of absence when the interval excludes every effect at least the smallest effect of interest
    in the paper's direction (with the default 0: the interval lies wholly on the other side), else inconclusive.
    """
    if self.consistency_check:
      return CONSISTENCY
    if self.p_adjusted is None:
      raise ValueError(f"verdict {self.claim!r} has no adjusted p-value; allowed: a verdict from "
                       "VerdictFamily.adjust()")
    if self.p_adjusted < self.alpha and self.in_paper_direction:
      return SHOWN
    threshold = self.smallest_effect_of_interest
    excluded = (self.effect.ci_high < threshold if self.paper_direction == "positive"
                else self.effect.ci_low > -threshold)
    return ABSENT if excluded else INCONCLUSIVE

  def line(self) -> str:
    """One line: claim, effect with CI and units, test, raw and adjusted p, status (and what limits it)."""
    exactness = "exact" if self.test.exact else f"{self.test.n_permutations} draws"
    parts = [f"{self.claim}: {self.effect.text()}",
             f"{self.test.name} ({exactness}, {self.test.alternative}): p = {self.p_raw:.3g}"]
    if self.consistency_check:
      held = self.p_raw < self.alpha and self.in_paper_direction
      return "; ".join(parts) + f"; {CONSISTENCY}: {'holds' if held else 'fails'} by construction"
    if self.p_adjusted is None:
      raise ValueError(f"verdict {self.claim!r} has no adjusted p-value; allowed: a verdict from "
                       "VerdictFamily.adjust()")
    parts[-1] += f", Holm-adjusted p = {self.p_adjusted:.3g} ({self.family_size} tests in '{self.family}')"
    status = self.status
    if self.against_paper:
      status += " (against the paper: the interval lies on the other side of 0)"
    if status == SHOWN and self.below_interest:
      status += (f" (but smaller than the smallest effect of interest, {self.smallest_effect_of_interest:g}: "
                 "detectable, yet far from the predicted size)")
    if status != SHOWN and self.family_size * self.test.p_floor >= self.alpha:
      status += (f" (this design cannot show it: smallest attainable Holm p = {self.family_size} x "
                 f"{self.test.p_floor:.3g} >= {self.alpha:g})")
    return "; ".join(parts) + f"; {status}"


@dataclasses.dataclass(frozen=True, kw_only=True)
class VerdictFamily:
  """Verdicts whose p-values are corrected together (Holm), consistency checks excluded from the correction."""

  name: str  # the family's name; every verdict's `family` must equal it.
  verdicts: tuple[Verdict, ...]  # the verdicts, in report order.

  def __post_init__(self):
    object.__setattr__(self, "verdicts", tuple(self.verdicts))
    for verdict in self.verdicts:
      if verdict.family != self.name:
        raise ValueError(f"verdict family {verdict.family!r} does not match the family {self.name!r}")

  @property
  def size(self) -> int:
    """Number of verdicts that are tests (not consistency checks): the m of the Holm correction."""
    return sum(not v.consistency_check for v in self.verdicts)

  def adjust(self) -> VerdictFamily:
    """The family with every test's Holm-adjusted p-value and the family size filled in."""
    tested = [i for i, v in enumerate(self.verdicts) if not v.consistency_check]
    adjusted = holm([self.verdicts[i].p_raw for i in tested])
    filled = list(self.verdicts)
    for i, p in zip(tested, adjusted, strict=True):
      filled[i] = dataclasses.replace(filled[i], p_adjusted=float(p), family_size=len(tested))
    return dataclasses.replace(self, verdicts=tuple(filled))

  def can_show(self) -> bool:
    """Whether any test of the family could reach alpha after Holm, given the tests' smallest attainable p."""
    floors = [v.test.p_floor for v in self.verdicts if not v.consistency_check]
    return bool(floors) and self.size * min(floors) < min(v.alpha for v in self.verdicts)

  def lines(self) -> list[str]:
    """Every verdict's line (the family adjusted first if needed)."""
    family = self if all(v.consistency_check or v.p_adjusted is not None for v in self.verdicts) else self.adjust()
    return [v.line() for v in family.verdicts]


# --- power ----------------------------------------------------------------------------------------------------------


def _t_power(noncentrality: float, df: int, alpha: float, alternative: str) -> float:
  if alternative == "two-sided":
    critical = stats.t.ppf(1 - alpha / 2, df)
    # P(T < -c) as P(-T > c), -T ~ nct(df, -nc): scipy's nct.cdf returns NaN deep in the left tail (df=1, nc=8).
    return stats.nct.sf(critical, df, noncentrality) + stats.nct.sf(critical, df, -noncentrality)
  return stats.nct.sf(stats.t.ppf(1 - alpha, df), df, noncentrality)


def minimum_detectable_effect(sd, n_seeds, *, alpha: float = ALPHA, power: float = 0.8,
                              alternative: Alternative = "greater"):
  """Smallest mean paired difference a t-test over n_seeds detects with the given power (a magnitude).

  The paired t statistic has a noncentral t distribution with n_seeds - 1 degrees of freedom and noncentrality
  effect sqrt(n_seeds) / sd; the returned effect is the one whose rejection probability at `alpha` equals `power`.
  The exact sign-flip test has comparable power when alpha is well above its floor 1/2**n_seeds and none below it.

  Args:
    sd: standard deviation of the per-seed differences (effect units), scalar or array.
    n_seeds: number of seeds (>= 2), scalar or array broadcastable with sd.
    alpha: level of the test (after any multiplicity correction the verdict needs, e.g. alpha / m).
    power: required probability of rejecting, in (alpha, 1).
    alternative: 'greater', 'less' (same magnitude) or 'two-sided'.

  Returns:
    The minimum detectable effect (same units as sd), float or array of the broadcast shape.

  References:
    Cohen (1988), Statistical Power Analysis for the Behavioral Sciences, 2nd ed., chapter 2.
  """
  _check_choice(alternative, ("greater", "less", "two-sided"), "alternative")
  if not 0.0 < alpha < power < 1.0:
    raise ValueError(f"alpha {alpha} and power {power} are not allowed; allowed: 0 < alpha < power < 1")
  sd, n_seeds = np.broadcast_arrays(np.asarray(sd, dtype=np.float64), np.asarray(n_seeds))
  if np.any(~np.isfinite(sd)) or np.any(sd < 0) or np.any(n_seeds < 2) or np.any(n_seeds != np.rint(n_seeds)):
    raise ValueError(f"sd {sd.tolist()} and n_seeds {n_seeds.tolist()} are not allowed; allowed: finite sd >= 0 "
                     "and integer n_seeds >= 2")
  noncentrality = {}
  for n in np.unique(n_seeds).astype(int):
    high = 1.0
    while _t_power(high, n - 1, alpha, alternative) < power:
      high *= 2.0
    noncentrality[n] = optimize.brentq(lambda nc, n=n: _t_power(nc, n - 1, alpha, alternative) - power, 0.0, high,
                                       xtol=1e-12, rtol=1e-12)
  needed = np.vectorize(lambda n: noncentrality[int(n)], otypes=[np.float64])(n_seeds)
  result = needed * sd / np.sqrt(n_seeds)
  return float(result) if result.ndim == 0 else result


# --- rebound curves -------------------------------------------------------------------------------------------------


def _curve(n, undone_share) -> tuple[np.ndarray, np.ndarray]:
  n = _floats(n, "n", ndim=1, min_last=2)
  undone_share = _floats(undone_share, "undone_share")
  if undone_share.shape[-1] != n.size:
    raise ValueError(f"undone_share must have shape (..., {n.size}) to match n, got {undone_share.shape}")
  if np.any(np.diff(n) <= 0):
    raise ValueError(f"n {n.tolist()} is not allowed; allowed: strictly increasing numbers of examples")
  return n, undone_share


def half_life(n, undone_share, *, share: float = 0.5) -> np.ndarray:
  """Examples needed to undo `share` (default half) of the alignment gain, per curve; inf if never on the grid.

  The curve is linearly interpolated between grid points and the first crossing counts (a curve that crosses and
  falls back keeps its first crossing); a curve already at `share` at the first grid point gives n[0].

  Args:
    n: increasing numbers of second-stage examples, shape (n_points,).
    undone_share: share of the alignment gain undone, (s(0) - s(n)) / (s(0) - s_pretrained), shape (..., n_points).
    share: the share to reach.

  Returns:
    Examples, shape (...).

  References:
    Ji et al. (2025), "Language Models Resist Alignment", ACL, section 5 and Fig. 4 (the rebound).
  """
  n, u = _curve(n, undone_share)
  reached = u >= share
  first = np.argmax(reached, axis=-1)[..., None]
  before = np.maximum(first - 1, 0)
  u0, u1 = np.take_along_axis(u, before, -1)[..., 0], np.take_along_axis(u, first, -1)[..., 0]
  n0, n1 = n[before[..., 0]], n[first[..., 0]]
  rise = np.where(u1 > u0, u1 - u0, 1.0)
  crossing = np.where(first[..., 0] == 0, n[0], n0 + (share - u0) / rise * (n1 - n0))
  return np.where(reached.any(axis=-1), crossing, np.inf)


def early_share(n, undone_share, n_early: float) -> np.ndarray:
  """Share of the alignment gain undone by `n_early` examples, per curve (linear interpolation on the grid).

  Args:
    n: increasing numbers of second-stage examples, shape (n_points,).
    undone_share: shape (..., n_points).
    n_early: examples, within [n[0], n[-1]].

  Returns:
    Shares, shape (...).

  References:
    Ji et al. (2025), "Language Models Resist Alignment", ACL, Fig. 4.
  """
  n, u = _curve(n, undone_share)
  if not n[0] <= n_early <= n[-1]:
    raise ValueError(f"n_early {n_early} is not allowed; allowed: numbers within the grid [{n[0]:g}, {n[-1]:g}]")
  k = int(np.clip(np.searchsorted(n, n_early, side="right") - 1, 0, n.size - 2))
  weight = (n_early - n[k]) / (n[k + 1] - n[k])
  return (1.0 - weight) * u[..., k] + weight * u[..., k + 1]


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class Decay:
  """Fast-then-slow test of rebound curves against the constant-rate (linear in examples) null."""

  effect: Effect  # mean over seeds of the curve-minus-chord gap over the window, t interval.
  exact_effect: Effect  # same estimate; interval from inverting the sign-flip test.
  test: TestResult  # sign-flip test over seeds of the per-seed gaps.
  gaps: np.ndarray  # per-seed mean gap between the curve and its chord over the window, shape (n_seeds,).
  window_end: float  # last grid point of the window (examples); NaN when untestable.
  window_points: int  # grid points in the window (3 or more to be testable).
  testable: bool  # False when fewer than 3 grid points lie before the curves reach saturation.
  note: str  # what limited the window, in words.


def decay_against_linear(n, undone_share, *, ceiling=1.0, saturation: float = 0.9, window_end: float | None = None,
                         alternative: Alternative = "greater", confidence: float = CONFIDENCE,
                         n_resamples: int = N_RESAMPLES, seed: int = 0,
                         max_exact_seeds: int = MAX_EXACT_SEEDS) -> Decay:
  """Is the undoing of alignment fast, then slow, BEFORE the curve reaches its floor? (sign-flip test over seeds)

  The share undone u(n) of a curve that falls at a constant rate per example and then stops at its floor is
  linear up to the floor and flat after it: any test comparing early with late slopes, or the curve with the
  chord to the last grid point, passes such a curve, because the floor alone bends it. This test looks only at
  the part of the curve before the floor. Each curve is clipped at `ceiling` (default 1: once the score is back at
  the pre-trained level the gain is fully undone; overshooting below it is a further effect, specialisation on
  the new data, not part of the rebound); the window runs from n[0] to the last grid point before the first one at
  which any seed reaches `saturation` x ceiling (or to `window_end`, fixed in advance). Within the window each
  seed's statistic is the mean gap between its piecewise-linear curve and its chord (the constant-rate null that
  undoes the same share at the window's end), in units of the ceiling:

    gap = (area under the curve - area under the chord) / ((n_end - n_0) ceiling).

  A constant rate gives 0, a concave (fast, then slow) curve a positive gap, an accelerating one a negative gap.
  The gaps are tested over seeds with the exact sign-flip test (alternative 'greater' = fast then slow).

  What it can show: that within the window the curve undoes more early than a constant per-example rate would,
  i.e. a slowing down that is not the floor. What it cannot show: the shape between grid points, the shape at or
  after the floor (excluded), or anything when the curves saturate by the second grid point (then `testable` is
  False, the p-value 1 and the interval infinite: the grid is too coarse; add grid points before the floor). A
  curve that flattens for another reason below the ceiling counts as slowing down, as it should. The window
  chosen from the data can bias the gap upward when a seed sits just below the saturation level at the window's
  end (its end point is selected for being low); a window_end fixed in advance avoids that. Linearity is judged
  on the scale of u: a score that falls linearly in its log-odds is not linear in u.

  Args:
    n: increasing numbers of second-stage examples, shape (n_points,).
    undone_share: share of the alignment gain undone, shape (n_seeds, n_points).
    ceiling: the curves' bound (scalar or per seed, shape (n_seeds,)); pass s(0) / (s(0) - s_pretrained) per
      seed to study the whole fall of the score down to 0 instead of the return to the pre-trained level.
    saturation: share of the ceiling from which a grid point counts as at the floor, in (0, 1].
    window_end: a grid point fixing the window's end in advance (None: chosen from the data as above).
    alternative: 'greater' (fast then slow), 'less' (slow then fast) or 'two-sided'.
    confidence, n_resamples, seed, max_exact_seeds: as in `paired_difference`.

  Returns:
    A Decay with the effect (mean gap, share of the ceiling), the test, per-seed gaps and the window.

  References:
    Ji et al. (2025), "Language Models Resist Alignment", ACL, Fig. 4 (fast then slow decline).
    Fisher (1935), The Design of Experiments, section 21 (sign-flip test).
  """
  n, u = _curve(n, undone_share)
  if u.ndim != 2:
    raise ValueError(f"undone_share must have shape (n_seeds, n_points), got {u.shape}")
  ceiling = np.broadcast_to(np.asarray(ceiling, dtype=np.float64), u.shape[:1])
  if np.any(~np.isfinite(ceiling)) or np.any(ceiling <= 0):
    raise ValueError(f"ceiling {ceiling.tolist()} is not allowed; allowed: finite positive numbers")
  if not 0.0 < saturation <= 1.0:
    raise ValueError(f"saturation {saturation} is not allowed; allowed: numbers in (0, 1]")
  clipped = np.minimum(u, ceiling[:, None])
  at_floor = np.any(clipped >= saturation * ceiling[:, None], axis=0)
  if window_end is None:
    end = (int(np.argmax(at_floor)) if at_floor.any() else n.size) - 1
    note = (f"window ends before the first grid point where a seed reaches {saturation:g} of the ceiling"
            if at_floor.any() else "no seed reaches saturation on the grid")
  else:
    matches = np.flatnonzero(n == window_end)
    if matches.size != 1:
      raise ValueError(f"window_end {window_end} is not allowed; allowed: a grid point of n {n.tolist()}")
    end = int(matches[0])
    note = "window fixed in advance" + ("; some seeds reach saturation inside it" if at_floor[:end + 1].any() else "")
  what = "mean gap between the curve and its chord over the window"
  units = "share of the ceiling"
  if end < 2:
    gaps = np.full(u.shape[0], np.nan)
    effect = Effect(estimate=math.nan, ci_low=-math.inf, ci_high=math.inf, confidence=confidence, units=units,
                    what=what, interval="none")
    test = TestResult(name="sign-flip test of the curve-chord gap (untestable: fewer than 3 grid points before "
                      "saturation)", statistic=math.nan, p_value=1.0, alternative=alternative, exact=True,
                      n_permutations=0, p_floor=1.0)
    return Decay(effect=effect, exact_effect=effect, test=test, gaps=gaps, window_end=math.nan,
                 window_points=end + 1, testable=False, note=note + "; too few grid points to test")
  x, y = n[:end + 1], clipped[:, :end + 1]
  width = x[-1] - x[0]
  area = np.sum((y[:, 1:] + y[:, :-1]) * np.diff(x), axis=1) / 2.0
  gaps = (area - width * (y[:, 0] + y[:, -1]) / 2.0) / (width * ceiling)
  gaps = np.where(np.abs(gaps) <= _ROUND_OFF_GAP, 0.0, gaps)  # an exactly linear curve must not pass on round-off.
  comparison = _compare(gaps, alternative, confidence, units, what, "the mean curve-chord gap", n_resamples, seed,
                        max_exact_seeds)
  return Decay(effect=comparison.effect, exact_effect=comparison.exact_effect, test=comparison.test, gaps=gaps,
               window_end=float(x[-1]), window_points=end + 1, testable=True, note=note)
