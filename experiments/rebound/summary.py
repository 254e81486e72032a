"""Summary statistics and verdicts of a rebound run: curves with CIs, the Table 3 analogue, trends across the grid."""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import stats

from experiments import verdicts_legacy as verdicts
from experiments.rebound.config import ReboundConfig
from experiments.rebound.run import units
from experiments.run_dir import RunDir
from experiments.verdicts_legacy import mean_ci


def collect(config: ReboundConfig, run_dir: RunDir) -> dict:
  """{unit: (summary, arrays)} of the finished units, in grid order."""
  return {unit: run_dir.load(unit.name) for unit in units(config) if run_dir.done(unit.name)}


def early_drop(score: np.ndarray, second_sizes) -> np.ndarray:
  """Fall of the score per second-stage example over the first interval (0 -> second_sizes[1]), shape (...)."""
  return (score[..., 0] - score[..., 1]) / (second_sizes[1] - second_sizes[0])


def undone_share(score: np.ndarray, pretrained_score: np.ndarray, second_sizes) -> np.ndarray:
  """Share of the first stage's gain (score after it minus the pre-trained score) undone by second_sizes[1]
  examples: (s(0) - s(n_1)) / (s(0) - s_pre); score (seeds, n_first, n_second), pretrained_score (seeds,)."""
  del second_sizes
  gain = score[..., 0] - pretrained_score[:, None]
  return (score[..., 0] - score[..., 1]) / np.where(np.abs(gain) > 1e-12, gain, np.nan)


def _ci(values, axis=-1) -> dict:
  mean, half = mean_ci(values, axis=axis)
  return {"mean": np.asarray(mean).tolist(), "ci95": np.asarray(half).tolist()}


def cell_summary(config: ReboundConfig, arrays: dict, method_index: int, label: str) -> dict:
  """Curves, verdicts and the Table 3 analogue of one unit and method.

  Curves: mean ± 95% CI over seeds of the score, positive score, rates (bits per response) and KL to the
  pre-trained model (nats per response) at every (n1, n2). Verdicts: fast-then-slow fall of the score
  (paper Fig. 4), faster early fall with more first-stage data, and higher start with more first-stage data.
  Table 3: KL(model || pre-trained) after the first stage, the second-stage examples needed to bring it below
  epsilon_nats (linear interpolation; inf when never within the grid), the smallest KL along the curve, and the
  examples needed to bring the score back to the pre-trained model's.
  """
  x = np.asarray(config.second_sizes, dtype=np.float64)
  score = arrays["score"][method_index]  # (seeds, n_first, n_second)
  kl = arrays["kl_to_pretrained_nats"][method_index]
  pretrained = arrays["pretrained_score"]
  by_curve = np.moveaxis(score, 0, -1)  # (n_first, n_second, seeds)
  fast_slow = verdicts.fast_then_slow_verdict(x, by_curve)
  fast_slow = dataclasses.replace(fast_slow, effect=f"{label}: {fast_slow.effect.lower()}")
  early = early_drop(score, x)  # (seeds, n_first)
  more_data = verdicts.increasing_trend_verdict(f"{label}: more first-stage data -> faster early fall",
                                                config.first_sizes, early.T)
  higher_start = verdicts.increasing_trend_verdict(f"{label}: more first-stage data -> higher start",
                                                   config.first_sizes, score[..., 0].T)
  needed_kl = verdicts.examples_to_threshold(x, kl, config.epsilon_nats)  # (seeds, n_first)
  needed_score = verdicts.examples_to_threshold(x, score - pretrained[:, None, None], 0.0)
  _, late = verdicts.early_late_slopes(x, score)
  return {
      "label": label,
      "score": _ci(score, axis=0), "positive_score": _ci(arrays["positive_score"][method_index], axis=0),
      "kl_to_pretrained_nats": _ci(kl, axis=0),
      "rates_bits": _ci(arrays["rates_bits"][method_index], axis=0),
      "pretrained_score": _ci(pretrained, axis=0),
      "early_drop_per_example": _ci(early, axis=0), "late_drop_per_example": _ci(late, axis=0),
      "undone_share_first_interval": _ci(undone_share(score, pretrained, x), axis=0),
      "table3": {
          "kl_after_first_stage_nats": _ci(kl[..., 0], axis=0),
          "examples_to_kl_below_epsilon_median": np.median(needed_kl, axis=0).tolist(),
          "examples_to_kl_below_epsilon_reached": np.isfinite(needed_kl).sum(axis=0).tolist(),
          "min_kl_along_curve_nats": _ci(kl.min(axis=-1), axis=0),
          "argmin_kl_examples_median": np.median(x[kl.argmin(axis=-1)], axis=0).tolist(),
          "examples_to_pretrained_score_median": np.median(needed_score, axis=0).tolist(),
          "examples_to_pretrained_score_reached": np.isfinite(needed_score).sum(axis=0).tolist(),
          "tension": tension(config.first_sizes, needed_score),
      },
      "verdicts": [fast_slow.line(), more_data.line(), higher_start.line()],
      "holds": {"fast_then_slow": fast_slow.holds, "more_data_faster": more_data.holds,
                "more_data_higher_start": higher_start.holds},
  }


