"""`elasticity simulate resistance`: forward against inverse alignment between SFT checkpoints (paper Table 1)."""

from __future__ import annotations

import argparse
import pathlib

from elasticity_cli import experiment_runner
from elasticity_cli.rebound_command import names, sizes
from toy_models import config_io, resistance, resistance_summary
from toy_models.resistance_config import ResistanceConfig

HELP = ("Resistance (paper Table 1): SFT with checkpoints θ1..θ3, then forward (earlier on later outputs) against "
        "inverse (later on earlier) alignment for 3 datasets x 3 model sizes x 3 pairs; loss, entropy-free excess, KL")
DEFAULT_OUT = pathlib.Path("figures/data/resistance")

FLAGS = (  # (flag, config field, type, help)
    ("--datasets", "datasets", names, "alignment datasets as source families (default pareto,zipf,dirichlet)"),
    ("--model-sizes", "model_sizes", sizes, "transformer sizes WIDTHxLAYERS (default 8x1,16x1,24x1)"),
    ("--heads", "heads", int, "attention heads (default 2)"),
    ("--seeds", "seeds", int, "number of seeds (default 5)"),
    ("--seed", "seed", int, "first seed (default 0)"),
    ("--depth", "depth", int, "token-tree depth, 2..16 (default 8)"),
    ("--pretrain-family", "pretrain_family", str, "source family of the pre-training data (default pareto)"),
    ("--pretrain-mass", "pretrain_mass", float, "pre-training responses (default 5000)"),
    ("--align-mass", "align_mass", float, "responses of each alignment dataset (default 2000)"),
    ("--outputs", "outputs", str, "checkpoint datasets: exact distributions (default) or sampled"),
    ("--output-samples", "output_samples", int, "responses per checkpoint dataset when sampled (default 2000)"),
    ("--dtype", "dtype", str, "float64 (default) or float32 parameters"),
)
STAGE_FLAGS = (  # (flag, stage field of the config, StageConfig field, type, help)
    ("--sft-steps", "sft", "steps", int, "steps of the SFT run θ1..θ3 lie on (default 60)"),
    ("--transfer-steps", "transfer", "steps", int, "steps of forward and inverse alignment (default 100)"),
    ("--transfer-learning-rate", "transfer", "learning_rate", float,
     "learning rate of forward and inverse alignment (default 0.003)"),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """Registers the main knobs of ResistanceConfig as flags, plus --config, --out-dir and --fresh."""
  parser.add_argument("--config", type=pathlib.Path, default=None,
                      help="TOML file with ResistanceConfig fields (flags given as well override it)")
  for flag, field, kind, text in FLAGS:
    parser.add_argument(flag, dest=field, type=kind, default=None, help=text)
  for flag, _, _, kind, text in STAGE_FLAGS:
    parser.add_argument(flag, type=kind, default=None, help=text)
  parser.add_argument("--out-dir", type=pathlib.Path, default=DEFAULT_OUT,
                      help=f"run directory (default {DEFAULT_OUT}); finished units there are reused")
  parser.add_argument("--fresh", action="store_true", help="discard earlier results in --out-dir first")


def config_from_args(args: argparse.Namespace) -> ResistanceConfig:
  """The ResistanceConfig of a command line: defaults, then --config's file, then the flags."""
  overrides = {field: getattr(args, field) for _, field, _, _ in FLAGS if getattr(args, field) is not None}
  for flag, stage, field, _, _ in STAGE_FLAGS:
    value = getattr(args, flag.removeprefix("--").replace("-", "_"))
    if value is not None:
      overrides.setdefault(stage, {})[field] = value
  if args.config is not None:
    return config_io.load_toml(ResistanceConfig, args.config, overrides)
  return config_io.with_overrides(ResistanceConfig(), overrides)


def run_experiment(config: ResistanceConfig, out_dir: pathlib.Path, *, fresh: bool = False) -> dict:
  """Runs (or resumes) the experiment with a progress bar, saves summary.json, returns the summary.

  Args:
    config: the experiment's config.
    out_dir: the run directory (units/, checkpoints/, config.json, summary.json).
    fresh: discard earlier results in out_dir first.

  Returns:
    toy_models.resistance_summary.summarize of the run (also saved in out_dir/summary.json under 'summary', with
    the config, seed, package versions, git commit and the seconds this call took).

  References:
    Ji et al., "Language Models Resist Alignment", ACL 2025, Table 1.
  """
  return experiment_runner.run_with_progress(config, pathlib.Path(out_dir), fresh=fresh, label="resistance",
                                             units=resistance.units, run=resistance.run,
                                             summarize=resistance_summary.summarize)


def run(args: argparse.Namespace) -> int:
  """Runs `elasticity simulate resistance`."""
  config = config_from_args(args)
  summary = run_experiment(config, args.out_dir, fresh=args.fresh)
  print(resistance_summary.format_summary(summary, config))
  print(f"results: {args.out_dir} (summary.json, units/); figure: run `elasticity figures`")
  return 0
