"""Saved results: atomic JSON / npz writes stamped with config, config hash, seed, package versions and git commit."""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import importlib.metadata
import json
import os
import pathlib
import subprocess

import numpy as np

from toy_models.checkpoints import atomic_write

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


PUBLISHED_OUTPUTS = ("figures", "README.md")
"""What publishing writes: their uncommitted changes are the publication under way, not a changed input."""


def git_commit(path: str | os.PathLike = ".") -> str:
  """The git commit of the checkout containing `path`, with '+dirty' if it has uncommitted changes.

  Changes to PUBLISHED_OUTPUTS do not count: a publishing run writes them one after another, and would otherwise
  mark every record after its first as dirty. Changes anywhere else (code, configs, tests) do.
  """
  try:
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True,
                            check=True, timeout=10).stdout.strip()
    excluded = [f":(top,exclude){name}" for name in PUBLISHED_OUTPUTS]
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ":(top)", *excluded],
                           cwd=path, capture_output=True, text=True, check=True, timeout=10).stdout.strip()
  except (OSError, subprocess.SubprocessError):
    return "unknown"
  return commit + ("+dirty" if dirty else "")


def plain(config) -> dict | None:
  """A config (dataclass or dict) as plain JSON data: tuples become lists, keys keep their order."""
  if config is None:
    return None
  if dataclasses.is_dataclass(config):
    config = dataclasses.asdict(config)
  return json.loads(json.dumps(config, default=_json_default))


def config_hash(config) -> str:
  """First 12 hex digits of the SHA-256 of the config's canonical JSON (sorted keys): its identity in reports."""
  text = json.dumps(plain(config), sort_keys=True, separators=(",", ":"))
  return hashlib.sha256(text.encode()).hexdigest()[:12]


NUMERIC_ENVIRONMENT = ("ELASTICITY_EXACT_GRADIENT_CHUNK",)
"""Environment variables that change a run's numbers (in rounding only): provenance records those that are set."""


def provenance(config=None, seed: int | None = None, **extra) -> dict:
  """How a result was made: config (a dataclass or dict), its hash, seed, versions, commit, UTC time, the
  NUMERIC_ENVIRONMENT variables set (only where one is), and `extra`."""
  environment = {name: os.environ[name] for name in NUMERIC_ENVIRONMENT if os.environ.get(name, "").strip()}
  return {
      **extra,
      "config": plain(config),
      "config_hash": None if config is None else config_hash(config),
      "seed": seed,
      "package_versions": package_versions(),
      "git_commit": git_commit(pathlib.Path(__file__).resolve().parent),
      "created_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
      **({"environment": environment} if environment else {}),
  }


def _json_default(value):
  if isinstance(value, np.ndarray):
    return value.tolist()
  if isinstance(value, np.generic):
    return value.item()
  if isinstance(value, pathlib.PurePath):
    return str(value)
  if dataclasses.is_dataclass(value):
    return dataclasses.asdict(value)
  raise TypeError(f"cannot save {type(value).__name__} as JSON")


def write_json(path: str | os.PathLike, data) -> None:
  """Writes `data` as indented JSON atomically (a crash leaves the old file or none, never half of one)."""
  text = json.dumps(data, indent=2, sort_keys=False, default=_json_default, allow_nan=True) + "\n"
  atomic_write(path, lambda handle: handle.write(text.encode()))


def write_text(path: str | os.PathLike, text: str) -> None:
  """Writes a text file atomically."""
  atomic_write(path, lambda handle: handle.write(text.encode()))


def read_json(path: str | os.PathLike):
  """Reads a JSON file written by write_json."""
  return json.loads(pathlib.Path(path).read_text())


def write_npz(path: str | os.PathLike, **arrays) -> None:
  """Writes arrays to a compressed .npz atomically."""
  atomic_write(path, lambda handle: np.savez_compressed(handle, **arrays))


def read_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
  """Reads all arrays of an .npz file into a dict."""
  with np.load(path) as data:
    return {name: data[name] for name in data.files}
