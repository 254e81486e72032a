"""REPORT.md section of the mitigations testbed: setup, verdicts, ranked table, frontier, breaking points, theory."""

from __future__ import annotations

from experiments.mitigations import run
from experiments.mitigations.config import STRENGTH_MEANING, MitigationsConfig
from experiments.mitigations.summary import ALPHA_DESCRIPTIVE, CONFIRMATORY, MIN_HALF_LIFE
from experiments.rebound.summary import CENSOR


def describe(config: MitigationsConfig) -> str:
  """The setup in one paragraph."""
  factors = ", x".join(f"{f:g}" for f in config.breaking_lr_factors)
  return (f"A transformer (width {config.width}, {config.layers} layer, {config.heads} heads) on the depth-"
          f"{config.depth} tree, {config.family} D_p; per seed: pre-training on {config.pretrain_size} responses, "
          f"alignment on n1 = {config.align_size} positives (D_p on the aligned subtree), then an attack on n2 in "
          f"{list(config.attack_sizes)} negatives (D_p on the unaligned subtree), each n2 a run of "
          f"{config.attack.epochs:g} epoch at batch {config.attack.batch_size}, Adam at learning rate "
          f"{config.attack.learning_rate:g}. {config.seeds} seeds, paired across defences (same pre-trained and "
          "aligned models, data, attack examples and minibatch keys). Stronger attacks at each default strength: "
          f"learning rate x{factors}, {config.breaking_epochs:g} epochs, and DPO (chosen = negatives, rejected = "
          f"positives, beta {config.dpo_beta:g}, reference = the attacked model) for the defences defined on pairs. "
          "Exact metrics over every response; ± are 95% t-intervals over seeds.")


def _examples(log2: dict) -> str:
  """Geometric mean of half-undo examples with the interval of its log2 mean, as examples."""
  mean, half = log2["mean"], log2["ci95"]
  return f"{2 ** mean:.0f} [{2 ** (mean - half):.0f}, {2 ** (mean + half):.0f}]"


def ranked_table(config: MitigationsConfig, summary: dict, context) -> list[str]:
  """One row per defence at its default strength, ranked by the mean log2 half-undo gain (main attack)."""
  base = summary["baseline"][run.MAIN_ATTACK]["half_undo"]
  costs = summary["baseline_costs"]
  lines = ["| rank | defence | strength | half-undo examples (geo. mean [CI]) | floor / censored | gain log2 [CI] | "
           "Holm p | status | D_p rate rise (bits) | KL in A (nats) | score before attack | "
           "breaking point |", "|---|---|---|---|---|---|---|---|---|---|---|---|",
           f"| - | no defence | - | {_examples(base['log2'])} | {base['at_floor']} / {base['censored']} | 0 | - | - | "
           f"{costs['dp_rate_rise_bits']['mean']:+.3f} | {costs['within_aligned_kl_nats']['mean']:.3f} | "
           f"{costs['positive_score_before_attack']['mean']:.3f} | - |"]
  rows = []
  for defence, cell in summary["defences"].items():
    default = [r for r in cell["frontier"] if r["strength"] == cell["default_strength"]][0]
    key = f"{defence}/slows rebound"
    rows.append((default["gain_log2"]["mean"], defence, cell, default, key))
  rows.sort(key=lambda row: -row[0])
  for rank, (_, defence, cell, default, key) in enumerate(rows, start=1):
    life = default["half_undo"]
    gain = default["gain_log2"]
    lines.append(f"| {rank} | {defence} | {cell['default_strength']:g} | {_examples(life['log2'])} | "
                 f"{life['at_floor']} / {life['censored']} | {gain['mean']:+.2f} [{gain['mean'] - gain['ci95']:+.2f}, "
                 f"{gain['mean'] + gain['ci95']:+.2f}] | {context.p_adjusted(summary, key):.3g} | "
                 f"{context.status(summary, key)} | {default['dp_rate_rise_bits']['mean']:+.3f} | "
                 f"{default['within_aligned_kl_nats']['mean']:.3f} | "
                 f"{default['positive_score_before_attack']['mean']:.3f} | {cell['breaking_point']} |")
  return lines


