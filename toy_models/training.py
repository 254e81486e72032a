"""Training toy models: one jitted, vmapped loop that trains a batch of runs at once, sharded over devices.

Runs in a batch share the model and the stage's static choices (optimiser, schedule, how gradients are
formed) and differ in arrays: initial parameters, leaf weights of the data, learning rate, number of steps,
random key. A run with fewer steps than another stops updating when its own budget is spent.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from theory import token_tree
from toy_models import devices, likelihood
from toy_models.models import Model
from toy_models.stage_config import StageConfig

SEGMENTS = 20  # a batch is trained in up to this many jitted segments (progress updates in between).


def _transform(optimizer: str) -> optax.GradientTransformation:
  return optax.scale_by_adam() if optimizer == "adam" else optax.identity()


def learning_rate(stage: StageConfig, peak, step, total):
  """The learning rate at `step` of a stage of `total` steps (traced values allowed)."""
  step = jnp.asarray(step, jnp.float64)
  total = jnp.maximum(jnp.asarray(total, jnp.float64), 1.0)
  if stage.schedule == "constant":
    return peak * jnp.ones_like(step)
  if stage.schedule == "cosine":
    return peak * 0.5 * (1 + jnp.cos(jnp.pi * step / total))
  warm = jnp.maximum(stage.warmup_fraction * total, 1.0)
  decay = 0.5 * (1 + jnp.cos(jnp.pi * jnp.clip((step - warm) / jnp.maximum(total - warm, 1.0), 0, 1)))
  return peak * jnp.where(step < warm, (step + 1) / warm, decay)


def _loss(model: Model, params, tokens, weights):
  return likelihood.weighted_token_nll(model, params, tokens, weights)


def _one_step(model: Model, stage: StageConfig, tokens, carry, step, weights, peak, total, key):
  params, opt_state = carry
  if stage.gradient == "minibatch":
    probs = weights / weights.sum()
    picks = jax.random.choice(jax.random.fold_in(key, step), tokens.shape[0], (stage.batch_size,), p=probs)
    batch_tokens, batch_weights = tokens[picks], jnp.ones(stage.batch_size, probs.dtype)
  else:
    batch_tokens, batch_weights = tokens, weights
  grads = jax.grad(functools.partial(_loss, model))(params, batch_tokens, batch_weights)
  updates, new_state = _transform(stage.optimizer).update(grads, opt_state, params)
  rate = learning_rate(stage, peak, step, total)
  new_params = jax.tree_util.tree_map(lambda p, u: p - rate.astype(p.dtype) * u, params, updates)
  return new_params, new_state


def _segment(model, stage, tokens, params, opt_state, weights, peak, total, key, start, stop):
  """Steps start..min(stop, total)-1 of one run."""
  body = functools.partial(_one_step, model, stage, tokens)

  def loop(step, carry):
    return body(carry, step, weights, peak, total, key)

  end = jnp.minimum(stop, total)
  params, opt_state = jax.lax.fori_loop(start, jnp.maximum(end, start), loop, (params, opt_state))
  return params, opt_state, _loss(model, params, tokens, weights)


@functools.lru_cache(maxsize=64)
def _batched_segment(model: Model, static: tuple):
  optimizer, schedule, gradient, batch_size, warmup_fraction = static
  stage = StageConfig(optimizer=optimizer, schedule=schedule, gradient=gradient, batch_size=batch_size,
                      warmup_fraction=warmup_fraction)
  fn = functools.partial(_segment, model, stage)
  return jax.jit(jax.vmap(fn, in_axes=(None, 0, 0, 0, 0, 0, 0, None, None)))


def _static_fields(stage: StageConfig) -> tuple:
  """The fields of a stage that change the compiled program (budgets and learning rates are traced)."""
  return (stage.optimizer, stage.schedule, stage.gradient, stage.batch_size, stage.warmup_fraction)


def init_params(model: Model, keys: jax.Array) -> dict:
  """Initial parameters of a batch of runs, one per key (leading axis = runs)."""
  return jax.vmap(model.init)(keys)


def train_batch(model: Model, stage: StageConfig, params, weights, steps, *, keys, learning_rates=None,
                progress=None, label: str = "") -> tuple[dict, np.ndarray]:
  """Trains a batch of runs for their own numbers of steps; returns final params and final losses.

  Args:
    model: the model (built by toy_models.models.build_model).
    stage: the stage's optimiser, schedule and gradient choice; its learning_rate is the default peak.
    params: parameters with a leading run axis (e.g. from init_params or a checkpoint).
    weights: leaf weights of each run's training data (counts of each response), shape (runs, n_leaves).
    steps: steps of each run, shape (runs,) (int).
    keys: one PRNG key per run (minibatch sampling).
    learning_rates: peak learning rate per run, shape (runs,); default stage.learning_rate for all.
    progress: optional callable(done_steps, total_steps, label) called between segments.
    label: what progress shows.

  Returns:
    (params, losses): trained parameters (leading run axis) and each run's final training loss in nats per
    token, float64 numpy of shape (runs,).

  References:
    Kingma & Ba, "Adam", ICLR 2015; Loshchilov & Hutter, "SGDR" (cosine schedule), ICLR 2017.
  """
  weights = np.asarray(weights, dtype=np.float64)
  if weights.ndim != 2 or weights.shape[1] != token_tree.n_leaves(model.depth):
    raise ValueError(f"weights have shape {weights.shape}; allowed: (runs, {token_tree.n_leaves(model.depth)})")
  if not np.all(np.isfinite(weights)) or np.any(weights < 0):
    raise ValueError(f"weights contain {weights[~(np.isfinite(weights) & (weights >= 0))][0]!r}; "
                     "allowed: finite counts >= 0")
  runs = weights.shape[0]
  raw_steps = np.asarray(steps)
  if raw_steps.shape != (runs,) or np.any(raw_steps < 0) or np.any(raw_steps != np.round(raw_steps)):
    raise ValueError(f"steps={raw_steps.tolist()} is not allowed; allowed: {runs} integers >= 0")
  steps = raw_steps.astype(np.int64)
  if np.shape(keys)[:1] != (runs,):
    raise ValueError(f"keys have shape {np.shape(keys)}; allowed: one key per run ({runs})")
  bad = np.flatnonzero(~(weights.sum(axis=1) > 0) & (steps > 0))
  if bad.size:
    raise ValueError(f"run {int(bad[0])} has no training data (all leaf weights 0) but {int(steps[bad[0]])} steps; "
                     "allowed: some positive weight, or 0 steps")
  peaks = np.full(runs, stage.learning_rate) if learning_rates is None else np.asarray(learning_rates, np.float64)
  if peaks.shape != (runs,) or not np.all(np.isfinite(peaks)) or np.any(peaks <= 0):
    raise ValueError(f"learning_rates={peaks.tolist()} is not allowed; allowed: {runs} finite numbers > 0")
  tokens = jnp.asarray(token_tree.leaf_tokens(model.depth))
  opt_state = jax.vmap(_transform(stage.optimizer).init)(params)
  total = int(steps.max()) if runs else 0
  bounds = np.unique(np.linspace(0, total, min(SEGMENTS, max(total, 1)) + 1).astype(np.int64))
  args = devices.shard_runs((params, opt_state, jnp.asarray(weights), jnp.asarray(peaks),
                             jnp.asarray(steps), keys))
  params, opt_state, weights_d, peaks_d, steps_d, keys_d = args
  fn = _batched_segment(model, _static_fields(stage))
  losses = None
  if total == 0:
    losses = jax.vmap(functools.partial(_loss, model), in_axes=(0, None, 0))(params, tokens, weights_d)
  for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
    params, opt_state, losses = fn(tokens, params, opt_state, weights_d, peaks_d, steps_d, keys_d,
                                   jnp.asarray(start), jnp.asarray(stop))
    if progress is not None:
      jax.block_until_ready(losses)
      progress(int(stop), total, label)
  return params, np.asarray(losses, dtype=np.float64)
