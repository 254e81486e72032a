"""The numbers the theory figures show: Hooke's-law ratios, the fitted slope of the ratio on k, Huffman gaps."""

from __future__ import annotations

import numpy as np

from experiments.theory_figures.run import CURVES
from theory import hooke_curves


def _first_positive(x: np.ndarray, y: np.ndarray) -> float | None:
  positive = np.flatnonzero(y > 0)
  return float(x[positive[0]]) if positive.size else None


def summarize(config: hooke_curves.TheoryFiguresConfig, run_dir) -> dict:
  """Summary of the saved curves (every number of the report section), in bits per response where it is a rate."""
  if not run_dir.done(CURVES):
    return {}
  _, data = run_dir.load(CURVES)
  l, k, delta = data["hooke_l"], data["hooke_k"], data["hooke_delta_rates"]
  k_r, ratio = data["ratio_k"], data["ratio_ratio"]
  opposite = ratio < 0
  slope = float(np.polyfit(np.log(k_r[opposite]), np.log(-ratio[opposite]), 1)[0]) if opposite.sum() > 2 else None
  entropy, huffman, paper = data["huffman_entropy"], data["huffman_huffman"], data["huffman_paper"]
  return {
      "smallest_l": float(l[0]), "k": k.tolist(),
      "minus_ratio_over_k_at_smallest_l": (delta[:, 0, 1] / -delta[:, 0, 0] / k).tolist(),
      "first_l_where_pretrain_rate_rises": [_first_positive(l, rows[:, 0]) for rows in delta],
      "largest_l": float(l[-1]),
      "ratio_configurations": int(len(k_r)), "ratio_l": config.ratio_l, "ratio_slope_on_k": slope,
      "ratio_paper_signs": int(opposite.sum()),
      "ratio_over_k_median": float(np.median(np.abs(ratio) / k_r)),
      "ratio_over_k_range": [float(np.min(np.abs(ratio) / k_r)), float(np.max(np.abs(ratio) / k_r))],
      "huffman_draws": int(len(entropy)), "huffman_equal_to_paper": int(np.isclose(huffman, paper).sum()),
      "huffman_max_gap_bits": float(np.abs(huffman - paper).max()),
      "huffman_within_bounds": bool(np.all((huffman >= entropy - 1e-9) & (huffman < entropy + 1))),
  }


def format_summary(summary: dict, config: hooke_curves.TheoryFiguresConfig) -> str:
  """The summary as lines of text."""
  del config
  return "\n".join(f"{key}: {value}" for key, value in summary.items())


def report(config: hooke_curves.TheoryFiguresConfig, summary: dict, context) -> str:
  """The REPORT.md section of the theory figures."""
  s = summary
  rises = ", ".join(f"{'none up to ' + format(s['largest_l'], 'g') if v is None else format(v, '.3g')} (k={kv:g})"
                    for v, kv in zip(s["first_l_where_pretrain_rate_rises"], s["k"], strict=True))
  lines = [
      f"Exact size-weighted mixture, {config.family}({config.param:g}) leaf masses, depth {config.depth}; D_p covers "
      "the tree, D_a the aligned subtree (prefix 0), D_t the unaligned subtree (prefix 1). Rates in bits per "
      "response. These are exact computations of the theory, not simulations.",
      "",
      f"- At l = {s['smallest_l']:g}: Δγ_a / (−Δγ_p) / k = " + ", ".join(
          f"{v:.5f} (k={kv:g})" for v, kv in zip(s["minus_ratio_over_k_at_smallest_l"], s["k"], strict=True)) + ".",
      f"- First l at which Δγ_p turns positive (pre-training data also gets worse, the disproportion ends): {rises}.",
      f"- {s['ratio_configurations']} random configurations, log10 k uniform in [0, 6], l = {s['ratio_l']:g}: fitted "
      f"slope of log|ratio| on log k = {s['ratio_slope_on_k']:.3f}; the paper's signs (dγ_a/dl > 0 > dγ_p/dl) hold "
      f"in {s['ratio_paper_signs']} of {s['ratio_configurations']}; median |ratio|/k = {s['ratio_over_k_median']:.3f}, "
      f"range {s['ratio_over_k_range'][0]:.3f} to {s['ratio_over_k_range'][1]:.3f}.",
      f"- {s['huffman_draws']} random leaf distributions: exact Huffman length equals the paper's ⌈H⌉ in "
      f"{s['huffman_equal_to_paper']} cases; max |Huffman − ⌈H⌉| = {s['huffman_max_gap_bits']:.3f} bits; all Huffman "
      f"lengths in [H, H+1): {s['huffman_within_bounds']}.",
      "",
  ]
  return "\n".join(lines + context.links()) + "\n"
