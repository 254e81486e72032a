"""Runs a property over hypothesis-drawn configurations, recording every example's error.

A property maps a configuration to an Outcome (its error, whether the claim held there, extra numbers).
In 'assert' mode a failing example stops the search and hypothesis shrinks it to a minimal counterexample;
in 'measure' mode every example is evaluated and nothing is asserted (for refuted or measured claims).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Callable

import hypothesis
import numpy as np
from hypothesis.internal.conjecture import providers as hypothesis_providers


@dataclasses.dataclass(frozen=True, kw_only=True)
class Outcome:
  """What one configuration gave."""

  error: float  # the claim's error measure there (its kind is stated by the claim); nan if not applicable.
  holds: bool = True  # whether the claim's statement held at this configuration.
  skipped: bool = False  # the configuration is outside the claim's scope (e.g. an undefined ratio).
  values: dict = dataclasses.field(default_factory=dict)  # extra numbers recorded for reports.


@dataclasses.dataclass(frozen=True, kw_only=True)
class Sample:
  """Every evaluated configuration of one run, and the shrunk counterexample if the property failed."""

  configs: list  # configurations in the order hypothesis evaluated them (shrinking steps included).
  outcomes: list  # their Outcomes.
  counterexample: object | None = None  # the minimal failing configuration (assert mode), else None.
  counterexample_outcome: Outcome | None = None  # its Outcome.

  @property
  def tried(self) -> int:
    """Number of configurations evaluated."""
    return len(self.outcomes)

  @property
  def in_scope(self) -> list:
    """Outcomes of configurations inside the claim's scope."""
    return [o for o in self.outcomes if not o.skipped]

  def worst_error(self) -> float:
    """Largest error over in-scope configurations (nan if none)."""
    errors = [o.error for o in self.in_scope if not math.isnan(o.error)]
    return max(errors) if errors else math.nan

  def share_holding(self) -> float:
    """Share of in-scope configurations at which the statement held."""
    scoped = self.in_scope
    return float(np.mean([o.holds for o in scoped])) if scoped else math.nan


class _Failed(Exception):
  """Raised inside the property so that hypothesis shrinks the failing configuration."""


def _safe(evaluate: Callable, config) -> Outcome:
  try:
    return evaluate(config)
  except Exception as error:  # a crash is a failure of the claim's check, reported with its message
    return Outcome(error=math.inf, holds=False, values={"exception": f"{type(error).__name__}: {error}"})


@contextlib.contextmanager
def without_local_constants():
  """Within the block, hypothesis draws no values from the literals of this project's own modules.

  Hypothesis (since 6.131) draws about one value in twenty from a pool of constants that holds the literals of every
  local module the process has imported, so the same seed gave other configurations whenever any module's numbers
  changed or another module was imported (the published claims moved with an edit to toy_models/training.py that no
  claim uses, 2026-11-28). Here the pool of local constants is empty: the configurations depend on the seed, the
  strategy and hypothesis's version only. This replaces a function of hypothesis's internals
  (hypothesis.internal.conjecture.providers._get_local_constants), and tests/proofs_check/test_proofs_check.py
  checks that it still takes effect.
  """
  original = getattr(hypothesis_providers, "_get_local_constants", None)
  if original is None:  # hypothesis before 6.131 (pyproject allows 6.100) draws no local constants
    yield
    return
  empty = hypothesis_providers.Constants()
  hypothesis_providers._get_local_constants = lambda: empty
  hypothesis_providers.CONSTANTS_CACHE.cache.clear()  # pools drawn before the block would be reused
  try:
    yield
  finally:
    hypothesis_providers._get_local_constants = original
    hypothesis_providers.CONSTANTS_CACHE.cache.clear()


def run_property(strategy, evaluate: Callable, *, examples: int, seed: int, mode: str = "assert") -> Sample:
  """Evaluates `evaluate` on `examples` configurations drawn from `strategy`, seeded.

  Args:
    strategy: a hypothesis strategy of configurations.
    evaluate: configuration -> Outcome.
    examples: hypothesis max_examples (>= 1).
    seed: hypothesis seed; the same seed, strategy and hypothesis version give the same configurations, whatever
      else the process imported (without_local_constants).
    mode: 'assert' (stop at the first configuration where the statement fails and shrink it) or 'measure'
      (evaluate all, assert nothing).

  Returns:
    A Sample with every configuration evaluated, and in assert mode the minimal counterexample if any.
  """
  if mode not in ("assert", "measure"):
    raise ValueError(f"mode={mode!r}; allowed: 'assert', 'measure'")
  configs, outcomes = [], []
  failing: list = []
  phases = [hypothesis.Phase.generate] + ([hypothesis.Phase.shrink] if mode == "assert" else [])

  @hypothesis.settings(max_examples=examples, database=None, deadline=None, derandomize=False, phases=phases,
                       suppress_health_check=list(hypothesis.HealthCheck), print_blob=False,
                       report_multiple_bugs=False, verbosity=hypothesis.Verbosity.quiet)
  @hypothesis.seed(seed)
  @hypothesis.given(strategy)
  def check(config):
    outcome = _safe(evaluate, config)
    configs.append(config)
    outcomes.append(outcome)
    if mode == "assert" and not outcome.skipped and not outcome.holds:
      failing.append((config, outcome))
      raise _Failed

  try:
    with without_local_constants():
      check()
  except _Failed:
    config, outcome = failing[-1]
    return Sample(configs=configs, outcomes=outcomes, counterexample=config, counterexample_outcome=outcome)
  return Sample(configs=configs, outcomes=outcomes)
