"""Summary and verdicts of a rebound-family run: normalised curves, half-lives, decay and trend tests, Table 3.

Every curve is normalised by where it starts and where it came from: the share of the alignment gain undone after n
second-stage examples, u(n) = (s(0) - s(n)) / (s(0) - s_pre), with s the score (probability of the first stage's
behaviour) and s_pre the pre-trained model's. The half-life n_1/2 is the number of examples that undoes half of the
gain (linear interpolation on the grid; curves that never get there are censored at CENSOR x the largest n).
Seeds are the unit of every test (each seed is measured in every cell and at every level); which tests are
confirmatory is fixed per experiment (CONFIRMATORY) before the runs; everything else is descriptive.
"""

from __future__ import annotations

import math

import numpy as np

from experiments import statistics, verdicts
from experiments.rebound.config import ReboundConfig
from experiments.rebound.run import units
from experiments.run_dir import RunDir

CENSOR = 2.0  # half-lives beyond the grid are set to CENSOR * max(n) (their rank, the largest, is what the test uses).
LATE_FROM = 500  # the late decline is measured from this many examples to the largest n (the paper's "then slowly").
GAIN_MIN = 1e-6  # an alignment gain smaller than this (score units) leaves u undefined (NaN).
EARLY_POINTS = (10, 20, 50, 100)  # shares undone reported at these n (descriptive).
CONFIRMATORY = {
    "rebound": ("decay", "first_stage_trend"),
    "families": ("decay",),
    "model-size": ("size_trend", "size_late_trend"),
    "pretrain-volume": ("volume_trend",),
}
"""Pre-registered confirmatory tests of each experiment of the family (the rest of the summary is descriptive).

decay: within each cell, fast-then-slow before the floor (statistics.decay_against_linear) of the seed's curve u(n)
averaged over the first-stage sizes. first_stage_trend: within each cell, the half-life decreases with n1 (more
alignment data, faster rebound: paper Fig. 4 and Table 3). size_trend / volume_trend: the half-life decreases with
the parameter count / pre-training tokens (paper Fig. 5 / 6). size_late_trend: the late decline (u per example
from LATE_FROM on) is slower for larger models (paper Fig. 5)."""
SMALLEST_EFFECTS = {"decay": 0.05, "first_stage_trend": 0.1, "size_trend": 0.1, "volume_trend": 0.1,
                    "size_late_trend": 0.0}
"""Smallest effects of interest (below them an effect counts as absent): a curve-chord gap of 5% of the gain; a
half-life 7% shorter per doubling (0.1 in log2); any slowing of the late decline."""


def collect(config: ReboundConfig, run_dir: RunDir) -> dict:
  """{unit: (summary, arrays)} of the finished units, in grid order."""
  return {unit: run_dir.load(unit.name) for unit in units(config) if run_dir.done(unit.name)}


def undone_share(score: np.ndarray, pretrained_score: np.ndarray) -> np.ndarray:
  """u(n) = (s(0) - s(n)) / (s(0) - s_pre): share of the first stage's gain undone; score (seeds, ..., n_second),
  pretrained_score (seeds,); NaN where the first stage gained less than GAIN_MIN."""
  start = score[..., :1]
  gain = start - pretrained_score.reshape((-1,) + (1,) * (score.ndim - 1))
  return np.where(np.abs(gain) > GAIN_MIN, (start - score) / np.where(np.abs(gain) > GAIN_MIN, gain, 1.0), np.nan)


def log_odds(score: np.ndarray) -> np.ndarray:
  """log(s / (1 - s)) of a probability score (clipped away from 0 and 1 by 1e-12)."""
  clipped = np.clip(score, 1e-12, 1 - 1e-12)
  return np.log(clipped) - np.log1p(-clipped)


def censored_half_life(n: np.ndarray, u: np.ndarray) -> np.ndarray:
  """Half-lives (examples), NaN curves and curves that never reach 1/2 censored at CENSOR * max(n)."""
  life = statistics.half_life(n, np.nan_to_num(u, nan=-np.inf))
  return np.where(np.isfinite(life), life, CENSOR * n[-1])


def late_slope(n: np.ndarray, u: np.ndarray) -> np.ndarray:
  """Share of the gain undone per example from LATE_FROM to the largest n (the late decline), shape (...)."""
  start = int(np.searchsorted(n, LATE_FROM))
  if start >= n.size - 1:
    return np.full(u.shape[:-1], np.nan)
  return (u[..., -1] - u[..., start]) / (n[-1] - n[start])


def _ci(values, axis=-1) -> dict:
  mean, half = statistics.mean_ci(values, axis=axis)
  return {"mean": np.asarray(mean).tolist(), "ci95": np.asarray(half).tolist()}


