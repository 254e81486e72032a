"""The interface every experiment implements, and its pre-registered scales (tiny, quick, default, paper) as data."""

from __future__ import annotations

import dataclasses
import functools
import importlib.resources
import pathlib
import tomllib
from collections.abc import Callable
from typing import Any

from experiments import config_io, records

SCALES = ("tiny", "quick", "default", "paper")
"""tiny: seconds, for the tests; quick: a first look in about a minute; default: the published runs (CPU, minutes);
paper: larger models and grids, sized for a GPU."""
SCALES_FILE = "scales.toml"


@dataclasses.dataclass(frozen=True)
class ReportContext:
  """What a report section may link to: where the figures went and the run directory it reads."""

  experiment: str  # the experiment's name.
  figures_dir: pathlib.Path  # the folder REPORT.md and the PNG files are written to.
  run_reader: Any  # the experiment's run directory (experiments.run_dir.RunDir), to read saved units.
  scale: str  # the scale it ran at.
  files: tuple[pathlib.Path, ...] = ()  # the figures drawn for this experiment.
  verdict_lines: dict = dataclasses.field(default_factory=dict)  # 'experiment:key' -> line, corrected report-wide.
  verdict_status: dict = dataclasses.field(default_factory=dict)  # 'experiment:key' -> status, corrected report-wide.
  verdict_p: dict = dataclasses.field(default_factory=dict)  # 'experiment:key' -> Holm-adjusted p, report-wide.

  def verdicts(self, summary: dict) -> list[str]:
    """Markdown bullets of the summary's verdicts: corrected over the whole report where the report did so, else
    within this experiment."""
    from experiments import verdicts

    saved = summary.get("verdicts", [])
    keys = [f"{self.experiment}:{v['key']}" for v in saved]
    if saved and all(key in self.verdict_lines for key in keys):
      return [f"- {self.verdict_lines[key]}" for key in keys]
    return [f"- {line}" for line in verdicts.lines(saved, self.experiment)]

  def status(self, summary: dict, key: str) -> str:
    """The status of the summary's verdict `key` (corrected report-wide where the report did so)."""
    from experiments import verdicts

    if f"{self.experiment}:{key}" in self.verdict_status:
      return self.verdict_status[f"{self.experiment}:{key}"]
    saved = summary.get("verdicts", [])
    return dict((d["key"], verdicts.display_status(v)) for d, v in verdicts.adjusted(saved, self.experiment))[key]

  def p_adjusted(self, summary: dict, key: str) -> float:
    """The Holm-adjusted p of the summary's verdict `key`: over the whole report where the report corrected it, else
    within this experiment (NaN for a consistency check)."""
    from experiments import verdicts

    if f"{self.experiment}:{key}" in self.verdict_p:
      return self.verdict_p[f"{self.experiment}:{key}"]
    adjusted = {d["key"]: v.p_adjusted for d, v in verdicts.adjusted(summary.get("verdicts", []), self.experiment)}
    return float("nan") if adjusted[key] is None else adjusted[key]

  def links(self) -> list[str]:
    """Markdown image links to the figures, relative to the report."""
    return [f"![{path.stem}]({path.relative_to(self.figures_dir).as_posix()})" for path in self.files]


def _nothing(*args, **kwargs):
  del args, kwargs


@dataclasses.dataclass(frozen=True, kw_only=True)
class Experiment:
  """One experiment: its config class, scales, units of work, summary, figures, report section and verdicts.

  The CLI (`elasticity simulate NAME`, `elasticity figures --run DIR`), `elasticity reproduce` and the tests are
  generic over the registry of these (experiments.registry); adding an experiment is adding a package with one of
  these in its __init__.py and one registry line.
  """

  name: str  # command and run-directory name, e.g. 'hooke'.
  title: str  # its section title in REPORT.md.
  help: str  # one line for `elasticity simulate --help`.
  config_class: type  # the frozen dataclass of every knob (validated in __post_init__).
  package: str  # the Python package holding scales.toml, e.g. 'experiments.hooke'.
  units: Callable[[Any], list]  # config -> units of work (each with a .name), in the order they run.
  run_unit: Callable  # (config, unit, run_dir, steps_progress) -> (unit summary dict, arrays dict).
  summarize: Callable  # (config, run_dir) -> summary (plain JSON data).
  format_summary: Callable  # (summary, config) -> plain-text tables printed by `elasticity simulate`.
  figures: Callable  # (config, summary, run_dir, figures_dir) -> list of PNG paths drawn from saved results.
  report: Callable  # (config, summary, ReportContext) -> the markdown section of REPORT.md.
  verdicts: Callable = lambda summary: []  # summary -> the experiment's verdicts (experiments.statistics.Verdict).
  validate: Callable = _nothing  # config -> None; deep checks (e.g. drawing the sources) before anything is written.
  in_reproduce: bool = True  # whether `elasticity reproduce` runs it.

  @functools.cached_property
  def _scales(self) -> dict:
    text = importlib.resources.files(self.package).joinpath(SCALES_FILE).read_text()
    try:
      return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
      raise ValueError(f"{self.package}/{SCALES_FILE} is not valid TOML: {error}") from None

  def scale_overrides(self, scale: str) -> dict:
    """The table of `scale` in the experiment's scales.toml (changes to the config class's defaults)."""
    if scale not in SCALES:
      raise ValueError(f"unknown scale {scale!r}; allowed: {', '.join(SCALES)}")
    return dict(self._scales.get(scale, {}))

  def expected_seconds(self, scale: str) -> float | None:
    """Seconds a run at `scale` took on 2 CPU cores with nothing compiled (scales.toml [seconds]), or None; only a
    hint of which experiment to start first, never a result."""
    value = self._scales.get("seconds", {}).get(scale)
    return None if value is None else float(value)

  def registered_hash(self) -> str | None:
    """The config hash the default scale was registered with (scales.toml [registered] default_hash)."""
    return self._scales.get("registered", {}).get("default_hash")

  def config(self, scale: str = "default", overrides: dict | None = None, toml: pathlib.Path | None = None):
    """The config at `scale`: class defaults, then the default table, then the scale's table (if not default), then
    a TOML file's values, then `overrides` (a nested dict); validated (one-line ValueError on a bad value)."""
    values = self.scale_overrides("default")
    if scale != "default":
      values = config_io.merge(values, self.scale_overrides(scale))
    if toml is not None:
      values = config_io.merge(values, config_io.read_toml(toml))
    values = config_io.merge(values, overrides or {})
    config = config_io.build(self.config_class, config_io.merge(config_io.as_dict(self.config_class()), values))
    self.validate(config)
    return config

  def config_hash(self, config) -> str:
    """The config's identity (experiments.records.config_hash)."""
    return records.config_hash(config)
