"""`elasticity reproduce`: the main job — claims check, theory figures, simulations, then figures/REPORT.md."""

from __future__ import annotations

import argparse
import dataclasses
import pathlib
import sys
import time

from elasticity_cli import reproduce_steps

NAME = "reproduce"
HELP = ("Run everything (claims check, theory figures, toy-model simulations), reusing finished runs, and "
        "write figures/*.png and figures/REPORT.md.")
SCALES = ("quick", "default", "paper")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ReproduceConfig:
  """What `elasticity reproduce` runs and where it writes."""

  scale: str = "default"  # 'quick' (first look, 1.5-2.5 min), 'default' (CPU, < 15 min) or 'paper' (GPU-sized).
  figures_dir: pathlib.Path = pathlib.Path("figures")  # PNGs and REPORT.md go here.
  data_root: pathlib.Path | None = None  # saved results; default <figures_dir>/data.
  seed: int = 0  # root seed of every step.

  def __post_init__(self):
    if self.scale not in SCALES:
      raise ValueError(f"unknown scale {self.scale!r}; allowed: {', '.join(SCALES)}")

  @property
  def data(self) -> pathlib.Path:
    """The directory of saved results."""
    return self.data_root or self.figures_dir / "data"


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """Registers the flags of `elasticity reproduce`."""
  parser.add_argument("--quick", action="store_const", const="quick", dest="scale",
                      help="small settings for a first look (1.5-2.5 minutes on 2 CPU cores)")
  parser.add_argument("--scale", choices=SCALES, default="default",
                      help="default: CPU-sized (under 10 minutes on 2 cores); paper: larger, for a GPU")
  parser.add_argument("--figures-dir", type=pathlib.Path, default=pathlib.Path("figures"))
  parser.add_argument("--data-root", type=pathlib.Path, default=None)
  parser.add_argument("--seed", type=int, default=0)
  parser.set_defaults(scale="default")  # --quick and --scale share one destination


def reproduce(config: ReproduceConfig) -> pathlib.Path:
  """Runs every step of the main job in order and writes the report; returns the report's path."""
  sections = []
  steps = reproduce_steps.steps_for(config.scale)
  for index, (title, step) in enumerate(steps, start=1):
    print(f"[{index}/{len(steps)}] {title} ...", file=sys.stderr, flush=True)
    start = time.perf_counter()
    sections.append(step(config))
    print(f"[{index}/{len(steps)}] {title}: done in {time.perf_counter() - start:.1f} s", file=sys.stderr,
          flush=True)
  return reproduce_steps.write_report(config, sections)


def run(args: argparse.Namespace) -> int:
  """Runs `elasticity reproduce` and prints where the figures and report went."""
  config = ReproduceConfig(scale=args.scale, figures_dir=args.figures_dir, data_root=args.data_root,
                           seed=args.seed)
  start = time.perf_counter()
  report = reproduce(config)
  print(f"figures: {config.figures_dir}/*.png")
  print(f"report:  {report}")
  print(f"total time: {time.perf_counter() - start:.0f} s")
  return 0