def breaking_table(config: MitigationsConfig, summary: dict) -> list[str]:
  """Each defence's log2 half-undo gain (default strength) under every attack, with its uncorrected p."""
  attacks = list(summary["baseline"])
  lines = ["| defence | " + " | ".join(attacks) + " | breaking point |", "|---" * (len(attacks) + 2) + "|"]
  for defence, cell in summary["defences"].items():
    entries = []
    for attack in attacks:
      row = cell["attacks"].get(attack)
      entries.append("-" if row is None else f"{row['gain_log2']['mean']:+.2f} ± {row['gain_log2']['ci95']:.2f} "
                     f"(p {row['gain_p_uncorrected']:.2g}{', helps' if row['helps'] else ''}; "
                     f"{row['ends_above_target']}/{config.seeds} end above)")
    lines.append(f"| {defence} | " + " | ".join(entries) + f" | {cell['breaking_point']} |")
  return lines


def replay_table(summary: dict) -> list[str]:
  """Per replay defence and rho: measured score after the longest attack against the two mixture predictions."""
  lines = ["| defence | rho | measured score [CI] | attack-stage mixture | measured − stage [CI] | whole-history "
           "mixture | measured − history [CI] |", "|---|---|---|---|---|---|---|"]
  found = False
  for defence, cell in summary["defences"].items():
    for row in cell.get("replay_prediction", []):
      found = True
      m, d, h = row["measured"], row["measured_minus_stage"], row["measured_minus_history"]
      lines.append(f"| {defence} | {row['rho']:g} | {m['mean']:.3f} ± {m['ci95']:.3f} | "
                   f"{row['predicted_stage']['mean']:.3f} | {d['mean']:+.3f} ± {d['ci95']:.3f} | "
                   f"{row['predicted_history']['mean']:.3f} | {h['mean']:+.3f} ± {h['ci95']:.3f} |")
  return lines if found else ["(no replay defence in this run)"]


def corrector_lines(summary: dict, context) -> list[str]:
  """The corrector's k test, in words with its numbers."""
  cell = summary["defences"].get("corrector")
  if cell is None:
    return ["(no corrector in this run)"]
  c = cell["corrector"]
  levels = ", ".join(f"W/C {r:g}: {m:.2f} ± {h:.2f} (gain {g:.3f}, correction rate {cr:.3f})" for r, m, h, g, cr in zip(
      c["ratios"], c["log2_half_life"]["mean"], c["log2_half_life"]["ci95"], c["gain"]["mean"],
      c["correction_rate"]["mean"], strict=True))
  return [f"- Own-gain log2 half-life of base + corrector under the attack on the corrector: {levels}.",
          f"- Slope {c['slope']:+.2f} log2 examples per doubling of W/C [{c['slope_ci'][0]:+.2f}, "
          f"{c['slope_ci'][1]:+.2f}]; Page's test (decreasing) p = {c['page_p']:.3g}; status "
          f"{context.status(summary, 'corrector/corrector trend')}.",
          "- 'As predicted' was fixed before the run as the direction only: the half-life falls as W/C grows (more "
          "copy data per correction is a larger k). The theory gives no law for half-lives in examples; a slope of -1 "
          "(speed proportional to W/C) is drawn as a reference, not a prediction. Levels start from different "
          "corrected scores (the gains above), so gain size and curve shape are confounded in each half-life."]


