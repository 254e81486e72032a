"""Training toy models: one jitted, vmapped loop that trains a batch of runs at once, sharded over devices.

Runs in a batch share the model and the stage's static choices (objective, optimiser, schedule, how gradients
are formed) and differ in arrays: initial parameters, leaf weights of the data (for DPO also of the rejected
responses, and the reference model's log-probabilities), learning rate, number of steps, random key. A run with
fewer steps than another stops updating when its own budget is spent.

Compiling once: a batch compiles one program per (model, static stage fields, padded run count, float type,
device layout). The runs axis is padded to run_bucket(...) with copies of the first run that take 0 steps and are
dropped, so that calls with nearby run counts share their programs; host arrays reach the devices through
device_put (no XLA program) and the optimiser's zero state is built on the host. On a CPU, where a run that has
finished its budget still costs a full step, runs of very different budgets are trained in separate calls
(budget_groups), and under the compile-dominated presets a batch trains in calls of compilation.runs_per_call()
runs (share_calls), so that batches of any size share one program.
"""

from __future__ import annotations

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax

from theory import token_tree
from toy_models import compilation, devices, host_memory, likelihood, metrics, models, shared_prefixes
from toy_models.models import Model
from toy_models.stage_config import StageConfig

SEGMENTS = 20  # with a progress callback, a batch is trained in up to this many calls (progress updates in between).


def segment_bounds(total: int, progress) -> np.ndarray:
  """The step bounds of the calls a training loop of `total` steps runs in: up to SEGMENTS calls with a progress
  callback (it is updated between them), one call without (the segments' only use is progress).

  The loop's program is one for any bounds (they are traced), and a run's steps are the same whatever the calls, bit
  for bit (tests/toy_models/test_training_segments.py). Each call costs something once, so fewer calls are faster:
  at width 64 with minibatches of 256 (float64, 2-core CPU) a call's first step took about 32 ms against 16-21 ms
  for each further one, and a 20-step call in 20 segments paid that 20 times: every call touched about 56 MB of fresh
  memory pages (40 steps in 20 calls: 287,000 minor page faults against 14,700 in one call; in float32, whose
  temporaries stay below glibc's mmap threshold and are reused, none either way).
  """
  if not total:
    return np.zeros(1, np.int32)
  segments = min(SEGMENTS, total) if progress is not None else 1
  return np.unique(np.linspace(0, total, segments + 1).astype(np.int32))


CPU_PADDING_RUN_STEPS = 1024
"""On a CPU, the most run-steps a call may spend on padded runs to reach a coarser bucket, and the price of one more
call in budget_groups: a step costs the same per run at every batch size there (0.2-0.8 ms per run-step for the
transformers of the experiments on 2 cores, 50-200 us for the tabular model), so 1024 run-steps are 0.2-0.8 s, about
what one more program costs (compiled: ~1 s with the fast-compile options; loaded from the persistent cache and
traced: ~0.3 s). Measured on the 2-core CPU (2026-11-27), 1024 instead of 2048: `elasticity reproduce --quick` 46 s
instead of 54 s with a warm cache, 92 s instead of 85 s with an empty one; `simulate model-size` and `families` at
the default scale (empty cache) 93 s and 34 s instead of 96 s and 39 s. Accelerators run the padded runs in
otherwise idle lanes (on an H200, 200 steps of 1, 8 or 32 runs of the default transformer took 0.09-0.13 s alike,
while each program took 5-27 s to compile): there the bucket is the coarsest."""

EXACT_GRADIENT_CHUNK = 256
"""Responses per chunk of the exact (expected) SFT gradient (exact_sft_gradient): trees up to depth 8 (255
responses) are one chunk, as before chunking existed. At depth 10 (1,023 responses), `elasticity simulate hooke
--scale paper` held 8.0 GB resident on the CPU while its transformers (width 64, 2 layers) trained on the whole
gradient at once, and 2.6 GB in chunks of 256; the chunked gradient was also faster (176 against 237 ms per
run-step, 4 vmapped runs, 2-core CPU, 2026-11-27). Training's gradient chunks the tree's 512 longest responses
instead, which score all 1,023 (toy_models.shared_prefixes): 531 against 968 ms per gradient of 5 vmapped runs in
chunks of 256 (float64, 2-core CPU, 2026-11-28; `python benchmarks/exact_gradient.py` measures both).
It is the chunk on a CPU (one chunk of the 512 longest responses: 551 against 489 ms in the same setting);
accelerators take ACCELERATOR_EXACT_GRADIENT_CHUNK; $ELASTICITY_EXACT_GRADIENT_CHUNK overrides both
(exact_gradient_chunk)."""
ACCELERATOR_EXACT_GRADIENT_CHUNK = 512
"""The chunk on a GPU or TPU: on an NVIDIA H200 (float64, depth 10, width 64, 2 layers, 25 vmapped runs, 2026-11-28,
`benchmarks/exact_gradient.py`; docs/USAGE.md "The paper scale on a GPU"), 9.4 ms per gradient in one chunk of the
512 longest responses against 11.4 in chunks of 256 and 18.6 for all 1,023 responses at once (3.9 against 8.0 ms in
float32): each chunk is a further pass of small kernels there, and 25 runs' chunk of 512 holds about 2 GB."""
EXACT_GRADIENT_CHUNK_ENV = "ELASTICITY_EXACT_GRADIENT_CHUNK"


