"""A small causal transformer (pre-LayerNorm, learned positions, GELU MLP) as a pure-JAX pytree model."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from toy_models.model_config import VOCAB_IN, VOCAB_OUT, ModelConfig


def _norm(width: int, dtype) -> dict:
  return {"scale": jnp.ones(width, dtype), "bias": jnp.zeros(width, dtype)}


def init(key: jax.Array, config: ModelConfig, max_len: int, dtype) -> dict:
  """Parameters of a transformer with `config`'s width, layers, heads and MLP ratio, for sequences <= max_len.

  All random weights are slices of one normal draw: one random-number kernel to compile per model instead of one
  per weight matrix (compiling each float64 draw costs a fraction of a second on a CPU).

  References:
    Vaswani et al., "Attention is all you need", NeurIPS 2017; Radford et al., GPT-2 (pre-LayerNorm), 2019.
  """
  width, hidden, scale = config.width, config.mlp_ratio * config.width, config.init_scale
  # Output projections are scaled down with depth so that the residual stream starts near the embeddings.
  out_scale = scale / (2 * config.layers) ** 0.5
  block_shapes = (((width, 3 * width), scale), ((width, width), out_scale), ((width, hidden), scale),
                  ((hidden, width), out_scale))
  shapes = [((VOCAB_IN, width), scale), ((max_len, width), scale), ((width, VOCAB_OUT), scale)]
  shapes += [shape for _ in range(config.layers) for shape in block_shapes]
  offsets = np.cumsum([0] + [rows * cols for (rows, cols), _ in shapes])
  draw = jax.random.normal(key, (int(offsets[-1]),), dtype=dtype)
  weights = iter(factor * draw[start:stop].reshape(shape)
                 for (shape, factor), start, stop in zip(shapes, offsets[:-1], offsets[1:], strict=True))

  def dense(fan_out: int) -> dict:
    return {"w": next(weights), "b": jnp.zeros(fan_out, dtype)}

  embed, position, unembed = next(weights), next(weights), dense(VOCAB_OUT)
  blocks = [{"attn_norm": _norm(width, dtype), "qkv": dense(3 * width), "attn_out": dense(width),
             "mlp_norm": _norm(width, dtype), "mlp_in": dense(hidden), "mlp_out": dense(width)}
            for _ in range(config.layers)]
  return {"embed": embed, "position": position, "blocks": blocks, "final_norm": _norm(width, dtype),
          "unembed": unembed}


def _standardise_and_inverse_std(x: jax.Array) -> tuple[jax.Array, jax.Array]:
  centred = x - x.mean(axis=-1, keepdims=True)
  inverse_std = jax.lax.rsqrt((centred * centred).mean(axis=-1, keepdims=True) + 1e-6)
  return centred * inverse_std, inverse_std


@jax.custom_jvp
def standardise(x: jax.Array) -> jax.Array:
  """(x - mean) / sqrt(variance + 1e-6) over the last axis, with its derivative in closed form.

  The derivative, dy = (dx - mean(dx) - y mean(y dx)) / std, is what autodiff of the formula gives, in fewer
  operations: XLA's CPU backend ran the default transformer's training step about 5% faster with it. It is a JVP
  rule, so forward mode and second derivatives (Hessian-vector products) work as they do without it.

  References:
    Ba, Kiros and Hinton, "Layer Normalization", 2016.
  """
  return _standardise_and_inverse_std(x)[0]


@standardise.defjvp
def _standardise_jvp(primals, tangents):
  (x,), (dx,) = primals, tangents
  y, inverse_std = _standardise_and_inverse_std(x)
  return y, inverse_std * (dx - dx.mean(axis=-1, keepdims=True) - y * (y * dx).mean(axis=-1, keepdims=True))


def _layer_norm(params: dict, x: jax.Array) -> jax.Array:
  return standardise(x) * _lift(params["scale"], x) + _lift(params["bias"], x)


def _lift(vector: jax.Array, x: jax.Array) -> jax.Array:
  """`vector` (W,) with leading unit axes to match x's rank (explicit broadcasting, no rank promotion)."""
  return vector.reshape((1,) * (x.ndim - 1) + vector.shape)


def _shift_like(shift: jax.Array, x: jax.Array) -> jax.Array:
  """`shift` (T, W) or (B, T, W) as an array of x's shape (B, T, W); one-line ValueError for any other shape."""
  if shift.shape not in (x.shape, x.shape[1:]):
    raise ValueError(f"embedding_shift has shape {shift.shape}; allowed: {x.shape[1:]} or {x.shape}")
  return jnp.broadcast_to(shift.reshape((1,) * (x.ndim - shift.ndim) + shift.shape), x.shape).astype(x.dtype)


def _apply(params: dict, x: jax.Array) -> jax.Array:
  """x @ w + b over the last axis of x, as one 2-D matrix product over every leading position.

  Flattening the leading axes first is the same arithmetic, but XLA's CPU backend differentiates a 2-D product
  into 2-D products: the width-64 gradient took 16 ms instead of 24 ms (float32, 2-core CPU, 2026-11-27).
  """
  out = (x.reshape(-1, x.shape[-1]) @ params["w"]).reshape(x.shape[:-1] + params["w"].shape[-1:])
  return out + _lift(params["b"], out)


def _attention(params: dict, x: jax.Array, heads: int) -> jax.Array:
  batch, steps, width = x.shape
  q, k, v = jnp.split(_apply(params["qkv"], x), 3, axis=-1)
  shape = (batch, steps, heads, width // heads)
  q, k, v = (t.reshape(shape) for t in (q, k, v))
  scores = jnp.einsum("bqhd,bkhd->bhqk", q, k) / jnp.sqrt(jnp.asarray(width // heads, x.dtype))
  causal = jnp.tril(jnp.ones((steps, steps), dtype=bool))
  scores = jnp.where(causal[None, None], scores, jnp.finfo(x.dtype).min)
  mixed = jnp.einsum("bhqk,bkhd->bqhd", jax.nn.softmax(scores, axis=-1), v).reshape(batch, steps, width)
  return _apply(params["attn_out"], mixed)


def logits(params: dict, inputs: jax.Array, heads: int, embedding_shift: jax.Array | None = None) -> jax.Array:
  """Next-token logits (B, T, 3) for inputs (B, T) of symbols 0, 1, 2 (begin).

  Args:
    params: the parameters (from init).
    inputs: input symbols (B, T).
    heads: attention heads.
    embedding_shift: optional (T, width) or (B, T, width) array added to the input embeddings (token plus
      position) before the first block, e.g. Vaccine's perturbation of the representation; a (T, width) shift is
      shared by every sequence of the batch. None (the default) computes exactly what it did without the argument.

  Returns:
    Next-token logits (B, T, 3).

  References:
    Huang et al., "Vaccine: Perturbation-aware Alignment for Large Language Models against Harmful Fine-tuning",
    NeurIPS 2024 (embedding perturbations).
  """
  x = params["embed"][inputs] + params["position"][None, : inputs.shape[1]]
  if embedding_shift is not None:
    x = x + _shift_like(embedding_shift, x)
  for block in params["blocks"]:
    x = x + _attention(block, _layer_norm(block["attn_norm"], x), heads)
    hidden = jax.nn.gelu(_apply(block["mlp_in"], _layer_norm(block["mlp_norm"], x)))
    x = x + _apply(block["mlp_out"], hidden)
  return _apply(params["unembed"], _layer_norm(params["final_norm"], x))
