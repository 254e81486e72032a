"""The REPORT.md section of the simulated Hooke's law: the table, slopes with CIs, and the sequential answer."""

from __future__ import annotations

import numpy as np

from experiments.hooke import summary as hooke_summary
from experiments.hooke.config import HookeConfig

SLOPE_MATCH = 0.01  # a slope within this of the exact mixture's (or within its CI) is reported as matching it.


def slope_reading(row: dict) -> str:
  """What a slope of log|Δγ_a/Δγ_p| on log k with its CI says, against 0 and the exact mixture's slope."""
  mean, half, theory = row["slope_mean"], row["slope_ci95"], row["theory_slope"]
  if not np.isfinite(mean):
    return "no slope (a ratio was 0 or undefined)"
  matches = abs(mean - theory) <= max(half, SLOPE_MATCH)
  if matches and abs(mean) <= half:
    return f"inconclusive: the CI holds both 0 and the exact mixture's slope {theory:.3f}"
  if matches:
    return f"matches the exact mixture's slope {theory:.3f} on the same data (1 as l -> 0)"
  if abs(mean) <= half:
    return "consistent with 0: the ratio does not scale with k"
  return "neither 0 nor the mixture's slope within the CI"


def report(config: HookeConfig, summary: dict, context) -> str:
  """The section: setup, the table of slopes, one line per model and regime, the figures."""
  smallest = f"{min(config.l_grid):g}"
  lines = [f"k grid {list(config.k_grid)}, l grid {list(config.l_grid)}, |D_a| = {config.align_mass:g} responses, "
           f"depth {config.depth}, {config.family} sources, {config.perturbation} D_t, {config.seeds} seeds, "
           f"{config.sampling} datasets. Rates in bits per response; ± are 95% t-intervals over seeds.", "",
           "```", hooke_summary.format_summary({**summary, "verdicts": []}, config), "```", ""]
  for key, entry in summary["models"].items():
    row = entry["by_l"][smallest]
    lines.append(f"- {key}: slope {row['slope_mean']:.3f} ± {row['slope_ci95']:.3f} at l = {smallest} — "
                 f"{slope_reading(row)}; paper's signs Δγ_p < 0 < Δγ_a in {100 * row['share_paper_signs']:.0f}% of "
                 "runs.")
  lines += ["", "Verdicts:", ""] + context.verdicts(summary) + [""]
  return "\n".join(lines + context.links()) + "\n"
