"""Rebound figures (score against second-stage examples, with 95% CI bands), drawn from saved rebound runs."""

from __future__ import annotations

import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from theory import records  # noqa: E402
from toy_models import config_io, rebound_summary  # noqa: E402
from toy_models.rebound_config import ReboundConfig  # noqa: E402
from toy_models.run_dir import RunDir  # noqa: E402

RUNS = {"rebound": "rebound", "model-size": "model-size", "pretrain-volume": "pretrain-volume",
        "families": "rebound-families"}
"""Experiment -> its default run directory under the data root (the figure files take the experiment's name)."""


def load(data_root: pathlib.Path, name: str) -> tuple[ReboundConfig, dict] | None:
  """The config and summary of the saved run data_root/name (summary recomputed from its units), or None."""
  path = pathlib.Path(data_root) / name
  if not (path / "config.json").exists():
    return None
  config = config_io.build(ReboundConfig, records.read_json(path / "config.json")["config"])
  summary = rebound_summary.summarize(config, RunDir(path, config))
  return (config, summary) if summary["cells"] else None


def _band(ax, x, cell, row, label, color):
  mean = np.asarray(cell["score"]["mean"][row])
  half = np.nan_to_num(np.asarray(cell["score"]["ci95"][row]))
  ax.plot(x, mean, "o-", color=color, label=label, ms=3)
  ax.fill_between(x, mean - half, mean + half, color=color, alpha=0.2)


def _finish(fig, axes, path):
  for ax in np.ravel(axes):
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
  return path


def draw_rebound(config: ReboundConfig, summary: dict, path: pathlib.Path) -> pathlib.Path:
  """One panel per (order, method) cell: a curve per first-stage size, the pre-trained score dashed."""
  cells = list(summary["cells"].values())
  columns = min(len(cells), 2)
  rows = -(-len(cells) // columns)
  fig, axes = plt.subplots(rows, columns, figsize=(5.4 * columns, 3.6 * rows), squeeze=False)
  x = np.asarray(config.second_sizes)
  colors = plt.cm.viridis(np.linspace(0, 0.85, len(config.first_sizes)))
  for ax, cell in zip(axes.ravel(), cells, strict=False):
    for row, n1 in enumerate(config.first_sizes):
      _band(ax, x, cell, row, f"n1 = {n1}", colors[row])
    ax.axhline(cell["pretrained_score"]["mean"], color="gray", ls="--", lw=1, label="pre-trained")
    first, second = ("positive", "negative") if cell["order"] == "positive_first" else ("negative", "positive")
    ax.set_title(f"{first} first, {second} by {cell['method'].upper()}", fontsize=9)
    ax.set_xlabel(f"{second} examples n2")
    ax.set_ylabel(f"P({first} behaviour)")
  for ax in axes.ravel()[len(cells):]:
    ax.set_visible(False)
  return _finish(fig, axes.ravel()[:len(cells)], path)


def draw_rates(config: ReboundConfig, summary: dict, path: pathlib.Path) -> pathlib.Path:
  """Compression rates (bits per response) of the three sources against n2, after the largest first stage."""
  cells = list(summary["cells"].values())
  columns = min(len(cells), 2)
  rows = -(-len(cells) // columns)
  fig, axes = plt.subplots(rows, columns, figsize=(5.4 * columns, 3.4 * rows), squeeze=False)
  x = np.asarray(config.second_sizes)
  last = len(config.first_sizes) - 1
  for ax, cell in zip(axes.ravel(), cells, strict=False):
    mean = np.asarray(cell["rates_bits"]["mean"][last])  # (n_second, 3)
    half = np.nan_to_num(np.asarray(cell["rates_bits"]["ci95"][last]))
    for index, (name, color) in enumerate((("D_p", "C0"), ("positive source", "C2"), ("negative source", "C3"))):
      ax.plot(x, mean[:, index], "o-", ms=3, color=color, label=name)
      ax.fill_between(x, mean[:, index] - half[:, index], mean[:, index] + half[:, index], color=color, alpha=0.2)
    ax.set_title(f"{cell['order'].replace('_', ' ')}, {cell['method'].upper()}, n1 = {config.first_sizes[last]}",
                 fontsize=9)
    ax.set_xlabel("second-stage examples n2")
    ax.set_ylabel("rate (bits per response)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
  for ax in axes.ravel()[len(cells):]:
    ax.set_visible(False)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
  return path


def draw_across(config: ReboundConfig, summary: dict, path: pathlib.Path, key: str, legend) -> pathlib.Path:
  """One panel per first-stage size, a curve per grid level (model size, pre-training mass or family)."""
  cells = sorted(summary["cells"].values(), key=lambda c: c[key] if not isinstance(c[key], str) else 0)
  fig, axes = plt.subplots(1, len(config.first_sizes), figsize=(5.0 * len(config.first_sizes), 3.6), squeeze=False)
  x = np.asarray(config.second_sizes)
  colors = plt.cm.plasma(np.linspace(0, 0.85, len(cells)))
  for column, (ax, n1) in enumerate(zip(axes[0], config.first_sizes, strict=True)):
    for color, cell in zip(colors, cells, strict=True):
      _band(ax, x, cell, column, legend(cell), color)
    ax.set_title(f"after n1 = {n1} positive examples", fontsize=9)
    ax.set_xlabel("negative examples n2")
    ax.set_ylabel("P(positive behaviour)")
  return _finish(fig, axes, path)


def draw(data_root: pathlib.Path, figures_dir: pathlib.Path, runs: dict | None = None) -> list[pathlib.Path]:
  """Draws every rebound-family figure whose run exists; `runs` maps experiment -> run directory name."""
  figures_dir = pathlib.Path(figures_dir)
  written = []
  for experiment, name in (runs or RUNS).items():
    loaded = load(data_root, name)
    if loaded is None:
      continue
    config, summary = loaded
    figures_dir.mkdir(parents=True, exist_ok=True)
    path = figures_dir / f"{experiment.replace('-', '_')}.png"
    if experiment == "rebound":
      written.append(draw_rebound(config, summary, path))
      written.append(draw_rates(config, summary, figures_dir / "rebound_rates.png"))
    elif experiment == "model-size":
      written.append(draw_across(config, summary, path, "parameter_count",
                                 lambda c: f"w{c['size'][0]} L{c['size'][1]} ({c['parameter_count']:,} params)"))
    elif experiment == "pretrain-volume":
      written.append(draw_across(config, summary, path, "pretrain_tokens",
                                 lambda c: f"{c['pretrain_mass']:g} responses ({c['pretrain_tokens']:,.0f} tokens)"))
    else:
      written.append(draw_across(config, summary, path, "family", lambda c: c["family"]))
  return written
