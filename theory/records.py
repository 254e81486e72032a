"""Saved results: atomic JSON / npz writes stamped with config, seed, package versions and git commit."""

from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
import json
import os
import pathlib
import subprocess
import tempfile

import numpy as np

PACKAGES = ("numpy", "scipy", "sympy", "jax", "jaxlib", "optax", "matplotlib", "hypothesis")


def package_versions() -> dict[str, str]:
  """Installed versions of the packages results depend on ('absent' where one is not installed)."""
  versions = {}
  for name in PACKAGES:
    try:
      versions[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      versions[name] = "absent"
  return versions


def git_commit(path: str | os.PathLike = ".") -> str:
  """The git commit of the checkout containing `path`, with '+dirty' if it has uncommitted changes."""
  try:
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True,
                            check=True, timeout=10).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=path,
                           capture_output=True, text=True, check=True, timeout=10).stdout.strip()
  except (OSError, subprocess.SubprocessError):
    return "unknown"
  return commit + ("+dirty" if dirty else "")


def provenance(config=None, seed: int | None = None) -> dict:
  """A record of how a result was made: config (a dataclass or dict), seed, versions, commit, UTC time."""
  if dataclasses.is_dataclass(config):
    config = dataclasses.asdict(config)
  return {
      "config": config,
      "seed": seed,
      "package_versions": package_versions(),
      "git_commit": git_commit(pathlib.Path(__file__).resolve().parent),
      "created_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
  }


def _json_default(value):
  if isinstance(value, np.ndarray):
    return value.tolist()
  if isinstance(value, np.generic):
    return value.item()
  if isinstance(value, pathlib.Path):
    return str(value)
  if dataclasses.is_dataclass(value):
    return dataclasses.asdict(value)
  raise TypeError(f"cannot save {type(value).__name__} as JSON")


def _atomic_write(path: pathlib.Path, write) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
  try:
    with os.fdopen(fd, "wb") as handle:
      write(handle)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; saved results are meant to be shared.
    os.replace(tmp, path)
  except BaseException:
    pathlib.Path(tmp).unlink(missing_ok=True)
    raise


def write_json(path: str | os.PathLike, data) -> None:
  """Writes `data` as indented JSON atomically (a crash leaves the old file or none, never half of one)."""
  text = json.dumps(data, indent=2, sort_keys=False, default=_json_default, allow_nan=True) + "\n"
  _atomic_write(pathlib.Path(path), lambda handle: handle.write(text.encode()))


def read_json(path: str | os.PathLike):
  """Reads a JSON file written by write_json."""
  return json.loads(pathlib.Path(path).read_text())


def write_npz(path: str | os.PathLike, **arrays) -> None:
  """Writes arrays to a compressed .npz atomically."""
  _atomic_write(pathlib.Path(path), lambda handle: np.savez_compressed(handle, **arrays))


def read_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
  """Reads all arrays of an .npz file into a dict."""
  with np.load(path) as data:
    return {name: data[name] for name in data.files}
