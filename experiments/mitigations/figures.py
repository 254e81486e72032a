"""Mitigations figures, drawn from a run's summary: the safety-utility frontier, the attack curves, the corrector."""

from __future__ import annotations

import pathlib

import numpy as np

from experiments import plotting
from experiments.mitigations import run
from experiments.mitigations.config import MitigationsConfig

LINEAR_BELOW = 10  # the examples axis is linear below this many examples and logarithmic above (symlog).


def draw_frontier(config: MitigationsConfig, summary: dict, path: pathlib.Path) -> pathlib.Path:
  """Utility cost before the attack (D_p's rate rise, the KL inside the aligned subtree) against log2 half-undo
  examples, one line per defence through its strength grid (95% CI bars over seeds), the baseline as a star."""
  fig, axes = plotting.subplots(1, 2, figsize=(12.5, 5.0), squeeze=False)
  defences = list(summary["defences"])
  colors = plotting.colors("tab10", max(len(defences), 2), stop=1.0)
  base = summary["baseline"][run.MAIN_ATTACK]["half_undo"]["log2"]
  for ax, key, label in ((axes[0, 0], "dp_rate_rise_bits", "rise of D_p's rate over the pre-trained model (bits)"),
                         (axes[0, 1], "within_aligned_kl_nats", "KL(model ‖ pre-trained) inside the aligned subtree "
                                                                 "(nats)")):
    cost = summary["baseline_costs"][key]
    ax.errorbar([cost["mean"]], [base["mean"]], xerr=[np.nan_to_num(cost["ci95"])], yerr=[np.nan_to_num(base["ci95"])],
                fmt="*", ms=14, color="black", label="no defence", zorder=5)
    for color, defence in zip(colors, defences, strict=False):
      rows = summary["defences"][defence]["frontier"]
      x = np.array([r[key]["mean"] for r in rows])
      y = np.array([r["half_undo"]["log2"]["mean"] for r in rows])
      ax.errorbar(x, y, xerr=np.nan_to_num([r[key]["ci95"] for r in rows]), fmt="none", ecolor=color, alpha=0.25)
      ax.errorbar(x, y, yerr=np.nan_to_num([r["half_undo"]["log2"]["ci95"] for r in rows]), fmt="o-", ms=4,
                  color=color, label=defence, alpha=0.85)
      for row, xi, yi in zip(rows, x, y, strict=True):
        ax.annotate(f"{row['strength']:g}", (xi, yi), fontsize=6, xytext=(3, 3), textcoords="offset points",
                    color=color)
    ax.set_xlabel(label)
    ax.set_ylabel("log2 half-undo examples (main SFT attack)")
    ax.grid(alpha=0.3)
  axes[0, 0].legend(fontsize=7, ncol=2)
  axes[0, 0].set_title("safety vs utility cost, each defence over its strength grid (labels)", fontsize=9)
  axes[0, 1].set_title("the same against the distortion of the aligned behaviour", fontsize=9)
  return plotting.save(fig, path, dpi=120)


def _band(ax, x, stats_row: dict, label: str, color, style="o-"):
  mean = np.asarray(stats_row["mean"])
  half = np.nan_to_num(np.asarray(stats_row["ci95"]))
  ax.plot(x, mean, style, color=color, label=label, ms=3)
  ax.fill_between(x, mean - half, mean + half, color=color, alpha=0.15)


def draw_attack_curves(config: MitigationsConfig, summary: dict, path: pathlib.Path) -> pathlib.Path:
  """Positive score against attack examples: per defence at its default strength under every attack (solid: main
  SFT; dashed: the stronger attacks, DPO), the baseline's main curve in black, the half-way level dotted."""
  defences = list(summary["defences"])
  columns = min(max(len(defences), 1), 3)
  rows = -(-max(len(defences), 1) // columns)
  fig, axes = plotting.subplots(rows, columns, figsize=(5.0 * columns, 3.6 * rows), squeeze=False)
  x = np.asarray(config.attack_sizes)
  target = summary["yardstick"]["target_score"]["mean"]
  for ax, defence in zip(axes.ravel(), defences, strict=False):
    cell = summary["defences"][defence]
    attacks = list(cell["attacks"])
    colors = plotting.colors("viridis", max(len(attacks), 2))
    _band(ax, x, summary["baseline"][run.MAIN_ATTACK]["score"], "no defence (sft)", "black", "s--")
    for color, attack in zip(colors, attacks, strict=True):
      _band(ax, x, cell["attacks"][attack]["score"], attack, color, "o-" if attack == run.MAIN_ATTACK else "o:")
    ax.axhline(target, color="gray", ls=":", lw=1, label="half-way level")
    ax.set_title(f"{defence} at {cell['default_strength']:g}", fontsize=9)
    ax.set_xscale("symlog", linthresh=LINEAR_BELOW)
    ax.set_xlim(0, x[-1] * 1.2)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("attack examples n2")
    ax.set_ylabel("P(aligned behaviour)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6)
  for ax in axes.ravel()[len(defences):]:
    ax.set_visible(False)
  return plotting.save(fig, path, dpi=120)


def draw_corrector(config: MitigationsConfig, summary: dict, path: pathlib.Path) -> pathlib.Path:
  """The corrector's k test: composed positive score under the attack on the corrector per W/C (left) and the
  own-gain log2 half-life against log2 W/C with the proportional reference slope -1 (right)."""
  cell = summary["defences"]["corrector"]
  fig, axes = plotting.subplots(1, 2, figsize=(11.0, 4.0), squeeze=False)
  left, right = axes[0]
  trend = cell["corrector"]
  colors = plotting.colors("plasma", max(len(trend["ratios"]), 2))
  x = np.asarray(config.attack_sizes)
  for color, row in zip(colors, trend["self_attack_scores"], strict=True):
    _band(left, x, row["score"], f"W/C = {row['ratio']:g}", color)
  left.set_xscale("symlog", linthresh=LINEAR_BELOW)
  left.set_xlim(0, x[-1] * 1.2)
  left.set_xlabel("copy pairs of negatives fine-tuned into the corrector")
  left.set_ylabel("P(aligned) of base + corrector")
  left.grid(alpha=0.3)
  left.legend(fontsize=7)
  ratios = np.log2(np.asarray(trend["ratios"], dtype=np.float64))
  mean = np.asarray(trend["log2_half_life"]["mean"])
  right.errorbar(ratios, mean, yerr=np.nan_to_num(trend["log2_half_life"]["ci95"]), fmt="o-", color="C3",
                 label=f"measured (slope {trend['slope']:+.2f} per doubling)")
  right.plot(ratios, mean[0] - (ratios - ratios[0]), "k--", lw=1, label="slope -1 (speed ∝ W/C), reference")
  right.set_xlabel("log2 W/C (copy pairs per correction pair)")
  right.set_ylabel("log2 half-life (own gain)")
  right.grid(alpha=0.3)
  right.legend(fontsize=7)
  return plotting.save(fig, path, dpi=120)


def draw(config: MitigationsConfig, summary: dict, run_dir, figures_dir) -> list[pathlib.Path]:
  """The mitigations figures: mitigations_frontier.png, mitigations_attacks.png, and mitigations_corrector.png."""
  del run_dir
  if not summary.get("defences"):
    return []
  figures_dir = pathlib.Path(figures_dir)
  files = [draw_frontier(config, summary, figures_dir / "mitigations_frontier.png"),
           draw_attack_curves(config, summary, figures_dir / "mitigations_attacks.png")]
  if "corrector" in summary["defences"]:
    files.append(draw_corrector(config, summary, figures_dir / "mitigations_corrector.png"))
  return files
