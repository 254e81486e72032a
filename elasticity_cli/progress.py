"""Progress display for long runs: a bar over units of work with the current training stage's steps."""

from __future__ import annotations

import sys

from tqdm import tqdm


class UnitProgress:
  """tqdm bar over units; steps(done, total, label) shows the running stage in the bar's postfix."""

  def __init__(self, total: int, description: str):
    self.bar = tqdm(total=total, desc=description, unit="unit", file=sys.stderr, dynamic_ncols=True,
                    mininterval=1.0)

  def unit_started(self, unit, index: int, total: int) -> None:
    """A unit begins."""
    del index, total
    self.bar.set_postfix_str(unit.name)

  def steps(self, done: int, total: int, label: str) -> None:
    """A training segment finished."""
    self.bar.set_postfix_str(f"{label}: step {done}/{total}")

  def unit_finished(self, unit, skipped: bool) -> None:
    """A unit was saved (or found saved)."""
    self.bar.set_postfix_str(f"{unit.name} {'(saved earlier)' if skipped else 'done'}")
    self.bar.update(1)

  def close(self) -> None:
    """Ends the bar."""
    self.bar.close()
