"""A claim's simulated evidence: the verdicts of trained toy models (registered experiments) that bear on it.

A claim names (experiment, verdict key prefix) pairs; the evidence is read from the published runs' summaries
(figures/data/<experiment>/summary.json, written by `elasticity reproduce --publish`), never recomputed here, so
the claims table says what the saved simulations show next to what sympy and the numeric checks show.
"""

from __future__ import annotations

import functools

from experiments import paths, records, registry, verdicts


def _published_verdicts(experiment: str) -> list[dict]:
  data = paths.published_data()
  path = None if data is None else data / experiment / "summary.json"
  if path is None or not path.exists():
    return []
  return records.read_json(path)["summary"].get("verdicts", [])


def evidence(sources: tuple[tuple[str, str], ...]) -> dict:
  """Every published verdict whose key starts with one of the prefixes, per experiment: key, effect with its CI and
  units, and its status corrected within that experiment (the report corrects over all experiments).

  Args:
    sources: (experiment name, verdict key prefix) pairs; experiments must be registered.
  """
  found = []
  for experiment, prefix in sources:
    registry.get(experiment)  # a one-line error for an unknown experiment
    saved = _published_verdicts(experiment)
    for data, corrected in verdicts.adjusted(saved, experiment):
      if data["key"].startswith(prefix):
        effect = corrected.effect
        found.append({"experiment": experiment, "key": data["key"], "estimate": effect.estimate,
                      "ci": [effect.ci_low, effect.ci_high], "units": effect.units,
                      "consistency_check": corrected.consistency_check,
                      "holds": bool(corrected.p_raw < corrected.alpha and corrected.in_paper_direction),
                      "status": corrected.status})
  return {"verdicts": found, "source": "published runs (figures/data/<experiment>/summary.json)"}


def attach(*sources: tuple[str, str]):
  """The claim field's value: a function computing `evidence(sources)` when the claim is checked."""
  return functools.partial(evidence, tuple(sources))


def text(found: dict | None) -> str:
  """One short phrase for the claims table: what the simulations show."""
  if not found or not found["verdicts"]:
    return ""
  parts = []
  for v in found["verdicts"]:
    verdict = ("holds" if v["holds"] else "fails") if v["consistency_check"] else v["status"]
    parts.append(f"{v['experiment']}:{v['key']} {v['estimate']:+.3g} [{v['ci'][0]:+.3g}, {v['ci'][1]:+.3g}] "
                 f"({verdict})")
  return "simulated: " + "; ".join(parts)
