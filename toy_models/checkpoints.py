"""Saving and loading model parameters (pytrees with a leading run axis) as .npz files, atomically."""

from __future__ import annotations

import os
import pathlib
import tempfile

import jax
import jax.numpy as jnp
import numpy as np


def atomic_write(path: str | os.PathLike, write) -> None:
  """Writes a file through write(binary handle) atomically: a crash leaves the old file or none, never half of one.

  The parent folder is created; the file gets the permissions of an ordinary file (umask applied).
  """
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
  try:
    with os.fdopen(fd, "wb") as handle:
      write(handle)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; saved results are meant to be shared.
    os.replace(tmp, path)
  except BaseException:
    pathlib.Path(tmp).unlink(missing_ok=True)
    raise


def _flat(params) -> dict[str, np.ndarray]:
  leaves = jax.tree_util.tree_flatten_with_path(params)[0]
  return {jax.tree_util.keystr(path): np.asarray(leaf) for path, leaf in leaves}


def save_params(path: str | os.PathLike, params) -> None:
  """Writes every parameter array of `params` to `path` (.npz), keyed by its pytree path."""
  atomic_write(path, lambda handle: np.savez_compressed(handle, **_flat(params)))


def load_params(path: str | os.PathLike, like):
  """Reads parameters saved by save_params into the structure of `like` (a pytree of the same shapes)."""
  with np.load(path) as data:
    saved = {name: data[name] for name in data.files}
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
