"""Builds a toy model from its config: init(key) -> params and logits(params, inputs), plus a parameter count."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import jax
import numpy as np

from toy_models import ngram, tabular, transformer
from toy_models.model_config import ModelConfig


@dataclasses.dataclass(frozen=True)
class Model:
  """A toy language model on the token tree of one depth (hashable: usable as a static jit argument)."""

  config: ModelConfig
  depth: int
  init: Callable[[jax.Array], dict]  # key -> params pytree.
  logits: Callable[[dict, jax.Array], jax.Array]  # (params, inputs (B, T)) -> next-token logits (B, T, 3).

  @property
  def dtype(self):
    """The parameters' float type (ModelConfig.dtype), as a numpy dtype."""
    return np.dtype(self.config.dtype)

  def parameter_count(self) -> int:
    """Number of scalar parameters."""
    shapes = jax.eval_shape(self.init, jax.ShapeDtypeStruct((2,), np.uint32))  # a raw key, traced: nothing runs
    return int(sum(np.prod(leaf.shape) for leaf in jax.tree_util.tree_leaves(shapes)))


def float_dtype(name, what: str = "this computation") -> np.dtype:
  """The float type `name` ('float32' or 'float64', or a dtype) as a numpy dtype, checked against JAX's settings.

  One-line ValueError for another name, and for float64 while JAX runs without 64-bit floats (jax_enable_x64 off:
  JAX would silently compute in float32). Library code never turns x64 on itself; entry points do.

  Args:
    name: the type's name or a numpy dtype.
    what: what needs it, for the error message.

  Returns:
    numpy.float32 or numpy.float64 as a numpy dtype.

  References:
    JAX documentation, "Sharp bits: double (64-bit) precision" (jax_enable_x64).
  """
  try:
    dtype = None if name is None else np.dtype(name)  # np.dtype(None) would be float64
  except (TypeError, ValueError):
    dtype = None
  if dtype is None or dtype.name not in ("float32", "float64"):
    raise ValueError(f"dtype {name!r} is not allowed; allowed: float32, float64")
  if dtype == np.float64 and jax.dtypes.canonicalize_dtype(np.float64) != np.float64:
    raise ValueError(f"{what} needs float64 but jax_enable_x64 is off; allowed: call "
                     "jax.config.update('jax_enable_x64', True) at start-up, or float32")
  return dtype


@functools.lru_cache(maxsize=64)
def build_model(config: ModelConfig, depth: int) -> Model:
  """The model of `config` for responses of the token tree of `depth` (at most `depth` tokens).

  Cached, so that the same (config, depth) gives the same Model object and jit reuses its compilation.
  """
  if not isinstance(config, ModelConfig):
    raise ValueError(f"model config must be a ModelConfig, got {type(config).__name__}")
  dtype = np.dtype(config.dtype)
  if config.kind == "tabular":
    if depth > 22:
      raise ValueError(f"depth={depth} is too deep for the tabular model; allowed: <= 22 (2**depth rows)")
    return Model(config, depth, lambda key: tabular.init(key, depth, config.init_scale, dtype), tabular.logits)
  if config.kind == "ngram":
    return Model(config, depth, lambda key: ngram.init(key, config.context, config.init_scale, dtype),
                 functools.partial(ngram.logits, context=config.context))
  return Model(config, depth, lambda key: transformer.init(key, config, depth, dtype),
               functools.partial(transformer.logits, heads=config.heads))
