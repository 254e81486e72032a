"""Sweeps over several processes (hosts): each process trains its share of the runs axis, results are all-gathered.

Start every process with jax.distributed.initialize(coordinator_address, num_processes, process_id) (JAX's own
machinery; on CPUs its collectives go through gloo), give every process the same full inputs, and call
train_batch (or map_runs with any per-run function) here: process p computes the block of runs process_block(p)
on its own devices, and JAX's process_allgather hands every process all runs' results, in run order. In a single
process these functions are the plain ones.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import numpy as np
from jax.experimental import multihost_utils

from toy_models import training
from toy_models.models import Model
from toy_models.stage_config import StageConfig


def process_block(runs: int, process_index: int | None = None, process_count: int | None = None) -> slice:
  """The contiguous block of the runs axis that process `process_index` (default: this one) computes.

  Every process gets ceil(runs / process_count) rows (the last ones may get fewer, or none).
  """
  index = jax.process_index() if process_index is None else process_index
  count = jax.process_count() if process_count is None else process_count
  if not 0 <= index < count:
    raise ValueError(f"process_index={index} is not allowed; allowed: 0..{count - 1}")
  per = math.ceil(runs / count)
  return slice(min(index * per, runs), min((index + 1) * per, runs))


def _host(tree):
  return jax.tree_util.tree_map(np.asarray, jax.device_get(tree))


def map_runs(fn: Callable, *trees):
  """fn applied to this process's block of runs of `trees`; every process receives all runs' outputs, in order.

  Args:
    fn: callable(*trees) -> pytree of arrays with a leading runs axis; each run's output must depend on that run's
      inputs only (as in training.train_batch and metrics.leaf_log2_probs).
    *trees: pytrees of arrays with the same leading runs axis (jax arrays, numpy arrays or typed PRNG key data).

  Returns:
    fn's outputs for every run (numpy arrays, leading axis = runs), on every process; fn(*trees) itself when
    there is one process. Each process calls fn on the same number of rows, so all processes compile the same
    programs: blocks short of ceil(runs / processes) rows are padded with copies of their last row (or of run 0),
    computed and dropped.

  References:
    JAX documentation, "Multi-host and multi-process environments" (jax.distributed.initialize,
    jax.experimental.multihost_utils.process_allgather).
  """
  if jax.process_count() == 1:
    return fn(*trees)
  trees = _host(trees)
  leaves = jax.tree_util.tree_leaves(trees)
  runs = int(leaves[0].shape[0])
  bad = [np.shape(leaf) for leaf in leaves if np.shape(leaf)[:1] != (runs,)]
  if bad or runs == 0:
    raise ValueError(f"map_runs got leading axes {sorted({np.shape(x)[:1] for x in leaves})}; allowed: one run "
                     "count >= 1 shared by every array")
  block = process_block(runs)
  per = math.ceil(runs / jax.process_count())
  rows = np.arange(block.start, block.stop)
  rows = np.concatenate([rows, np.full(per - rows.size, rows[-1] if rows.size else 0)])
  local = fn(*jax.tree_util.tree_map(lambda x: x[rows], trees))
  gathered = multihost_utils.process_allgather(_host(local), tiled=True)
  # Process p's rows are p * per .. p * per + per - 1 of the gathered arrays; its own runs come first.
  owners = [process_block(runs, p) for p in range(jax.process_count())]
  order = np.concatenate([p * per + np.arange(owner.stop - owner.start) for p, owner in enumerate(owners)])
  return jax.tree_util.tree_map(lambda x: np.asarray(x)[order], gathered)


def train_batch(model: Model, stage: StageConfig, params, weights, steps, *, keys, learning_rates=None,
                rejected_weights=None, reference_log_probs=None, **kwargs) -> tuple[dict, np.ndarray]:
  """training.train_batch with the runs shared among the processes; every process returns every run's results.

  Args:
    model, stage, params, weights, steps, keys, learning_rates, rejected_weights, reference_log_probs: as in
      training.train_batch, for all runs (the same on every process).
    **kwargs: further keyword arguments of training.train_batch (progress, label, dtype, padding_run_steps).

  Returns:
    (params, losses) of all runs as numpy arrays, equal to training.train_batch of all runs in one process up to
    floating-point reassociation (each run's arithmetic does not depend on the others).

  References:
    JAX documentation, "Multi-host and multi-process environments".
  """
  per_run = {"learning_rates": learning_rates, "rejected_weights": rejected_weights,
             "reference_log_probs": reference_log_probs}
  per_run = {name: value for name, value in per_run.items() if value is not None}

  def train(block_params, block_weights, block_steps, block_keys, block_extra):
    return training.train_batch(model, stage, block_params, block_weights, block_steps, keys=block_keys,
                                **block_extra, **kwargs)

  return map_runs(train, params, np.asarray(weights), np.asarray(steps), training.host_keys(keys), per_run)
