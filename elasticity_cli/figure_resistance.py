"""The resistance figure (forward against inverse alignment per cell), drawn from a saved resistance run."""

from __future__ import annotations

import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from theory import records  # noqa: E402
from toy_models import config_io, resistance_summary  # noqa: E402
from toy_models.resistance_config import ResistanceConfig  # noqa: E402
from toy_models.run_dir import RunDir  # noqa: E402

DATA_NAME = "resistance"
FILE = "resistance.png"


def draw(data_root: pathlib.Path, figures_dir: pathlib.Path, name: str = DATA_NAME) -> list[pathlib.Path]:
  """Two panels, final loss and entropy-free excess (nats per token), forward and inverse bars with 95% CIs for
  every (dataset, size, pair) cell; returns [] when data_root/name holds no run."""
  path = pathlib.Path(data_root) / name
  if not (path / "config.json").exists():
    return []
  config = config_io.build(ResistanceConfig, records.read_json(path / "config.json")["config"])
  summary = resistance_summary.summarize(config, RunDir(path, config))
  rows = summary["rows"]
  if not rows:
    return []
  fig, axes = plt.subplots(2, 1, figsize=(max(8.0, 0.45 * len(rows)), 6.4), sharex=True)
  x = np.arange(len(rows))
  for ax, quantity, label in ((axes[0], "loss_nats_per_token", "final training loss (nats/token)"),
                              (axes[1], "excess_nats_per_token", "loss − target entropy (nats/token)")):
    for offset, direction, color in ((-0.2, "forward", "C0"), (0.2, "inverse", "C3")):
      mean = [r[f"{direction}_{quantity}"]["mean"] for r in rows]
      half = np.nan_to_num([r[f"{direction}_{quantity}"]["ci95"] for r in rows])
      ax.bar(x + offset, mean, 0.4, yerr=half, color=color, alpha=0.8, capsize=2,
             label=f"{direction} ({'earlier on later' if direction == 'forward' else 'later on earlier'})")
    ax.set_ylabel(label, fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7)
  axes[0].set_title("Resistance: forward vs inverse alignment between SFT checkpoints (mean ± 95% CI over seeds)",
                    fontsize=9)
  axes[1].set_xticks(x, [f"{r['unit']} {r['pair']}" for r in rows], rotation=90, fontsize=6)
  fig.tight_layout()
  figures_dir = pathlib.Path(figures_dir)
  figures_dir.mkdir(parents=True, exist_ok=True)
  fig.savefig(figures_dir / FILE, dpi=120)
  plt.close(fig)
  return [figures_dir / FILE]
