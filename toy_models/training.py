"""Training toy models: one jitted, vmapped loop that trains a batch of runs at once, sharded over devices.

Runs in a batch share the model and the stage's static choices (objective, optimiser, schedule, how gradients
are formed) and differ in arrays: initial parameters, leaf weights of the data (for DPO also of the rejected
responses, and the reference model's log-probabilities), learning rate, number of steps, random key. A run with
fewer steps than another stops updating when its own budget is spent.
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


@functools.lru_cache(maxsize=4)
def _optimizer_init(optimizer: str):
  """The optimiser's state initialiser for a batch of runs, compiled (run op by op it compiles every leaf's zeros)."""
  return jax.jit(jax.vmap(_transform(optimizer).init))


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


def _objective(model: Model, stage: StageConfig, params, tokens, data):
  """The stage's exact objective over every leaf: SFT data = weights; DPO data = (chosen, rejected, reference)."""
  if stage.objective == "dpo":
    chosen, rejected, reference = data
    return likelihood.dpo_loss(model, params, tokens, chosen, rejected, reference, stage.dpo_beta)
  return _loss(model, params, tokens, data)


def _sft_gradient(model: Model, stage: StageConfig, tokens, params, step, weights, key):
  if stage.gradient == "minibatch":
    probs = weights / weights.sum()
    picks = jax.random.choice(jax.random.fold_in(key, step), tokens.shape[0], (stage.batch_size,), p=probs)
    batch_tokens, batch_weights = tokens[picks], jnp.ones(stage.batch_size, probs.dtype)
  else:
    batch_tokens, batch_weights = tokens, weights
  return jax.grad(functools.partial(_loss, model))(params, batch_tokens, batch_weights)


def _dpo_gradient(model: Model, stage: StageConfig, tokens, params, step, data, key):
  """Expected: the exact gradient over all pairs; minibatch: batch_size pairs, chosen and rejected drawn apart."""
  if stage.gradient == "expected":
    return jax.grad(functools.partial(_objective, model, stage))(params, tokens, data)
  chosen, rejected, reference = data
  chosen_key, rejected_key = jax.random.split(jax.random.fold_in(key, step))
  shape = (stage.batch_size,)
  chosen_picks = jax.random.choice(chosen_key, tokens.shape[0], shape, p=chosen / chosen.sum())
  rejected_picks = jax.random.choice(rejected_key, tokens.shape[0], shape, p=rejected / rejected.sum())
  loss = functools.partial(likelihood.dpo_pair_loss, model, beta=stage.dpo_beta)
  return jax.grad(loss)(params, tokens[chosen_picks], tokens[rejected_picks], reference[chosen_picks],
                        reference[rejected_picks])


def _one_step(model: Model, stage: StageConfig, tokens, carry, step, data, peak, total, key):
  params, opt_state = carry
  gradient = _dpo_gradient if stage.objective == "dpo" else _sft_gradient
  grads = gradient(model, stage, tokens, params, step, data, key)
  updates, new_state = _transform(stage.optimizer).update(grads, opt_state, params)
  rate = learning_rate(stage, peak, step, total)
  new_params = jax.tree_util.tree_map(lambda p, u: p - rate.astype(p.dtype) * u, params, updates)
  return new_params, new_state


def _segment(model, stage, tokens, params, opt_state, data, peak, total, key, start, stop):
  """Steps start..min(stop, total)-1 of one run."""
  body = functools.partial(_one_step, model, stage, tokens)

  def loop(step, carry):
    return body(carry, step, data, peak, total, key)

  end = jnp.minimum(stop, total)
  return jax.lax.fori_loop(start, jnp.maximum(end, start), loop, (params, opt_state))


@functools.lru_cache(maxsize=64)
def _batched_segment(model: Model, static: tuple):
  stage = StageConfig(**dict(static))
  fn = functools.partial(_segment, model, stage)
  return jax.jit(jax.vmap(fn, in_axes=(None, 0, 0, 0, 0, 0, 0, None, None)))


@functools.lru_cache(maxsize=64)
def _batched_objective(model: Model, static: tuple):
  """Each run's exact objective over every leaf (evaluated once, after the last segment)."""
  stage = StageConfig(**dict(static))
  return jax.jit(jax.vmap(functools.partial(_objective, model, stage), in_axes=(0, None, 0)))


def _static_fields(stage: StageConfig) -> tuple:
  """The fields of a stage that change the compiled program (budgets and learning rates are traced).

  As (name, value) pairs; dpo_beta only for DPO stages, so SFT stages differing in it share one program.
  """
  names = ("optimizer", "schedule", "gradient", "batch_size", "warmup_fraction", "objective")
  names += ("dpo_beta",) if stage.objective == "dpo" else ()
  return tuple((name, getattr(stage, name)) for name in names)


def _leaf_array(name: str, values, runs: int | None, n_leaves: int, *, counts: bool) -> np.ndarray:
  """`values` as float64 of shape (runs, n_leaves), finite (and >= 0 if `counts`); one-line ValueError if not."""
  values = np.asarray(values, dtype=np.float64)
  if values.ndim != 2 or values.shape[1] != n_leaves or (runs is not None and values.shape[0] != runs):
    raise ValueError(f"{name} have shape {values.shape}; allowed: ({'runs' if runs is None else runs}, {n_leaves})")
  good = np.isfinite(values) & (values >= 0) if counts else np.isfinite(values)
  if not np.all(good):
    allowed = "finite counts >= 0" if counts else "finite numbers"
    raise ValueError(f"{name} contain {values[~good][0]!r}; allowed: {allowed}")
  return values


