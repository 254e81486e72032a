"""Runs claims: symbolic steps, the numeric property over hypothesis-drawn configurations, and the verdict."""

from __future__ import annotations

import dataclasses
import functools
import pathlib
import time

from proofs_check import claims as claims_module
from proofs_check import constants, report
from proofs_check.runner import Sample, run_property
from theory import symbolic

PROVEN = "proven symbolically"
VERIFIED = "verified numerically"
CONDITIONAL = "holds under stated conditions"
REFUTED = "refuted (counterexample)"
MEASURED = "measured"
FAILED = "FAILED"
STATUSES = (PROVEN, VERIFIED, CONDITIONAL, REFUTED, MEASURED, FAILED)
"""Every status a claim can end with; FAILED means a claim expected to hold (or a measured claim's exact
relation, or a counterexample expected to reproduce) did not, or too few configurations were in scope, and makes
`elasticity check` exit non-zero."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class ClaimResult:
  """The verdict on one claim and the evidence for it (plain data, saved as JSON)."""

  id: str  # claim id, e.g. '5b'.
  title: str  # short statement.
  statement: str  # statement in words.
  latex: str  # statement typeset by sympy.
  assumptions: list[str]  # conditions it was checked under.
  kind: str  # what the check expected: holds / conditional / refuted / measured.
  status: str  # one of STATUSES.
  tried: int  # configurations evaluated (shrinking steps included).
  in_scope: int  # of those, configurations inside the claim's scope (not skipped).
  worst_error: float  # largest error over in-scope configurations (see error_kind); nan if none.
  error_kind: str  # what worst_error measures, and its unit.
  tolerance: str  # when a configuration counts as holding.
  share_holding: float  # share of in-scope configurations where the statement held.
  symbolic_steps: list[dict]  # each ProofStep of its derivations: derivation, claim, relation, latex, holds.
  counterexample: dict | None  # the fixed counterexample, recomputed (refuted / conditional claims).
  shrunk_counterexample: dict | None  # hypothesis's minimal failing configuration, if the property failed.
  summary: dict | None  # extra measured numbers (claims 8 and 10, finite-difference coverage).
  note: str  # one line for the table.
  failure_reason: str | None  # why the status is FAILED, in words; None otherwise.
  simulated_evidence: dict | None  # evidence from trained toy models where the claim has it attached.
  examples: int  # hypothesis max_examples asked for.
  seed: int  # hypothesis seed.
  seconds: float  # wall-clock time of this claim (not part of the deterministic numbers).

  @property
  def failed(self) -> bool:
    """Whether this claim makes the check fail."""
    return self.status == FAILED


@functools.cache
def _steps(derivation) -> tuple:
  """The ProofSteps of one derivation function, computed once (sympy simplification takes ~0.1 s each)."""
  return tuple(derivation())


def symbolic_steps(claim: claims_module.Claim) -> list[dict]:
  """Every proof step of the claim's derivations (theory.symbolic.ALL_STEPS), as plain data."""
  return [{"derivation": name, "claim": step.claim, "relation": step.relation, "latex": step.latex(),
           "justification": step.justification, "holds": bool(step.holds)}
          for name in claim.derivations for step in _steps(symbolic.ALL_STEPS[name])]


def _shrunk(sample: Sample) -> dict | None:
  if sample.counterexample is None:
    return None
  outcome = sample.counterexample_outcome
  return {"config": sample.counterexample.as_dict(), "error": outcome.error, "values": outcome.values}


def _check_arguments(examples, seed) -> tuple[int, int]:
  if isinstance(examples, bool) or not isinstance(examples, int) or examples < 1:
    raise ValueError(f"examples={examples!r} is not allowed; allowed: an integer >= 1")
  if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
    raise ValueError(f"seed={seed!r} is not allowed; allowed: an integer >= 0")
  return examples, seed


