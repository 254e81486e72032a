"""Summary statistics of a Hooke's-law run: ratios at small l, slopes of log|Δγ_a/Δγ_p| against log k, theory gaps."""

from __future__ import annotations

import numpy as np

from experiments import statistics, verdicts
from experiments.hooke.config import HookeConfig
from experiments.hooke.run import units
from experiments.run_dir import RunDir
from experiments.statistics import mean_ci
from theory.conventions import ALIGN, PRETRAIN

RATE_TOLERANCE_BITS = 1e-3  # acceptance: the tabular joint model must match the exact mixture this closely.
SLOPE_TOLERANCE = 0.1  # acceptance: |slope - 1| allowed for the tabular joint model.
SMALLEST_SLOPE = 0.5  # a slope of log|ratio| on log k below this (half the theory's 1) counts as no k-scaling.


def collect(config: HookeConfig, run_dir: RunDir) -> dict[tuple[str, str], dict[str, np.ndarray]]:
  """Stacks the finished units of each (model, regime): deltas (k, seeds, l, 3) and theory values."""
  out = {}
  for unit in units(config):
    if not run_dir.done(unit.name):
      continue
    summary, arrays = run_dir.load(unit.name)
    entry = out.setdefault((unit.model, unit.regime), {"k": [], "delta": [], "theory_delta": [], "gap": [],
                                                       "parameter_count": summary["parameter_count"]})
    rates = arrays["rate_bits_per_response"]
    theory = arrays["theory_mixture_rate_bits"]
    entry["k"].append(unit.k)
    entry["delta"].append(rates[:, 1:] - rates[:, :1])
    entry["theory_delta"].append(theory[:, 1:] - theory[:, :1])
    entry["gap"].append(summary["max_abs_rate_gap_to_theory_bits"])
  return {key: {name: np.asarray(value) for name, value in entry.items()} for key, entry in out.items()}


def slope_per_seed(k: np.ndarray, ratio: np.ndarray) -> np.ndarray:
  """Least-squares slope of log|ratio| against log k for each seed; ratio has shape (k, seeds)."""
  x = np.log(k)
  y = np.log(np.abs(ratio))
  x_centered = x - x.mean()
  return (x_centered[:, None] * (y - y.mean(axis=0))).sum(axis=0) / (x_centered**2).sum()


def summarize(config: HookeConfig, run_dir: RunDir) -> dict:
  """'models', per (model, regime): ratio Δγ_a/Δγ_p at each l (mean ± 95% CI over seeds, per k), the slope of
  log|ratio| against log k at each l with its CI, the share of runs with the paper's signs (Δγ_p < 0 < Δγ_a),
  the same from the theory's exact mixture, and the largest gap between model and theory rates (bits).

  The acceptance check is reported under 'acceptance' for the tabular joint model: rates within
  RATE_TOLERANCE_BITS of the exact mixture, and the slope at the smallest l within SLOPE_TOLERANCE of 1.
  'verdicts' (experiments.verdicts, raw): per model, at the smallest l, the joint slope as a consistency check (the
  weighted identity holds at any stationary point of the joint objective: docs/THEORY.md §5.1) and the sequential
  slope as a test of the paper's k-scaling (exact sign-flip test over seeds that the slope is > 0).
  """
  models = {}
  for (model, regime), entry in collect(config, run_dir).items():
    k, delta, theory = entry["k"], entry["delta"], entry["theory_delta"]
    with np.errstate(divide='ignore', invalid='ignore'):  # Δγ_p = 0 (no change at all) gives NaN
      ratio = delta[..., ALIGN] / delta[..., PRETRAIN]  # (k, seeds, l)
      theory_ratio = theory[..., ALIGN] / theory[..., PRETRAIN]
    by_l = {}
    for j, l in enumerate(config.l_grid):
      valid = len(k) >= 2 and np.all(np.isfinite(ratio[..., j])) and np.all(ratio[..., j] != 0)
      slopes = slope_per_seed(k, ratio[..., j]) if valid else np.full(ratio.shape[1], np.nan)
      slope_mean, slope_half = mean_ci(slopes)
      mean, half = mean_ci(ratio[..., j], axis=1)
      by_l[f"{l:g}"] = {
          "ratio_mean": mean.tolist(), "ratio_ci95": half.tolist(),
          "theory_ratio_mean": theory_ratio[..., j].mean(axis=1).tolist(),
          "minus_ratio_over_k_mean": (-mean / k).tolist(),
          "slope_mean": float(slope_mean), "slope_ci95": float(slope_half), "slopes": slopes.tolist(),
          "theory_slope": float(np.mean(slope_per_seed(k, theory_ratio[..., j]))) if len(k) >= 2 else float("nan"),
          "share_paper_signs": float(np.mean((delta[..., j, PRETRAIN] < 0) & (delta[..., j, ALIGN] > 0))),
      }
    models[f"{model}/{regime}"] = {"model": model, "regime": regime, "k": k.tolist(), "by_l": by_l,
                                     "max_rate_gap_to_theory_bits": float(np.max(entry["gap"])),
                                     "parameter_count": int(entry["parameter_count"])}
  smallest = f"{min(config.l_grid):g}"
  results = {"models": models, "verdicts": [
      _slope_verdict(key, entry["by_l"][smallest]["slopes"], entry["regime"], smallest)
      for key, entry in models.items() if np.all(np.isfinite(entry["by_l"][smallest]["slopes"]))]}
  tabular = models.get("tabular/joint")
  if tabular is not None:
    slope = tabular["by_l"][smallest]["slope_mean"]
    gap = tabular["max_rate_gap_to_theory_bits"]
    results["acceptance"] = {
        "tabular_joint_max_rate_gap_bits": gap, "rate_tolerance_bits": RATE_TOLERANCE_BITS,
        "tabular_joint_slope_at_smallest_l": slope, "slope_tolerance": SLOPE_TOLERANCE,
        "passed": bool(gap <= RATE_TOLERANCE_BITS and abs(slope - 1) <= SLOPE_TOLERANCE)}
  return results


