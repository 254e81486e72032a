"""`elasticity simulate hooke`: Δγ_p and Δγ_a against l in trained toy models, for a grid of k."""

from __future__ import annotations

import argparse
import pathlib

from elasticity_cli import experiment_runner
from toy_models import config_io, hooke, hooke_summary
from toy_models.hooke_config import HookeConfig

HELP = ("Hooke's law in trained toy models: for each k, pre-train/align, perturb with growing l, record Δγ_p, "
        "Δγ_a and the slope of log|Δγ_a/Δγ_p| against log k (joint and sequential regimes, each model kind)")
DEFAULT_OUT = pathlib.Path("figures/data/hooke")


def _floats(text: str) -> tuple[float, ...]:
  try:
    return tuple(float(item) for item in text.split(",") if item.strip())
  except ValueError:
    raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers") from None


def _names(text: str) -> tuple[str, ...]:
  return tuple(item.strip() for item in text.split(",") if item.strip())


FLAGS = (  # (flag, config field, type, help)
    ("--k-grid", "k_grid", _floats, "k = |D_p|/|D_a| values, comma-separated (default 10,30,100,300,1000)"),
    ("--l-grid", "l_grid", _floats, "l = |D_t|/|D_a| values > 0, comma-separated (default 0.003,0.01,0.03,0.1)"),
    ("--align-mass", "align_mass", float, "|D_a| in responses (default 100)"),
    ("--seeds", "seeds", int, "number of seeds (default 3)"),
    ("--seed", "seed", int, "first seed (default 0)"),
    ("--depth", "depth", int, "token-tree depth, 2..16 (default 8)"),
    ("--family", "family", str, "source family: pareto, zipf, dirichlet, uniform, markov (default pareto)"),
    ("--param", "param", float, "the family's parameter (Pareto shape, Zipf exponent, ..., Markov order)"),
    ("--perturbation", "perturbation", str, "D_t: unaligned, pretrain_like, alignment_like, unrelated"),
    ("--sampling", "sampling", str, "exact (expected counts, default) or sampled (finite multinomial datasets)"),
    ("--models", "models", _names, "model kinds, comma-separated (default tabular,ngram,transformer)"),
    ("--regimes", "regimes", _names, "regimes, comma-separated (default joint,sequential)"),
    ("--ngram-context", "ngram_context", int, "n-gram context length (default 3)"),
    ("--width", "transformer_width", int, "transformer width (default 16)"),
    ("--layers", "transformer_layers", int, "transformer layers (default 1)"),
    ("--heads", "transformer_heads", int, "transformer heads (default 2)"),
    ("--dtype", "dtype", str, "float64 (default) or float32 parameters"),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """Registers every knob of HookeConfig as a flag, plus --config, --steps, --learning-rate, --out-dir."""
  parser.add_argument("--config", type=pathlib.Path, default=None,
                      help="TOML file with HookeConfig fields (flags given as well override it)")
  for flag, field, kind, text in FLAGS:
    parser.add_argument(flag, dest=field, type=kind, default=None, help=text)
  parser.add_argument("--steps", type=int, default=None, help="joint-regime steps for every model kind")
  parser.add_argument("--learning-rate", type=float, default=None,
                      help="peak learning rate of every stage of every model kind")
  parser.add_argument("--out-dir", type=pathlib.Path, default=DEFAULT_OUT,
                      help=f"run directory (default {DEFAULT_OUT}); finished units there are reused")
  parser.add_argument("--fresh", action="store_true", help="discard earlier results in --out-dir first")


def config_from_args(args: argparse.Namespace) -> HookeConfig:
  """The HookeConfig of a command line: defaults, then --config's file, then the flags."""
  overrides = {field: getattr(args, field) for _, field, _, _ in FLAGS if getattr(args, field) is not None}
  stage_overrides = {}
  if args.steps is not None:
    stage_overrides["steps"] = args.steps
  if args.learning_rate is not None:
    stage_overrides["learning_rate"] = args.learning_rate
  for kind in ("tabular", "ngram", "transformer"):
    stages = ("joint",) if set(stage_overrides) == {"steps"} else ("joint", "pretrain", "align", "finetune")
    plan = {stage: {k: v for k, v in stage_overrides.items() if k != "steps" or stage == "joint"}
            for stage in stages}
    if stage_overrides:
      overrides[f"{kind}_plan"] = plan
  if args.config is not None:
    return config_io.load_toml(HookeConfig, args.config, overrides)
  return config_io.with_overrides(HookeConfig(), overrides)


def run_experiment(config: HookeConfig, out_dir: pathlib.Path, *, fresh: bool = False) -> dict:
  """Runs (or resumes) the experiment with a progress bar, saves summary.json, returns the summary."""
  return experiment_runner.run_with_progress(config, out_dir, fresh=fresh, label="hooke", units=hooke.units,
                                             run=hooke.run, summarize=hooke_summary.summarize)


def run(args: argparse.Namespace) -> int:
  """Runs `elasticity simulate hooke`."""
  config = config_from_args(args)
  summary = run_experiment(config, args.out_dir, fresh=args.fresh)
  print(hooke_summary.format_summary(summary, config))
  print(f"results: {args.out_dir} (summary.json, units/); figure: run `elasticity figures`")
  return 0