def cell_summary(config: ReboundConfig, arrays: dict, method_index: int, label: str, confirmatory: tuple) -> dict:
  """Curves, half-lives, tests and the Table 3 analogue of one unit and method (every statistic over seeds)."""
  n = np.asarray(config.second_sizes, dtype=np.float64)
  score = arrays["score"][method_index]  # (seeds, n_first, n_second)
  pretrained = arrays["pretrained_score"]
  u = undone_share(score, pretrained)
  life = censored_half_life(n, u)  # (seeds, n_first)
  kl = arrays["kl_to_pretrained_nats"][method_index]
  cell = {
      "label": label, "score": _ci(score, axis=0), "undone_share": _ci(u, axis=0),
      "pretrained_score": _ci(pretrained, axis=0), "kl_to_pretrained_nats": _ci(kl, axis=0),
      "positive_score": _ci(arrays["positive_score"][method_index], axis=0),
      "rates_bits": _ci(arrays["rates_bits"][method_index], axis=0),
      "half_life": _ci(life, axis=0), "half_life_censored": int((life >= CENSOR * n[-1]).sum()),
      "early_share": {f"{e:g}": _ci(statistics.early_share(n, np.nan_to_num(u), e), axis=0)
                      for e in EARLY_POINTS if n[0] <= e <= n[-1]},
      "late_slope": _ci(late_slope(n, u), axis=0),
      "table3": table3(config, n, score, pretrained, kl),
      "higher_start": _trend_numbers(config.first_sizes, score[..., 0].T, "increasing"),
      "verdicts": [],
  }
  curve = _mean_over_first_sizes(np.moveaxis(u, 1, -1))  # (seeds, n_second): averaged over the first-stage sizes
  decay = statistics.decay_against_linear(n, np.nan_to_num(curve))
  cell["decay"] = {"testable": decay.testable, "window_end": decay.window_end, "gaps": decay.gaps.tolist(),
                   "note": decay.note, "effect": [decay.effect.estimate, decay.effect.ci_low, decay.effect.ci_high]}
  logit = undone_share(log_odds(score), log_odds(pretrained))
  on_logits = statistics.decay_against_linear(n, np.nan_to_num(_mean_over_first_sizes(np.moveaxis(logit, 1, -1))))
  cell["decay_log_odds"] = {"testable": on_logits.testable, "window_end": on_logits.window_end,
                            "effect": [on_logits.effect.estimate, on_logits.effect.ci_low, on_logits.effect.ci_high],
                            "p_descriptive": on_logits.test.p_value,
                            "note": "exploratory, not pre-registered: the same test on the log-odds scale of the score"}
  if "decay" in confirmatory:
    cell["verdicts"].append(verdicts.verdict(
        f"{label}/decay", "fast, then slow: more undone early than a constant per-example rate, before the floor",
        decay.effect, decay.test, "positive", per_seed=decay.gaps,
        smallest_effect_of_interest=SMALLEST_EFFECTS["decay"],
        can_show="a slowing-down of the rebound before the score is back at the pre-trained level",
        cannot_show="the shape at or after the floor, or between grid points"))
  if "first_stage_trend" in confirmatory and len(config.first_sizes) >= 2:
    trend = statistics.stratified_trend(config.first_sizes, np.log2(life).T, alternative="decreasing",
                                        units="log2 examples", what="slope of log2 half-life on log2 n1")
    cell["verdicts"].append(verdicts.verdict(
        f"{label}/first-stage trend", "more alignment data, faster rebound: the half-life falls with n1",
        trend.effect, trend.test, "negative", per_seed=trend.slopes,
        smallest_effect_of_interest=SMALLEST_EFFECTS["first_stage_trend"],
        can_show="that curves after more alignment lose half their gain in fewer examples",
        cannot_show="why (gain size and curve shape are confounded in the half-life)"))
  return cell


def _trend_numbers(levels, values: np.ndarray, alternative: str) -> dict:
  """A descriptive trend: level means with CIs, mean per-seed slope with CI and Page's exact p (not a verdict)."""
  trend = statistics.stratified_trend(levels, values, alternative=alternative)
  return {"level_means": trend.level_means.tolist(), "level_ci95": trend.level_ci.tolist(),
          "slope": trend.effect.estimate, "slope_ci": [trend.effect.ci_low, trend.effect.ci_high],
          "page_p": trend.test.p_value}


