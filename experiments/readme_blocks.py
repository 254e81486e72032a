"""Keeps the generated blocks of the checkout's README.md equal to the files they were generated into."""

from __future__ import annotations

import pathlib

from experiments import paths, records


def readme() -> pathlib.Path | None:
  """The checkout's README.md, or None outside a checkout."""
  root = paths.repository_root()
  return None if root is None else root / "README.md"


def markers(name: str) -> tuple[str, str]:
  """The start and end comments around the generated block `name`."""
  return f"<!-- generated:{name}:start -->", f"<!-- generated:{name}:end -->"


def block(readme_text: str, name: str) -> str | None:
  """The text between the markers of `name`, or None if the README has no such block."""
  start, end = markers(name)
  if start not in readme_text or end not in readme_text:
    return None
  return readme_text.split(start, 1)[1].split(end, 1)[0].strip("\n") + "\n"


def embed(name: str, text: str, path: pathlib.Path | None = None) -> bool:
  """Replaces block `name` of the README with `text` (publishing only); False, writing nothing, without the block."""
  path = readme() if path is None else path
  if path is None or not path.exists():
    return False
  current = path.read_text()
  if block(current, name) is None:
    return False
  start, end = markers(name)
  head, rest = current.split(start, 1)
  tail = rest.split(end, 1)[1]
  updated = f"{head}{start}\n{text.strip()}\n{end}{tail}"
  if updated != current:
    records.write_text(path, updated)
  return True