@functools.lru_cache(maxsize=32)
def _compiled_init(model: Model):
  """The batched initialiser of `model`, compiled once per model (models are frozen dataclasses: they key the cache).

  Run op by op, the vmapped initialiser compiles every random draw and every stacked leaf separately, which cost
  seconds per model on a CPU and dominated small runs.
  """
  return jax.jit(jax.vmap(model.init))


def init_params(model: Model, keys: jax.Array) -> dict:
  """Initial parameters of a batch of runs, one per key (leading axis = runs)."""
  return _compiled_init(model)(keys)


def train_batch(model: Model, stage: StageConfig, params, weights, steps, *, keys, learning_rates=None,
                rejected_weights=None, reference_log_probs=None, progress=None,
                label: str = "") -> tuple[dict, np.ndarray]:
  """Trains a batch of runs for their own numbers of steps; returns final params and final losses.

  Args:
    model: the model (built by toy_models.models.build_model).
    stage: the stage's objective, optimiser, schedule and gradient choice; its learning_rate is the default peak.
    params: parameters with a leading run axis (e.g. from init_params or a checkpoint).
    weights: leaf weights of each run's training data (counts of each response), shape (runs, n_leaves); for
      stage.objective 'dpo' the weights of the chosen responses.
    steps: steps of each run, shape (runs,) (int).
    keys: one PRNG key per run (minibatch sampling).
    learning_rates: peak learning rate per run, shape (runs,); default stage.learning_rate for all.
    rejected_weights: 'dpo' only (required there): leaf weights of the rejected responses, (runs, n_leaves).
    reference_log_probs: 'dpo' only (required there): log-probabilities in nats of every leaf under each run's
      reference model (e.g. metrics.leaf_log2_probs * ln 2 of the starting checkpoint), (runs, n_leaves).
    progress: optional callable(done_steps, total_steps, label) called between segments.
    label: what progress shows.

  Returns:
    (params, losses): trained parameters (leading run axis) and each run's final training loss, float64 numpy
    of shape (runs,): for 'sft' in nats per token, for 'dpo' the expected DPO loss in nats per pair
    (likelihood.dpo_loss; ln 2 at the reference).

  References:
    Kingma & Ba, "Adam", ICLR 2015; Loshchilov & Hutter, "SGDR" (cosine schedule), ICLR 2017; Rafailov et al.,
    "Direct Preference Optimization: Your Language Model is Secretly a Reward Model", NeurIPS 2023.
  """
  n_leaves = token_tree.n_leaves(model.depth)
  weights = _leaf_array("weights", weights, None, n_leaves, counts=True)
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
  data = _objective_data(stage, weights, rejected_weights, reference_log_probs, steps)
  peaks = np.full(runs, stage.learning_rate) if learning_rates is None else np.asarray(learning_rates, np.float64)
  if peaks.shape != (runs,) or not np.all(np.isfinite(peaks)) or np.any(peaks <= 0):
    raise ValueError(f"learning_rates={peaks.tolist()} is not allowed; allowed: {runs} finite numbers > 0")
  tokens = jnp.asarray(token_tree.leaf_tokens(model.depth))
  opt_state = _optimizer_init(stage.optimizer)(params)
  total = int(steps.max()) if runs else 0
  bounds = np.unique(np.linspace(0, total, min(SEGMENTS, max(total, 1)) + 1).astype(np.int64))
  args = devices.shard_runs((params, opt_state, jax.tree_util.tree_map(jnp.asarray, data), jnp.asarray(peaks),
                             jnp.asarray(steps), keys))
  params, opt_state, data_d, peaks_d, steps_d, keys_d = args
  fn = _batched_segment(model, _static_fields(stage))
  for start, stop in zip(bounds[:-1], bounds[1:], strict=True) if total else ():
    params, opt_state = fn(tokens, params, opt_state, data_d, peaks_d, steps_d, keys_d, jnp.asarray(start),
                           jnp.asarray(stop))
    if progress is not None:
      jax.block_until_ready(params)
      progress(int(stop), total, label)
  losses = _batched_objective(model, _static_fields(stage))(params, tokens, data_d)
  return params, np.asarray(losses, dtype=np.float64)


def _objective_data(stage: StageConfig, weights: np.ndarray, rejected_weights, reference_log_probs, steps: np.ndarray):
  """The per-run data of the stage's objective: weights for 'sft'; (chosen, rejected, reference) for 'dpo'."""
  given = [name for name, value in (("rejected_weights", rejected_weights),
                                    ("reference_log_probs", reference_log_probs)) if value is not None]
  if stage.objective != "dpo":
    if given:
      raise ValueError(f"{given[0]} given for objective={stage.objective!r}; allowed: only with objective='dpo'")
    return weights
  missing = [name for name in ("rejected_weights", "reference_log_probs") if name not in given]
  if missing:
    raise ValueError(f"{missing[0]} is missing; allowed: an array (runs, n_leaves) with objective='dpo'")
  runs, n_leaves = weights.shape
  rejected = _leaf_array("rejected_weights", rejected_weights, runs, n_leaves, counts=True)
  reference = _leaf_array("reference_log_probs", reference_log_probs, runs, n_leaves, counts=False)
  bad = np.flatnonzero(~(rejected.sum(axis=1) > 0) & (steps > 0))
  if bad.size:
    raise ValueError(f"run {int(bad[0])} has no rejected responses (all rejected_weights 0) but "
                     f"{int(steps[bad[0]])} steps; allowed: some positive weight, or 0 steps")
  return weights, rejected, reference
