"""The report section "What changed from the previous verdicts, and why": old verdict lines against the new ones.

The previous verdicts (the lines `elasticity reproduce` published before the statistics were redone, kept verbatim
in figures/data/previous/verdicts.md) are matched to the verdicts that replace them by their effect's wording
(RULES); each row gives the old status, the new status under the report's Holm correction, and why it changed.
"""

from __future__ import annotations

import pathlib
import re

PREVIOUS = pathlib.Path("previous") / "verdicts.md"  # relative to the published data folder.

RULES = (
    (re.compile(r"^- (\w+)/joint: slope"), lambda m: f"{m[1]}/joint",
     "the joint slope of 1 follows from first-order optimality of the count-weighted objective at any stationary "
     "point (docs/THEORY.md §5.1): now a consistency check, not evidence"),
    (re.compile(r"^- (\w+)/sequential: slope"), lambda m: f"{m[1]}/sequential",
     "a slope with a t-interval over 3 seeds and no test; now an exact sign-flip test over 10 seeds, Holm-corrected, "
     "with 0.5 as the smallest slope of interest (evidence of absence when the interval lies below it)"),
    (re.compile(r"^- Resistance: inverse alignment loss"), lambda m: "loss",
     "the sign test treated 27 cells that share seeds and checkpoints as independent; now the seed means of the "
     "cell gaps are tested (exact sign-flip over 10 seeds)"),
    (re.compile(r"^- Resistance, entropy-free"), lambda m: "excess",
     "as above; the per-cell counts are kept as description"),
    (re.compile(r"^- (\S+) (sft|dpo): rebound: fast then slow"), lambda m: f"{m[1]} {m[2]}/decay",
     "early-vs-late slopes over an interval that already overshoots the pre-trained level pass any curve that "
     "flattens at its floor; now the share of the gain undone is compared with a constant per-example rate before "
     "the floor, on a grid with 10, 20 and 50 negatives"),
    (re.compile(r"^- (\S+) (sft|dpo): more first-stage data -> faster early fall"),
     lambda m: f"{m[1]} {m[2]}/first-stage trend",
     "(s(0) - s(100))/100 tracked where the curve starts, since s(100) is already past the pre-trained level; now the "
     "half-life of the normalised curve, Page's exact test within seeds (the pooled Spearman p was too small)"),
    (re.compile(r"^- (\S+) (sft|dpo): more first-stage data -> higher start"), lambda m: None,
     "a higher score after more alignment is the alignment stage itself, not the rebound: now descriptive"),
    (re.compile(r"^- (.+?): larger model -> faster early fall"), lambda m: "size_trend",
     "the early fall per example tracked the start; now the half-life against the parameter count (Page's test)"),
    (re.compile(r"^- (.+?): larger model -> slower late decline"), lambda m: "size_late_trend",
     "now Page's exact test of the late decline of the normalised curve (from 500 negatives on)"),
    (re.compile(r"^- (.+?): more pre-training -> faster early fall"), lambda m: "volume_trend",
     "the grid's top budget was changed together with this verdict; the grid is now registered before the runs, "
     "and the statistic is the half-life (Page's test)"),
)
"""(pattern of an old verdict line, its new verdict key (a full key, a key suffix, or None: now descriptive), why)."""


TITLES = {"Simulated Hooke's law": "hooke", "Resistance (paper Table 1)": "resistance",
          "Rebound (paper Fig. 4, Appendix Table 3)": "rebound",
          "Rebound against model size (paper Fig. 5)": "model-size",
          "Rebound against pre-training volume (paper Fig. 6)": "pretrain-volume",
          "Rebound across source families (open question)": "families"}
"""Section titles of the previous verdicts block -> the experiment that now holds those verdicts."""


def _status(line: str) -> str:
  for word in ("NOT SHOWN", "SHOWN", "PASSED", "FAILED"):
    if word in line:
      return word
  return "reported"


def section(previous_text: str, statuses: dict[str, str]) -> list[str]:
  """Markdown rows: previous verdict (experiment, effect, status) -> the new verdict's status, and why.

  Args:
    previous_text: the previous verdicts block (markdown with '**Title** — `command`' headings and '- ' lines).
    statuses: 'experiment:key' of each new verdict -> its status under the report's correction.
  """
  rows = ["| experiment | previous verdict | before | now | why |", "|---|---|---|---|---|"]
  experiment = ""
  for line in previous_text.splitlines():
    if line.startswith("**"):
      experiment = TITLES.get(line.split("**")[1], "")
      continue
    for pattern, key_of, why in RULES:
      found = pattern.match(line)
      if not found:
        continue
      key = key_of(found)
      claim = line[2:].split(": ")[0] if line.count(": ") < 2 else ": ".join(line[2:].split(": ")[:2])
      if key is None:
        now = "descriptive (not a test)"
      else:
        prefix = f"{experiment}:"
        keys = [k for k in statuses if k.startswith(prefix) and (k == prefix + key or k.endswith("/" + key))]
        now = "; ".join(statuses[k] for k in keys) if keys else "no counterpart in this run"
      rows.append(f"| {experiment} | {claim} | {_status(line)} | {now} | {why} |")
      break
  return rows
