"""Shared command line of the rebound experiments (`simulate rebound`, `model-size`, `pretrain-volume`)."""

from __future__ import annotations

import argparse
import pathlib

from elasticity_cli import experiment_runner
from toy_models import config_io, rebound, rebound_summary
from toy_models.rebound_config import ReboundConfig, experiment_config


def _floats(text: str) -> tuple[float, ...]:
  try:
    return tuple(float(item) for item in text.split(",") if item.strip())
  except ValueError:
    raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers") from None


def _ints(text: str) -> tuple[int, ...]:
  try:
    return tuple(int(item) for item in text.split(",") if item.strip())
  except ValueError:
    raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers") from None


def names(text: str) -> tuple[str, ...]:
  """Comma-separated names of a flag."""
  return tuple(item.strip() for item in text.split(",") if item.strip())


def sizes(text: str) -> tuple[tuple[int, int], ...]:
  """Transformer sizes of a flag, e.g. '8x1,32x2' -> ((8, 1), (32, 2))."""
  try:
    return tuple(tuple(int(v) for v in item.lower().split("x")) for item in text.split(",") if item.strip())
  except ValueError:
    raise argparse.ArgumentTypeError(f"{text!r} is not a list like 8x1,16x1,32x2 (width x layers)") from None


FLAGS = (  # (flag, config field, type, help)
    ("--first-sizes", "first_sizes", _ints, "first-stage (alignment) example counts, comma-separated"),
    ("--second-sizes", "second_sizes", _ints, "second-stage example counts, 0 first, comma-separated"),
    ("--orders", "orders", names, "positive_first and/or negative_first"),
    ("--methods", "methods", names, "reverse-stage methods: sft and/or dpo"),
    ("--families", "families", names, "source families: pareto, zipf, dirichlet, uniform, markov"),
    ("--param", "param", float, "the family's parameter (one family only)"),
    ("--model-sizes", "model_sizes", sizes, "transformer sizes as WIDTHxLAYERS, comma-separated (e.g. 8x1,32x2)"),
    ("--heads", "heads", int, "attention heads (divides every width)"),
    ("--pretrain-masses", "pretrain_masses", _floats, "pre-training responses, comma-separated"),
    ("--seeds", "seeds", int, "number of seeds"),
    ("--seed", "seed", int, "first seed"),
    ("--depth", "depth", int, "token-tree depth, 2..16"),
    ("--behaviours", "behaviours", str, "conditional (D_p on each subtree) or independent sources"),
    ("--sampling", "sampling", str, "sampled (finite datasets) or exact (expected counts)"),
    ("--epsilon", "epsilon_nats", float, "KL threshold of the Table 3 analogue, nats"),
    ("--dpo-beta", "dpo_beta", float, "DPO's beta"),
    ("--dtype", "dtype", str, "float64 or float32 parameters"),
)


def add_arguments(parser: argparse.ArgumentParser, experiment: str) -> None:
  """Registers every knob of ReboundConfig as a flag (defaults: the experiment's), plus --config, --out-dir."""
  defaults = experiment_config(experiment)
  parser.add_argument("--config", type=pathlib.Path, default=None,
                      help="TOML file with ReboundConfig fields over this experiment's defaults (flags override it)")
  for flag, field, kind, text in FLAGS:
    value = getattr(defaults, field)
    shown = ",".join("x".join(map(str, v)) if isinstance(v, tuple) else f"{v:g}" if isinstance(v, float) else str(v)
                     for v in value) if isinstance(value, tuple) else value
    parser.add_argument(flag, dest=field, type=kind, default=None, help=f"{text} (default {shown})")
  parser.add_argument("--learning-rate", type=float, default=None, help="learning rate of every stage (default 0.003)")
  parser.add_argument("--out-dir", type=pathlib.Path, default=pathlib.Path("figures/data") / experiment,
                      help=f"run directory (default figures/data/{experiment}); finished units there are reused")
  parser.add_argument("--fresh", action="store_true", help="discard earlier results in --out-dir first")


def config_from_args(args: argparse.Namespace, experiment: str) -> ReboundConfig:
  """The config of a command line: the experiment's defaults, then --config's file, then the flags."""
  overrides = {field: getattr(args, field) for _, field, _, _ in FLAGS if getattr(args, field) is not None}
  if args.learning_rate is not None:
    for stage in ("pretrain", "first", "second"):
      overrides[stage] = {"learning_rate": args.learning_rate}
  base = experiment_config(experiment)
  if args.config is not None:
    return config_io.load_toml(ReboundConfig, args.config, overrides, base=base)
  return config_io.with_overrides(base, overrides)


def run_experiment(config: ReboundConfig, out_dir: pathlib.Path, *, fresh: bool = False, label: str = "rebound"):
  """Runs (or resumes) the experiment with a progress bar, saves summary.json, returns the summary."""
  return experiment_runner.run_with_progress(config, out_dir, fresh=fresh, label=label, units=rebound.units,
                                             run=rebound.run, summarize=rebound_summary.summarize)


def run(args: argparse.Namespace, experiment: str) -> int:
  """Runs one rebound-family experiment from its command line and prints its tables and verdicts."""
  config = config_from_args(args, experiment)
  summary = run_experiment(config, args.out_dir, fresh=args.fresh, label=experiment)
  print(rebound_summary.format_summary(summary, config))
  print(f"results: {args.out_dir} (summary.json, units/); figures: run `elasticity figures`")
  return 0
