"""A resumable run directory: the config with provenance, one result file per finished unit, a writer's lock.

Layout: config.json (experiment, config, config hash, seed, package versions, git commit), units/<name>.json and
.npz (written atomically, the .json last, so a unit counts as finished only when both exist), checkpoints/,
summary.json, and .lock while a process writes. Rerunning the same config skips finished units; another config is
refused; `fresh` deletes only the files this tool writes there, nothing else.
"""

from __future__ import annotations

import os
import pathlib

from experiments import config_io, paths, records
from toy_models import host_memory

LOCK_NAME = ".lock"
OWN_FILES = ("config.json", "summary.json", "units/*.json", "units/*.npz", "checkpoints/*.npz")
"""What `fresh` may delete: the files a run writes (patterns relative to the run directory)."""


def _same_config(config, saved: dict | None) -> bool:
  """Whether a saved config dict is `config` once fields added since it was saved take their defaults."""
  try:
    rebuilt = config_io.build(type(config), saved or {})
  except (ValueError, TypeError):
    return False
  return records.plain(rebuilt) == records.plain(config)


def _pid_alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True
  return True


class RunDir:
  """Results of one experiment config in one folder; rerunning skips the units already saved.

  Opening a RunDir for writing takes the folder's lock (a second writer is refused with a one-line error naming
  the process that holds it; a lock left by a dead process is taken over) and checks the saved config before
  anything is written. Use it as a context manager, or call close(), to release the lock.
  """

  def __init__(self, path: str | os.PathLike, config, *, experiment: str = "", fresh: bool = False,
               writable: bool = True, publishing: bool = False):
    self.path = pathlib.Path(path)
    self.config = config
    self.experiment = experiment
    self._locked = False
    saved_path = self.path / "config.json"
    if not writable:
      if not saved_path.exists():
        raise ValueError(f"{self.path} is not a run directory (no config.json); allowed: a folder written by "
                         "`elasticity simulate` or `elasticity reproduce`")
      return
    paths.check_output_dir(self.path, publishing=publishing)
    self.path.mkdir(parents=True, exist_ok=True)
    self._lock()
    try:
      saved = self._check_saved(saved_path, config, experiment, fresh)
    except BaseException:
      self.close()
      raise
    if fresh:
      for pattern in OWN_FILES:
        for old in self.path.glob(pattern):
          old.unlink()
    if fresh or saved is None:
      records.write_json(saved_path, records.provenance(config, seed=getattr(config, "seed", None),
                                                        experiment=experiment))

  def _check_saved(self, saved_path: pathlib.Path, config, experiment: str, fresh: bool) -> dict | None:
    """The saved provenance, after checking that it belongs to this experiment and config (unless fresh)."""
    saved = records.read_json(saved_path) if saved_path.exists() else None
    if saved is None or fresh:
      return saved
    if saved.get("experiment", experiment) != experiment:
      raise ValueError(f"{self.path} holds a run of experiment {saved.get('experiment')!r}, not {experiment!r}; "
                       "allowed: another --out-dir")
    if not _same_config(config, saved.get("config")):
      wanted = records.plain(config)
      old = saved.get("config") or {}
      changed = sorted(k for k in set(old) | set(wanted) if old.get(k) != wanted.get(k))
      raise ValueError(f"{self.path} holds results of another config (differs in {', '.join(changed)}); "
                       "allowed: the same config, another --out-dir, or --fresh to discard them")
    return saved

  def _lock(self) -> None:
    lock = self.path / LOCK_NAME
    for _ in range(2):
      try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
      except FileExistsError:
        try:
          pid = int(lock.read_text().strip() or 0)
        except (OSError, ValueError):
          pid = 0
        if pid and pid != os.getpid() and _pid_alive(pid):
          raise ValueError(f"{self.path} is being written by another elasticity process (pid {pid}); allowed: "
                           "wait for it to finish, or use another --out-dir") from None
        lock.unlink(missing_ok=True)  # left by a process that died (or by this one): take it over
        continue
      with os.fdopen(fd, "w") as handle:
        handle.write(str(os.getpid()))
      self._locked = True
      return

  def close(self) -> None:
    """Releases the writer's lock (idempotent)."""
    if self._locked:
      (self.path / LOCK_NAME).unlink(missing_ok=True)
      self._locked = False

  def __enter__(self) -> RunDir:
    return self

  def __exit__(self, *exc) -> None:
    self.close()

  def __del__(self):
    self.close()

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


def saved_experiment(path: str | os.PathLike) -> tuple[str, dict]:
  """(experiment name, config dict) recorded in a run directory's config.json; one-line error if there is none."""
  config_path = pathlib.Path(path) / "config.json"
  if not config_path.exists():
    raise ValueError(f"{path} is not a run directory (no config.json); allowed: a folder written by "
                     "`elasticity simulate` or `elasticity reproduce`")
  saved = records.read_json(config_path)
  return saved.get("experiment", ""), saved.get("config") or {}


def run_units(run_dir: RunDir, todo: list, run_unit, progress=None) -> RunDir:
  """Runs run_unit(unit, steps_progress) -> (summary, arrays) for every unit of `todo` not yet saved in `run_dir`,
  saving each as soon as it finishes (an interrupted run loses no finished unit), and returning the memory it freed
  to the operating system before the next (toy_models.host_memory); returns run_dir.

  `progress` is an optional object with unit_started(unit, index, total), steps(done, total, label) and
  unit_finished(unit, skipped) methods (experiments.progress.UnitProgress); units need a `name`.
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
    del summary, arrays
    host_memory.release_freed_memory()  # the unit's freed arrays go back to the system before the next unit
    if progress is not None:
      progress.unit_finished(unit, skipped=False)
  return run_dir
