"""Verdicts on simulated evidence: does a toy-model experiment show the paper's effect, with what statistic.

Each function takes measured arrays (seeds on the last axis) and returns a Verdict whose `holds` is computed
from the data; a verdict that goes against the paper says so. Used by the issue-4 experiments and the report.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import stats

CONFIDENCE = 0.95  # level of every confidence interval.
ALPHA = 0.05  # significance level of every one-sided test.


@dataclasses.dataclass(frozen=True)
class Verdict:
  """A one-line verdict: what was tested, whether the data shows it, and the statistic behind it."""

  effect: str  # the paper's effect in words.
  holds: bool  # whether the toy data shows the effect.
  statistic: str  # the numbers behind the verdict.

  def line(self) -> str:
    """The verdict as one line of text."""
    word = "SHOWN" if self.holds else "NOT SHOWN (against the paper)"
    return f"{self.effect}: {word} — {self.statistic}"


def mean_ci(samples, axis: int = -1, confidence: float = CONFIDENCE) -> tuple[np.ndarray, np.ndarray]:
  """Mean and half-width of the Student-t confidence interval along `axis` (half-width NaN for one sample)."""
  samples = np.asarray(samples, dtype=np.float64)
  n = samples.shape[axis]
  mean = samples.mean(axis=axis)
  if n < 2:
    return mean, np.full_like(mean, np.nan)
  sem = samples.std(axis=axis, ddof=1) / np.sqrt(n)
  return mean, stats.t.ppf(0.5 + confidence / 2, n - 1) * sem


def paired_less(smaller, larger) -> tuple[float, float]:
  """One-sided paired t-test that `smaller` < `larger` (1-D over seeds); returns (mean difference, p-value).

  When the differences are constant (spread below 1e-12 of their size, where the t statistic is undefined)
  the p-value is 0 if every difference is negative and 1 otherwise.
  """
  difference = np.asarray(smaller, dtype=np.float64) - np.asarray(larger, dtype=np.float64)
  if difference.size < 2 or np.ptp(difference) <= 1e-12 * np.abs(difference).max():
    return float(difference.mean()), 0.0 if np.all(difference < 0) else 1.0
  return float(difference.mean()), float(stats.ttest_rel(smaller, larger, alternative="less").pvalue)


def resistance_verdict(forward, inverse) -> tuple[Verdict, np.ndarray, np.ndarray]:
  """Paper Table 1: inverse alignment reaches a lower loss than forward alignment, in every cell.

  Args:
    forward, inverse: final training losses, shape (n_cells, n_seeds), paired by seed.

  Returns:
    The verdict, per-cell mean differences (inverse - forward) and per-cell one-sided p-values.
  """
  forward, inverse = np.asarray(forward, np.float64), np.asarray(inverse, np.float64)
  if forward.shape != inverse.shape or forward.ndim != 2:
    raise ValueError(f"forward and inverse must have the same shape (n_cells, n_seeds), got {forward.shape} "
                     f"and {inverse.shape}")
  results = [paired_less(i, f) for i, f in zip(inverse, forward, strict=True)]
  differences = np.array([r[0] for r in results])
  p_values = np.array([r[1] for r in results])
  significant = int((p_values < ALPHA).sum())
  lower = int((differences < 0).sum())
  n = len(differences)
  sign_p = stats.binomtest(lower, n, 0.5, alternative="greater").pvalue if n else 1.0
  holds = lower == n and significant > n / 2
  statistic = (f"inverse < forward in {lower}/{n} cells (mean gap {differences.mean():+.4g}), significant "
               f"(paired t, p < {ALPHA}) in {significant}/{n}; sign test over cells p = {sign_p:.2g}")
  return Verdict("Resistance: inverse alignment loss below forward", bool(holds), statistic), differences, p_values


def early_late_slopes(x, y) -> tuple[np.ndarray, np.ndarray]:
  """Average decline per unit x over the first interval and over the remaining ones (positive = falling).

  Args:
    x: increasing positions, shape (n_points,) with n_points >= 3.
    y: values, shape (..., n_points).
  """
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  if x.ndim != 1 or x.size < 3 or np.any(np.diff(x) <= 0):
    raise ValueError(f"x must be increasing with at least 3 points, got {x}")
  early = (y[..., 0] - y[..., 1]) / (x[1] - x[0])
  late = (y[..., 1] - y[..., -1]) / (x[-1] - x[1])
  return early, late


def fast_then_slow_verdict(x, y) -> Verdict:
  """Paper Fig. 4: the score falls fast at first, then slowly (early decline per example > late decline).

  Args:
    x: numbers of negative examples, increasing, shape (n_points,).
    y: score curves, shape (n_curves, n_points, n_seeds).
  """
  early, late = early_late_slopes(x, np.moveaxis(np.asarray(y, np.float64), -1, -2))  # (n_curves, n_seeds)
  results = [paired_less(l_, e_) for e_, l_ in zip(early, late, strict=True)]
  shown = sum(1 for (d, p) in results if d < 0 and p < ALPHA)
  declining = int((early.mean(axis=-1) > 0).sum())
  ratio = np.median(early.mean(axis=-1) / np.maximum(np.abs(late.mean(axis=-1)), 1e-300))
  holds = shown == len(results) and declining == len(results)
  statistic = (f"early decline per example > late decline (paired t, p < {ALPHA}) in {shown}/{len(results)} "
               f"curves; median early/late slope ratio {ratio:.3g}")
  return Verdict("Rebound: fast then slow decline", bool(holds), statistic)


def increasing_trend_verdict(effect: str, factor, values) -> Verdict:
  """Whether `values` grow with `factor` (Spearman correlation over all seeds, one-sided test).

  Args:
    effect: the effect in words (e.g. 'more positive data -> faster early drop').
    factor: shape (n_levels,), the levels (alignment sizes, parameter counts, pre-training tokens).
    values: shape (n_levels, n_seeds).
  """
  values = np.asarray(values, np.float64)
  factor = np.asarray(factor, np.float64)
  if values.ndim != 2 or values.shape[0] != factor.size or factor.size < 2:
    raise ValueError(f"values must have shape (n_levels={factor.size} >= 2, n_seeds), got {values.shape}")
  levels = np.repeat(factor, values.shape[1])
  result = stats.spearmanr(levels, values.ravel(), alternative="greater")
  means = values.mean(axis=1)
  monotone = bool(np.all(np.diff(means) > 0))
  holds = result.pvalue < ALPHA
  statistic = (f"Spearman rho = {result.statistic:.3f} (one-sided p = {result.pvalue:.2g}, n = {levels.size}); "
               f"level means [{', '.join(f'{m:.3g}' for m in means)}] "
               f"({'monotone' if monotone else 'not monotone'})")
  return Verdict(effect, bool(holds), statistic)


def examples_to_threshold(n_examples, curve, threshold: float) -> np.ndarray:
  """First number of examples at which `curve` falls below `threshold`, interpolated linearly; inf if never.

  Args:
    n_examples: increasing, shape (n_points,).
    curve: shape (..., n_points), e.g. KL to the pre-trained model (nats) after n negative examples.
    threshold: e.g. epsilon = 0.01 nats (paper Appendix Table 3).
  """
  x, y = np.asarray(n_examples, np.float64), np.asarray(curve, np.float64)
  below = y < threshold
  first = np.argmax(below, axis=-1)
  out = np.full(y.shape[:-1], np.inf)
  for index in np.ndindex(*y.shape[:-1]):
    i = first[index]
    if not below[index][i]:
      continue
    if i == 0:
      out[index] = x[0]
      continue
    y0, y1 = y[index][i - 1], y[index][i]
    out[index] = x[i - 1] + (y0 - threshold) / (y0 - y1) * (x[i] - x[i - 1])
  return out
