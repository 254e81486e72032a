"""Verdicts as saved data: every experiment's pre-registered tests, stored raw in its summary, corrected together.

An experiment's summary holds its verdicts unadjusted (`summary["verdicts"]`: plain dicts). `elasticity simulate`
prints them Holm-corrected within the experiment; `elasticity reproduce` corrects every confirmatory verdict of the
report together, in one family (REPORT_FAMILY), and that is the status the README and REPORT.md state.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from experiments import statistics
from experiments.statistics import Effect, TestResult, Verdict, VerdictFamily

REPORT_FAMILY = "the paper's effects at toy scale"
"""The one family of the report: every confirmatory verdict of every experiment, Holm-corrected together."""


def verdict(key: str, claim: str, effect: Effect, test: TestResult, paper_direction: str, *,
            per_seed=(), smallest_effect_of_interest: float = 0.0, consistency_check: bool = False,
            can_show: str = "", cannot_show: str = "") -> dict:
  """A verdict as plain data for a summary (family filled in when it is corrected).

  Args:
    key: a stable identifier (experiment and claim), e.g. 'rebound/positive_first sft/decay'.
    claim: the paper's effect in words.
    effect: its effect size with CI and units.
    test: its test (one-sided in the paper's direction).
    paper_direction: 'positive' or 'negative': the sign of the effect the paper predicts.
    smallest_effect_of_interest: magnitude below which the effect counts as absent (effect units).
    consistency_check: the statistic holds by construction: reported, never evidence.
    per_seed: the per-seed values the test is computed from (to state its power: `detectable`).
    can_show: what the test can show, in words; cannot_show: what it cannot.
  """
  return {"key": key, "claim": claim, "effect": dataclasses.asdict(effect), "test": dataclasses.asdict(test),
          "paper_direction": paper_direction, "smallest_effect_of_interest": smallest_effect_of_interest,
          "consistency_check": consistency_check, "per_seed": [float(v) for v in per_seed], "can_show": can_show,
          "cannot_show": cannot_show}


def from_dict(data: dict, family: str) -> Verdict:
  """The statistics.Verdict of saved verdict data, in `family` (not yet adjusted)."""
  return Verdict(family=family, claim=data["claim"], effect=Effect(**data["effect"]), test=TestResult(**data["test"]),
                 paper_direction=data["paper_direction"],
                 smallest_effect_of_interest=data["smallest_effect_of_interest"],
                 consistency_check=data["consistency_check"])


def adjusted(saved: list[dict], family: str) -> list[tuple[dict, Verdict]]:
  """(saved data, adjusted Verdict) of every verdict, Holm-corrected together as `family`."""
  corrected = VerdictFamily(name=family, verdicts=tuple(from_dict(d, family) for d in saved)).adjust()
  return list(zip(saved, corrected.verdicts, strict=True))


def lines(saved: list[dict], family: str) -> list[str]:
  """One line per verdict, corrected within `family`, with the smallest detectable effect where known."""
  out = []
  corrected_all = adjusted(saved, family)
  for data, corrected in corrected_all:
    line = f"[{data['key']}] {corrected.line()}"
    power = detectable(data.get("per_seed", ()), corrected.family_size or 1)
    if math.isfinite(power) and not corrected.consistency_check:
      line += f" [power 0.8 to detect |effect| >= {power:.3g}]"
    out.append(line)
  return out


def display_status(verdict: Verdict) -> str:
  """The verdict's status as tables show it: a SHOWN effect whose interval lies below the smallest effect of interest
  says so."""
  small = verdict.status == statistics.SHOWN and verdict.below_interest
  return verdict.status + (" (below the smallest effect of interest)" if small else "")


def run_lines(saved: list[dict]) -> list[str]:
  """The verdicts of one run for `elasticity simulate`'s text: a header and one indented line each (none if none)."""
  if not saved:
    return []
  return (["verdicts (Holm-corrected within this run; `elasticity reproduce` corrects over the whole report):"]
          + [f"  {line}" for line in lines(saved, "this run")])


def detectable(per_seed, family_size: int) -> float:
  """Smallest effect (units of per_seed) a one-sided paired t-test on these seeds detects with power 0.8 at the
  Bonferroni level alpha / family_size (a conservative stand-in for Holm): the verdict's power, stated."""
  per_seed = np.asarray(per_seed, dtype=np.float64)
  per_seed = per_seed[np.isfinite(per_seed)]
  if per_seed.size < 2:
    return math.nan
  return float(statistics.minimum_detectable_effect(float(per_seed.std(ddof=1)), per_seed.size,
                                                    alpha=statistics.ALPHA / max(family_size, 1),
                                                    alternative="greater"))


def table(saved: list[dict], family: str) -> list[str]:
  """A markdown table of the verdicts corrected as `family`: claim, effect [CI], test, p, Holm p, status."""
  rows = ["| verdict | effect [95% CI] | test | p | Holm p | status |", "|---|---|---|---|---|---|"]
  for data, corrected in adjusted(saved, family):
    effect = corrected.effect
    held = corrected.p_adjusted
    rows.append(f"| {data['key']}: {corrected.claim} | {effect.estimate:+.3g} [{effect.ci_low:+.3g}, "
                f"{effect.ci_high:+.3g}] {effect.units} | {corrected.test.name} | {corrected.p_raw:.3g} | "
                f"{'-' if held is None else format(held, '.3g')} | {corrected.status} |")
  return rows