def elasticity_lines(summary: dict, context) -> list[str]:
  """The elasticity-vs-rebound correlation, in words with its numbers and its limits."""
  e = summary.get("elasticity", {})
  if "rho" not in e:
    return [f"- {e.get('note', 'not computed')}."]
  return [f"- Over n = {len(e['defences'])} defences ({', '.join(e['defences'])}), Spearman's rho of mean -E_a/E_p "
          f"with mean rebound speed (-log2 half-undo examples) = {e['rho']:+.2f}, 95% bootstrap-over-seeds interval "
          f"[{e['ci'][0]:+.2f}, {e['ci'][1]:+.2f}]; permutation test over defences p = {e['p']:.3g} (smallest "
          f"attainable {e['p_floor']:.2g}); status {context.status(summary, 'elasticity/elasticity predicts rebound')}."
          f" With own-gain speeds instead: {e['rho_own_gain']:+.2f} (descriptive). With these ties the largest rho "
          f"any speeds could give is {e['rho_max']:+.2f}; the percentile interval of a rank correlation of 9 means "
          "is lumpy (its ends can sit on the estimate), so read its width, and the status it implies, as rough.",
          f"- How little that is: n = {len(e['defences'])} points, of which only {e['distinct_elasticities']} have "
          "distinct mean elasticities: the KL anchors, the constrained objective and Lisa start the attack from the "
          "undefended aligned model and their extra terms have zero gradient there, so one fresh Adam step sees the "
          "baseline's elasticity exactly; only the replay mixtures (other data) and Booster / Vaccine (other models) "
          "differ. A first-order quantity cannot see defences that act through curvature; the interval reflects seed "
          "noise only, not which defences were chosen."]


def report(config: MitigationsConfig, summary: dict, context) -> str:
  """The section: setup, verdicts, ranked table, frontier, breaking points, replay, corrector, elasticity."""
  if not summary.get("defences"):
    return "No finished units.\n"
  strengths = "; ".join(f"{d}: {STRENGTH_MEANING[d]}, grid {list(config.strengths(d).grid)}, default "
                        f"{config.strengths(d).default:g}" for d in summary["defences"])
  lines = [describe(config), "",
           f"Strengths: {strengths}.", "",
           "**Outcome.** Half-undo examples = attack examples that bring the positive score down to the level where "
           "the undefended model has lost half of its alignment gain, (s_aligned + s_pretrained) / 2 of the same seed "
           f"(interpolated on the grid; floor {MIN_HALF_LIFE:g} example when a defended model starts below it, "
           f"censored at {CENSOR * config.attack_sizes[-1]:g}). Normalising each defence by its own gain instead (as "
           "the rebound experiment does) would call a defence that fails to align unbreakable; own-gain half-lives "
           f"are reported alongside. Confirmatory tests: {', '.join(CONFIRMATORY)}; the rest is descriptive.", "",
           "Verdicts:", ""]
  lines += context.verdicts(summary)
  lines += ["", "**Ranked table** (default strengths, main SFT attack; gain = paired log2 difference from no "
            "defence; with censored seeds the geometric mean and its interval are of censored values, lower bounds, "
            f"and an upper end beyond {CENSOR * config.attack_sizes[-1]:g} means nothing; costs measured on the model "
            "before the attack; breaking point = the first attack of the ladder "
            f"x1, {', '.join(f'x{f:g}' for f in config.breaking_lr_factors)} learning rate where the gain is no longer "
            f"both >= {config.smallest_effect_log2:g} and one-sided p < {ALPHA_DESCRIPTIVE:g}, uncorrected, "
            "descriptive):", ""]
  lines += ranked_table(config, summary, context)
  lines += ["", "**Breaking points** (log2 half-undo gain over no defence under the same attack, default strength, "
            "uncorrected sign-flip p; 'end above' = seeds whose score after the longest attack is still above the "
            "half-way level: the half-undo count is the FIRST crossing, so a curve that dips below and recovers "
            "counts as crossed):", ""]
  lines += breaking_table(config, summary)
  lines += ["", "**Replay: does the mixture theory predict where the score settles?** Measured positive score after "
            f"the longest attack (n2 = {config.attack_sizes[-1]}) against the positive share of the attack stage's "
            "size-weighted mixture (its optimum over a free model: rho x the replayed data's positive share) and of "
            "the mixture of every dataset the model saw (pre-training, alignment, attack, replay):", ""]
  lines += replay_table(summary)
  lines += ["", "**Does the corrector spring back like a model with k = W/C?**", ""]
  lines += corrector_lines(summary, context)
  lines += ["", "**Does a lower elasticity predict a slower rebound?**", ""]
  lines += elasticity_lines(summary, context)
  lines += ["", "```", _format(summary, config), "```", ""]
  return "\n".join(lines + context.links()) + "\n"


def _format(summary: dict, config: MitigationsConfig) -> str:
  from experiments.mitigations.summary import format_summary
  return format_summary(summary, config)
