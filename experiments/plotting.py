"""Figures without global state: matplotlib Figure objects (no pyplot, no backend switch) saved reproducibly."""

from __future__ import annotations

import pathlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
  from matplotlib.figure import Figure

# matplotlib is imported where a figure is drawn, not here: commands that draw nothing (simulate, check, bench)
# start about 0.4 s sooner.


def subplots(rows: int = 1, columns: int = 1, *, figsize=(6.0, 4.5), **kwargs):
  """(figure, axes) like pyplot.subplots, on a Figure that belongs to no backend or global figure list."""
  from matplotlib.figure import Figure

  figure = Figure(figsize=figsize)
  return figure, figure.subplots(rows, columns, **kwargs)


def colors(name: str, count: int, stop: float = 0.85):
  """`count` colours spread over the colormap `name` from 0 to `stop`."""
  import matplotlib

  cmap = matplotlib.colormaps[name]
  return [cmap(stop * i / max(count - 1, 1)) for i in range(count)]


def save(figure: Figure, path: pathlib.Path, dpi: int = 110) -> pathlib.Path:
  """Saves a PNG without time-stamped metadata (the same data gives the same bytes) and returns its path."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  figure.tight_layout()
  # The layout is placed: with no layout engine left (None; 'none' would leave tight_layout's placeholder, which still
  # makes savefig draw the figure once more before drawing it for the file) savefig draws once. Same bytes.
  figure.set_layout_engine(None)
  figure.savefig(path, dpi=dpi, metadata={"Software": None})
  return path
