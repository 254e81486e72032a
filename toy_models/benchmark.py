"""Training throughput of the default transformer (one run and vmapped batches), and the default hooke's time."""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time

import jax
import numpy as np

from theory import token_tree
from toy_models import training
from toy_models.hooke_config import HookeConfig
from toy_models.models import build_model


@dataclasses.dataclass(frozen=True, kw_only=True)
class BenchConfig:
  """What `elasticity bench` measures."""

  steps: int = 200  # timed steps per measurement (after one untimed warm-up call that compiles).
  batches: tuple[int, ...] = (1, 8, 32)  # numbers of vmapped runs.
  gradients: tuple[str, ...] = ("minibatch", "expected")  # how each step's gradient is formed.
  hooke: bool = True  # also time the default `simulate hooke` (fresh, in a temporary directory).
  seed: int = 0

  def __post_init__(self):
    if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
      raise ValueError(f"steps={self.steps!r} is not allowed; allowed: an integer >= 1")
    if not self.batches or any(isinstance(b, bool) or not isinstance(b, int) or b < 1 for b in self.batches):
      raise ValueError(f"batches={list(self.batches)} is not allowed; allowed: one or more integers >= 1")
    bad = [g for g in self.gradients if g not in ("minibatch", "expected")]
    if bad or not self.gradients:
      raise ValueError(f"gradients={list(self.gradients)} is not allowed; allowed: minibatch, expected")


def training_throughput(config: BenchConfig, hooke: HookeConfig | None = None) -> list[dict]:
  """Steps per second of the default transformer's joint stage, for each batch size and gradient mode.

  Compilation is excluded: each measurement first trains for `steps` steps once (compiling), then times a second
  identical call. run_steps_per_second = runs * steps / seconds.
  """
  hooke = hooke or HookeConfig()
  model = build_model(hooke.model_config("transformer"), hooke.depth)
  base = hooke.transformer_plan.joint
  weights = np.random.default_rng(config.seed).random(token_tree.n_leaves(hooke.depth))
  out = []
  for gradient in config.gradients:
    stage = dataclasses.replace(base, gradient=gradient)
    for runs in config.batches:
      keys = jax.random.split(jax.random.PRNGKey(config.seed), runs)
      params = training.init_params(model, keys)
      args = (model, stage, params, np.tile(weights, (runs, 1)), np.full(runs, config.steps))
      training.train_batch(*args, keys=keys)
      start = time.perf_counter()
      _, losses = training.train_batch(*args, keys=keys)
      seconds = time.perf_counter() - start
      out.append({"gradient": gradient, "runs": runs, "steps": config.steps, "seconds": round(seconds, 4),
                  "steps_per_second": round(config.steps / seconds, 2),
                  "run_steps_per_second": round(runs * config.steps / seconds, 2),
                  "final_loss_nats_per_token": float(np.mean(losses))})
  return out


def hooke_seconds(hooke: HookeConfig | None = None) -> float:
  """Wall time of a fresh `simulate hooke` run with `hooke` (default config), compilation included."""
  from toy_models import hooke as hooke_experiment

  with tempfile.TemporaryDirectory() as directory:
    start = time.perf_counter()
    hooke_experiment.run(hooke or HookeConfig(), directory)
    return round(time.perf_counter() - start, 1)


def run_benchmark(config: BenchConfig) -> dict:
  """Every measurement, with the machine and the model described."""
  hooke = HookeConfig()
  model = build_model(hooke.model_config("transformer"), hooke.depth)
  result = {
      "device": {"platform": jax.default_backend(), "devices": [str(d) for d in jax.devices()],
                 "device_count": jax.device_count(), "cpu_count": os.cpu_count()},
      "model": {**dataclasses.asdict(hooke.model_config("transformer")), "depth": hooke.depth,
                "parameter_count": model.parameter_count(), "stage": dataclasses.asdict(hooke.transformer_plan.joint)},
      "training": training_throughput(config, hooke),
  }
  if config.hooke:
    result["simulate_hooke_seconds"] = hooke_seconds(hooke)
  return result
