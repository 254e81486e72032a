"""The sequential study's figures, drawn from a saved `simulate sequential` run (every value read from its units)."""

from __future__ import annotations

import pathlib

import numpy as np

from experiments import plotting
from experiments.run_dir import RunDir
from experiments.sequential import summary as sequential_summary
from experiments.sequential.config import CONDITIONS, SequentialConfig
from experiments.statistics import mean_ci

FILES = ("sequential_ratio.png", "sequential_replay.png", "sequential_theory.png", "sequential_degradation.png")


def draw(config: SequentialConfig, summary: dict, run_dir: RunDir, figures_dir: pathlib.Path) -> list[pathlib.Path]:
  """Draws |Δγ_a/Δγ_p| against k, the replay map, measured against predicted ratios, and the joint degradation."""
  collected = sequential_summary.collect(config, run_dir)
  figures_dir = pathlib.Path(figures_dir)
  files = []
  if any(arm == "sequential" for arm, _ in collected):
    files.append(_draw_ratio(config, collected, figures_dir / FILES[0]))
    if config.replay_conditions:
      files.append(_draw_replay(config, summary, figures_dir / FILES[1]))
    files.append(_draw_theory(config, collected, figures_dir / FILES[2]))
  if any(arm == "joint" for arm, _ in collected):
    files.append(_draw_degradation(config, collected, figures_dir / FILES[3]))
  return files


def _models(config, collected, arm):
  return [m for m in config.model_names() if (arm, m) in collected]


def _draw_ratio(config, collected, out: pathlib.Path) -> pathlib.Path:
  models = _models(config, collected, "sequential")
  fig, axes = plotting.subplots(1, len(models), figsize=(4.6 * len(models), 4.2), squeeze=False)
  colors = plotting.colors("tab10", len(CONDITIONS), 1.0)
  for ax, model in zip(axes[0], models, strict=True):
    entry = collected[("sequential", model)]
    k = entry["k"]
    ratio = sequential_summary.ratio_of(entry["arrays"]["rates_tuned_bits"] - entry["arrays"]["rates_aligned_bits"])
    for c, name in enumerate(entry["summary"]["conditions"]):
      mean, half = mean_ci(np.abs(ratio[:, c]), axis=1)
      color = colors[list(CONDITIONS).index(name)]
      ax.errorbar(k * (1 + 0.05 * c), mean, yerr=half, marker="o", ms=3, capsize=2, color=color, label=name)
    joint = collected.get(("joint", model))
    if joint is not None:
      mean, half = mean_ci(np.abs(joint["arrays"]["ratio"][..., -1]), axis=1)
      ax.errorbar(k, mean, yerr=half, color="black", marker="s", ms=4, capsize=2, label="joint optimum (implicit)")
    ax.plot(k, k, "k--", lw=1, label="|ratio| = k")
    ax.set(xscale="log", yscale="log", xlabel="k = |D_p| / |D_a|", ylabel="|Δγ_a / Δγ_p| (mean ± 95% CI)",
           title=f"{model}, l = {config.l:g}")
    ax.legend(fontsize=5)
  fig.suptitle("Sequential fine-tuning against the joint optimum's -k law", fontsize=9)
  return plotting.save(fig, out)


def _draw_replay(config, summary, out: pathlib.Path) -> pathlib.Path:
  fig, ax = plotting.subplots(figsize=(6.4, 4.4))
  lines = [(model, name, rows) for model, replay in summary["replay"].items() for name, rows in replay.items()]
  colors = plotting.colors("viridis", max(len(config.model_names()), 1), 0.9)
  for model, name, rows in lines:
    x = np.arange(len(rows))
    mean = np.array([row["slope"]["mean"] for row in rows])
    half = np.array([row["slope"]["ci95"] for row in rows])
    style = "-" if name.startswith("adam") else "--"
    color = colors[config.model_names().index(model)]
    ax.errorbar(x + 0.03 * config.model_names().index(model), mean, yerr=half, ls=style, marker="o", ms=3,
                capsize=2, color=color, label=f"{model}, {name.split('_')[0]}")
  if lines:
    ax.set_xticks(np.arange(len(lines[0][2])), [f"{row['rho']:g}" for row in lines[0][2]])
  ax.axhline(1.0, color="black", lw=1, ls=":", label="joint law (slope 1)")
  ax.axhline(0.0, color="grey", lw=0.8)
  ax.set(xlabel="replay fraction ρ", ylabel="slope of log|Δγ_a/Δγ_p| on log k (mean ± 95% CI)",
         title="Replay map: Δγ attributable to D_t (with minus without D_t)")
  ax.legend(fontsize=6)
  return plotting.save(fig, out)


