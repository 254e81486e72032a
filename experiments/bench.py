"""Training throughput of the default transformer (one run and vmapped batches), and the default hooke's time."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import os
import pathlib
import tempfile
import time
from collections.abc import Callable

import jax
import numpy as np

from experiments.hooke.config import HookeConfig
from theory import token_tree
from toy_models import training
from toy_models.models import Model, build_model
from toy_models.stage_config import GRADIENTS, StageConfig

MAX_STEPS = 1_000_000  # refuse more timed steps than a stage may take (a typo would run for days).


@dataclasses.dataclass(frozen=True, kw_only=True)
class BenchConfig:
  """What `elasticity bench` measures.

  The model, its tree depth and its training stage are those of `hooke` (the transformer and the joint stage of
  its transformer plan); `gradients` lists the gradient modes timed with that stage (the stage's own mode,
  'minibatch' by default, and the full-batch 'expected' one).
  """

  steps: int = 200  # timed steps per measurement (after one untimed warm-up call that compiles).
  warmup_steps: int = 20  # steps of the warm-up call (same compiled program: budgets and bounds are traced).
  batches: tuple[int, ...] = (1, 8, 32)  # numbers of vmapped runs.
  gradients: tuple[str, ...] = ("minibatch", "expected")  # how each step's gradient is formed.
  time_hooke: bool = True  # also time `simulate hooke` with `hooke` (fresh, in a temporary directory).
  seed: int = 0  # initial parameters, minibatch keys and the leaf weights of the training data.
  hooke: HookeConfig = dataclasses.field(default_factory=HookeConfig)

  def __post_init__(self):
    for name in ("steps", "warmup_steps"):
      value = getattr(self, name)
      if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_STEPS:
        raise ValueError(f"{name}={value!r} is not allowed; allowed: an integer 1..{MAX_STEPS}")
    batches = tuple(self.batches)
    if not batches or any(isinstance(b, bool) or not isinstance(b, int) or b < 1 for b in batches):
      raise ValueError(f"batches={list(batches)} is not allowed; allowed: one or more integers >= 1")
    if len(set(batches)) != len(batches):
      raise ValueError(f"batches={list(batches)} repeats a value; allowed: distinct integers >= 1")
    bad = [g for g in self.gradients if g not in GRADIENTS]
    if bad or not self.gradients or len(set(self.gradients)) != len(self.gradients):
      raise ValueError(f"gradients={list(self.gradients)} is not allowed; allowed: distinct values of "
                       f"{', '.join(GRADIENTS)}")
    if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
      raise ValueError(f"seed={self.seed!r} is not allowed; allowed: an integer >= 0")
    if not isinstance(self.hooke, HookeConfig):
      raise ValueError(f"hooke must be a HookeConfig, got {type(self.hooke).__name__}")


def _round(value: float, digits: int = 4) -> float:
  """`value` to `digits` significant digits (JSON stays readable; rates keep their precision)."""
  return float(f"{value:.{digits}g}")


def device_info() -> dict:
  """The machine: JAX backend, its devices, CPU count and JAX versions."""
  try:
    jaxlib_version = importlib.metadata.version("jaxlib")
  except importlib.metadata.PackageNotFoundError:
    jaxlib_version = "absent"
  return {"platform": jax.default_backend(), "devices": [str(d) for d in jax.devices()],
          "device_kind": jax.devices()[0].device_kind, "device_count": jax.device_count(),
          "cpu_count": os.cpu_count(), "jax_version": jax.__version__, "jaxlib_version": jaxlib_version}


def bench_model(hooke: HookeConfig) -> Model:
  """The transformer of `hooke` on its tree depth."""
  return build_model(hooke.model_config("transformer"), hooke.depth)


def model_info(hooke: HookeConfig) -> dict:
  """The timed model: its config, depth, parameter count, dtype and the stage it is trained with."""
  config = hooke.model_config("transformer")
  return {"label": config.label(), **dataclasses.asdict(config), "depth": hooke.depth,
          "responses": token_tree.n_leaves(hooke.depth), "parameter_count": bench_model(hooke).parameter_count(),
          "stage": dataclasses.asdict(hooke.transformer_plan.joint)}


def time_training(model: Model, stage: StageConfig, runs: int, steps: int, *, warmup_steps: int = 20,
                  seed: int = 0) -> dict:
  """Steps per second of `runs` vmapped runs of `stage`, compilation excluded.

  A warm-up call of `warmup_steps` steps compiles (the step budget and segment bounds are traced, so the timed
  call reuses that program); a second call of `steps` steps is timed, from the start of train_batch until its
  final losses are on the host.

  Returns:
    A dict with gradient, runs, steps, seconds, steps_per_second (steps / seconds: each run advances this many
    steps per second), run_steps_per_second (runs * steps / seconds: total throughput), warmup_seconds
    (compilation included) and the runs' mean final training loss in nats per token.
  """
  keys = jax.random.split(jax.random.PRNGKey(seed), runs)
  params = training.init_params(model, keys)
  leaf_weights = np.random.default_rng(seed).random(token_tree.n_leaves(model.depth)) + 0.01
  weights = np.tile(leaf_weights, (runs, 1))

  def call(n_steps):
    start = time.perf_counter()
    _, losses = training.train_batch(model, stage, params, weights, np.full(runs, n_steps), keys=keys)
    return time.perf_counter() - start, losses

  warmup_seconds, _ = call(warmup_steps)
  seconds, losses = call(steps)
  return {"gradient": stage.gradient, "runs": runs, "steps": steps, "seconds": _round(seconds),
          "steps_per_second": _round(steps / seconds), "run_steps_per_second": _round(runs * steps / seconds),
          "warmup_steps": warmup_steps, "warmup_seconds": _round(warmup_seconds),
          "final_loss_nats_per_token": float(np.mean(losses))}


def training_throughput(config: BenchConfig, log: Callable[[str], None] | None = None) -> list[dict]:
  """time_training for every gradient mode and batch size of `config`, with the transformer stage of its hooke."""
  model = bench_model(config.hooke)
  rows = []
  for gradient in config.gradients:
    stage = dataclasses.replace(config.hooke.transformer_plan.joint, gradient=gradient)
    for runs in config.batches:
      row = time_training(model, stage, runs, config.steps, warmup_steps=config.warmup_steps, seed=config.seed)
      if log is not None:
        log(f"bench: {gradient} gradient, {runs} runs: {row['steps_per_second']:g} steps/s, "
            f"{row['run_steps_per_second']:g} run-steps/s")
      rows.append(row)
  return rows


def hooke_seconds(hooke: HookeConfig | None = None) -> float:
  """Wall time in seconds of a fresh `simulate hooke` run with `hooke` (default HookeConfig()), compilation included.

  Times what the command computes (toy_models.hooke.run over all units, then hooke_summary.summarize), without its
  progress bar, in a temporary directory that is deleted afterwards.
  """
  from experiments import hooke as hooke_experiment
  from experiments import runner

  config = hooke or hooke_experiment.EXPERIMENT.config("default")
  with tempfile.TemporaryDirectory(prefix="elasticity-bench-") as directory:
    start = time.perf_counter()
    runner.run(hooke_experiment.EXPERIMENT, config, pathlib.Path(directory) / "hooke", show_progress=False)
    return _round(time.perf_counter() - start)


def run_benchmark(config: BenchConfig, log: Callable[[str], None] | None = None) -> dict:
  """Every measurement of `config`, with the machine and the model described.

  Args:
    config: what to measure.
    log: optional callable(line) told about each measurement as it finishes.

  Returns:
    {'device': device_info(), 'model': model_info(...), 'training': [time_training rows],
    'simulate_hooke_seconds': seconds (only when config.time_hooke; timed before the training rows, so that its
    compilation is its own)}.
  """
  result = {"device": device_info(), "model": model_info(config.hooke)}
  if config.time_hooke:  # first, so that nothing the training measurements compiled is reused by it
    if log is not None:
      log("bench: timing simulate hooke (fresh, in a temporary directory)")
    seconds = hooke_seconds(config.hooke)
    if log is not None:
      log(f"bench: simulate hooke took {seconds:g} s")
  result["training"] = training_throughput(config, log)
  if config.time_hooke:
    result["simulate_hooke_seconds"] = seconds
  return result
