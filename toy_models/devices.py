"""Placing a batch of runs on the devices: sharded over every available one (CPU cores as devices, GPUs, TPUs)."""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

RUNS_AXIS = "runs"


def run_sharding(n_runs: int) -> NamedSharding | None:
  """A sharding of the leading (runs) axis over the largest number of this process's devices that divides n_runs.

  None when only one device would be used (the arrays then stay where they are). Only local devices are used: in
  a multi-process sweep (toy_models.distributed) each process trains its own runs on its own devices.
  """
  available = jax.local_devices()
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


def place_runs(tree):
  """Every array of `tree` (leading axis = runs) on the devices: sharded as shard_runs does, else on the default one.

  Host (numpy) arrays are transferred with device_put, which compiles no XLA program (jnp.asarray of a numpy array
  compiles one per shape in jax 0.10), and the arrays of one call all end up placed alike, so the first and later
  calls of a jitted function see the same layout and share its program.

  References:
    JAX documentation, "Distributed arrays and automatic parallelization" (jax.device_put with a sharding).
  """
  leaves = jax.tree_util.tree_leaves(tree)
  if not leaves:
    return tree
  return jax.device_put(tree, run_sharding(int(np.shape(leaves[0])[0])))
