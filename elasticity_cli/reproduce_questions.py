"""The REPORT.md section answering the paper's open questions from the saved hooke and rebound runs."""

from __future__ import annotations

import pathlib

import numpy as np

from elasticity_cli import reproduce_rebound, reproduce_steps
from theory import records
from toy_models import config_io, rebound
from toy_models.rebound_config import ReboundConfig
from toy_models.run_dir import RunDir

SLOPE_MATCH = 0.01  # a slope within this of the exact mixture's (or within its CI) is reported as matching it.


def _summary(path: pathlib.Path) -> dict | None:
  file = path / "summary.json"
  return records.read_json(file)["summary"] if file.exists() else None


def sequential_slope_answer(hooke_summary: dict, smallest_l: float) -> list[str]:
  """Q1: slope of log|Δγ_a/Δγ_p| against log k per model and regime at the smallest l, with its 95% CI."""
  lines = []
  for key, entry in hooke_summary.items():
    if key == "acceptance":
      continue
    row = entry["by_l"][f"{smallest_l:g}"]
    mean, half, theory = row["slope_mean"], row["slope_ci95"], row["theory_slope"]
    matches = np.isfinite(mean) and abs(mean - theory) <= max(half, SLOPE_MATCH)
    if not np.isfinite(mean):
      verdict = "no slope (a ratio was 0 or undefined)"
    elif matches and abs(mean) <= half:
      verdict = f"inconclusive: the CI holds both 0 and the exact mixture's slope {theory:.3f}"
    elif matches:
      verdict = f"matches the exact mixture's slope {theory:.3f} on the same data (1 as l -> 0)"
    elif abs(mean) <= half:
      verdict = "consistent with 0: the ratio does not scale with k"
    else:
      verdict = "neither 0 nor 1 within the CI"
    lines.append(f"- {key}: slope {mean:.3f} ± {half:.3f} (95% CI over seeds) at l = {smallest_l:g} — {verdict}; "
                 f"paper's signs in {100 * row['share_paper_signs']:.0f}% of runs.")
  return lines


def mixture_examples_to_revert(first_sizes, positive_share) -> np.ndarray:
  """Negatives n2 that bring the size-weighted mixture's positive share back to the pre-training share s_p.

  With D_p of N_p responses (positive share s_p), n1 positives and n2 negatives, the mixture's positive share is
  (N_p s_p + n1) / (N_p + n1 + n2), which equals s_p at n2 = n1 (1 - s_p) / s_p: linear and increasing in n1,
  and independent of N_p. Returns shape (len(positive_share), len(first_sizes)).

  References:
    Ji et al., "Language Models Resist Alignment", ACL 2025, Appendix Table 3 (the pattern this is compared with).
  """
  share = np.asarray(positive_share, dtype=np.float64)[:, None]
  return np.asarray(first_sizes, dtype=np.float64)[None, :] * (1 - share) / share


