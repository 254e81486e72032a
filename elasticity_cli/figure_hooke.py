"""The simulated Hooke's-law figures, drawn from a saved `simulate hooke` run (figures/data/hooke)."""

from __future__ import annotations

import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from proofs_check.verdicts import mean_ci  # noqa: E402
from theory import records  # noqa: E402
from toy_models import config_io, hooke_summary  # noqa: E402
from toy_models.datasets import ALIGN, PRETRAIN  # noqa: E402
from toy_models.hooke_config import HookeConfig  # noqa: E402
from toy_models.run_dir import RunDir  # noqa: E402

DATA_NAME = "hooke"
FILES = ("hooke_simulated_ratio.png", "hooke_simulated_deltas.png")


def load(data_root: pathlib.Path, name: str = DATA_NAME) -> tuple[HookeConfig, RunDir] | None:
  """The config and run directory of the saved hooke run data_root/name, or None if there is none."""
  path = pathlib.Path(data_root) / name
  if not (path / "config.json").exists():
    return None
  config = config_io.build(HookeConfig, records.read_json(path / "config.json")["config"])
  return config, RunDir(path, config)


def draw(data_root: pathlib.Path, figures_dir: pathlib.Path, name: str = DATA_NAME) -> list[pathlib.Path]:
  """Draws |Δγ_a/Δγ_p| against k and Δγ against l for every model and regime; returns the files written."""
  loaded = load(data_root, name)
  if loaded is None:
    return []
  config, run_dir = loaded
  collected = hooke_summary.collect(config, run_dir)
  if not collected:
    return []
  figures_dir = pathlib.Path(figures_dir)
  figures_dir.mkdir(parents=True, exist_ok=True)
  return [_draw_ratio(config, collected, figures_dir / FILES[0]),
          _draw_deltas(config, collected, figures_dir / FILES[1])]


def _grid(config, collected):
  models = [m for m in config.models if any((m, r) in collected for r in config.regimes)]
  fig, axes = plt.subplots(len(models), len(config.regimes), figsize=(5.2 * len(config.regimes), 3.6 * len(models)),
                           squeeze=False)
  return fig, axes, models


def _draw_ratio(config, collected, out: pathlib.Path) -> pathlib.Path:
  fig, axes, models = _grid(config, collected)
  colors = plt.cm.plasma(np.linspace(0, 0.8, len(config.l_grid)))
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
  fig.tight_layout()
  fig.savefig(out, dpi=110, metadata={"Software": None})
  plt.close(fig)
  return out


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
      colors = plt.cm.viridis(np.linspace(0, 0.85, len(entry["k"])))
      for color, k_value, delta in zip(colors, entry["k"], entry["delta"], strict=True):
        mean = delta.mean(axis=0)  # (l, 3) over seeds
        ax.plot(l, np.abs(mean[:, ALIGN]), color=color, marker="o", ms=3, label=f"|Δγ_a|, k={k_value:g}")
        ax.plot(l, np.abs(mean[:, PRETRAIN]), color=color, ls="--", marker="s", ms=3, label=f"|Δγ_p|, k={k_value:g}")
      ax.set(xscale="log", yscale="log", xlabel="l = |D_t| / |D_a|", ylabel="|Δ rate| (bits / response)",
             title=f"{model}, {regime}")
      if row == 0 and col == 0:
        ax.legend(fontsize=5, ncol=2)
  fig.suptitle("Simulated Δγ_a (solid) and Δγ_p (dashed) against l, mean over seeds", fontsize=9)
  fig.tight_layout()
  fig.savefig(out, dpi=110, metadata={"Software": None})
  plt.close(fig)
  return out
