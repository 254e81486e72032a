"""Keeps generated blocks of README.md (e.g. the claims table) equal to the files they were generated into."""

from __future__ import annotations

import pathlib

README = pathlib.Path("README.md")


def markers(name: str) -> tuple[str, str]:
  """The start and end comments around the generated block `name`."""
  return f"<!-- generated:{name}:start -->", f"<!-- generated:{name}:end -->"


def block(readme_text: str, name: str) -> str | None:
  """The text between the markers of `name`, or None if the README has no such block."""
  start, end = markers(name)
  if start not in readme_text or end not in readme_text:
    return None
  return readme_text.split(start, 1)[1].split(end, 1)[0].strip("\n") + "\n"


def embed(name: str, text: str, readme: pathlib.Path = README) -> bool:
  """Replaces block `name` of `readme` with `text`; returns False (and writes nothing) if there is no block."""
  if not readme.exists():
    return False
  current = readme.read_text()
  if block(current, name) is None:
    return False
  start, end = markers(name)
  head, rest = current.split(start, 1)
  tail = rest.split(end, 1)[1]
  updated = f"{head}{start}\n{text.strip()}\n{end}{tail}"
  if updated != current:
    tmp = readme.with_suffix(".md.tmp")
    tmp.write_text(updated)
    tmp.replace(readme)
  return True