def run_claim(claim: claims_module.Claim | str, *, examples: int = constants.DEFAULT_EXAMPLES,
              seed: int = constants.DEFAULT_SEED) -> ClaimResult:
  """Checks one claim: its symbolic steps, its property on `examples` configurations, its counterexample.

  Args:
    claim: a Claim or its id ('1a', ..., '10').
    examples: hypothesis examples (>= 1); refuted claims run twice (measure all, then shrink a failure).
    seed: hypothesis seed; the same seed gives the same configurations and numbers.

  Returns:
    The ClaimResult; its status is FAILED (with failure_reason) if a claim expected to hold, or a measured
    claim's exact relation, failed somewhere (with hypothesis's minimal counterexample), if a symbolic step was
    not verified, if a counterexample that the verdict rests on did not reproduce, or if fewer configurations
    than the claim's min_in_scope share were in scope.

  References:
    Ji et al., "Language Models Resist Alignment", ACL 2025 (Thm. 3.4, Thm. 4.2); docs/THEORY.md §2.3 and §4.
  """
  examples, seed = _check_arguments(examples, seed)
  if isinstance(claim, str):
    claim = _by_id(claim)
  start = time.perf_counter()
  steps = symbolic_steps(claim)
  counterexample = claim.counterexample() if claim.counterexample else None
  strategy = claim.strategy()
  shrunk = None
  if claim.kind == "refuted":
    sample = run_property(strategy, claim.evaluate, examples=examples, seed=seed, mode="measure")
    shrunk = _shrunk(run_property(strategy, claim.evaluate, examples=examples, seed=seed, mode="assert"))
  elif claim.kind == "measured":  # measure everything; shrink only if the exact relation failed somewhere
    sample = run_property(strategy, claim.evaluate, examples=examples, seed=seed, mode="measure")
    if any(not outcome.holds for outcome in sample.in_scope):
      shrunk = _shrunk(run_property(strategy, claim.evaluate, examples=examples, seed=seed, mode="assert"))
  else:
    sample = run_property(strategy, claim.evaluate, examples=examples, seed=seed, mode="assert")
    shrunk = _shrunk(sample)
  failure = _failure_reason(claim, steps, counterexample, sample, shrunk)
  if failure is not None:
    status = FAILED
  elif claim.kind == "refuted":
    status = REFUTED
  elif claim.kind == "measured":
    status = MEASURED
  elif claim.kind == "conditional":
    status = CONDITIONAL
  else:
    status = PROVEN if steps else VERIFIED
  return ClaimResult(
      id=claim.id, title=claim.title, statement=claim.statement, latex=claim.latex,
      assumptions=list(claim.assumptions), kind=claim.kind, status=status, tried=sample.tried,
      in_scope=len(sample.in_scope), worst_error=sample.worst_error(), error_kind=claim.error_kind,
      tolerance=claim.tolerance, share_holding=sample.share_holding(), symbolic_steps=steps,
      counterexample=counterexample, shrunk_counterexample=shrunk,
      summary=claim.summarize(sample) if claim.summarize else None, note=claim.note, failure_reason=failure,
      simulated_evidence=claim.simulated_evidence() if claim.simulated_evidence else None, examples=examples,
      seed=seed, seconds=round(time.perf_counter() - start, 3))


def _failure_reason(claim: claims_module.Claim, steps: list[dict], counterexample: dict | None, sample: Sample,
                    shrunk: dict | None) -> str | None:
  """Why the claim's check failed, or None. A refuted claim fails only if neither its fixed counterexample nor
  a drawn one shows the statement false; every other kind fails on a symbolic step, a counterexample that does
  not reproduce, a configuration where it (or a measured claim's exact relation) fails, or too few
  configurations in scope."""
  if claim.kind == "refuted":
    if (counterexample is None or not counterexample["reproduced"]) and shrunk is None:
      return "no counterexample: neither the fixed one reproduced nor did a drawn configuration fail"
    return None
  failing_steps = [step["claim"] for step in steps if not step["holds"]]
  if failing_steps:
    return f"symbolic step not verified: {failing_steps[0]}"
  if counterexample is not None and not counterexample["reproduced"]:
    return "the fixed counterexample did not reproduce"
  if shrunk is not None:
    return "fails at a drawn configuration (see shrunk_counterexample)"
  in_scope = len(sample.in_scope)
  if claim.min_in_scope and in_scope < claim.min_in_scope * sample.tried:
    return (f"only {in_scope} of {sample.tried} configurations in scope (at least {claim.min_in_scope:.0%} "
            "needed)")
  return None


def _by_id(claim_id: str) -> claims_module.Claim:
  if claim_id in claims_module.BY_ID:
    return claims_module.BY_ID[claim_id]
  claims_module.select(claim_id)  # raises the one-line ValueError for unknown ids
  raise ValueError(f"claim {claim_id!r} names several parts; allowed: one id among "
                   f"{', '.join(c.id for c in claims_module.CLAIMS)}")


def run_all(examples: int = constants.DEFAULT_EXAMPLES, seed: int = constants.DEFAULT_SEED,
            out_dir: str | pathlib.Path | None = "figures", claim: str | int | None = None,
            progress=None) -> list[ClaimResult]:
  """Checks every claim (or those `claim` selects) and, with `out_dir`, saves the results.

  Args:
    examples: hypothesis examples per claim part (>= 1).
    seed: hypothesis seed (>= 0).
    out_dir: where to write; None writes nothing. A full run writes out_dir/data/claims.json (with
      provenance) and out_dir/claims_table.md (the table the README embeds); a run of selected claims
      writes only out_dir/data/claims_<selector>.json, leaving the full table alone.
    claim: None for all, a claim number ('5': every part) or an id ('5b').
    progress: optional callable(ClaimResult) called after each claim (e.g. to print a row).

  Returns:
    The ClaimResults in registry order.

  References:
    Ji et al., "Language Models Resist Alignment", ACL 2025; Cover & Thomas, Elements of Information Theory.
  """
  examples, seed = _check_arguments(examples, seed)
  selected = claims_module.select(claim)
  results = []
  for item in selected:
    result = run_claim(item, examples=examples, seed=seed)
    results.append(result)
    if progress is not None:
      progress(result)
  if out_dir is not None:
    report.save(results, pathlib.Path(out_dir), examples=examples, seed=seed,
                selector=None if claim is None else str(claim))
  return results


def any_failed(results: list[ClaimResult]) -> bool:
  """Whether any result makes the check fail."""
  return any(result.failed for result in results)

