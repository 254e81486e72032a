"""A resumable run directory: the config with provenance, one result file per finished unit of work."""

from __future__ import annotations

import json
import os
import pathlib

from theory import records
from toy_models import config_io


def _same_config(config, saved: dict | None) -> bool:
  """Whether a saved config dict is `config` once fields added since it was saved take their defaults."""
  try:
    rebuilt = config_io.build(type(config), saved or {})
  except (ValueError, TypeError):
    return False
  return json.loads(json.dumps(config_io.as_dict(rebuilt))) == json.loads(json.dumps(config_io.as_dict(config)))


class RunDir:
  """Results of one experiment config in one folder; rerunning skips the units already saved.

  Layout: config.json (config, seed, package versions, git commit), units/<name>.json and .npz (written
  atomically, the .json last, so a unit counts as finished only when both exist), checkpoints/.
  """

  def __init__(self, path: str | os.PathLike, config, *, fresh: bool = False):
    self.path = pathlib.Path(path)
    self.config = config
    saved_path = self.path / "config.json"
    wanted = json.loads(json.dumps(config_io.as_dict(config)))
    if saved_path.exists() and not fresh:
      saved = records.read_json(saved_path).get("config")
      if saved != wanted and not _same_config(config, saved):
        changed = sorted(k for k in set(saved or {}) | set(wanted) if (saved or {}).get(k) != wanted.get(k))
        raise ValueError(f"{self.path} holds results of another config (differs in {', '.join(changed)}); "
                         "allowed: the same config, another --out-dir, or --fresh to discard them")
    if fresh and self.path.exists():
      for old in sorted(self.path.glob("units/*")) + sorted(self.path.glob("checkpoints/*")) + [saved_path]:
        old.unlink(missing_ok=True)
    if not saved_path.exists() or fresh:
      records.write_json(saved_path, records.provenance(config, seed=getattr(config, "seed", None)))

  def unit_path(self, name: str) -> pathlib.Path:
    """Path of a unit's JSON file."""
    return self.path / "units" / f"{name}.json"

  def done(self, name: str) -> bool:
    """Whether the unit `name` finished in an earlier run."""
    return self.unit_path(name).exists() and self.unit_path(name).with_suffix(".npz").exists()

  def save(self, name: str, summary: dict, arrays: dict) -> None:
    """Saves a finished unit: arrays first, then the JSON that marks it done."""
    records.write_npz(self.unit_path(name).with_suffix(".npz"), **arrays)
    records.write_json(self.unit_path(name), summary)

  def load(self, name: str) -> tuple[dict, dict]:
    """(summary, arrays) of a finished unit."""
    return records.read_json(self.unit_path(name)), records.read_npz(self.unit_path(name).with_suffix(".npz"))

  def checkpoint_path(self, name: str) -> pathlib.Path:
    """Where a checkpoint of this run goes."""
    return self.path / "checkpoints" / f"{name}.npz"


def run_units(run_dir: RunDir, todo: list, run_unit, progress=None) -> RunDir:
  """Runs run_unit(unit, steps_progress) -> (summary, arrays) for every unit of `todo` not yet saved in `run_dir`,
  saving each as soon as it finishes (an interrupted run loses no finished unit); returns run_dir.

  `progress` is an optional object with unit_started(unit, index, total), steps(done, total, label) and
  unit_finished(unit, skipped) methods (the CLI's progress bar); units need a `name`.
  """
  for index, unit in enumerate(todo):
    if run_dir.done(unit.name):
      if progress is not None:
        progress.unit_finished(unit, skipped=True)
      continue
    if progress is not None:
      progress.unit_started(unit, index, len(todo))
    summary, arrays = run_unit(unit, None if progress is None else progress.steps)
    run_dir.save(unit.name, summary, arrays)
    if progress is not None:
      progress.unit_finished(unit, skipped=False)
  return run_dir