def tension(first_sizes, needed: np.ndarray) -> dict:
  """Does more first-stage data need fewer second-stage examples to revert (paper Table 3)?

  Spearman correlation of the examples needed (seeds, n_first) with n1 over seeds where every n1 reverted
  within the grid; rho < 0 is the paper's pattern.
  """
  finite = np.all(np.isfinite(needed), axis=1)
  if finite.sum() < 1 or len(first_sizes) < 2:
    return {"rho": None, "p_two_sided": None, "seeds_used": int(finite.sum())}
  levels = np.repeat(np.asarray(first_sizes, np.float64)[None], finite.sum(), axis=0)
  result = stats.spearmanr(levels.ravel(), needed[finite].ravel())
  return {"rho": float(result.statistic), "p_two_sided": float(result.pvalue), "seeds_used": int(finite.sum())}


FACTORS = (("size", "parameters", "larger model -> faster early fall (paper Fig. 5)",
            "larger model -> slower late decline (paper Fig. 5)"),
           ("pretrain_mass", "pretrain_tokens", "more pre-training -> faster early fall (paper Fig. 6)", None))
"""Grid factors whose trend is tested when a run varies them: (Unit attribute, x of the trend, effect on the
early fall, effect on the late decline or None)."""


def trend(config: ReboundConfig, members: list, factor: str, effect: str, late_effect: str | None = None) -> dict:
  """The early fall per example (mean over n1) against one grid factor, for units alike in everything else.

  Args:
    members: [(level, score (seeds, n_first, n_second), pre-trained score (seeds,))] sorted by level.
    factor: what the levels are ('parameters' or 'pretrain_tokens').
    effect: the paper's effect on the early fall, in words.
    late_effect: if given, also tested: the late decline per example falls with the factor.
  """
  x = np.asarray(config.second_sizes, dtype=np.float64)
  levels = np.asarray([m[0] for m in members], dtype=np.float64)
  early = np.stack([early_drop(m[1], x).mean(axis=-1) for m in members])  # (levels, seeds)
  late = np.stack([verdicts.early_late_slopes(x, m[1])[1].mean(axis=-1) for m in members])
  undone = np.stack([np.nanmean(undone_share(m[1], m[2], x), axis=-1) for m in members])
  start = np.stack([m[1][..., 0].mean(axis=-1) for m in members])
  found = [verdicts.increasing_trend_verdict(effect, levels, early)]
  if late_effect is not None:  # a slower late decline = the negated late slope grows with the factor
    found.append(verdicts.increasing_trend_verdict(late_effect, levels, -late))
  return {"factor": factor, "levels": levels.tolist(), "early_drop_per_example": _ci(early),
          "late_drop_per_example": _ci(late), "undone_share_first_interval": _ci(undone),
          "score_after_first_stage": _ci(start), "pretrained_score": _ci(np.stack([m[2] for m in members])),
          "verdicts": [v.line() for v in found], "holds": [v.holds for v in found]}


def trends(config: ReboundConfig, found: dict) -> list[dict]:
  """trend() for every factor of FACTORS the grid varies, per group of units alike in everything else."""
  rows = []
  for attribute, factor, effect, late_effect in FACTORS:
    groups = {}
    for unit, (summary, arrays) in found.items():
      rest = tuple(getattr(unit, n) for n in ("family", "size", "pretrain_mass", "order") if n != attribute)
      level = summary["parameter_count"] if attribute == "size" else summary["pretrain_tokens"]
      for index, method in enumerate(summary["methods"]):
        groups.setdefault(rest + (method,), []).append((level, arrays["score"][index], arrays["pretrained_score"]))
    for key, members in groups.items():
      if len(members) >= 2:
        members.sort(key=lambda m: m[0])
        name = " ".join(str(v) for v in key)
        rows.append({"group": name, **trend(config, members, factor, f"{name}: {effect}",
                                            late_effect and f"{name}: {late_effect}")})
  return rows


