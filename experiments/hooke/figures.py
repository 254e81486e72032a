"""The simulated Hooke's-law figures, drawn from a saved `simulate hooke` run (figures/data/hooke)."""

from __future__ import annotations

import pathlib

import numpy as np

from experiments import plotting
from experiments.hooke import summary as hooke_summary
from experiments.hooke.config import HookeConfig
from experiments.run_dir import RunDir
from experiments.statistics import mean_ci
from theory.conventions import ALIGN, PRETRAIN

FILES = ("hooke_simulated_ratio.png", "hooke_simulated_deltas.png")


def draw(config: HookeConfig, summary: dict, run_dir: RunDir, figures_dir: pathlib.Path) -> list[pathlib.Path]:
  """Draws |Δγ_a/Δγ_p| against k and Δγ against l for every model and regime from the run's saved units."""
  del summary
  collected = hooke_summary.collect(config, run_dir)
  if not collected:
    return []
  figures_dir = pathlib.Path(figures_dir)
  return [_draw_ratio(config, collected, figures_dir / FILES[0]),
          _draw_deltas(config, collected, figures_dir / FILES[1])]


def _grid(config, collected):
  models = [m for m in config.models if any((m, r) in collected for r in config.regimes)]
  fig, axes = plotting.subplots(len(models), len(config.regimes),
                                figsize=(5.2 * len(config.regimes), 3.6 * len(models)), squeeze=False)
  return fig, axes, models


def _draw_ratio(config, collected, out: pathlib.Path) -> pathlib.Path:
  fig, axes, models = _grid(config, collected)
  colors = plotting.colors("plasma", len(config.l_grid), 0.8)
  for row, model in enumerate(models):
    for col, regime in enumerate(config.regimes):
      ax = axes[row, col]
      entry = collected.get((model, regime))
      if entry is None:
        ax.set_visible(False)
        continue
      k = entry["k"]
      with np.errstate(divide='ignore', invalid='ignore'):  # Δγ_p = 0 (no change at all) gives NaN
        ratio = entry["delta"][..., ALIGN] / entry["delta"][..., PRETRAIN]  # (k, seeds, l)
      for j, (color, l_value) in enumerate(zip(colors, config.l_grid, strict=True)):
        values = np.abs(ratio[..., j])
        mean, half = mean_ci(values, axis=1)
        negative = np.mean(ratio[..., j] < 0, axis=1)
        slopes = hooke_summary.slope_per_seed(k, ratio[..., j])
        slope, slope_half = mean_ci(slopes)
        ax.errorbar(k * (1 + 0.04 * j), mean, yerr=half, color=color, marker="o", ms=3, capsize=2,
                    label=f"l={l_value:g}: slope {slope:.2f}±{slope_half:.2f}")
        for kv, mv, share in zip(k, mean, negative, strict=True):
          if share < 1:  # some seeds have Δγ_a/Δγ_p > 0 (not the paper's opposite signs): mark the point
            ax.plot(kv * (1 + 0.04 * j), mv, marker="x", color="red", ms=6)
      ax.plot(k, k, "k--", lw=1, label="theory: |ratio| = k (l → 0)")
      ax.set(xscale="log", yscale="log", xlabel="k = |D_p| / |D_a|", ylabel="|Δγ_a / Δγ_p| (mean ± 95% CI)",
             title=f"{model} ({entry['parameter_count']} params), {regime}")
      ax.legend(fontsize=6)
  fig.suptitle("Simulated Hooke's law: red × = some seeds without the paper's opposite signs", fontsize=9)
  return plotting.save(fig, out)


def _draw_deltas(config, collected, out: pathlib.Path) -> pathlib.Path:
  fig, axes, models = _grid(config, collected)
  l = np.asarray(config.l_grid)
  for row, model in enumerate(models):
    for col, regime in enumerate(config.regimes):
      ax = axes[row, col]
      entry = collected.get((model, regime))
      if entry is None:
        ax.set_visible(False)
        continue
      colors = plotting.colors("viridis", len(entry["k"]))
      for color, k_value, delta in zip(colors, entry["k"], entry["delta"], strict=True):
        mean = delta.mean(axis=0)  # (l, 3) over seeds
        ax.plot(l, np.abs(mean[:, ALIGN]), color=color, marker="o", ms=3, label=f"|Δγ_a|, k={k_value:g}")
        ax.plot(l, np.abs(mean[:, PRETRAIN]), color=color, ls="--", marker="s", ms=3, label=f"|Δγ_p|, k={k_value:g}")
      ax.set(xscale="log", yscale="log", xlabel="l = |D_t| / |D_a|", ylabel="|Δ rate| (bits / response)",
             title=f"{model}, {regime}")
      if row == 0 and col == 0:
        ax.legend(fontsize=5, ncol=2)
  fig.suptitle("Simulated Δγ_a (solid) and Δγ_p (dashed) against l, mean over seeds", fontsize=9)
  return plotting.save(fig, out)
