"""Saving and loading model parameters (pytrees with a leading run axis) as .npz files, atomically."""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np

from theory import records


def _flat(params) -> dict[str, np.ndarray]:
  leaves = jax.tree_util.tree_flatten_with_path(params)[0]
  return {jax.tree_util.keystr(path): np.asarray(leaf) for path, leaf in leaves}


def save_params(path: str | os.PathLike, params) -> None:
  """Writes every parameter array of `params` to `path` (.npz), keyed by its pytree path."""
  records.write_npz(path, **_flat(params))


def load_params(path: str | os.PathLike, like):
  """Reads parameters saved by save_params into the structure of `like` (a pytree of the same shapes)."""
  saved = records.read_npz(path)
  leaves, treedef = jax.tree_util.tree_flatten_with_path(like)
  missing = [jax.tree_util.keystr(p) for p, _ in leaves if jax.tree_util.keystr(p) not in saved]
  if missing:
    raise ValueError(f"checkpoint {path} lacks parameters {missing[:3]}; it was saved for another model")
  values = []
  for p, leaf in leaves:
    value = saved[jax.tree_util.keystr(p)]
    if value.shape != np.shape(leaf):
      raise ValueError(f"checkpoint {path}: parameter {jax.tree_util.keystr(p)} has shape {value.shape}, "
                       f"the model needs {np.shape(leaf)}")
    values.append(jnp.asarray(value, dtype=leaf.dtype))
  return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(like), values)
