"""The REPORT.md section of the sequential study: does the −k law carry over to sequential training?"""

from __future__ import annotations

from experiments.sequential import summary as sequential_summary
from experiments.sequential.config import KSCALING_CONDITIONS, REPLAY_VERDICT_CONDITION, SequentialConfig

SUBSECTION = "Does the −k law carry over to sequential training?"


def _ci(entry: dict, digits: int = 2) -> str:
  return f"{entry['mean']:.{digits}f} ± {entry['ci95']:.{digits}f}" if entry["n"] else "n/a"


def _status(context, summary: dict, key: str) -> str:
  try:
    return context.status(summary, key)
  except KeyError:
    return "not computable (fewer than 2 seeds with a defined slope)"


def regime_table(summary: dict) -> list[str]:
  """Markdown table of the replay map: slope of log|Δγ_a/Δγ_p| on log k (mean ± 95% CI over seeds) per rho."""
  rows = [(model, name, entries) for model, replay in summary["replay"].items() for name, entries in replay.items()]
  if not rows:
    return ["(no replay runs)"]
  fractions = [entry["rho"] for entry in rows[0][2]]
  lines = ["| model | condition | " + " | ".join(f"ρ = {rho:g}" for rho in fractions) + " | steps capped |",
           "|---|---|" + "---|" * len(fractions) + "---|"]
  for model, name, entries in rows:
    capped = ", ".join(f"{100 * e['capped_share']:.0f}%" for e in entries)
    lines.append(f"| {model} | {name} | " + " | ".join(_ci(e["slope"]) for e in entries) + f" | {capped} |")
  return lines


def condition_table(summary: dict, config: SequentialConfig) -> list[str]:
  """Markdown table: per model and condition, the measured and the predicted slope, and k in steps per k."""
  k_text = ", ".join(f"{k:g}" for k in config.k_grid)
  lines = ["| model | condition | slope measured | slope predicted by E_a/E_p | mean ratio Δγ_a/Δγ_p (k = "
           f"{k_text}) | u after alignment | k in steps | alignment excess (nats/response) |",
           "|---|---|---|---|---|---|---|---|"]
  for model, conditions in summary["sequential"].items():
    for name, entry in conditions.items():
      ratios = ", ".join(f"{row['ratio']['mean']:.3g}" for row in entry["per_k"])
      mass = ", ".join(f"{row['unaligned_mass_after_alignment']['mean']:.2g}" for row in entry["per_k"])
      steps = ", ".join(f"{row['k_in_steps']:.3g}" for row in entry["per_k"])
      excess = ", ".join(f"{row['align_excess_nats_per_response']['mean']:.2g}" for row in entry["per_k"])
      lines.append(f"| {model} | {name} | {_ci(entry['slope'])} | {_ci(entry['instantaneous_slope'])} | {ratios} | "
                   f"{mass} | {steps} | {excess} |")
  return lines


def _k_status(context, summary: dict, model: str, name: str) -> str:
  """A k-scaling verdict's status (a shown slope below the smallest effect of interest says so)."""
  return _status(context, summary, f"sequential/kscaling/{model}/{name}")


def answer(config: SequentialConfig, summary: dict, context) -> list[str]:
  """The answer in brief, every number from the summary: per model the k-scaling verdicts in the two pre-registered
  conditions with the state u after alignment at the smallest and the largest k, and what explains log|ratio|."""
  sequential, theory = summary["sequential"], summary["theory"]
  if not sequential:
    return []
  k_low, k_high = f"{min(config.k_grid):g}", f"{max(config.k_grid):g}"
  lines = [f"**Answer in brief.** Slope of log|Δγ_a/Δγ_p| on log k (1 under the −k law, 0 without k-scaling), its "
           f"verdict, and the unaligned mass u after alignment at k = {k_low} → {k_high}:", ""]
  for model, conditions in sequential.items():
    parts = []
    for name in KSCALING_CONDITIONS:
      if name in conditions:
        entry = conditions[name]
        mass = [row["unaligned_mass_after_alignment"]["mean"] for row in entry["per_k"]]
        parts.append(f"{name} {_ci(entry['slope'])}, {_k_status(context, summary, model, name)}, u {mass[0]:.2g} → "
                     f"{mass[-1]:.2g}")
    lines.append(f"- {model}: " + "; ".join(parts) + ".")
  lines += ["", "Read the slopes against u: in the mean-loss conditions every stage runs at the optimiser's own "
            "rate for steps in proportion to its data; in the summed-loss conditions one learning rate serves every "
            "stage, so alignment's gradient is about k times smaller than pre-training's and how far alignment gets "
            "(u) can depend on k. Variance of log|ratio| over all runs (conditions × k × seeds) explained (R²) by "
            "log k, by ln u and by the first-order prediction log|E_a/E_p|: " + "; ".join(
                f"{model} {e['r2_log_k']:.2f} vs {e['r2_state']:.2f} vs {e['r2_prediction']:.2f}"
                for model, e in theory.items() if "r2_log_k" in e) + ".", ""]
  return lines


