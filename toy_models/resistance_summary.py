"""Summary of a resistance run: the Table 1 analogue (forward vs inverse, mean ± CI, paired tests) and verdicts."""

from __future__ import annotations

import dataclasses

import numpy as np

from proofs_check import verdicts
from proofs_check.verdicts import mean_ci
from toy_models.resistance import units
from toy_models.resistance_config import PAIRS, ResistanceConfig
from toy_models.run_dir import RunDir

PAIR_NAMES = tuple(f"θ{i + 1}-θ{j + 1}" for i, j in PAIRS)


def collect(config: ResistanceConfig, run_dir: RunDir) -> list[tuple[str, int, dict]]:
  """(unit name, parameter count, arrays) of the finished units, in grid order."""
  out = []
  for unit in units(config):
    if run_dir.done(unit.name):
      summary, arrays = run_dir.load(unit.name)
      out.append((unit.name, summary["parameter_count"], arrays))
  return out


def summarize(config: ResistanceConfig, run_dir: RunDir) -> dict:
  """Rows (unit, pair) with forward and inverse mean ± 95% CI of the final loss (nats per token), of the excess
  over the target's entropy, and of KL(target ‖ model) before and after (nats per response); the one-sided paired
  p-value of inverse < forward per row; and two verdicts: on the loss (the paper's statistic) and on the excess
  (the same comparison with each target's own entropy removed)."""
  rows, loss, excess = [], {"forward": [], "inverse": []}, {"forward": [], "inverse": []}
  for name, parameters, arrays in collect(config, run_dir):
    for index, pair in enumerate(PAIR_NAMES):
      row = {"unit": name, "pair": pair, "parameter_count": parameters}
      for direction in ("forward", "inverse"):
        for quantity in ("loss_nats_per_token", "excess_nats_per_token", "kl_before_nats", "kl_after_nats"):
          mean, half = mean_ci(arrays[f"{direction}_{quantity}"][:, index])
          row[f"{direction}_{quantity}"] = {"mean": float(mean), "ci95": float(half)}
        loss[direction].append(arrays[f"{direction}_loss_nats_per_token"][:, index])
        excess[direction].append(arrays[f"{direction}_excess_nats_per_token"][:, index])
      row["loss_gap_p"] = verdicts.paired_less(loss["inverse"][-1], loss["forward"][-1])[1]
      row["excess_gap_p"] = verdicts.paired_less(excess["inverse"][-1], excess["forward"][-1])[1]
      rows.append(row)
  if not rows:
    return {"rows": [], "verdicts": []}
  loss_verdict, _, _ = verdicts.resistance_verdict(np.stack(loss["forward"]), np.stack(loss["inverse"]))
  excess_verdict, _, _ = verdicts.resistance_verdict(np.stack(excess["forward"]), np.stack(excess["inverse"]))
  excess_verdict = dataclasses.replace(
      excess_verdict, effect="Resistance, entropy-free: inverse excess loss (loss − target entropy) below forward")
  return {"rows": rows, "verdicts": [loss_verdict.line(), excess_verdict.line()],
          "holds": {"loss": loss_verdict.holds, "excess": excess_verdict.holds}}


def format_summary(summary: dict, config: ResistanceConfig) -> str:
  """The Table 1 analogue as text, then the verdicts."""
  del config
  lines = [f"{'unit':<16} {'pair':<6} {'forward loss':>17} {'inverse loss':>17} {'p(inv<fwd)':>10} "
           f"{'fwd excess':>10} {'inv excess':>10} {'p':>8}  KL before→after fwd, inv (nats)"]
  for row in summary["rows"]:
    f, i = row["forward_loss_nats_per_token"], row["inverse_loss_nats_per_token"]
    fe, ie = row["forward_excess_nats_per_token"], row["inverse_excess_nats_per_token"]
    lines.append(f"{row['unit']:<16} {row['pair']:<6} {f['mean']:8.4f}±{f['ci95']:<8.4f} {i['mean']:8.4f}±"
                 f"{i['ci95']:<8.4f} {row['loss_gap_p']:>10.2g} {fe['mean']:>10.4f} {ie['mean']:>10.4f} "
                 f"{row['excess_gap_p']:>8.2g}  {row['forward_kl_before_nats']['mean']:.3f}→"
                 f"{row['forward_kl_after_nats']['mean']:.3f}, {row['inverse_kl_before_nats']['mean']:.3f}→"
                 f"{row['inverse_kl_after_nats']['mean']:.3f}")
  return "\n".join(lines + summary["verdicts"])
