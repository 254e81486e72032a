"""experiments/plotting.py: a figure is laid out, drawn once and saved as the same bytes for the same data."""

import numpy as np

from experiments import plotting


def figure_with_data(seed: int = 0):
  """A two-panel figure with labels, a legend and a title: what tight_layout has to make room for."""
  figure, axes = plotting.subplots(1, 2, figsize=(6.0, 3.0))
  rng = np.random.default_rng(seed)
  for index, ax in enumerate(axes):
    for line in range(3):
      ax.plot(rng.normal(size=50).cumsum(), label=f"seed {line}")
    ax.set_xlabel("steps")
    ax.set_ylabel("bits per response")
    ax.set_title(f"panel {index}")
    ax.legend()
  return figure


def test_save_draws_once_and_leaves_no_layout_engine(tmp_path):
  figure = figure_with_data()
  draws = []
  figure.canvas.mpl_connect("draw_event", lambda event: draws.append(event))
  path = plotting.save(figure, tmp_path / "figure.png")
  assert path.exists() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  assert figure.get_layout_engine() is None
  assert len(draws) == 1  # with tight_layout's placeholder engine left in place, savefig draws twice


def test_one_draw_gives_the_bytes_of_two_and_the_same_data_the_same_bytes(tmp_path):
  saved = plotting.save(figure_with_data(), tmp_path / "once.png").read_bytes()
  assert plotting.save(figure_with_data(), tmp_path / "again.png").read_bytes() == saved
  twice = figure_with_data()
  twice.tight_layout()  # the engine stays: savefig draws the figure before drawing it for the file
  twice.savefig(tmp_path / "twice.png", dpi=110, metadata={"Software": None})
  assert (tmp_path / "twice.png").read_bytes() == saved
  assert plotting.save(figure_with_data(seed=1), tmp_path / "other.png").read_bytes() != saved
