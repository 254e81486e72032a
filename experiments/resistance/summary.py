"""Summary of a resistance run: the Table 1 analogue (forward vs inverse, mean ± CI, paired tests) and verdicts."""

from __future__ import annotations

import dataclasses

import numpy as np

from experiments import verdicts_legacy as verdicts
from experiments.resistance.config import PAIRS, ResistanceConfig
from experiments.resistance.run import units
from experiments.run_dir import RunDir
from experiments.verdicts_legacy import mean_ci

PAIR_NAMES = tuple(f"θ{i + 1}-θ{j + 1}" for i, j in PAIRS)
QUANTITIES = ("loss_nats_per_token", "target_entropy_nats_per_token", "excess_nats_per_token", "kl_before_nats",
              "kl_after_nats")
"""Per-direction arrays of a unit summarised in every row (see toy_models.resistance.run_unit)."""
EXCESS_EFFECT = "Resistance, entropy-free: inverse excess loss (loss − target entropy) below forward"


def _mean_ci(values) -> dict[str, float]:
  mean, half = mean_ci(values)
  return {"mean": float(mean), "ci95": float(half)}


def collect(config: ResistanceConfig, run_dir: RunDir) -> list[tuple[dict, dict]]:
  """(unit summary, arrays) of the finished units, in grid order."""
  return [run_dir.load(unit.name) for unit in units(config) if run_dir.done(unit.name)]


def _statistics(verdict: verdicts.Verdict, differences: np.ndarray, p_values: np.ndarray) -> dict:
  return {"holds": verdict.holds, "cells": int(differences.size), "cells_inverse_lower": int((differences < 0).sum()),
          "cells_significant": int((p_values < verdicts.ALPHA).sum()), "mean_gap": float(differences.mean()),
          "gaps": differences.tolist(), "p_values": p_values.tolist()}


def summarize(config: ResistanceConfig, run_dir: RunDir) -> dict:
  """The Table 1 analogue of the finished units, with two verdicts.

  Args:
    config: the run's config.
    run_dir: its run directory.

  Returns:
    A JSON-able dict: 'rows', one per (dataset, size, pair) cell, with forward and inverse mean ± 95% CI over
    seeds of the final loss and the target's entropy (nats per token), of the excess (loss - entropy, nats per
    token) and of KL(target ‖ model) before and after training (nats per response); 'loss_gap' and 'excess_gap'
    (inverse - forward, paired by seed: mean ± CI; negative = the paper's resistance) with the one-sided paired
    t-test p-values of inverse < forward. 'verdicts': the lines of proofs_check.verdicts.resistance_verdict on the
    loss (the paper's statistic) and on the excess (the same test with each target's entropy removed);
    'statistics': the numbers behind both, and the mean KLs over every cell and seed.

  References:
    Ji et al., "Language Models Resist Alignment", ACL 2025, Table 1 and Appendix Table 2.
  """
  rows, paired = [], {"loss": ([], []), "excess": ([], [])}
  for unit, arrays in collect(config, run_dir):
    for index, pair in enumerate(PAIR_NAMES):
      row = {"unit": unit["name"], "dataset": unit["unit"]["dataset"], "size": unit["unit"]["size"],
             "parameter_count": unit["parameter_count"], "pair": pair}
      for direction in ("forward", "inverse"):
        for quantity in QUANTITIES:
          row[f"{direction}_{quantity}"] = _mean_ci(arrays[f"{direction}_{quantity}"][:, index])
      for key, quantity in (("loss", "loss_nats_per_token"), ("excess", "excess_nats_per_token")):
        forward, inverse = arrays[f"forward_{quantity}"][:, index], arrays[f"inverse_{quantity}"][:, index]
        row[f"{key}_gap"] = _mean_ci(inverse - forward)
        row[f"{key}_gap_p"] = verdicts.paired_less(inverse, forward)[1]
        paired[key][0].append(forward)
        paired[key][1].append(inverse)
      rows.append(row)
  if not rows:
    return {"rows": [], "verdicts": [], "statistics": {}}
  loss_verdict, loss_gaps, loss_p = verdicts.resistance_verdict(*map(np.stack, paired["loss"]))
  excess_verdict, excess_gaps, excess_p = verdicts.resistance_verdict(*map(np.stack, paired["excess"]))
  excess_verdict = dataclasses.replace(excess_verdict, effect=EXCESS_EFFECT)
  kl = {f"{direction}_{when}_nats": float(np.mean([row[f"{direction}_kl_{when}_nats"]["mean"] for row in rows]))
        for direction in ("forward", "inverse") for when in ("before", "after")}
  statistics = {"loss": _statistics(loss_verdict, loss_gaps, loss_p),
                "excess": _statistics(excess_verdict, excess_gaps, excess_p), "mean_kl": kl}
  return {"rows": rows, "verdicts": [loss_verdict.line(), excess_verdict.line()], "statistics": statistics,
          "holds": {"loss": loss_verdict.holds, "excess": excess_verdict.holds}}


def _pm(entry: dict, sign: str = "") -> str:
  return f"{entry['mean']:{sign}.4f}±{entry['ci95']:.4f}"


def format_summary(summary: dict, config: ResistanceConfig) -> str:
  """The Table 1 analogue as a text table (losses and excess in nats per token, KL in nats per response), then the
  verdict lines."""
  del config
  header = (f"{'dataset':<10} {'size (params)':<15} {'pair':<6} {'forward loss':>15} {'inverse loss':>15} "
            f"{'gap inv-fwd':>16} {'p':>6}  {'fwd excess':>10} {'inv excess':>10} {'excess gap':>11} {'p':>6}  "
            "KL(target‖model) before→after: fwd | inv")
  lines = [header]
  for row in summary["rows"]:
    size = f"w{row['size'][0]}L{row['size'][1]} ({row['parameter_count']})"
    kl = " | ".join(f"{row[f'{d}_kl_before_nats']['mean']:.3f}→{row[f'{d}_kl_after_nats']['mean']:.3f}"
                    for d in ("forward", "inverse"))
    lines.append(f"{row['dataset']:<10} {size:<15} {row['pair']:<6} {_pm(row['forward_loss_nats_per_token']):>15} "
                 f"{_pm(row['inverse_loss_nats_per_token']):>15} {_pm(row['loss_gap'], '+'):>16} "
                 f"{row['loss_gap_p']:>6.2g}  {row['forward_excess_nats_per_token']['mean']:>10.4f} "
                 f"{row['inverse_excess_nats_per_token']['mean']:>10.4f} {row['excess_gap']['mean']:>+11.4f} "
                 f"{row['excess_gap_p']:>6.2g}  {kl}")
  return "\n".join(lines + summary["verdicts"])
