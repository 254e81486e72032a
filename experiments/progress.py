"""Progress of long runs: a bar on a terminal, a timestamped line every few seconds in a log file."""

from __future__ import annotations

import sys
import time

from tqdm import tqdm

LOG_INTERVAL_SECONDS = 10.0  # a non-terminal stream gets at most one step line this often (units always get one).


class UnitProgress:
  """Progress over units of work, with the running training stage's steps.

  On a terminal it is a tqdm bar; otherwise (a log file, a pipe) it writes plain lines: one when a unit starts or
  finishes, and a step line at most every LOG_INTERVAL_SECONDS, so a log of a long run stays readable.
  """

  def __init__(self, total: int, description: str, stream=None, interval: float = LOG_INTERVAL_SECONDS,
               bar: bool = True):
    self.stream = sys.stderr if stream is None else stream
    self.total, self.description, self.interval = total, description, interval
    self.done, self.start, self.last_line = 0, time.monotonic(), -float("inf")
    interactive = bar and getattr(self.stream, "isatty", lambda: False)()  # lines where bars would interleave
    self.bar = (tqdm(total=total, desc=description, unit="unit", file=self.stream, dynamic_ncols=True,
                     mininterval=1.0) if interactive else None)

  def _line(self, text: str) -> None:
    elapsed = time.monotonic() - self.start
    print(f"[{self.description} {elapsed:7.1f} s] {text}", file=self.stream, flush=True)
    self.last_line = time.monotonic()

  def unit_started(self, unit, index: int, total: int) -> None:
    """A unit begins."""
    if self.bar is not None:
      self.bar.set_postfix_str(unit.name)
    else:
      self._line(f"unit {index + 1}/{total} {unit.name} started")

  def steps(self, done: int, total: int, label: str) -> None:
    """A training segment finished."""
    if self.bar is not None:
      self.bar.set_postfix_str(f"{label}: step {done}/{total}")
    elif time.monotonic() - self.last_line >= self.interval:
      self._line(f"{label}: step {done}/{total}")

  def unit_finished(self, unit, skipped: bool) -> None:
    """A unit was saved (or found saved)."""
    self.done += 1
    if self.bar is not None:
      self.bar.set_postfix_str(f"{unit.name} {'(saved earlier)' if skipped else 'done'}")
      self.bar.update(1)
    else:
      self._line(f"unit {self.done}/{self.total} {unit.name} {'saved earlier' if skipped else 'done and saved'}")

  def close(self) -> None:
    """Ends the bar."""
    if self.bar is not None:
      self.bar.close()
