"""The resistance figure (forward against inverse alignment per cell), drawn from a saved resistance run."""

from __future__ import annotations

import pathlib

import numpy as np

from experiments import plotting

FILE = "resistance.png"  # the name the reproduce tests and the verdicts block expect.
PANELS = (("loss_nats_per_token", "final training loss\n(nats/token)"),
          ("excess_nats_per_token", "loss − target entropy\n(nats/token)"))


def draw(config, summary: dict, run_dir, figures_dir: pathlib.Path) -> list[pathlib.Path]:
  """Draws forward and inverse final loss and entropy-free excess (mean ± 95% CI over seeds, points with error
  bars) for every (dataset, size, pair) cell of the run's summary.

  Returns:
    [figures_dir / FILE], or [] when the summary has no finished cell.

  References:
    Ji et al., "Language Models Resist Alignment", ACL 2025, Table 1.
  """
  del config, run_dir
  rows = summary.get("rows", [])
  if not rows:
    return []
  fig, axes = plotting.subplots(len(PANELS), 1, figsize=(max(8.0, 0.42 * len(rows)), 6.4), sharex=True)
  x = np.arange(len(rows))
  for ax, (quantity, label) in zip(axes, PANELS, strict=True):
    low, high = [], []
    for offset, direction, color, text in ((-0.2, "forward", "C0", "forward (θ_early on θ_late's outputs)"),
                                           (0.2, "inverse", "C3", "inverse (θ_late on θ_early's outputs)")):
      mean = np.array([row[f"{direction}_{quantity}"]["mean"] for row in rows])
      half = np.nan_to_num([row[f"{direction}_{quantity}"]["ci95"] for row in rows])
      ax.errorbar(x + offset, mean, yerr=half, fmt="o", markersize=3, color=color, capsize=2, label=text)
      low.append(np.min(mean - half))
      high.append(np.max(mean + half))
    span = max(high) - min(low)
    ax.set_ylim(min(low) - 0.05 * span, max(high) + 0.3 * span)  # headroom for the legend
    ax.set_ylabel(label, fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", ncol=2)
  for boundary in np.flatnonzero([a["unit"] != b["unit"] for a, b in zip(rows[:-1], rows[1:], strict=True)]) + 0.5:
    for ax in axes:
      ax.axvline(boundary, color="0.7", linewidth=0.6)
  counts = ", ".join(f"{key}: inverse lower in {stats['cells_inverse_lower']}/{stats['cells']} cells"
                     for key, stats in summary.get("statistics", {}).items() if "cells" in stats)
  axes[0].set_title(f"Resistance: forward vs inverse alignment between SFT checkpoints (mean ± 95% CI over seeds)\n"
                    f"{counts}", fontsize=9)
  axes[-1].set_xticks(x, [f"{row['unit']} {row['pair']}" for row in rows], rotation=90, fontsize=6)
  return [plotting.save(fig, pathlib.Path(figures_dir) / FILE, dpi=120)]
