"""REPORT.md sections of the rebound family: setup, verdicts, tables, and the open questions they answer."""

from __future__ import annotations

import numpy as np

from experiments.rebound import summary as rebound_summary
from experiments.rebound.config import ReboundConfig
from experiments.rebound.run import units


def _describe(config: ReboundConfig) -> str:
  sizes = ", ".join(f"w{w} L{layers}" for w, layers in config.model_sizes)
  return (f"Transformers {sizes} (heads {config.heads}), depth {config.depth}, families {', '.join(config.families)}, "
          f"{config.behaviours} behaviour sources, {config.sampling} datasets, pre-training on "
          f"{', '.join(f'{m:g}' for m in config.pretrain_masses)} responses; first stage n1 in "
          f"{list(config.first_sizes)}, second stage n2 in {list(config.second_sizes)} ({', '.join(config.orders)}; "
          f"{', '.join(m.upper() for m in config.methods)}); {config.seeds} seeds; 1 epoch per stage at learning "
          f"rate {config.second.learning_rate:g} (Adam, minibatches of {config.pretrain.batch_size}, "
          f"{config.first.batch_size}, {config.second.batch_size}). Score = probability of the first stage's "
          "behaviour, exact over every response; ± are 95% t-intervals over seeds.")


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


def table3_answer(config: ReboundConfig, summary: dict, run_dir) -> list[str]:
  """The Table 3 tension, from the rebound run's positive-first SFT cells, against the mixture theory."""
  lines = []
  for unit in units(config):
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


def report(config: ReboundConfig, summary: dict, context) -> str:
  """The section of one rebound-family experiment: setup, verdicts, tables, open questions, figures."""
  lines = [_describe(config), "", "Verdicts:", ""]
  lines += [f"- {line}" for line in summary["verdicts"]]
  lines += ["", "```", rebound_summary.format_summary(summary, config), "```", ""]
  if context.experiment == "rebound":
    lines += ["**The Table 3 tension: more alignment data (smaller k) yet fewer negatives to revert?**", ""]
    lines += table3_answer(config, summary, context.run_reader) + [""]
  if context.experiment == "families":
    lines += ["**Is the Pareto assumption needed: does the rebound look the same for other distributions?**", ""]
    lines += families_answer(summary) + [""]
  return "\n".join(lines + context.links()) + "\n"