def report(config: SequentialConfig, summary: dict, context) -> str:
  """The section: setup, the tables, the answer to the question with its verdicts, and the figures."""
  links = {path.name: f"![{path.stem}]({path.relative_to(context.figures_dir).as_posix()})" for path in context.files}
  lines = [f"k grid {list(config.k_grid)}, l = {config.l:g}, |D_a| = {config.align_mass:g} responses, depth "
           f"{config.depth}, {config.family} sources, {config.perturbation} D_t as exact expected counts, "
           f"{config.seeds} seeds, models {', '.join(config.model_names())}. Rates γ_i in bits per response, exact "
           "(every response enumerated, float64); ± are 95% t-intervals over seeds; slopes are per seed, of "
           "log|ratio| on log k (the seed is the unit of replication). Setup and every pre-registered choice: "
           "experiments/sequential/README.md.", "", "```", sequential_summary.format_summary(summary, config), "```",
           "", f"### {SUBSECTION}", ""]
  lines += answer(config, summary, context)
  joint = summary["joint"]
  if joint:
    lines.append("**Joint optimum (implicit differentiation at l = 0).** The slope of log|dγ_a/dl / dγ_p/dl| on "
                 "log k, per seed, at the converged point: " + "; ".join(
                     f"{model} {_ci(entry['slope'], 4)} (max |Σ n_i dγ_i/dl| / Σ n_i |dγ_i/dl| "
                     f"{max(r['max_abs_relative_residual'] for r in entry['per_k']):.1e})"
                     for model, entry in joint.items()) + ". This holds by construction at any stationary point "
                 "of the count-weighted objective (docs/THEORY.md §5.1, claim 10): a consistency check of first-order "
                 "optimality, not evidence for the compression picture; what it can show is that the transformers "
                 "reached stationary points; it cannot show that training ever gets there.")
    transformers = {m: e for m, e in joint.items() if m.startswith("transformer")}
    for model, entry in transformers.items():
      gradients = ", ".join(f"{row['max_gradient_norm_nats']:.2g}" for row in entry["per_k"])
      lines.append(f"- {model} joint slope from implicit differentiation: {_ci(entry['slope'], 4)} over "
                   f"{entry['slope']['n']} seeds (pre-registered: every seed); over the {entry['stationary_seeds']} "
                   f"seeds whose converged point is stationary at every k (||∇J||/N ≤ "
                   f"{sequential_summary.STATIONARY_GRADIENT:g} nats per response, descriptive): "
                   f"{_ci(entry['slope_stationary_seeds'], 4)}. Largest ||∇J|| per k: {gradients} nats × responses; "
                   "where Newton-CG stalled the point is not stationary and the ratio departs from −k by the "
                   "stationarity term (degradation table above, and the degradation figure).")
    lines.append("")
  sequential = summary["sequential"]
  if sequential:
    lines += ["**Sequential training (pre-train, align, fine-tune on D_t alone).** Verdicts on the paper's k-scaling "
              "(exact sign-flip test over seeds that the per-seed slope is > 0; evidence of absence when the CI lies "
              f"below {sequential_summary.SMALLEST_SLOPE}):", ""]
    for model, conditions in sequential.items():
      for name in KSCALING_CONDITIONS:
        if name in conditions:
          lines.append(f"- {model}, {name}: slope {_ci(conditions[name]['slope'])} — "
                       f"{_k_status(context, summary, model, name)}")
    lines += ["", "Every condition (descriptive): the measured slope against the slope of the first-order prediction "
              "E_a/E_p at the post-alignment state; u is the model's mass on the unaligned subtree after alignment "
              "(the state variable), k in steps is pre-training steps / alignment steps, the alignment excess is "
              "CE(P_a, q) − H(P_a) after alignment (0 only for a model that reproduces D_a):", ""]
    lines += condition_table(summary, config) + [""]
  if summary["replay"]:
    lines += ["**Regime map (replay).** Fine-tuning on n_t P_t + ρ (n_p P_p + n_a P_a); Δγ attributable to D_t is the "
              "difference to the same fine-tuning without D_t (same steps, same keys). At any ρ > 0 the fixed point "
              "of that stage is the optimum of a count-weighted objective with weights ρ n_p, ρ n_a, n_t, so the −k "
              "law holds there as n_t → 0 (docs/THEORY.md §5.7); what ρ changes is how close the capped budget gets "
              "to that fixed point. Slope of log|Δγ_a/Δγ_p| on log k per ρ:", ""] + regime_table(summary) + [""]
    for model in summary["replay"]:
      key = f"sequential/replay/{model}"
      if any(v["key"] == key for v in summary["verdicts"]):
        lines.append(f"- {model}, {REPLAY_VERDICT_CONDITION}: slope(ρ = max) > slope(ρ = 0) — "
                     f"{_status(context, summary, key)}")
    smallest = min((row["median_abs_delta_pretrain_bits"][-1], model, name, row["rho"])
                   for model, replay in summary["replay"].items() for name, rows in replay.items() for row in rows
                   if row["rho"] > 0)
    lines += ["", f"Conditioning: the Δγ attributable to D_t is a difference of two runs that differ by n_t = "
              f"{config.l * config.align_mass:g} response(s) in the stage's data; its smallest median |Δγ_p| (at k = "
              f"{max(config.k_grid):g}) is {smallest[0]:.2g} bits per response ({smallest[1]}, {smallest[2]}, ρ = "
              f"{smallest[3]:g}). Adam's per-coordinate normalisation can amplify rounding where the replayed data's "
              "gradient is near zero, so the slopes at large ρ k carry floating-point noise next to their seed "
              "spread (README.md).", "", links.get("sequential_replay.png", ""), ""]
  theory = summary["theory"]
  if theory:
    lines += ["**What replaces k: the first-order theory of the sequential step.** One fine-tuning step moves γ_i by "
              "η E_i with E_i = −∇γ_i · P ∇L_t (docs/THEORY.md §5.3, §5.6), so the sequential ratio is predicted by "
              "E_a/E_p at the post-alignment state, a function of that state (and the optimiser state) in which k "
              f"enters only through how pre-training and alignment left the model. The pre-registered state variable "
              f"is the {sequential_summary.STATE_VARIABLE} (ln u). Pooled over conditions, k and seeds:", ""]
    for model, entry in theory.items():
      if "correlation" not in entry:
        lines.append(f"- {model}: too few runs with defined ratios ({entry['runs']}).")
        continue
      low, high = entry["correlation_ci95"]
      lines.append(f"- {model}: correlation of log|E_a/E_p| with log|Δγ_a/Δγ_p| r = {entry['correlation']:.3f} "
                   f"[{low:.3f}, {high:.3f}] (bootstrap over seeds) over {entry['runs']} runs ({entry['dropped']} "
                   f"with an undefined ratio dropped), fit slope {entry['fit_slope']:.3f}; same sign in "
                   f"{100 * entry['same_sign_share']:.0f}% of runs; share of the variance of log|ratio| explained by "
                   f"log k {entry['r2_log_k']:.3f}, by ln u {entry['r2_state']:.3f}, by both "
                   f"{entry['r2_log_k_and_state']:.3f}, by the prediction {entry['r2_prediction']:.3f}.")
    lines += ["", "Per condition, the median |log10 measured − log10 predicted| ratio (0: the first-order prediction "
              "is exact) and the share of runs with the predicted sign:", "",
              "| model | " + " | ".join(summary["sequential"][next(iter(theory))]) + " |",
              "|---|" + "---|" * len(summary["sequential"][next(iter(theory))])]
    for model, entry in theory.items():
      if "by_condition" in entry:
        lines.append(f"| {model} | " + " | ".join(
            f"{row['median_abs_log10_error']:.2f} ({100 * row['same_sign_share']:.0f}%)"
            for row in entry["by_condition"].values()) + " |")
    lines += ["", "The prediction is first order in the fine-tuning step. By design the summed-loss conditions "
              "fine-tune at η T_t, about l/k of the pre-training stage's rate (small steps), and the mean-loss "
              "conditions take their steps at the optimiser's full rate.", "",
              "What these statistics can show: whether the sequential ratio follows the state reached after "
              "alignment (and the optimiser) rather than k itself, within these toy models and budgets. What they "
              "cannot show: causation by the state variable (it is measured, not manipulated; k, the conditions and "
              "the state are confounded by design), or anything beyond the first fine-tuning steps at l = "
              f"{config.l:g}. The correlation pools conditions, so part of it is between-condition spread.", "",
              links.get("sequential_theory.png", ""), ""]
  lines += ["Verdicts:", ""] + context.verdicts(summary) + [""]
  if summary.get("uncomputable_verdicts"):
    lines += ["Pre-registered verdicts that could not be computed (a ratio was 0 or undefined in too many seeds): "
              + ", ".join(summary["uncomputable_verdicts"]), ""]
  shown = {"sequential_replay.png", "sequential_theory.png"}
  lines += [link for name, link in links.items() if name not in shown]
  return "\n".join(lines) + "\n"