def exact_gradient_chunk() -> int:
  """Responses (or longest responses) per chunk of the exact SFT gradient: $ELASTICITY_EXACT_GRADIENT_CHUNK where it
  is set (an integer >= 1: the chunk sum's rounding, memory and speed change with it, not the gradient), otherwise
  EXACT_GRADIENT_CHUNK on a CPU and ACCELERATOR_EXACT_GRADIENT_CHUNK on a GPU or TPU (JAX's default backend). Read
  when a program is traced; runs record the variable in their provenance where it is set (experiments.records)."""
  chunk = exact_gradient_chunk_from_environment()
  if chunk is not None:
    return chunk
  return EXACT_GRADIENT_CHUNK if jax.default_backend() == "cpu" else ACCELERATOR_EXACT_GRADIENT_CHUNK


def exact_gradient_chunk_from_environment() -> int | None:
  """$ELASTICITY_EXACT_GRADIENT_CHUNK as an integer >= 1, or None where it is unset; a one-line ValueError naming
  the value otherwise (the CLI checks it at start-up, before any work, without starting a JAX backend)."""
  text = os.environ.get(EXACT_GRADIENT_CHUNK_ENV, "").strip()
  if not text:
    return None
  try:
    chunk = int(text)
  except ValueError:
    chunk = 0
  if chunk < 1:
    raise ValueError(f"{EXACT_GRADIENT_CHUNK_ENV}={text!r}; allowed: an integer >= 1 (responses per chunk of the "
                     "exact gradient), or unset")
  return chunk


def _transform(optimizer: str) -> optax.GradientTransformation:
  return optax.scale_by_adam() if optimizer == "adam" else optax.identity()


def _host_tree(tree):
  """`tree` with every leaf a numpy array (device arrays are copied to the host; no XLA program is compiled)."""
  return jax.tree_util.tree_map(np.asarray, jax.device_get(tree))


def _pad_rows(array: np.ndarray, size: int) -> np.ndarray:
  """`array` with copies of its first row appended along axis 0 up to `size` rows."""
  extra = size - array.shape[0]
  return array if extra <= 0 else np.concatenate([array, np.repeat(array[:1], extra, axis=0)])


def optimizer_state(optimizer: str, params):
  """The optimiser's initial state for a batch of runs, built on the host (every state of ours starts at zero).

  Shapes and types come from tracing optax's init (jax.eval_shape, nothing compiled), once per optimiser and
  parameter shapes in a process; run as a program, the initialiser would compile once per run count and parameter
  shape.

  References:
    Kingma & Ba, "Adam", ICLR 2015 (moments start at zero); optax documentation, GradientTransformation.init.
  """
  leaves, treedef = jax.tree_util.tree_flatten(params)
  specs = tuple((tuple(np.shape(leaf)), np.dtype(getattr(leaf, "dtype", np.asarray(leaf).dtype))) for leaf in leaves)
  return jax.tree_util.tree_map(lambda shape: np.zeros(shape.shape, shape.dtype),
                                _optimizer_state_shapes(optimizer, treedef, specs))


@functools.lru_cache(maxsize=256)
def _optimizer_state_shapes(optimizer: str, treedef, specs: tuple):
  """optimizer_state's shapes and types (jax.ShapeDtypeStruct tree) for parameters of `treedef` and leaf `specs`."""
  like = jax.tree_util.tree_unflatten(treedef, [jax.ShapeDtypeStruct(shape, dtype) for shape, dtype in specs])
  return jax.eval_shape(jax.vmap(_transform(optimizer).init), like)


def default_padding_run_steps() -> int | None:
  """The default budget of padded run-steps of run_bucket and budget_groups: CPU_PADDING_RUN_STEPS on a CPU, where a
  padded or idle run costs a full step; None (no limit) on accelerators, where it rides in an otherwise idle lane."""
  return CPU_PADDING_RUN_STEPS if jax.default_backend() == "cpu" else None


def capped_runs(max_runs: int | None, cap: int | None) -> int | None:
  """The smaller of two bounds on a call's run count, either of which may be None (no bound)."""
  return cap if max_runs is None else max_runs if cap is None else min(max_runs, cap)


