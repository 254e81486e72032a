"""Sharding a batch of runs over every available device (CPU cores exposed as devices, GPUs, TPUs)."""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

RUNS_AXIS = "runs"


def run_sharding(n_runs: int) -> NamedSharding | None:
  """A sharding of the leading (runs) axis over the largest number of devices that divides n_runs.

  None when only one device would be used (the arrays then stay where they are).
  """
  available = jax.devices()
  count = max(d for d in range(1, len(available) + 1) if n_runs % d == 0) if n_runs else 1
  if count == 1:
    return None
  mesh = Mesh(np.asarray(available[:count]), (RUNS_AXIS,))
  return NamedSharding(mesh, PartitionSpec(RUNS_AXIS))


def shard_runs(tree):
  """Places every array of `tree` (leading axis = runs) sharded over devices along that axis.

  With one device, or a run count no device count above one divides, the tree is returned unchanged. The
  computation then follows the data: jit runs each device's share of the runs on that device.

  References:
    JAX documentation, "Distributed arrays and automatic parallelization" (jax.sharding).
  """
  leaves = jax.tree_util.tree_leaves(tree)
  if not leaves:
    return tree
  sharding = run_sharding(int(np.shape(leaves[0])[0]))
  if sharding is None:
    return tree
  return jax.tree_util.tree_map(lambda x: jax.device_put(x, sharding), tree)
