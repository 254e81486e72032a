"""Summary of a resistance run: the Table 1 analogue (forward vs inverse, mean ± CI, paired tests) and verdicts."""

from __future__ import annotations

import numpy as np

from experiments import statistics, verdicts
from experiments.resistance.config import PAIRS, ResistanceConfig
from experiments.resistance.run import units
from experiments.run_dir import RunDir
from experiments.statistics import mean_ci

PAIR_NAMES = tuple(f"θ{i + 1}-θ{j + 1}" for i, j in PAIRS)
QUANTITIES = ("loss_nats_per_token", "target_entropy_nats_per_token", "excess_nats_per_token", "kl_before_nats",
              "kl_after_nats")
"""Per-direction arrays of a unit summarised in every row (see experiments.resistance.run.run_unit)."""


def _mean_ci(values) -> dict[str, float]:
  mean, half = mean_ci(values)
  return {"mean": float(mean), "ci95": float(half)}


def collect(config: ResistanceConfig, run_dir: RunDir) -> list[tuple[dict, dict]]:
  """(unit summary, arrays) of the finished units, in grid order."""
  return [run_dir.load(unit.name) for unit in units(config) if run_dir.done(unit.name)]


SMALLEST_GAP = 0.005  # nats per token: a mean inverse - forward gap smaller than this counts as no resistance.
CLAIMS = {"loss": "inverse alignment reaches a lower final loss than forward (paper Table 1's statistic)",
          "excess": "inverse alignment reaches a lower loss above the target entropy (entropy-free, Appendix Table 2)"}


def summarize(config: ResistanceConfig, run_dir: RunDir) -> dict:
  """The Table 1 analogue of the finished units, with two pre-registered verdicts.

  Cells (dataset x size x pair) share their seeds (the same pre-trained models and SFT runs), so the tests are
  cluster-aware: each seed's inverse - forward gaps are averaged over the cells and the seed means are tested with
  the exact sign-flip test (statistics.cluster_mean_difference). Per-cell counts are descriptive.

  Args:
    config: the run's config.
    run_dir: its run directory.

  Returns:
    A JSON-able dict: 'rows', one per (dataset, size, pair) cell, with forward and inverse mean ± 95% CI over seeds
    of the final loss and the target's entropy (nats per token), of the excess (loss - entropy, nats per token) and
    of KL(target ‖ model) before and after training (nats per response); 'loss_gap' and 'excess_gap' (inverse -
    forward, paired by seed: mean ± CI, exact per-cell sign-flip p, descriptive); 'statistics': per quantity the
    cluster test and the descriptive cell counts; 'verdicts': the two verdicts (loss: the paper's statistic; excess:
    the same with each target's entropy removed), raw (experiments.verdicts).

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
        row[f"{key}_gap_p"] = statistics.paired_difference(inverse, forward, alternative="less").test.p_value
        paired[key][0].append(forward)
        paired[key][1].append(inverse)
      rows.append(row)
  if not rows:
    return {"rows": [], "verdicts": [], "statistics": {}}
  found, numbers = [], {}
  for key in ("loss", "excess"):
    forward, inverse = np.stack(paired[key][0]), np.stack(paired[key][1])
    test = statistics.cluster_mean_difference(inverse, forward, alternative="less", units="nats per token",
                                              what="mean over cells and seeds of inverse - forward")
    cells = statistics.cells_consistent(inverse, forward, alternative="less")
    numbers[key] = {"cells": cells.n_cells, "cells_inverse_lower": cells.n_in_direction,
                    "cells_significant": cells.n_significant, "cells_text": cells.text(),
                    "seed_means": test.per_seed.tolist(), "cohens_dz": test.cohens_dz}
    found.append(verdicts.verdict(
        key, CLAIMS[key], test.effect, test.test, "negative",
        smallest_effect_of_interest=SMALLEST_GAP,
        per_seed=test.per_seed,
        can_show="that returning to an earlier checkpoint's outputs is easier than moving to a later one's",
        cannot_show="anything cell by cell (cells share seeds; per-cell counts are descriptive)"))
  kl = {f"{direction}_{when}_nats": float(np.mean([row[f"{direction}_kl_{when}_nats"]["mean"] for row in rows]))
        for direction in ("forward", "inverse") for when in ("before", "after")}
  return {"rows": rows, "verdicts": found, "statistics": {**numbers, "mean_kl": kl}}


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
  return "\n".join(lines + verdicts.run_lines(summary["verdicts"]))
