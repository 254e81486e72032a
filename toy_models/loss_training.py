"""Training toy models on an arbitrary loss: one jitted, vmapped loop over a batch of runs, like training.py.

training.train_batch trains the two objectives of the toolkit (SFT, DPO). The defences of toy_models.defences
change the objective itself (KL anchors, constrained SFT, proximal terms, Booster, Vaccine), so this module trains
any loss_fn(params, data, key) -> scalar (nats): each run has its own data (a pytree with a leading run axis), peak
learning rate, step budget and PRNG key, and the step's key is jax.random.fold_in(run key, step), exactly the key
training.py draws its minibatch from. A loss that draws its minibatch as training.py does therefore reproduces
train_batch's parameters (tests/toy_models/test_loss_training.py checks it). A run stops updating when its own
budget is spent.

Compiling once: the compiled loop is cached per (loss_fn object, optimiser, schedule, reanchoring rule), so callers
reuse one loss_fn object (a module-level function or one built once) across calls; the run axis is padded to
training.run_bucket(...) with copies of the first run that take 0 steps.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from toy_models import compilation, devices, host_memory, models, run_chunks, training
from toy_models.models import Model
from toy_models.stage_config import OPTIMIZERS, SCHEDULES, StageConfig

MAX_STEPS = 1_000_000  # refuse budgets above this (a typo in a dataset size would run for days).


def _pad_rows(array: np.ndarray, size: int) -> np.ndarray:
  """`array` with copies of its first row appended along axis 0 up to `size` rows."""
  extra = size - array.shape[0]
  return array if extra <= 0 else np.concatenate([array, np.repeat(array[:1], extra, axis=0)])


def _host(tree):
  """`tree` with every leaf a numpy array (device arrays copied to the host; no program is compiled)."""
  return jax.tree_util.tree_map(np.asarray, jax.device_get(tree))


def _transform(optimizer: str) -> optax.GradientTransformation:
  """The optimiser's update rule, as train_batch builds it: Adam's scaled moments, or the gradient itself (SGD)."""
  return optax.scale_by_adam() if optimizer == "adam" else optax.identity()


def _one_step(loss_fn, transform, stage, reanchor, carry, step, data, peak, total, key):
  """One optimiser step of one run: (params, optimiser state, anchor, last loss) -> the same after the step."""
  params, opt_state, anchor, _ = carry
  step_key = jax.random.fold_in(key, step)
  if reanchor is None:
    loss, grads = jax.value_and_grad(loss_fn)(params, data, step_key)
  else:
    switch = reanchor(step)
    anchor = jax.tree_util.tree_map(lambda a, p: jnp.where(switch, p, a), anchor, params)
    loss, grads = jax.value_and_grad(loss_fn)(params, data, step_key, anchor, step)
  updates, new_state = transform.update(grads, opt_state, params)
  rate = training.learning_rate(stage, peak, step, total)
  new_params = jax.tree_util.tree_map(lambda p, u: p - rate.astype(p.dtype) * u, params, updates)
  return new_params, new_state, anchor, loss.astype(peak.dtype)


def _segment(loss_fn, transform, stage, reanchor, carry, data, peak, total, key, start, stop):
  """Steps start..min(stop, total)-1 of one run."""
  def body(step, state):
    return _one_step(loss_fn, transform, stage, reanchor, state, step, data, peak, total, key)

  end = jnp.minimum(stop, total)
  return jax.lax.fori_loop(start, jnp.maximum(end, start), body, carry)


@functools.lru_cache(maxsize=64)
def _compiled(loss_fn: Callable, optimizer: str, schedule: str, warmup_fraction: float, reanchor, options: tuple = ()):
  stage = StageConfig(optimizer=optimizer, schedule=schedule, warmup_fraction=warmup_fraction)
  transform = _transform(optimizer)
  fn = functools.partial(_segment, loss_fn, transform, stage, reanchor)
  return jax.jit(jax.vmap(fn, in_axes=(0, 0, 0, 0, 0, None, None)), compiler_options=dict(options) or None)


def _leading(name: str, tree, runs: int) -> None:
  shapes = {np.shape(leaf)[:1] for leaf in jax.tree_util.tree_leaves(tree)}
  if shapes and shapes != {(runs,)}:
    raise ValueError(f"{name} have leading axes {sorted(shapes)}; allowed: ({runs},) on every leaf (one row per run)")


def train_with_loss(model: Model, loss_fn: Callable, params, batch_data, steps, *, keys, learning_rates,
                    optimizer: str = "adam", schedule: str = "constant", warmup_fraction: float = 0.05,
                    reanchor: Callable | None = None, dtype: str | None = None, progress=None, label: str = "",
                    padding_run_steps: int | None = None, padded_runs: int | None = None,
                    memory_limit_bytes: int | None = None) -> tuple[dict, np.ndarray]:
  """Trains a batch of runs on `loss_fn`, each for its own number of steps; returns final params and last losses.

  Each step of run r computes g = grad loss_fn(params_r, data_r, fold_in(key_r, step)) (plus anchor and step, see
  `reanchor`), turns it into an update u with the optimiser (optax.scale_by_adam for 'adam', the identity for
  'sgd', the state starting at zero) and sets params_r <- params_r - eta_r(step) u, with eta_r the run's peak
  learning rate under `schedule` (training.learning_rate). This is train_batch's step with the SFT/DPO gradient
  replaced by the gradient of an arbitrary loss.

  Args:
    model: the model the parameters belong to (shown in progress; the loss closes over whatever it needs).
    loss_fn: (params, data, key) -> scalar loss (nats per token, nats per pair, ...) of ONE run: params and data
      without the run axis; key is the step's PRNG key (draw minibatches from it). With `reanchor`, the loss is
      called as loss_fn(params, data, key, anchor, step). Pass the same object on every call to reuse the
      compiled loop.
    params: parameters with a leading run axis.
    batch_data: a pytree of arrays with a leading run axis (each run's data and per-run hyperparameters).
    steps: steps of each run, (runs,) integers >= 0.
    keys: one PRNG key per run, (runs, 2) raw uint32 keys or typed keys.
    learning_rates: peak learning rate per run, (runs,) finite and > 0.
    optimizer: one of stage_config.OPTIMIZERS ('adam' or 'sgd').
    schedule: one of stage_config.SCHEDULES (over each run's own budget, as train_batch).
    warmup_fraction: share of the budget spent warming up ('warmup_cosine' only).
    reanchor: optional traceable function step -> bool: at the start of every step where it is true the current
      parameters become the anchor (before any step the anchor is the initial parameters); the loss then receives
      the anchor and the step (e.g. Lisa's proximal term to the parameters at the last switch of state).
    dtype: training float type, 'float32' or 'float64' (None: the parameters' own type); data and learning rates
      are cast to it where they are floats.
    progress: optional callable(done_steps, total_steps, label) called between segments.
    label: what progress shows.
    padding_run_steps: run-steps padded runs may cost (training.run_bucket; None: the backend's default).
    padded_runs: compile for exactly this many runs (>= the run count) instead of training.run_bucket's choice, so
      that calls of different run counts share one program (padded runs take 0 steps but ride along each step).
    memory_limit_bytes: the most a call may hold by XLA's own accounting of the compiled loop (arguments, outputs
      and temporaries, jax.stages.Compiled.memory_analysis); a batch above it is trained in several calls of one
      program, each run's result unchanged up to rounding. A bound given here is hard (a run that alone exceeds it
      is a one-line ValueError); None: the soft default of training.memory_bounds (1 GiB per call on a CPU, a run
      refused only above the machine's memory). On a CPU under a compile-dominated preset a batch of more than
      compilation.runs_per_call() runs trains in calls of that many (training.share_calls; `padded_runs` then unused)
      and a smaller batch is padded to that many at most, so that batches of any size share one program.

  Returns:
    (params, losses): trained parameters (leading run axis) and each run's loss at its last step as float64 numpy
    (runs,) (NaN for runs with 0 steps; the loss before that step's update).

  References:
    Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015; JAX documentation, "Automatic
    vectorization" (jax.vmap over runs).
  """
  if optimizer not in OPTIMIZERS:
    raise ValueError(f"unknown optimizer {optimizer!r}; allowed: {', '.join(OPTIMIZERS)}")
  if schedule not in SCHEDULES:
    raise ValueError(f"unknown schedule {schedule!r}; allowed: {', '.join(SCHEDULES)}")
  if not 0 <= warmup_fraction < 1:
    raise ValueError(f"warmup_fraction={warmup_fraction!r} is not allowed; allowed: 0 <= value < 1")
  if not callable(loss_fn):
    raise ValueError(f"loss_fn={loss_fn!r} is not allowed; allowed: a function (params, data, key) -> scalar")
  raw_steps = np.asarray(steps)
  runs = raw_steps.shape[0] if raw_steps.ndim == 1 else -1
  if (raw_steps.ndim != 1 or raw_steps.size == 0 or np.any(raw_steps < 0) or np.any(raw_steps > MAX_STEPS)
          or np.any(raw_steps != np.round(raw_steps))):
    raise ValueError(f"steps={raw_steps.tolist()} is not allowed; allowed: one integer 0..{MAX_STEPS} per run")
  steps = raw_steps.astype(np.int32)
  if np.shape(keys)[:1] != (runs,):
    raise ValueError(f"keys have shape {np.shape(keys)}; allowed: one key per run ({runs})")
  _leading("params", params, runs)
  _leading("batch_data", batch_data, runs)
  peaks = np.asarray(learning_rates, dtype=np.float64)
  if peaks.shape != (runs,) or not np.all(np.isfinite(peaks)) or np.any(peaks <= 0):
    raise ValueError(f"learning_rates={peaks.tolist()} is not allowed; allowed: {runs} finite numbers > 0")
  float_type = models.float_dtype(jax.tree_util.tree_leaves(params)[0].dtype if dtype is None else dtype,
                                  f"train_with_loss({label or model.config.label()})")
  total = int(steps.max())
  padded = training.run_bucket(runs, total, padding_run_steps=padding_run_steps)
  if padded_runs is not None:
    if isinstance(padded_runs, bool) or not isinstance(padded_runs, int) or padded_runs < runs:
      raise ValueError(f"padded_runs={padded_runs!r} is not allowed; allowed: an integer >= {runs} (the runs)")
    padded = padded_runs
  fn = _compiled(loss_fn, optimizer, schedule, float(warmup_fraction), reanchor, compilation.training_options())
  call = functools.partial(_train_call, fn, float_type, optimizer, reanchor, label)
  host_params, data, keys = _host(params), _host(batch_data), training.host_keys(keys)
  cap = compilation.runs_per_call()
  groups = training.share_calls(np.arange(runs), total, cap)
  padded = max(runs, training.capped_runs(padded, cap))  # within the cap: padded to it at most (the split calls' loop)
  size = padded if len(groups) == 1 else cap  # the run count each call's program is compiled for
  limit, ceiling = training.memory_bounds(memory_limit_bytes)
  used = None if limit is None or not total else _program_bytes(fn, float_type, optimizer, reanchor, host_params,
                                                                data, keys, size)
  max_runs = None if used is None else run_chunks.runs_within_bound(
      used, size, limit, ceiling, subject=f"training one run of {label or model.config.label()}",
      bound="the training memory limit" if memory_limit_bytes is not None else "this machine's memory",
      allowed="a smaller model, depth or batch, or a larger memory_limit_bytes")
  if (max_runs is None or size <= max_runs) and len(groups) == 1:
    return call(host_params, data, peaks, steps, keys, padded, progress=progress)
  if max_runs is not None and size > max_runs:
    groups = np.array_split(np.arange(runs), -(-runs // max_runs))
    size = max(group.size for group in groups)  # every call padded to the largest group: one program

  def rows(tree, group):
    return jax.tree_util.tree_map(lambda x: np.asarray(x)[group], tree)

  budgets = [int(steps[group].max()) for group in groups]
  outputs = []
  for group, offset in zip(groups, np.cumsum([0] + budgets[:-1]), strict=True):
    shown = None if progress is None else functools.partial(_shifted, progress, int(offset), sum(budgets))
    outputs.append(call(rows(host_params, group), rows(data, group), peaks[group], steps[group], keys[group], size,
                        progress=shown))
    host_memory.release_freed_memory()  # the call's freed working set, before the next call's
  losses = np.concatenate([out[1] for out in outputs])
  trained = [out[0] for out in outputs]
  del outputs
  return devices.place_runs(run_chunks.joined_on_host(trained)), losses  # on the host, as train_batch joins


def _program_bytes(fn, float_type, optimizer, reanchor, params, data, keys, padded: int) -> int | None:
  """run_chunks.program_bytes of the loop compiled for `padded` runs of these host inputs, from their shapes alone
  (nothing is allocated; on one device the program is the one the call then runs, not another)."""
  def spec(x):
    x = np.asarray(x)
    dtype = float_type if np.issubdtype(x.dtype, np.floating) else x.dtype
    return jax.ShapeDtypeStruct((padded,) + x.shape[1:], dtype)

  leaves, treedef = jax.tree_util.tree_flatten(jax.tree_util.tree_map(spec, params))
  param_specs = jax.tree_util.tree_unflatten(treedef, leaves)
  state = training._optimizer_state_shapes(optimizer, treedef, tuple((leaf.shape, leaf.dtype) for leaf in leaves))
  row = jax.ShapeDtypeStruct((padded,), float_type)
  carry = (param_specs, state, param_specs if reanchor is not None else None, row)
  bound = jax.ShapeDtypeStruct((), np.int32)
  return run_chunks.program_bytes(fn, carry, jax.tree_util.tree_map(spec, data), row,
                                  jax.ShapeDtypeStruct((padded,), np.int32), spec(keys), bound, bound)


def _shifted(progress, offset: int, grand_total: int, step: int, total: int, label: str) -> None:
  """progress(offset + step, grand_total, label): one call's progress within several calls one after another."""
  progress(offset + step, grand_total, label)


def _train_call(fn, float_type, optimizer, reanchor, label, params, data, peaks, steps, keys, padded: int, *,
                progress=None):
  """train_with_loss's work for one call of checked host inputs (one row per run), padded to `padded` runs."""
  runs, total = steps.shape[0], int(steps.max())
  pad = functools.partial(_pad_rows, size=padded)

  def cast(x):
    x = np.asarray(x)
    return pad(x.astype(float_type, copy=False) if np.issubdtype(x.dtype, np.floating) else x)

  host_params = jax.tree_util.tree_map(cast, params)
  data = jax.tree_util.tree_map(cast, data)
  anchor = host_params if reanchor is not None else None  # no anchor carried when nothing uses it
  state = training.optimizer_state(optimizer, host_params)
  inputs = ((host_params, state, anchor, np.full(padded, np.nan, float_type)),
            data, pad(peaks.astype(float_type)), np.concatenate([steps, np.zeros(padded - runs, np.int32)]), pad(keys))
  carry, data_d, peaks_d, steps_d, keys_d = devices.place_runs(inputs)
  bounds = training.segment_bounds(total, progress)
  for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
    carry = fn(carry, data_d, peaks_d, steps_d, keys_d, start, stop)
    if progress is not None:
      jax.block_until_ready(carry)
      progress(int(stop), total, label)
  trained, losses = carry[0], np.asarray(carry[3], dtype=np.float64)[:runs]
  if padded != runs:
    trained = devices.place_runs(jax.tree_util.tree_map(lambda x: x[:runs], _host(trained)))
  return trained, losses