def _slope_verdict(key: str, slopes: list[float], regime: str, l_value: str) -> dict:
  """The verdict on one model and regime's slopes of log|Δγ_a/Δγ_p| on log k (one per seed)."""
  test = statistics.paired_difference(np.asarray(slopes), np.zeros(len(slopes)), alternative="greater",
                                      units="per unit log k", what="mean over seeds of the slope")
  joint = regime == "joint"
  claim = (f"joint regime, l = {l_value}: |Δγ_a/Δγ_p| scales as k (first-order optimality of the joint objective)"
           if joint else f"sequential regime, l = {l_value}: |Δγ_a/Δγ_p| grows with k (the paper's k-scaling)")
  return verdicts.verdict(
      key, claim, test.effect, test.test, "positive", per_seed=slopes, consistency_check=joint,
      smallest_effect_of_interest=SMALLEST_SLOPE,
      can_show="that fine-tuning moves alignment more, relative to pre-training, the larger k",
      cannot_show="the mechanism (the joint slope holds at any stationary point, whatever the model)")


def format_summary(results: dict, config: HookeConfig) -> str:
  """A plain-text table: model, regime, parameters, slope at each l (mean ± CI), -ratio/k at the smallest l."""
  smallest = f"{min(config.l_grid):g}"
  grid = ", ".join(f"{l:g}" for l in config.l_grid)
  lines = [f"{'model/regime':<24} {'params':>7}  {'slope of log|Δγa/Δγp| vs log k at l = ' + grid:<60}"
           f"  -ratio/k at l={smallest} (per k)  max|rate-theory| bits"]
  for key, entry in results["models"].items():
    slopes = ", ".join(f"{v['slope_mean']:.3f}±{v['slope_ci95']:.3f}" for v in entry["by_l"].values())
    per_k = ", ".join(f"{v:.3g}" for v in entry["by_l"][smallest]["minus_ratio_over_k_mean"])
    lines.append(f"{key:<24} {entry['parameter_count']:>7}  {slopes:<60}  {per_k:<28}  "
                 f"{entry['max_rate_gap_to_theory_bits']:.3g}")
  if "acceptance" in results:
    a = results["acceptance"]
    lines.append(f"acceptance (tabular joint): max rate gap {a['tabular_joint_max_rate_gap_bits']:.2e} bits "
                 f"(<= {a['rate_tolerance_bits']:g}), slope {a['tabular_joint_slope_at_smallest_l']:.4f} "
                 f"(within {a['slope_tolerance']:g} of 1): {'PASSED' if a['passed'] else 'FAILED'}")
  lines += verdicts.run_lines(results.get("verdicts", []))
  return "\n".join(lines)