def table3_answer(data: pathlib.Path, name: str) -> list[str]:
  """Q2: the Table 3 tension, from the rebound run's positive-first SFT cell, against the mixture theory."""
  path = data / name
  summary = _summary(path)
  if summary is None:
    return ["- (no rebound run found)"]
  config = config_io.build(ReboundConfig, records.read_json(path / "config.json")["config"])
  run_dir = RunDir(path, config)
  lines = []
  for unit in rebound.units(config):
    if unit.order != "positive_first" or not run_dir.done(unit.name):
      continue
    _, arrays = run_dir.load(unit.name)
    cell = summary["cells"].get(f"{unit.name} sft")
    if cell is None:
      continue
    t3 = cell["table3"]
    theory = mixture_examples_to_revert(config.first_sizes, arrays["pretrain_source_positive_share"])
    toy = [f"{v:.0f}" for v in t3["examples_to_pretrained_score_median"]]
    kl = [f"{m:.3f}" for m in t3["kl_after_first_stage_nats"]["mean"]]
    tension = t3["tension"]
    rho = "n/a" if tension["rho"] is None else f"{tension['rho']:+.3f} (p = {tension['p_two_sided']:.2g})"
    lines += [
        f"- {unit.name}, SFT: KL(model ‖ pre-trained) after n1 = {list(config.first_sizes)} positives: {kl} nats "
        f"(the paper's Table 3 also grows with n1). Negatives needed to bring the positive score back to the "
        f"pre-trained model's (median over seeds): {toy}; Spearman rho(n1, needed) = {rho}. The paper's Table 3 has "
        f"rho < 0 (fewer negatives after more alignment).",
        f"- The size-weighted mixture (the compression theory at its optimum) needs n2 = n1 (1 − s_p)/s_p "
        f"negatives to return to the pre-training share s_p: median {np.median(theory, axis=0).round(0).tolist()} "
        "for these n1 — increasing in n1, so the theory does not explain the paper's Table 3 pattern. The toy's "
        "sequentially trained models return far sooner than the mixture predicts (elasticity), and "
        f"{_direction(tension)}.",
        f"- KL below ε = {config.epsilon_nats:g} nats: reached in "
        f"{t3['examples_to_kl_below_epsilon_reached']} of {config.seeds} seeds per n1; smallest KL on the curve "
        f"{[round(v, 3) for v in t3['min_kl_along_curve_nats']['mean']]} nats (the fine-tuned model also changes "
        "within each behaviour, so it never returns to the pre-trained distribution itself).",
    ]
  return lines or ["- (no positive-first SFT cell in the rebound run)"]


def _direction(tension: dict) -> str:
  if tension["rho"] is None:
    return "too few seeds reverted within the grid to tell a direction"
  if tension["p_two_sided"] >= 0.05:
    return f"the number they need does not depend on n1 significantly (rho = {tension['rho']:+.2f})"
  return ("they need fewer after more alignment, as in the paper" if tension["rho"] < 0
          else "they need more after more alignment, as the mixture does")


def families_answer(summary: dict | None) -> list[str]:
  """Q3: the fast-then-slow verdict and early/late slopes per source family."""
  if summary is None:
    return ["- (no families run found)"]
  lines = []
  for cell in summary["cells"].values():
    early = np.mean(cell["early_drop_per_example"]["mean"])
    late = np.mean(cell["late_drop_per_example"]["mean"])
    lines.append(f"- {cell['family']}: fast then slow {'SHOWN' if cell['holds']['fast_then_slow'] else 'NOT SHOWN'}; "
                 f"early fall {early:.3g} per example, late {late:.3g} (ratio {early / late:.3g}).")
  shown = [c["holds"]["fast_then_slow"] for c in summary["cells"].values()]
  lines.append(f"- Answer: the rebound {'looks the same' if all(shown) else 'differs'} across "
               f"{len(shown)} families ({sum(shown)} of {len(shown)} show fast-then-slow): "
               f"{'the Pareto assumption is not needed for it' if all(shown) else 'see the rows above'}.")
  return lines


def step(config) -> str:
  """The open-questions section, from the runs the earlier steps saved."""
  hooke, hooke_name = reproduce_steps.hooke_config(config.scale, config.seed)
  _, rebound_name = reproduce_rebound.scale_config("rebound", config.scale, config.seed)
  _, families_name = reproduce_rebound.scale_config("families", config.scale, config.seed)
  hooke_summary = _summary(config.data / hooke_name)
  lines = ["## Questions the paper leaves open", "",
           "**Does |Δγ_a/Δγ_p| scale with k in the sequential regime, and with what slope?** "
           f"(from `{config.data / hooke_name}`)", ""]
  lines += (sequential_slope_answer(hooke_summary, min(hooke.l_grid)) if hooke_summary else ["- (no hooke run)"])
  lines += ["", "**The Table 3 tension: more alignment data (smaller k) yet fewer negatives to revert?** "
            f"(from `{config.data / rebound_name}`)", ""]
  lines += table3_answer(config.data, rebound_name)
  lines += ["", "**Is the Pareto assumption needed: does the rebound look the same for other distributions?** "
            f"(from `{config.data / families_name}`)", ""]
  lines += families_answer(_summary(config.data / families_name))
  return "\n".join(lines) + "\n"