def share_calls(group: np.ndarray, budget: int, cap: int | None) -> list[np.ndarray]:
  """The runs of one call split into ceil(runs / cap) nearly equal calls in order, each to be padded to `cap` runs
  (so that calls of any run count share the program for `cap`); [group] when it has at most `cap` runs, no steps
  to train, or `cap` is None.

  Args:
    group: indices of the call's runs.
    budget: their largest step budget.
    cap: the runs of a shared call (compilation.runs_per_call()), None: no splitting.

  Returns:
    Index arrays in order, together `group`.
  """
  runs = int(group.size)
  if cap is None or runs <= cap or budget <= 0:
    return [group]
  return np.array_split(group, -(-runs // cap))


def run_bucket(runs: int, steps: int, *, padding_run_steps: int | None = None) -> int:
  """The padded number of runs a call of `runs` runs and up to `steps` steps is compiled for (>= runs).

  The coarsest of: the next power of two, the next multiple of 8, `runs` itself, whose padded runs cost at most
  `padding_run_steps` run-steps ((bucket - runs) * steps); by default CPU_PADDING_RUN_STEPS on a CPU and no limit
  on accelerators (there the coarsest: 8 or the next power of two). Calls whose run counts fall in one bucket
  share one compiled program.

  Args:
    runs: runs of the call (>= 0).
    steps: the largest step budget among them (the padded runs are carried through every step).
    padding_run_steps: the budget of padded run-steps (>= 0), or None for the backend's default.

  Returns:
    The run count to compile for.

  References:
    JAX documentation, "Just-in-time compilation" (a jitted function is compiled anew for each input shape).
  """
  if runs <= 1:
    return max(runs, 1) if runs else 0
  if padding_run_steps is None:
    padding_run_steps = default_padding_run_steps()
  power = metrics.power_of_two_at_least(runs)
  multiple = -(-runs // 8) * 8
  for bucket in sorted({power, multiple, runs}, reverse=True):
    if padding_run_steps is None or (bucket - runs) * max(int(steps), 1) <= padding_run_steps:
      return bucket
  return runs


MAX_GROUPED_BUDGETS = 64  # more distinct step budgets than this in one call: no grouping (the search is quadratic).


def budget_groups(steps, *, padding_run_steps: int | None = None) -> list[np.ndarray]:
  """The runs of a call split into calls of similar step budgets: each a sorted index array; together all runs.

  A vmapped training loop steps every run of a call until the call's largest budget is spent; a run whose budget
  is spent idles, and on a CPU an idle run costs as much as a busy one (its lane is still computed). Sorting the
  distinct budgets in decreasing order, this returns the split into contiguous groups that minimises the run-steps
  computed, sum over groups of run_bucket(runs, budget) * budget (budget = the group's largest), plus
  `padding_run_steps` per call beyond the first (the cost, in the same currency as run_bucket's padding, of one
  more call and possibly one more program to compile). On accelerators (padding_run_steps None there) idle lanes
  are free: one group. Each run's result does not depend on the group it is trained in (its own key, data and
  budget), up to the rounding of kernels chosen for a different run count.

  Args:
    steps: each run's step budget, (runs,) integers >= 0.
    padding_run_steps: run_bucket's budget of padded run-steps, and the price of one more call (None: the
      backend's default, CPU_PADDING_RUN_STEPS on a CPU and no grouping on accelerators).

  Returns:
    Index arrays, one per call, in decreasing order of budget (one array of every run when no split pays).

  References:
    JAX documentation, "Automatic vectorization" (a vmapped while_loop runs until every lane is done).
  """
  steps = np.asarray(steps, dtype=np.int64)
  everything = [np.arange(steps.shape[0])]
  if padding_run_steps is None:
    padding_run_steps = default_padding_run_steps()
  budgets, counts = np.unique(steps, return_counts=True)
  if padding_run_steps is None or not 1 < budgets.size <= MAX_GROUPED_BUDGETS:
    return everything
  budgets, counts = budgets[::-1], counts[::-1]
  cumulative = np.concatenate([[0], np.cumsum(counts)])
  best, split = [0.0] + [np.inf] * budgets.size, [0] * (budgets.size + 1)
  for stop in range(1, budgets.size + 1):
    for start in range(stop):  # one call for budgets[start:stop]; its largest budget is budgets[start]
      runs, budget = int(cumulative[stop] - cumulative[start]), int(budgets[start])
      cost = best[start] + run_bucket(runs, budget, padding_run_steps=padding_run_steps) * budget
      cost += padding_run_steps if start else 0
      if cost < best[stop]:
        best[stop], split[stop] = cost, start
  bounds, stop = [], budgets.size
  while stop:
    bounds.append((split[stop], stop))
    stop = split[stop]
  if len(bounds) == 1:
    return everything
  return [np.flatnonzero(np.isin(steps, budgets[start:stop])) for start, stop in reversed(bounds)]


def learning_rate(stage: StageConfig, peak, step, total):
  """The learning rate at `step` of a stage of `total` steps (traced values allowed), in the float type of `peak`."""
  dtype = jnp.result_type(peak)
  step = jnp.asarray(step).astype(dtype)
  total = jnp.maximum(jnp.asarray(total).astype(dtype), 1.0)
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


def exact_sft_gradient(model: Model, params, tokens, weights, chunk: int | None = None, *, whole_tree: bool = False):
  """The gradient of likelihood.weighted_token_nll over `tokens` (every response), in chunks of responses.

  The loss is a sum over responses divided by sum_x w(x) |x|, which does not depend on the parameters, so its
  gradient is the sum of the chunks' gradients over that constant. With more than `chunk` responses (default
  exact_gradient_chunk()) the chunks run one after another (lax.scan): memory holds one chunk's activations per run
  instead of every response's. Up to `chunk` responses it is jax.grad of the loss itself, unchanged. With more,
  and `whole_tree` (the caller's promise that `tokens` is theory.token_tree.leaf_tokens of its depth), the chunks
  are of the tree's longest responses, which score every response (toy_models.shared_prefixes): the same gradient
  up to rounding from half the model evaluations.

  Args:
    model: the model.
    params: its parameters (one run).
    tokens: (B, T) responses (e.g. every leaf of the tree).
    weights: (B,) weights >= 0 (counts or probabilities).
    chunk: responses per chunk (None: exact_gradient_chunk()).
    whole_tree: `tokens` is every leaf of the tree of depth T, in theory.token_tree's order.

  Returns:
    The gradient, a pytree like params.

  References:
    JAX documentation, jax.lax.scan (a loop that keeps one iteration's intermediates at a time); Ji et al., "Language
    Models Resist Alignment", ACL 2025, Section 5 (the SFT loss).
  """
  chunk = exact_gradient_chunk() if chunk is None else chunk
  count, length = tokens.shape
  if count <= chunk:
    return jax.grad(functools.partial(_loss, model))(params, tokens, weights)
  if whole_tree:
    return shared_prefixes.exact_sft_gradient(model, params, length, weights, chunk)
  weights = weights.astype(likelihood.params_dtype(params))
  denominator = likelihood.token_mass(tokens, weights)

  def numerator(p, part_tokens, part_weights):
    return -(part_weights * likelihood.leaf_log_probs(model, p, part_tokens)).sum()

  parts = (shared_prefixes.chunked(tokens, chunk, pad_with_first=True),  # zero-weight copies of the first response
           shared_prefixes.chunked(weights, chunk, pad_with_first=False))
  return shared_prefixes.gradient_in_chunks(numerator, params, parts, denominator)


def _sft_gradient(model: Model, stage: StageConfig, tokens, params, step, weights, key):
  if stage.gradient == "minibatch":
    probs = weights / weights.sum()
    picks = jax.random.choice(jax.random.fold_in(key, step), tokens.shape[0], (stage.batch_size,), p=probs)
    batch_tokens, batch_weights = tokens[picks], jnp.ones(stage.batch_size, probs.dtype)
    return jax.grad(functools.partial(_loss, model))(params, batch_tokens, batch_weights)
  return exact_sft_gradient(model, params, tokens, weights, whole_tree=True)  # tokens: _device_tokens, every leaf


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
def _batched_segment(model: Model, static: tuple, options: tuple = ()):
  stage = StageConfig(**dict(static))
  fn = functools.partial(_segment, model, stage)
  return jax.jit(jax.vmap(fn, in_axes=(None, 0, 0, 0, 0, 0, 0, None, None)), compiler_options=dict(options) or None)


@functools.lru_cache(maxsize=64)
def _batched_objective(model: Model, static: tuple):
  """Each run's exact objective over every leaf (evaluated once, after the last segment)."""
  stage = StageConfig(**dict(static))
  return jax.jit(jax.vmap(functools.partial(_objective, model, stage), in_axes=(0, None, 0)))


@functools.lru_cache(maxsize=64)
def _batched_objective_of_rows(model: Model, static: tuple):
  """_batched_objective of the runs at `rows` (an index array) only, gathered inside one compiled program."""
  stage = StageConfig(**dict(static))
  objective = jax.vmap(functools.partial(_objective, model, stage), in_axes=(0, None, 0))

  def of_rows(params, tokens, data, rows):
    def take(tree):
      return jax.tree_util.tree_map(lambda x: x[rows], tree)

    return objective(take(params), tokens, take(data))

  return jax.jit(of_rows)


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
  seconds per model on a CPU and dominated small runs. Compiled with compilation.initializer_options() (faster to
  compile on a CPU, the same parameters).
  """
  return jax.jit(jax.vmap(model.init), compiler_options=compilation.initializer_options())


@functools.lru_cache(maxsize=8)
def _device_tokens(depth: int) -> jax.Array:
  """Every response of the tree of `depth` as int32 tokens on the default device (placed once per depth)."""
  return jax.device_put(np.asarray(token_tree.leaf_tokens(depth), np.int32))


def host_keys(keys) -> np.ndarray:
  """PRNG keys (runs, ...) as a host uint32 array (typed key arrays are unwrapped to their raw data).

  References:
    JAX documentation, "Pseudorandom numbers" (raw uint32 keys and typed key arrays).
  """
  if isinstance(keys, jax.Array) and jax.dtypes.issubdtype(keys.dtype, jax.dtypes.prng_key):
    keys = jax.random.key_data(keys)
  return np.asarray(keys)


def _unpad(tree, runs: int, padded: int):
  """The first `runs` rows of every leaf of `tree`, placed on the devices (through the host: no program compiled)."""
  if runs == padded:
    return tree
  return devices.place_runs(jax.tree_util.tree_map(lambda x: x[:runs], _host_tree(tree)))


def init_params(model: Model, keys: jax.Array) -> dict:
  """Initial parameters of a batch of runs, one per key (leading axis = runs), in the model's float type.

  The keys are padded to run_bucket(runs, 1), so that batches of nearby sizes share one compiled initialiser;
  each run's parameters depend on its own key only. Traced keys (inside jit or jax.eval_shape) are initialised
  in the trace, unpadded.

  Args:
    model: the model (its ModelConfig.dtype is the parameters' type; float64 needs jax_enable_x64).
    keys: one PRNG key per run, (runs, 2) raw uint32 keys or typed keys.

  Returns:
    The parameter pytree, every leaf with a leading run axis.

  References:
    JAX documentation, "Automatic vectorization" (jax.vmap over the keys).
  """
  models.float_dtype(model.dtype, f"the {model.config.dtype} model {model.config.label()}")
  if isinstance(keys, jax.core.Tracer):
    return jax.vmap(model.init)(keys)
  keys = host_keys(keys)
  runs = keys.shape[0]
  padded = run_bucket(runs, 1)
  params = _compiled_init(model)(devices.place_runs(_pad_rows(keys, padded)))
  return _unpad(params, runs, padded)


def train_batch(model: Model, stage: StageConfig, params, weights, steps, *, keys, learning_rates=None,
                rejected_weights=None, reference_log_probs=None, progress=None, label: str = "",
                dtype: str | None = None, padding_run_steps: int | None = None, opt_state=None,
                return_state: bool = False, memory_limit_bytes: int | None = None) -> tuple:
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
    dtype: float type of training, 'float32' or 'float64': parameters, optimiser state, data weights and learning
      rates are cast to it (and the returned parameters are in it). None: the parameters' own type (the model's
      ModelConfig.dtype). Metrics are float64 whatever this is (metrics.leaf_log2_probs casts up).
    padding_run_steps: budget of run_bucket (None: the backend's default).
    opt_state: the optimiser state to start from, with a leading run axis (e.g. the state a previous call
      returned with return_state=True, to carry Adam's moments and step count across stages); None: a fresh
      state (optimizer_state), as every stage had before. Its float leaves are cast to the training type.
    return_state: also return the final optimiser state (leading run axis, in the training type).
    memory_limit_bytes: the estimated working set (training_bytes) one call may hold; more runs than fit are
      trained in several calls of one program, each run's result unchanged up to rounding. A bound given here is
      hard (a run that alone exceeds it is a one-line ValueError); None: the soft default of memory_bounds (1 GiB
      per call on a CPU, a run refused only above the machine's memory). On a CPU under a compile-dominated preset
      a batch is also trained in calls of compilation.runs_per_call() runs (share_calls), so that batches of any
      size share their programs.

  Returns:
    (params, losses): trained parameters (leading run axis, in the training type) and each run's final training
    loss, computed in the training type and returned as float64 numpy of shape (runs,): for 'sft' in nats per
    token, for 'dpo' the expected DPO loss in nats per pair (likelihood.dpo_loss; ln 2 at the reference).
    With return_state: (params, losses, opt_state). A run continued from a returned state with the same stage
    takes the same steps as one uninterrupted run when the stage's updates do not depend on the step index
    (constant schedule, expected gradient): the schedule and the minibatch draws restart at step 0 in each call.

  References:
    Kingma & Ba, "Adam", ICLR 2015; Loshchilov & Hutter, "SGDR" (cosine schedule), ICLR 2017; Rafailov et al.,
    "Direct Preference Optimization: Your Language Model is Secretly a Reward Model", NeurIPS 2023; Micikevicius
    et al., "Mixed Precision Training", ICLR 2018 (training in low precision, measuring in high).
  """
  n_leaves = token_tree.n_leaves(model.depth)
  weights = _leaf_array("weights", weights, None, n_leaves, counts=True)
  runs = weights.shape[0]
  raw_steps = np.asarray(steps)
  if raw_steps.shape != (runs,) or np.any(raw_steps < 0) or np.any(raw_steps != np.round(raw_steps)):
    raise ValueError(f"steps={raw_steps.tolist()} is not allowed; allowed: {runs} integers >= 0")
  if np.any(raw_steps > stage.max_steps):
    raise ValueError(f"steps={int(raw_steps.max())} is not allowed; allowed: integers 0..{stage.max_steps}")
  steps = raw_steps.astype(np.int32)
  if np.shape(keys)[:1] != (runs,):
    raise ValueError(f"keys have shape {np.shape(keys)}; allowed: one key per run ({runs})")
  shapes = {np.shape(leaf)[:1] for leaf in jax.tree_util.tree_leaves(params)}
  if shapes != {(runs,)}:
    raise ValueError(f"params have leading axes {sorted(shapes)}; allowed: ({runs},) on every leaf (one row per run)")
  bad = np.flatnonzero(~(weights.sum(axis=1) > 0) & (steps > 0))
  if bad.size:
    raise ValueError(f"run {int(bad[0])} has no training data (all leaf weights 0) but {int(steps[bad[0]])} steps; "
                     "allowed: some positive weight, or 0 steps")
  data = _objective_data(stage, weights, rejected_weights, reference_log_probs, steps)
  peaks = np.full(runs, stage.learning_rate) if learning_rates is None else np.asarray(learning_rates, np.float64)
  if peaks.shape != (runs,) or not np.all(np.isfinite(peaks)) or np.any(peaks <= 0):
    raise ValueError(f"learning_rates={peaks.tolist()} is not allowed; allowed: {runs} finite numbers > 0")
  float_type = models.float_dtype(jax.tree_util.tree_leaves(params)[0].dtype if dtype is None else dtype,
                                  f"train_batch({label or model.config.label()})")
  max_runs = training_run_chunk(model, stage, float_type, memory_limit_bytes)
  # A call's most runs; a batch within it is padded to it at most, so that it shares the loop of the split calls.
  cap = capped_runs(max_runs, compilation.runs_per_call())
  call = functools.partial(_train_call, model, stage, float_type=float_type, padding_run_steps=padding_run_steps,
                           return_state=return_state, max_runs=cap)
  groups, pads = [], []
  for group in memory_groups(budget_groups(steps, padding_run_steps=padding_run_steps), max_runs):
    budget = int(steps[group].max()) if group.size else 0
    parts = share_calls(group, budget, cap)
    groups += parts
    pads += [None] if len(parts) == 1 else [cap] * len(parts)
  if len(groups) == 1:
    return call(params, data, peaks, steps, host_keys(keys), opt_state, progress, label)
  return _train_in_groups(call, groups, pads, params, data, peaks, steps, host_keys(keys), opt_state, progress,
                          label)


def _train_in_groups(call, groups, pads, params, data, peaks, steps, keys, opt_state, progress, label):
  """train_batch's result for every run, trained in one call per group (of budget_groups, memory_groups and
  share_calls), each padded to its entry of `pads` (None: _train_call's choice); results put back in order."""
  runs = steps.shape[0]
  host_params = _host_tree(params)
  host_state = None if opt_state is None else _host_tree(opt_state)
  budgets = [int(steps[group].max()) for group in groups]  # each call's own largest budget: what progress counts
  grand_total, done = sum(budgets), 0
  outputs = []
  for group, budget, pad in zip(groups, budgets, pads, strict=True):
    def shown(step, total, text, offset=done):
      progress(offset + step, grand_total, text)

    def rows(tree, group=group):
      return jax.tree_util.tree_map(lambda x: np.asarray(x)[group], tree)

    outputs.append(call(rows(host_params), rows(data), peaks[group], steps[group], keys[group],
                        None if host_state is None else rows(host_state), None if progress is None else shown, label,
                        pad_to=pad))
    host_memory.release_freed_memory()  # the call's freed working set, before the next call's
    done += budget

  def merge(position: int):
    parts = [_host_tree(output[position]) for output in outputs]

    def put(*leaves):
      merged = np.empty((runs,) + leaves[0].shape[1:], leaves[0].dtype)
      for group, leaf in zip(groups, leaves, strict=True):
        merged[group] = leaf
      return merged

    return jax.tree_util.tree_map(put, *parts)

  merged = [devices.place_runs(merge(0)), merge(1)] + ([devices.place_runs(merge(2))] if len(outputs[0]) > 2 else [])
  return tuple(merged)


def _train_call(model, stage, params, data, peaks, steps, keys, opt_state, progress, label, *, float_type,
                padding_run_steps, return_state, max_runs=None, pad_to=None):
  """train_batch's work for one call of checked inputs (host data, peaks, steps and keys with one row per run),
  padded to `pad_to` runs if given (share_calls), else to run_bucket's choice but never above `max_runs` runs
  (training_run_chunk, capped by compilation.runs_per_call)."""
  runs = steps.shape[0]
  total = int(steps.max()) if runs else 0
  padded = max(runs, capped_runs(run_bucket(runs, total, padding_run_steps=padding_run_steps), max_runs))
  if pad_to is not None:
    padded = pad_to
  params = _cast_params(params, float_type, runs, padded)
  pad = functools.partial(_pad_rows, size=padded)
  start_state = (optimizer_state(stage.optimizer, params) if opt_state is None
                 else _given_state(stage.optimizer, opt_state, params, float_type, runs, padded))
  inputs = (params, start_state,
            jax.tree_util.tree_map(lambda x: pad(x.astype(float_type)), data), pad(peaks.astype(float_type)),
            np.concatenate([steps, np.zeros(padded - runs, np.int32)]), pad(keys))
  params, opt_state, data_d, peaks_d, steps_d, keys_d = devices.place_runs(inputs)
  tokens = _device_tokens(model.depth)
  bounds = segment_bounds(total, progress)
  fn = _batched_segment(model, _static_fields(stage), compilation.training_options())
  for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
    params, opt_state = fn(tokens, params, opt_state, data_d, peaks_d, steps_d, keys_d, start, stop)
    if progress is not None:
      jax.block_until_ready(params)
      progress(int(stop), total, label)
  losses = _final_objective(model, stage, params, tokens, data_d, runs)
  if return_state:
    return _unpad(params, runs, padded), losses, _unpad(opt_state, runs, padded)
  return _unpad(params, runs, padded), losses


TRAINING_MEMORY_LIMIT_BYTES = 2**30
"""On a CPU, the estimated working set (training_bytes) one training call may hold; runs beyond it are trained in
further calls of the same program. At the paper scale the second stage of `elasticity simulate model-size` trained
320 runs of a 4-layer width-64 transformer in one call and held 7.4 GB resident on the CPU (estimate: 6.2 GB)."""
PARAMETER_COPIES = 10
"""Copies of a run's parameters a training call holds: parameters, Adam's two moments, their updated versions (the
segment's outputs), gradient and update, plus a margin; the bound of training_bytes."""


def training_floats_per_response(model: Model) -> int:
  """Estimated floats one run keeps per response of a training step for its backward pass (an upper bound).

  The forward pass of a transformer reuses its buffers across blocks, the backward pass keeps every block's
  activations: a per-block term times the layers. Fitted to XLA's own accounting of the compiled training segment
  (jax 0.10, CPU; tests/toy_models/test_training_memory.py): 27-34 floats per token, width and layer at mlp_ratio
  4, against the bound's 32 + 4 heads T / width. The tabular and n-gram models kept up to 2.3 times
  metrics.activation_floats_per_response per response of a DPO step; the bound is 3 times.

  References:
    Chen et al., "Training Deep Nets with Sublinear Memory Cost", arXiv:1604.06174, 2016 (activations kept for the
    backward pass); XLA's compiled-program memory analysis (jax.stages.Compiled.memory_analysis).
  """
  config = model.config
  if config.kind != "transformer":
    return 3 * metrics.activation_floats_per_response(model)
  tokens = model.depth
  block = config.width * (6 * config.mlp_ratio + 8) + 4 * config.heads * tokens
  return tokens * (config.layers * block + config.width + 16)


def training_bytes(model: Model, stage: StageConfig, runs: int, float_type=np.float64) -> int:
  """Estimated bytes of one training call of `runs` runs of `stage` in `float_type` (an upper bound).

  Per run: the activations of the responses one step differentiates (the minibatch, twice for DPO's pairs; under
  the expected gradient every response, in chunks of exact_gradient_chunk() for SFT, plus DPO's pair matrix),
  PARAMETER_COPIES copies of the parameters and the run's leaf arrays (one for SFT, three for DPO); once: the
  responses' int32 tokens.

  Args:
    model: the model.
    stage: the stage (objective, gradient, batch_size).
    runs: runs of the call (after padding).
    float_type: the training float type (float64 or float32).

  Returns:
    The estimate in bytes.

  References:
    XLA's compiled-program memory analysis (jax.stages.Compiled.memory_analysis), which this bounds.
  """
  responses = token_tree.n_leaves(model.depth)
  if stage.gradient == "minibatch":
    differentiated, pairs = stage.batch_size * (2 if stage.objective == "dpo" else 1), 0
  elif stage.objective == "dpo":
    differentiated, pairs = responses, 3 * responses**2
  else:
    differentiated, pairs = min(responses, exact_gradient_chunk()), 0
  arrays = responses * (3 if stage.objective == "dpo" else 1)
  per_run = (differentiated * training_floats_per_response(model) + pairs + PARAMETER_COPIES * model.parameter_count()
             + arrays)
  return np.dtype(float_type).itemsize * runs * per_run + 4 * responses * model.depth


def training_memory_limit() -> int | None:
  """The default working-set bound of a training call: TRAINING_MEMORY_LIMIT_BYTES on a CPU; on an accelerator
  half of the device memory JAX reports (memory_stats' bytes_limit), or None (no bound) where it reports none.

  References:
    JAX documentation, jax.Device.memory_stats.
  """
  if jax.devices()[0].platform == "cpu":
    return TRAINING_MEMORY_LIMIT_BYTES
  ceiling = host_memory.memory_ceiling()
  return None if ceiling is None else ceiling // 2


def memory_bounds(memory_limit_bytes: int | None) -> tuple[int | None, int | None]:
  """(limit, ceiling) of a call: a bound the caller gives is hard (the ceiling is the limit itself); None gives the
  soft default, training_memory_limit() under the machine's or device's memory (host_memory.memory_ceiling): a run
  above the limit then runs alone, and only a run above the ceiling is refused."""
  if memory_limit_bytes is not None:
    return memory_limit_bytes, memory_limit_bytes
  return training_memory_limit(), host_memory.memory_ceiling()


def training_run_chunk(model: Model, stage: StageConfig, float_type=np.float64,
                       memory_limit_bytes: int | None = None) -> int | None:
  """The most runs one training call may hold within `memory_limit_bytes` (training_bytes), or None (no bound).

  Args:
    model: the model.
    stage: the stage.
    float_type: the training float type.
    memory_limit_bytes: the bound, a hard one: a run that alone needs more is refused. None: the soft default
      training_memory_limit() (a run that alone needs more is trained alone), refused only above the machine's or
      device's memory (host_memory.memory_ceiling).

  Returns:
    The run count (>= 1), or None when there is no bound; a one-line ValueError when one run does not fit.
  """
  limit, ceiling = memory_bounds(memory_limit_bytes)
  if limit is None:
    return None
  one = training_bytes(model, stage, 1, float_type)
  if ceiling is not None and one > ceiling:
    bound = "the training memory limit" if memory_limit_bytes is not None else "this machine's memory"
    raise ValueError(f"training one run of {model.config.label()} at depth {model.depth} ({stage.objective}, "
                     f"{stage.gradient} gradient, batch {stage.batch_size}) needs an estimated "
                     f"{metrics.memory_size(one)}, above {bound} {metrics.memory_size(ceiling)}; allowed: a smaller "
                     "model, depth or batch_size, or a larger memory_limit_bytes")
  tokens = training_bytes(model, stage, 0, float_type)
  return max(1, (limit - tokens) // (one - tokens))


def memory_groups(groups: list[np.ndarray], max_runs: int | None) -> list[np.ndarray]:
  """`groups` (index arrays, e.g. budget_groups') split so that no call holds more than `max_runs` runs: a group of
  n runs becomes ceil(n / max_runs) calls of nearly equal size (one compiled program for all), in order."""
  if max_runs is None:
    return list(groups)
  parts = [np.array_split(group, max(1, -(-group.size // max_runs))) for group in groups]
  return [part for split in parts for part in split if part.size] or list(groups)


def objective_run_chunk(model: Model, stage: StageConfig, runs: int,
                        memory_limit_bytes: int = metrics.MEMORY_LIMIT_BYTES) -> int:
  """Runs whose exact objective (over every response) train_batch evaluates at once: all `runs` if their working
  set fits memory_limit_bytes (metrics.evaluation_bytes, plus the pair matrix of a DPO objective), else the largest
  power of two that does (at least 1).

  At paper scale the second stage of `elasticity simulate rebound` evaluated about a hundred runs of depth-10 trees
  at once and reached 8 GB resident on the CPU for a moment after each call.
  """
  responses = token_tree.n_leaves(model.depth)

  def working_set(count: int) -> int:
    pairs = count * responses**2 * metrics.FLOAT64_BYTES if stage.objective == "dpo" else 0
    return metrics.evaluation_bytes(model, count, responses) + pairs

  if working_set(runs) <= memory_limit_bytes:
    return max(runs, 1)
  chunk = metrics.power_of_two_at_least(runs)
  while chunk > 1 and working_set(chunk) > memory_limit_bytes:
    chunk //= 2
  return chunk


def _final_objective(model: Model, stage: StageConfig, params, tokens, data, runs: int) -> np.ndarray:
  """The exact objective of the first `runs` runs (float64), a chunk of runs at a time (objective_run_chunk)."""
  objective = _batched_objective(model, _static_fields(stage))
  padded = jax.tree_util.tree_leaves(params)[0].shape[0]
  chunk = objective_run_chunk(model, stage, padded)
  if chunk >= padded:  # one call, as before chunking existed
    return np.asarray(objective(params, tokens, data), dtype=np.float64)[:runs]
  of_rows = _batched_objective_of_rows(model, _static_fields(stage))
  parts = [np.asarray(of_rows(params, tokens, data, np.minimum(np.arange(start, start + chunk), padded - 1)),
                      dtype=np.float64)  # the last chunk repeats the last row
           for start in range(0, runs, chunk)]
  return np.concatenate(parts)[:runs]


def _given_state(optimizer: str, opt_state, params, float_type: np.dtype, runs: int, padded: int):
  """A caller's optimiser state checked against the fresh one of `params` (structure, shapes), cast and padded."""
  fresh = optimizer_state(optimizer, params)  # params are already padded to `padded` rows
  given_structure, fresh_structure = jax.tree_util.tree_structure(opt_state), jax.tree_util.tree_structure(fresh)
  if given_structure != fresh_structure:
    raise ValueError(f"opt_state has structure {given_structure}; allowed: the {optimizer} state of these params "
                     f"({fresh_structure})")
  host = _host_tree(opt_state)
  for leaf, like in zip(jax.tree_util.tree_leaves(host), jax.tree_util.tree_leaves(fresh), strict=True):
    if leaf.shape != (runs,) + like.shape[1:]:
      raise ValueError(f"opt_state has a leaf of shape {leaf.shape}; allowed: {(runs,) + like.shape[1:]} (one row "
                       "per run)")

  def cast(leaf, like):
    return _pad_rows(leaf.astype(float_type if np.issubdtype(like.dtype, np.floating) else like.dtype), padded)

  return jax.tree_util.tree_map(cast, host, fresh)


def _cast_params(params, float_type: np.dtype, runs: int, padded: int):
  """`params` with float leaves in `float_type` and `padded` rows; the same device arrays when nothing changes."""
  def target(dtype) -> np.dtype:
    return float_type if np.issubdtype(dtype, np.floating) else dtype

  leaves = jax.tree_util.tree_leaves(params)
  if padded == runs and all(isinstance(x, jax.Array) and target(x.dtype) == x.dtype for x in leaves):
    return params
  return jax.tree_util.tree_map(lambda x: _pad_rows(x.astype(target(x.dtype)), padded), _host_tree(params))


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
