"""The three theory figures (Hooke's law, ratio against k, Huffman against entropy), drawn from saved arrays."""

from __future__ import annotations

import pathlib

import numpy as np

from experiments import plotting
from experiments.theory_figures.run import CURVES
from theory import hooke_curves

FILES = ("hooke_law.png", "ratio_vs_k.png", "huffman_vs_entropy.png")


def draw(config: hooke_curves.TheoryFiguresConfig, summary: dict, run_dir, figures_dir) -> list[pathlib.Path]:
  """Draws the three theory figures from the run's saved arrays (unit 'curves') into figures_dir."""
  del summary
  if not run_dir.done(CURVES):
    return []
  _, data = run_dir.load(CURVES)
  figures_dir = pathlib.Path(figures_dir)
  written = [_draw_hooke(data, config, figures_dir / FILES[0]), _draw_ratio(data, config, figures_dir / FILES[1]),
             _draw_huffman(data, figures_dir / FILES[2])]
  return written


def _draw_hooke(data, config, out: pathlib.Path) -> pathlib.Path:
  l, k, delta = data["hooke_l"], data["hooke_k"], data["hooke_delta_rates"]
  fig, (left, right) = plotting.subplots(1, 2, figsize=(11, 4.2))
  colors = plotting.colors("viridis", len(k))
  for color, k_value, rows in zip(colors, k, delta, strict=True):
    left.plot(l, rows[:, 1], color=color, label=f"Δγ_a, k={k_value:g}")
    negative = rows[:, 0] < 0
    left.plot(l[negative], -rows[negative, 0], color=color, linestyle="--", label=f"−Δγ_p, k={k_value:g}")
    right.plot(l, rows[:, 1] / np.where(rows[:, 0] != 0, -rows[:, 0], np.nan) / k_value, color=color,
               label=f"k={k_value:g}")
  left.set(xscale="log", yscale="log", xlabel="l = |D_t| / |D_a|", ylabel="|Δ compression rate| (bits / response)",
           title="Alignment data is forgotten ~k times faster")
  left.legend(fontsize=6, ncol=2)
  right.axhline(1.0, color="gray", linewidth=0.8)
  right.set(xscale="log", xlabel="l = |D_t| / |D_a|", ylabel="Δγ_a / (−Δγ_p) / k",
            title="Hooke's law: n_a Δγ_a ≈ n_p (−Δγ_p) for l ≪ 1")
  right.set_ylim(0, 3)
  right.legend(fontsize=7)
  fig.suptitle(f"Exact mixture, {config.family}({config.param:g}) leaves, depth {config.depth}; "
               "D_a aligned subtree, D_t unaligned subtree", fontsize=9)
  return plotting.save(fig, out, dpi=110)


def _draw_ratio(data, config, out: pathlib.Path) -> pathlib.Path:
  k, ratio = data["ratio_k"], data["ratio_ratio"]
  fig, ax = plotting.subplots(figsize=(6, 4.5))
  opposite = ratio < 0
  ax.loglog(k[opposite], -ratio[opposite], ".", markersize=4, label="signs as the paper says (ratio < 0)")
  ax.loglog(k[~opposite], ratio[~opposite], "x", markersize=4, color="tab:red",
            label="same signs (ratio > 0): paper's sign claim fails")
  grid = np.geomspace(1, 1e6, 50)
  ax.loglog(grid, grid, color="black", linewidth=1, label="|ratio| = k (theory at l = 0)")
  slope = np.polyfit(np.log(k[opposite]), np.log(-ratio[opposite]), 1)[0] if opposite.sum() > 2 else np.nan
  ax.set(xlabel="k = |D_p| / |D_a|", ylabel="|dγ_a/dl ÷ dγ_p/dl|",
         title=f"Ratio against k at l = {config.ratio_l:g} (fitted slope {slope:.3f})")
  ax.legend(fontsize=7)
  return plotting.save(fig, out, dpi=110)


def _draw_huffman(data, out: pathlib.Path) -> pathlib.Path:
  entropy, huffman, paper = data["huffman_entropy"], data["huffman_huffman"], data["huffman_paper"]
  order = np.argsort(entropy)
  fig, ax = plotting.subplots(figsize=(6, 4.5))
  ax.plot(entropy, huffman, ".", markersize=4, label="exact Huffman E[L]")
  ax.plot(entropy[order], paper[order], "-", color="tab:orange", linewidth=1, label="paper Thm 3.4: ⌈H⌉")
  ax.plot(entropy[order], entropy[order], color="black", linewidth=0.8, label="H")
  ax.plot(entropy[order], entropy[order] + 1, color="black", linestyle=":", linewidth=0.8, label="H + 1")
  exact = np.mean(np.isclose(huffman, paper))
  ax.set(xlabel="entropy H of the leaf distribution (bits)", ylabel="expected code length (bits / response)",
         title=f"Huffman vs the paper's formula (equal in {100 * exact:.0f}% of {len(entropy)} draws)")
  ax.legend(fontsize=7)
  return plotting.save(fig, out, dpi=110)
