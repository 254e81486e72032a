"""Rebound figures: the score and the share of the alignment gain undone against second-stage examples (95% CI
bands over seeds, symmetric-log axis of examples), drawn from a rebound run's summary."""

from __future__ import annotations

import pathlib

import numpy as np

from experiments import plotting
from experiments.rebound.config import ReboundConfig

LINEAR_BELOW = 10  # the examples axis is linear below this many examples and logarithmic above (symlog).


def _band(ax, x, cell, row, label, color, key="score"):
  mean = np.asarray(cell[key]["mean"][row])
  half = np.nan_to_num(np.asarray(cell[key]["ci95"][row]))
  ax.plot(x, mean, "o-", color=color, label=label, ms=3)
  ax.fill_between(x, mean - half, mean + half, color=color, alpha=0.2)


def _style(axes, ylim=(-0.02, 1.02)) -> None:
  for ax in np.ravel(axes):
    ax.set_xscale("symlog", linthresh=LINEAR_BELOW)
    if ylim is not None:
      ax.set_ylim(*ylim)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def draw_rebound(config: ReboundConfig, summary: dict, path: pathlib.Path) -> pathlib.Path:
  """Two rows per (order, method) cell: the score with the pre-trained level dashed, and the share of the alignment
  gain undone (1 = back at the pre-trained level); a curve per first-stage size."""
  cells = list(summary["cells"].values())
  fig, axes = plotting.subplots(2, len(cells), figsize=(4.6 * len(cells), 6.8), squeeze=False)
  x = np.asarray(config.second_sizes)
  colors = plotting.colors("viridis", len(config.first_sizes))
  for column, cell in enumerate(cells):
    top, bottom = axes[0, column], axes[1, column]
    for row, n1 in enumerate(config.first_sizes):
      _band(top, x, cell, row, f"n1 = {n1}", colors[row])
      _band(bottom, x, cell, row, f"n1 = {n1}", colors[row], key="undone_share")
    top.axhline(cell["pretrained_score"]["mean"], color="gray", ls="--", lw=1, label="pre-trained")
    bottom.axhline(1.0, color="gray", ls="--", lw=1, label="back at pre-trained")
    first, second = ("positive", "negative") if cell["order"] == "positive_first" else ("negative", "positive")
    top.set_title(f"{first} first, {second} by {cell['method'].upper()}", fontsize=9)
    top.set_ylabel(f"P({first} behaviour)")
    bottom.set_ylabel("share of the alignment gain undone")
    bottom.set_xlabel(f"{second} examples n2")
  _style(axes[0])
  _style(axes[1], ylim=None)
  return plotting.save(fig, path, dpi=120)


def draw_rates(config: ReboundConfig, summary: dict, path: pathlib.Path) -> pathlib.Path:
  """Compression rates (bits per response) of the three sources against n2, after the largest first stage."""
  cells = list(summary["cells"].values())
  columns = min(len(cells), 2)
  rows = -(-len(cells) // columns)
  fig, axes = plotting.subplots(rows, columns, figsize=(5.4 * columns, 3.4 * rows), squeeze=False)
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
    ax.set_xscale("symlog", linthresh=LINEAR_BELOW)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
  for ax in axes.ravel()[len(cells):]:
    ax.set_visible(False)
  return plotting.save(fig, path, dpi=120)


def draw_across(config: ReboundConfig, summary: dict, path: pathlib.Path, key: str, legend) -> pathlib.Path:
  """One column per first-stage size, a curve per grid level (model size, pre-training mass or family): the score
  (top) and the share of the alignment gain undone (bottom)."""
  cells = sorted(summary["cells"].values(), key=lambda c: c[key] if not isinstance(c[key], str) else 0)
  columns = len(config.first_sizes)
  fig, axes = plotting.subplots(2, columns, figsize=(4.8 * columns, 6.8), squeeze=False)
  x = np.asarray(config.second_sizes)
  colors = plotting.colors("plasma", len(cells))
  for column, n1 in enumerate(config.first_sizes):
    for color, cell in zip(colors, cells, strict=True):
      _band(axes[0, column], x, cell, column, legend(cell), color)
      _band(axes[1, column], x, cell, column, legend(cell), color, key="undone_share")
    axes[0, column].set_title(f"after n1 = {n1} positive examples", fontsize=9)
    axes[0, column].set_ylabel("P(positive behaviour)")
    axes[1, column].axhline(1.0, color="gray", ls="--", lw=1)
    axes[1, column].set_ylabel("share of the alignment gain undone")
    axes[1, column].set_xlabel("negative examples n2")
  _style(axes[0])
  _style(axes[1], ylim=None)
  return plotting.save(fig, path, dpi=120)


def draw_rebound_figures(config: ReboundConfig, summary: dict, run_dir, figures_dir) -> list[pathlib.Path]:
  """The rebound experiment's figures: score curves per cell (rebound.png), the sources' rates (rebound_rates.png)."""
  del run_dir
  if not summary["cells"]:
    return []
  figures_dir = pathlib.Path(figures_dir)
  return [draw_rebound(config, summary, figures_dir / "rebound.png"),
          draw_rates(config, summary, figures_dir / "rebound_rates.png")]


def across_figure(file: str, key: str, legend):
  """The figure function of an experiment varying one grid factor: a curve per level (key of the summary's cells)."""

  def draw(config: ReboundConfig, summary: dict, run_dir, figures_dir) -> list[pathlib.Path]:
    del run_dir
    if not summary["cells"]:
      return []
    return [draw_across(config, summary, pathlib.Path(figures_dir) / file, key, legend)]

  return draw
