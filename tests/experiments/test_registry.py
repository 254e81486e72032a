"""The registry: every experiment's scales are valid configs, pre-registered, and run end to end at tiny scale."""

import dataclasses
import typing

import pytest

from experiments import config_io, paths, records, registry
from experiments.protocol import SCALES, ReportContext

NAMES = list(registry.EXPERIMENTS)


@pytest.mark.parametrize("name", NAMES)
def test_every_scale_is_a_valid_config_and_tiny_is_smaller_than_default(name):
  experiment = registry.get(name)
  configs = {scale: experiment.config(scale) for scale in SCALES}
  assert all(isinstance(config, experiment.config_class) for config in configs.values())
  assert len(experiment.units(configs["tiny"])) <= len(experiment.units(configs["default"]))
  assert configs["tiny"] != configs["default"] and configs["paper"] != configs["default"]


def undocumented(cls) -> list[str]:
  """Fields of the dataclass `cls`, and of the dataclasses nested in it, that have no source comment."""
  comments = config_io.field_comments(cls)
  hints = typing.get_type_hints(cls)
  missing = [f"{cls.__name__}.{f.name}" for f in dataclasses.fields(cls) if f.name not in comments]
  for field in dataclasses.fields(cls):
    if dataclasses.is_dataclass(hints[field.name]):
      missing += undocumented(hints[field.name])
  return missing


@pytest.mark.parametrize("name", NAMES)
def test_every_config_field_is_documented(name):
  """Every field, nested ones too, carries a comment: it is the help of its command-line flag."""
  assert not undocumented(registry.get(name).config_class)


@pytest.mark.parametrize("name", NAMES)
def test_default_scale_is_pre_registered_and_matches_the_published_run(name):
  """The default config's hash is the one registered in scales.toml, and the published run was made with it: a change
  of a default grid (or of any default) fails here until the published run is regenerated."""
  experiment = registry.get(name)
  if not experiment.in_reproduce:
    pytest.skip(f"{name} is not part of the published results")
  digest = records.config_hash(experiment.config("default"))
  assert experiment.registered_hash() == digest, f"{name}: scales.toml registers {experiment.registered_hash()}"
  published = paths.published_data()
  if published is None:
    pytest.skip("not a checkout")
  saved = records.read_json(published / name / "config.json")
  assert saved["experiment"] == name and saved["config_hash"] == digest
  assert records.config_hash(saved["config"]) == digest


def test_unknown_names_and_scales_are_one_line_errors():
  with pytest.raises(ValueError, match=r"^unknown experiment 'nope'; allowed: theory, hooke"):
    registry.get("nope")
  with pytest.raises(ValueError, match=r"^unknown scale 'huge'; allowed: tiny, quick, default, paper$"):
    registry.get("hooke").config("huge")


@pytest.mark.parametrize("name", NAMES)
def test_tiny_run_summarises_draws_and_reports(name, tiny_runs, tmp_path):
  experiment, config, summary, reader = tiny_runs[name]
  assert all(reader.done(unit.name) for unit in experiment.units(config))
  saved = records.read_json(reader.path / "summary.json")
  assert saved["summary"] == records.plain(summary) and saved["experiment"] == name
  assert saved["config_hash"] == records.config_hash(config) and saved["compute_seconds"] >= 0
  files = experiment.figures(config, summary, reader, tmp_path)
  assert files and all(path.parent == tmp_path and path.stat().st_size > 5_000 for path in files)
  context = ReportContext(experiment=name, figures_dir=tmp_path, run_reader=reader, scale="tiny", files=tuple(files))
  section = experiment.report(config, summary, context)
  assert all(f"]({path.name})" in section for path in files)
  assert experiment.format_summary(summary, config).strip()
