"""REPORT.md sections of the rebound family: setup, verdicts, tables, and the open questions they answer."""

from __future__ import annotations

import numpy as np

from experiments import statistics
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
    cell = summary["cells"].get(f"{unit.name} sft")
    if unit.order != "positive_first" or cell is None:
      continue
    _, arrays = run_dir.load(unit.name)
    t3 = cell["table3"]
    theory = mixture_examples_to_revert(config.first_sizes, arrays["pretrain_source_positive_share"])
    toy = [f"{v:.0f}" for v in t3["examples_to_pretrained_score_median"]]
    kl = [f"{m:.3f}" for m in t3["kl_after_first_stage_nats"]["mean"]]
    tension = t3["tension"]
    lines += [
        f"- {unit.name}, SFT: KL(model ‖ pre-trained) after n1 = {list(config.first_sizes)} positives: {kl} nats "
        f"(the paper's Table 3 also grows with n1). Negatives needed to bring the positive score back to the "
        f"pre-trained model's (median over seeds): {toy}; {_direction(tension)}. The paper's Table 3 needs fewer "
        "negatives after more alignment.",
        f"- The size-weighted mixture (the compression theory at its optimum) needs n2 = n1 (1 − s_p)/s_p "
        f"negatives to return to the pre-training share s_p: median {np.median(theory, axis=0).round(0).tolist()} "
        "for these n1 — increasing in n1, so the theory does not explain the paper's Table 3 pattern; the toy's "
        "sequentially trained models return far sooner than the mixture predicts.",
        f"- KL below ε = {config.epsilon_nats:g} nats: reached in "
        f"{t3['examples_to_kl_below_epsilon_reached']} of {config.seeds} seeds per n1; smallest KL on the curve "
        f"{[round(v, 3) for v in t3['min_kl_along_curve_nats']['mean']]} nats (the fine-tuned model also changes "
        "within each behaviour, so it never returns to the pre-trained distribution itself).",
    ]
  return lines or ["- (no positive-first SFT cell in the rebound run)"]


def _direction(tension: dict) -> str:
  """The descriptive trend of the examples needed to revert against n1, in words (two-sided Page test)."""
  if "page_p" not in tension:
    return f"too few seeds reverted within the grid to tell a direction ({tension['seeds_used']} did)"
  slope = tension["slope"]
  words = (f"mean per-seed slope {slope:+.3g} examples per doubling of n1 [{tension['slope_ci'][0]:+.3g}, "
           f"{tension['slope_ci'][1]:+.3g}], two-sided Page p = {tension['page_p']:.2g}, "
           f"{tension['seeds_used']} seeds; descriptive")
  if tension["page_p"] >= 0.05:
    return f"no trend in n1 distinguishable from none ({words})"
  return f"{'fewer, as in the paper' if slope < 0 else 'more, as the mixture does'} after more alignment ({words})"


def families_answer(summary: dict, context) -> list[str]:
  """Is the Pareto assumption needed? The decay verdict and half-life of each source family."""
  lines, shown = [], []
  for cell in summary["cells"].values():
    key = f"{cell['label']}/decay"
    status = context.status(summary, key)
    shown.append(status.startswith(statistics.SHOWN))
    life = ", ".join(f"{v:.3g}" for v in cell["half_life"]["mean"])
    lines.append(f"- {cell['family']}: fast, then slow: {status}; half-life per n1 {life} examples.")
  if all(shown):
    answer = "the rebound is fast-then-slow for every family: the Pareto assumption is not needed for it"
  elif not any(shown):
    answer = "fast-then-slow is shown for no family (see the statuses: inconclusive is not absence)"
  else:
    answer = f"fast-then-slow is shown for {sum(shown)} of {len(shown)} families"
  return lines + [f"- Answer: {answer}."]


def report(config: ReboundConfig, summary: dict, context) -> str:
  """The section of one rebound-family experiment: setup, verdicts, tables, open questions, figures."""
  lines = [_describe(config), "", "Verdicts:", ""]
  lines += context.verdicts(summary)
  lines += ["", "```", rebound_summary.format_summary({**summary, "verdicts": []}, config), "```", ""]
  if context.experiment == "rebound":
    lines += ["**The Table 3 tension: more alignment data (smaller k) yet fewer negatives to revert?**", ""]
    lines += table3_answer(config, summary, context.run_reader) + [""]
  if context.experiment == "families":
    lines += ["**Is the Pareto assumption needed: does the rebound look the same for other distributions?**", ""]
    lines += families_answer(summary, context) + [""]
  return "\n".join(lines + context.links()) + "\n"