def table3(config: ReboundConfig, n: np.ndarray, score: np.ndarray, pretrained: np.ndarray, kl: np.ndarray) -> dict:
  """Paper Appendix Table 3 analogue: KL to the pre-trained model after the first stage, examples to bring it below
  epsilon_nats, the smallest KL on the curve, examples to bring the score back to the pre-trained model's, and
  whether that number falls with n1 (the paper's pattern; descriptive, two-sided)."""
  to_kl = np.stack([[_first_below(n, kl[s, i], config.epsilon_nats) for i in range(kl.shape[1])]
                    for s in range(kl.shape[0])])
  to_score = np.stack([[_first_below(n, score[s, i] - pretrained[s], 0.0) for i in range(score.shape[1])]
                       for s in range(score.shape[0])])
  finite = np.all(np.isfinite(to_score), axis=1)
  tension = ({"seeds_used": int(finite.sum()), **_trend_numbers(config.first_sizes, to_score[finite].T, "two-sided")}
             if finite.sum() >= 2 and len(config.first_sizes) >= 2 else {"seeds_used": int(finite.sum())})
  return {"kl_after_first_stage_nats": _ci(kl[..., 0], axis=0),
          "examples_to_kl_below_epsilon_median": np.median(to_kl, axis=0).tolist(),
          "examples_to_kl_below_epsilon_reached": np.isfinite(to_kl).sum(axis=0).tolist(),
          "min_kl_along_curve_nats": _ci(kl.min(axis=-1), axis=0),
          "examples_to_pretrained_score_median": np.median(to_score, axis=0).tolist(),
          "examples_to_pretrained_score_reached": np.isfinite(to_score).sum(axis=0).tolist(),
          "tension": tension}


def _first_below(n: np.ndarray, curve: np.ndarray, threshold: float) -> float:
  """First n at which `curve` falls below `threshold`, linearly interpolated; inf if never on the grid."""
  below = np.flatnonzero(curve < threshold)
  if below.size == 0:
    return math.inf
  i = int(below[0])
  if i == 0:
    return float(n[0])
  return float(n[i - 1] + (curve[i - 1] - threshold) / (curve[i - 1] - curve[i]) * (n[i] - n[i - 1]))


FACTORS = (("size", "parameter_count", "size_trend", "size_late_trend",
            "larger model, faster rebound: the half-life falls with the parameter count (paper Fig. 5)",
            "larger model, slower late decline (paper Fig. 5)"),
           ("pretrain_mass", "pretrain_tokens", "volume_trend", None,
            "more pre-training, faster rebound: the half-life falls with pre-training tokens (paper Fig. 6)", None))
"""Grid factors tested when a run varies them: (Unit attribute, level key, test name, late test name, claims)."""


def factor_trends(config: ReboundConfig, found: dict, confirmatory: tuple) -> list[dict]:
  """For each factor the grid varies, per group of units alike in everything else: the half-life (mean over n1 per
  seed) against the factor, and for model size the late decline; confirmatory where CONFIRMATORY says so."""
  n = np.asarray(config.second_sizes, dtype=np.float64)
  rows = []
  for attribute, level_key, test_name, late_name, claim, late_claim in FACTORS:
    groups: dict = {}
    for unit, (saved, arrays) in found.items():
      rest = tuple(getattr(unit, a) for a in ("family", "size", "pretrain_mass", "order") if a != attribute)
      for index, method in enumerate(saved["methods"]):
        u = undone_share(arrays["score"][index], arrays["pretrained_score"])
        groups.setdefault(rest + (method,), []).append((saved[level_key], u))
    for key, members in groups.items():
      if len(members) < 2:
        continue
      members.sort(key=lambda m: m[0])
      levels = [m[0] for m in members]
      name = " ".join(str(v) for v in key)
      lives = np.stack([np.log2(censored_half_life(n, m[1])).mean(axis=1) for m in members])  # (levels, seeds)
      late = np.stack([_mean_over_first_sizes(late_slope(n, m[1])) for m in members])
      trend = statistics.stratified_trend(levels, lives, alternative="decreasing", units="log2 examples",
                                          what=f"slope of log2 half-life on log2 {level_key}")
      row = {"group": name, "factor": level_key, "levels": levels, "log2_half_life": _ci(lives, axis=1),
             "late_slope": _ci(late, axis=1), "verdicts": []}
      if test_name in confirmatory:
        row["verdicts"].append(verdicts.verdict(
            f"{name}/{test_name}", claim, trend.effect, trend.test, "negative", per_seed=trend.slopes,
            smallest_effect_of_interest=SMALLEST_EFFECTS[test_name],
            can_show=f"that the half-life falls as {level_key} grows", cannot_show="a non-monotone dependence"))
      if late_name is not None and late_name in confirmatory and np.all(np.isfinite(late)):
        late_trend = statistics.stratified_trend(levels, late, alternative="decreasing",
                                                 units="share of the gain per example",
                                                 what=f"slope of the late decline on log2 {level_key}")
        row["verdicts"].append(verdicts.verdict(
            f"{name}/{late_name}", late_claim, late_trend.effect, late_trend.test, "negative",
            per_seed=late_trend.slopes,
            smallest_effect_of_interest=SMALLEST_EFFECTS[late_name],
            can_show=f"that the decline after {LATE_FROM} examples is slower for larger models",
            cannot_show="whether the slower decline is the same process as the early rebound"))
      rows.append(row)
  return rows


