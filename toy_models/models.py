"""Builds a toy model from its config: init(key) -> params and logits(params, inputs), plus a parameter count."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
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
    """The parameters' float type."""
    return jnp.float64 if self.config.dtype == "float64" else jnp.float32

  def parameter_count(self) -> int:
    """Number of scalar parameters."""
    shapes = jax.eval_shape(self.init, jax.random.PRNGKey(0))
    return int(sum(np.prod(leaf.shape) for leaf in jax.tree_util.tree_leaves(shapes)))


@functools.lru_cache(maxsize=64)
def build_model(config: ModelConfig, depth: int) -> Model:
  """The model of `config` for responses of the token tree of `depth` (at most `depth` tokens).

  Cached, so that the same (config, depth) gives the same Model object and jit reuses its compilation.
  """
  if not isinstance(config, ModelConfig):
    raise ValueError(f"model config must be a ModelConfig, got {type(config).__name__}")
  dtype = jnp.float64 if config.dtype == "float64" else jnp.float32
  if config.kind == "tabular":
    if depth > 22:
      raise ValueError(f"depth={depth} is too deep for the tabular model; allowed: <= 22 (2**depth rows)")
    return Model(config, depth, lambda key: tabular.init(key, depth, config.init_scale, dtype), tabular.logits)
  if config.kind == "ngram":
    return Model(config, depth, lambda key: ngram.init(key, config.context, config.init_scale, dtype),
                 functools.partial(ngram.logits, context=config.context))
  return Model(config, depth, lambda key: transformer.init(key, config, depth, dtype),
               functools.partial(transformer.logits, heads=config.heads))