def summarize(config: ReboundConfig, run_dir: RunDir) -> dict:
  """Per unit and method: cell_summary; across units: trends with model size and with pre-training tokens,
  and the fast-then-slow verdict per source family (whenever the grid varies that factor)."""
  found = collect(config, run_dir)
  cells = {}
  for unit, (summary, arrays) in found.items():
    for index, method in enumerate(summary["methods"]):
      label = f"{unit.name} {method}"
      cells[label] = {"unit": unit.name, "method": method, "order": unit.order, "family": unit.family,
                      "size": list(unit.size), "parameter_count": summary["parameter_count"],
                      "pretrain_mass": unit.pretrain_mass, "pretrain_tokens": summary["pretrain_tokens"],
                      **cell_summary(config, arrays, index, label)}
  families = {}
  for cell in cells.values():
    families.setdefault((cell["order"], cell["method"], tuple(cell["size"]), cell["pretrain_mass"]), []).append(cell)
  family_rows = [{"order": order, "method": method, "size": list(size), "pretrain_mass": mass,
                  "families": [m["family"] for m in members],
                  "fast_then_slow": [m["holds"]["fast_then_slow"] for m in members],
                  "early_drop_per_example": [m["early_drop_per_example"]["mean"] for m in members],
                  "late_drop_per_example": [m["late_drop_per_example"]["mean"] for m in members]}
                 for (order, method, size, mass), members in families.items() if len(members) >= 2]
  trend_rows = trends(config, found)
  return {"cells": cells, "trends": trend_rows, "families": family_rows,
          "verdicts": [line for c in cells.values() for line in c["verdicts"]]
          + [line for t in trend_rows for line in t["verdicts"]]}


def format_summary(summary: dict, config: ReboundConfig) -> str:
  """Text tables: score curves per cell (mean ± CI over seeds), the Table 3 analogue, trends and verdicts."""
  lines = []
  x = list(config.second_sizes)
  for label, cell in summary["cells"].items():
    lines.append(f"{label} ({cell['parameter_count']} parameters, {cell['pretrain_tokens']:.0f} pre-training "
                 f"tokens; pre-trained score {cell['pretrained_score']['mean']:.3f})")
    lines.append("  score at n2 = " + " ".join(f"{n:>13}" for n in x))
    for i, n1 in enumerate(config.first_sizes):
      means, halves = cell["score"]["mean"][i], cell["score"]["ci95"][i]
      lines.append(f"  n1 = {n1:>6}:   " + " ".join(f"{m:6.3f}±{h:<6.3f}" for m, h in zip(means, halves, strict=True)))
    t3 = cell["table3"]
    lines.append("  Table 3 analogue: n1, KL to pre-trained after alignment (nats), n2 to KL < "
                 f"{config.epsilon_nats:g} (median; seeds reached), min KL on the curve, n2 to pre-trained score")
    for i, n1 in enumerate(config.first_sizes):
      lines.append(f"    {n1:>6}  {t3['kl_after_first_stage_nats']['mean'][i]:.3f}±"
                   f"{t3['kl_after_first_stage_nats']['ci95'][i]:.3f}  "
                   f"{t3['examples_to_kl_below_epsilon_median'][i]:>7.4g} "
                   f"({t3['examples_to_kl_below_epsilon_reached'][i]}"
                   f"/{config.seeds})  {t3['min_kl_along_curve_nats']['mean'][i]:.3f}  "
                   f"{t3['examples_to_pretrained_score_median'][i]:>7.4g} "
                   f"({t3['examples_to_pretrained_score_reached'][i]}/{config.seeds})")
    tension_ = t3["tension"]
    if tension_["rho"] is not None:
      lines.append(f"  Table 3 tension: Spearman rho(n1, n2 to pre-trained score) = {tension_['rho']:+.3f} "
                   f"(two-sided p = {tension_['p_two_sided']:.2g}, {tension_['seeds_used']} seeds); the paper's "
                   "pattern is rho < 0")
    lines += [f"  {line}" for line in cell["verdicts"]]
  for row in summary["trends"]:
    lines.append(f"trend over {row['factor']} {row['levels']} ({row['group']}): early fall per example "
                 + ", ".join(f"{m:.3g}" for m in row["early_drop_per_example"]["mean"]))
    lines += [f"  {line}" for line in row["verdicts"]]
  for row in summary["families"]:
    lines.append(f"families {row['families']} ({row['order']} {row['method']}): fast-then-slow "
                 f"{row['fast_then_slow']}")
  return "\n".join(lines)
