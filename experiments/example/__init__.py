"""A minimal experiment (the README's example): does the tabular model trained on D_p ∪ D_a reach the mixture?"""

import dataclasses

import jax
import numpy as np

from experiments import plotting
from experiments.protocol import Experiment
from theory import mixture
from toy_models import datasets, metrics, training
from toy_models.model_config import ModelConfig
from toy_models.models import build_model
from toy_models.stage_config import StageConfig


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config:
  """Every knob of the example."""

  k_grid: tuple[float, ...] = (10.0, 100.0, 1000.0)  # k = |D_p| / |D_a|, one unit each.
  depth: int = 6  # token-tree depth (2**depth - 1 responses).
  steps: int = 2000  # full-batch Adam steps on the count-weighted objective.
  seed: int = 0  # seed of the sources and of the initial parameters.


@dataclasses.dataclass(frozen=True)
class Unit:
  """One k."""

  k: float

  @property
  def name(self) -> str:
    return f"k{self.k:g}"


def units(config: Config) -> list[Unit]:
  return [Unit(k) for k in config.k_grid]


def run_unit(config: Config, unit: Unit, run_dir, progress) -> tuple[dict, dict]:
  """Trains the tabular model on n_p = k, n_a = 1 and compares its rates (bits per response) with the mixture's."""
  P = datasets.SourceConfig(depth=config.depth, seed=config.seed).probabilities()[:2]  # D_p, D_a
  sizes = np.array([unit.k, 1.0])
  model = build_model(ModelConfig(kind="tabular"), config.depth)
  keys = jax.random.PRNGKey(config.seed)[None]
  stage = StageConfig(steps=config.steps, learning_rate=0.1)
  params, _ = training.train_batch(model, stage, training.init_params(model, keys), (sizes @ P)[None],
                                   [config.steps], keys=keys, progress=progress, label=unit.name)
  rates = metrics.rates_bits(metrics.leaf_log2_probs(model, params)[0], P)
  theory = mixture.compression_rates(P, sizes)
  return {"name": unit.name, "max_gap_bits": float(np.abs(rates - theory).max())}, {"rates": rates, "theory": theory}


def summarize(config: Config, run_dir) -> dict:
  return {u.name: run_dir.load(u.name)[0]["max_gap_bits"] for u in units(config) if run_dir.done(u.name)}


def format_summary(summary: dict, config: Config) -> str:
  return "\n".join(f"{name}: max |rate - mixture rate| = {gap:.2e} bits per response" for name, gap in summary.items())


def figures(config: Config, summary: dict, run_dir, figures_dir) -> list:
  fig, ax = plotting.subplots(figsize=(5, 3.5))
  ax.semilogy(config.k_grid, list(summary.values()), "o-")
  ax.set(xscale="log", xlabel="k", ylabel="max |rate - mixture| (bits)", title="Tabular model vs exact mixture")
  return [plotting.save(fig, figures_dir / "example.png")]


def report(config: Config, summary: dict, context) -> str:
  return format_summary(summary, config) + "\n\n" + "\n".join(context.links()) + "\n"


EXPERIMENT = Experiment(
    name="example", title="Example: the tabular model reaches the exact mixture", help="the README's minimal example",
    config_class=Config, package=__name__, units=units, run_unit=run_unit, summarize=summarize,
    format_summary=format_summary, figures=figures, report=report, in_reproduce=False)
