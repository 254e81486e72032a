"""Where outputs go: user runs under runs/, published results under the checkout's figures/, and output-path checks."""

from __future__ import annotations

import os
import pathlib

RUNS = pathlib.Path("runs")
"""Default parent of every user run, relative to the working directory (git-ignored in the checkout)."""


def repository_root() -> pathlib.Path | None:
  """The checkout this package was installed from in editable mode (it holds pyproject.toml), or None."""
  root = pathlib.Path(__file__).resolve().parent.parent
  return root if (root / "pyproject.toml").exists() and (root / "experiments").is_dir() else None


def published_dir() -> pathlib.Path | None:
  """The committed results (figures, report, saved runs): <checkout>/figures, or None outside a checkout."""
  root = repository_root()
  return None if root is None else root / "figures"


def published_data() -> pathlib.Path | None:
  """The committed saved runs: <checkout>/figures/data, or None outside a checkout."""
  published = published_dir()
  return None if published is None else published / "data"


def is_published(path: str | os.PathLike) -> bool:
  """Whether `path` lies inside the committed results (or is the README), which only publishing may write."""
  root = repository_root()
  if root is None:
    return False
  resolved = pathlib.Path(path).resolve()
  protected = [root / "figures", root / "README.md"]
  return any(resolved == p or p in resolved.parents for p in protected)


def check_output_dir(path: str | os.PathLike, *, flag: str = "--out-dir", publishing: bool = False) -> pathlib.Path:
  """Checks, before any work starts, that `path` can be a folder of outputs; returns it as a Path.

  Refused with a one-line ValueError: a path inside the published results (unless `publishing`), a path that is a
  file or lies under a file, and a folder that cannot be created or written to.
  """
  path = pathlib.Path(path)
  if not publishing and is_published(path):
    raise ValueError(f"{flag} {path} is inside the published results ({published_dir()}); allowed: a folder "
                     "outside it (default runs/...); only `elasticity reproduce --publish` writes there")
  if path.exists() and not path.is_dir():
    raise ValueError(f"{flag} {path} is a file; allowed: a folder (existing or new)")
  existing = path
  while not existing.exists():
    existing = existing.parent
  if not existing.is_dir():
    raise ValueError(f"{flag} {path} lies under the file {existing}; allowed: a folder path")
  if not os.access(existing, os.W_OK | os.X_OK):
    raise ValueError(f"{flag} {path} cannot be written ({existing} is read-only); allowed: a writable folder")
  return path


def check_output_file(path: str | os.PathLike, *, flag: str, publishing: bool = False) -> pathlib.Path:
  """Like check_output_dir for a file to be written: its folder must be creatable and writable, itself not a folder."""
  path = pathlib.Path(path)
  if path.exists() and path.is_dir():
    raise ValueError(f"{flag} {path} is a folder; allowed: a file path")
  check_output_dir(path.parent, flag=flag, publishing=publishing)
  return path