def _mean_over_first_sizes(values: np.ndarray) -> np.ndarray:
  """Mean over the first-stage sizes (last axis) ignoring NaN curves; NaN where a seed has none."""
  finite = np.isfinite(values)
  return np.where(finite.any(axis=-1), np.where(finite, values, 0).sum(axis=-1) / np.maximum(finite.sum(axis=-1), 1),
                  np.nan)


def summarize(config: ReboundConfig, run_dir: RunDir, confirmatory: tuple = CONFIRMATORY["rebound"]) -> dict:
  """Per unit and method: cell_summary; across units: factor_trends; 'verdicts': the confirmatory verdicts, raw
  (experiments.verdicts: corrected by whoever reports them)."""
  found = collect(config, run_dir)
  cells = {}
  for unit, (saved, arrays) in found.items():
    for index, method in enumerate(saved["methods"]):
      label = f"{unit.name} {method}"
      cells[label] = {"unit": unit.name, "method": method, "order": unit.order, "family": unit.family,
                      "size": list(unit.size), "parameter_count": saved["parameter_count"],
                      "pretrain_mass": unit.pretrain_mass, "pretrain_tokens": saved["pretrain_tokens"],
                      **cell_summary(config, arrays, index, label, confirmatory)}
  trend_rows = factor_trends(config, found, confirmatory)
  found_verdicts = [v for c in cells.values() for v in c["verdicts"]] + [v for t in trend_rows for v in t["verdicts"]]
  return {"cells": cells, "trends": trend_rows, "verdicts": found_verdicts}


def format_summary(summary: dict, config: ReboundConfig) -> str:
  """Text tables: score and share-undone curves per cell (mean ± CI over seeds), half-lives, Table 3, trends, and
  the verdicts Holm-corrected within this run."""
  lines = []
  x = list(config.second_sizes)
  for label, cell in summary["cells"].items():
    lines.append(f"{label} ({cell['parameter_count']} parameters, {cell['pretrain_tokens']:.0f} pre-training "
                 f"tokens; pre-trained score {cell['pretrained_score']['mean']:.3f})")
    for name, key in (("score", "score"), ("share undone", "undone_share")):
      lines.append(f"  {name} at n2 = " + " ".join(f"{n:>13}" for n in x))
      for i, n1 in enumerate(config.first_sizes):
        means, halves = cell[key]["mean"][i], cell[key]["ci95"][i]
        lines.append(f"  n1 = {n1:>6}:{' ' * (len(name) - 3)} "
                     + " ".join(f"{m:6.3f}±{h:<6.3f}" for m, h in zip(means, halves, strict=True)))
    lives = ", ".join(f"{m:.3g}±{h:.2g}" for m, h in zip(cell["half_life"]["mean"], cell["half_life"]["ci95"],
                                                         strict=True))
    lines.append(f"  half-life (examples to undo half the gain) per n1: {lives} ({cell['half_life_censored']} "
                 "censored)")
    for name, key in (("share undone", "decay"), ("log-odds share undone (exploratory)", "decay_log_odds")):
      gap = cell[key]["effect"]
      lines.append(f"  curve minus chord before the floor, {name}: {gap[0]:+.3g} [{gap[1]:+.3g}, {gap[2]:+.3g}] "
                   "(> 0: fast then slow; < 0: slow then fast)")
    t3 = cell["table3"]
    lines.append("  Table 3 analogue per n1: KL to pre-trained after alignment (nats) "
                 + ", ".join(f"{m:.3f}" for m in t3["kl_after_first_stage_nats"]["mean"])
                 + f"; n2 to KL < {config.epsilon_nats:g} (median) " + ", ".join(
                     f"{v:.4g}" for v in t3["examples_to_kl_below_epsilon_median"])
                 + "; n2 back to the pre-trained score (median) " + ", ".join(
                     f"{v:.4g}" for v in t3["examples_to_pretrained_score_median"]))
  for row in summary["trends"]:
    lines.append(f"trend over {row['factor']} {row['levels']} ({row['group']}): log2 half-life "
                 + ", ".join(f"{m:.3g}" for m in row["log2_half_life"]["mean"]))
  lines += verdicts.run_lines(summary["verdicts"])
  return "\n".join(lines)