def _draw_theory(config, collected, out: pathlib.Path) -> pathlib.Path:
  models = _models(config, collected, "sequential")
  fig, axes = plotting.subplots(2, len(models), figsize=(4.4 * len(models), 7.6), squeeze=False)
  colors = plotting.colors("tab10", len(CONDITIONS), 1.0)
  for col, model in enumerate(models):
    entry = collected[("sequential", model)]
    arrays = entry["arrays"]
    measured = sequential_summary.ratio_of(arrays["rates_tuned_bits"] - arrays["rates_aligned_bits"])
    predicted = sequential_summary.ratio_of(arrays["instantaneous_bits"])
    state = np.log(sequential_summary.unaligned_mass(arrays["log2q_aligned"], config.depth))
    top, bottom = axes[0, col], axes[1, col]
    for c, name in enumerate(entry["summary"]["conditions"]):
      color = colors[list(CONDITIONS).index(name)]
      with np.errstate(divide="ignore"):
        y = np.log10(np.abs(measured[:, c]))
        x = np.log10(np.abs(predicted[:, c]))
      top.scatter(x.ravel(), y.ravel(), s=8, color=color, label=name)
      bottom.scatter(state[:, c].ravel(), y.ravel(), s=8, color=color)
    finite = np.isfinite(np.log10(np.abs(predicted))) & np.isfinite(np.log10(np.abs(measured)))
    if finite.any():
      low = min(np.log10(np.abs(predicted[finite])).min(), np.log10(np.abs(measured[finite])).min())
      high = max(np.log10(np.abs(predicted[finite])).max(), np.log10(np.abs(measured[finite])).max())
      top.plot([low, high], [low, high], "k--", lw=1, label="measured = predicted")
    top.set(xlabel="log10 |E_a / E_p| at the post-alignment state", ylabel="log10 |Δγ_a / Δγ_p| measured",
            title=f"{model}: first-order prediction")
    bottom.set(xlabel=f"ln u ({sequential_summary.STATE_VARIABLE})", ylabel="log10 |Δγ_a / Δγ_p| measured",
               title=f"{model}: ratio against ln u")
    top.legend(fontsize=5)
  fig.suptitle("Sequential theory: each point is one run (condition × k × seed)", fontsize=9)
  return plotting.save(fig, out)


def _draw_degradation(config, collected, out: pathlib.Path) -> pathlib.Path:
  models = _models(config, collected, "joint")
  fig, axes = plotting.subplots(1, 3, figsize=(15, 4.4), squeeze=False)
  colors = plotting.colors("viridis", len(models), 0.9)
  for color, model in zip(colors, models, strict=True):
    arrays = collected[("joint", model)]["arrays"]
    k = collected[("joint", model)]["k"]
    norm = arrays["objective_gradient_norm_nats"] / arrays["sizes"].sum(axis=-1)[..., None]
    relative = np.abs(arrays["weighted_residual_bits"] / arrays["weighted_scale_bits"])
    minus = np.abs(-arrays["ratio"] / k[:, None, None] - 1)
    axes[0, 0].scatter(norm.ravel(), relative.ravel(), s=8, color=color, label=model)
    axes[0, 1].scatter(norm.ravel(), minus.ravel(), s=8, color=color, label=model)
    axes[0, 2].scatter(np.abs(arrays["stationarity_term_bits"]).ravel(),
                       np.abs(arrays["weighted_residual_bits"]).ravel(), s=8, color=color, label=model)
  for ax, ylabel in zip(axes[0], ("|Σ n_i dγ_i/dl| / Σ n_i |dγ_i/dl|", "|-ratio/k - 1|",
                                  "|Σ n_i dγ_i/dl| (bits × responses)"), strict=True):
    ax.set(xscale="log", yscale="log", ylabel=ylabel)
    ax.legend(fontsize=6)
  axes[0, 0].set(xlabel="||∇J|| / N (nats per response per parameter unit)", title="weighted identity's residual")
  axes[0, 1].set(xlabel="||∇J|| / N", title="implied -ratio/k against 1")
  axes[0, 2].set(xlabel="|∇J · dθ/dl| / ln 2 (bits × responses)", title="residual = ∇J·dθ/dl (consistency)")
  fig.suptitle("Joint arm: every early-stopping point of full-batch Adam and the converged point (all k, seeds)",
               fontsize=9)
  return plotting.save(fig, out)
