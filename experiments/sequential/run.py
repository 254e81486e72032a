"""The sequential study's units: one model, one arm (joint or sequential) and one k, every seed at once.

Joint arm (docs/THEORY.md §5.1-§5.2): full-batch Adam on the count-weighted objective at l = 0 with its state
carried between the early-stopping points `joint_stops`, the implicit derivative d gamma_i/dl at each stop, then
implicit_elasticity.converge_joint (Newton-CG) and the implicit derivative at the converged point.
Sequential arm (§5.3, §5.6, §5.7): per pre-registered condition, pre-train on D_p, align on D_a, fine-tune on D_t
alone; Delta gamma_i = gamma_i(after fine-tuning) - gamma_i(after alignment) in bits per response; the instantaneous
elasticity E_i at the post-alignment state with that condition's optimiser and state; and replay runs that fine-tune
on n_t P_t + rho (n_p P_p + n_a P_a), each paired with a run on the replayed data alone (same steps, same keys).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from experiments.run_dir import RunDir
from experiments.sequential.config import CONDITIONS, PRETRAIN_GROUPS, ModelPlan, SequentialConfig, pretrain_group
from theory import seeding, token_tree
from theory.conventions import ALIGN, PERTURB, PRETRAIN
from toy_models import datasets, implicit_elasticity, instantaneous_elasticity, metrics, run_chunks, training
from toy_models.models import Model, build_model

STAGES = ("pretrain", "align", "finetune")
"""Axis 1 of the saved `steps` and `learning_rates` arrays of a sequential unit."""


@dataclasses.dataclass(frozen=True)
class Unit:
  """One unit of work: a model, an arm ('joint' or 'sequential') and a k (every seed and condition at once)."""

  model: str
  arm: str
  k: float

  @property
  def name(self) -> str:
    """File name of the unit's results."""
    return f"{self.model}_{self.arm}_k{self.k:g}"


def units(config: SequentialConfig) -> list[Unit]:
  """Every unit of the study, in the order they run."""
  return [Unit(m, a, float(k)) for m in config.model_names() for a in config.arms for k in config.k_grid]


def unit_data(config: SequentialConfig, k: float) -> dict[str, np.ndarray]:
  """Datasets of every seed at one k, as exact expected counts.

  Args:
    config: the study's config (sources, |D_a|, l, seeds).
    k: |D_p| / |D_a|.

  Returns:
    'probs' (seeds, 3, n_leaves): leaf distributions of (D_p, D_a, D_t); 'sizes' (seeds, 3): their masses in
    responses (k n_a, n_a, l n_a); 'counts' = sizes * probs; 'tokens' (seeds, 3): each dataset's tokens
    sum_x count(x) |x| (EOS counted: the token-mean loss divides by it).

  References:
    Ji et al., "Language Models Resist Alignment", ACL 2025, Section 4 (D_p, D_a, D_t and k = |D_p| / |D_a|).
  """
  probs, sizes = [], []
  masses = np.array([k * config.align_mass, config.align_mass, config.l * config.align_mass])
  for repetition in range(config.seeds):
    source = config.source(repetition).probabilities()
    counts = masses[:, None] * source  # exact expected counts (datasets.sample_counts with sampling='exact')
    probs.append(datasets.empirical(counts))
    sizes.append(counts.sum(axis=-1))
  probs, sizes = np.stack(probs), np.stack(sizes)
  counts = sizes[..., None] * probs
  lengths = token_tree.response_lengths(config.depth).astype(np.float64)
  return {"probs": probs, "sizes": sizes, "counts": counts, "tokens": counts @ lengths}


def keys(config: SequentialConfig, stream: str) -> np.ndarray:
  """One PRNG key per seed for the named stream ('init', or a stage's minibatch draws), shape (seeds, 2)."""
  return np.stack([np.asarray(jax.random.PRNGKey(seeding.derive(config.seed + r, "sequential", stream)))
                   for r in range(config.seeds)])


def rates_of(log2q: np.ndarray, probs: np.ndarray) -> np.ndarray:
  """gamma_i in bits per response of models log2q (..., n_leaves) on datasets probs (..., 3, n_leaves) whose leading
  axes broadcast against log2q's (e.g. (seeds, 3, n) for log2q (conditions, seeds, n)): shape (..., 3)."""
  full = np.broadcast_to(probs, log2q.shape[:-1] + probs.shape[-2:])
  return metrics.rates_bits(log2q, full)


def _tree_rows(tree, index):
  return jax.tree_util.tree_map(lambda x: np.asarray(x)[index], tree)


def _tile(tree, times: int):
  return jax.tree_util.tree_map(lambda x: np.concatenate([np.asarray(x)] * times), tree)


# The joint arm.

@functools.lru_cache(maxsize=16)
def _implicit_batch(model: Model, method: str, max_iterations: int):
  """implicit_elasticity vmapped over runs (params, probs, sizes) with a fixed Krylov method, compiled once."""
  solver = implicit_elasticity.SolverConfig(method=method, max_iterations=max_iterations)

  def one(params, probs, sizes):
    result = implicit_elasticity.implicit_elasticity(model, params, probs, sizes, solver=solver)
    norm = jnp.linalg.norm(ravel_pytree(result.parameter_derivative)[0])
    return dataclasses.replace(result, parameter_derivative=norm)

  return jax.jit(jax.vmap(one))


JOINT_FIELDS = ("rate_derivatives_bits", "ratio", "weighted_residual_bits", "weighted_scale_bits",
                "stationarity_term_bits", "objective_gradient_norm_nats", "solver_residual", "solver_iterations",
                "negative_curvature", "used_minres")


def _joint_point(result) -> dict[str, np.ndarray]:
  out = {name: np.asarray(getattr(result, name)) for name in JOINT_FIELDS}
  out["parameter_derivative_norm"] = np.asarray(result.parameter_derivative)
  return out


def _run_joint(config: SequentialConfig, unit: Unit, data: dict, progress) -> tuple[dict, dict]:
  model = build_model(config.model_config(unit.model), config.depth)
  plan = config.plan(unit.model)
  kind_method = "minres" if model.config.kind == "transformer" else "cg"  # CG: the softmax tables' J is convex
  probs = data["probs"]
  sizes = data["sizes"].copy()
  sizes[:, PERTURB] = 0.0  # l = 0: the perturbation enters only through the right-hand side n_a grad CE_t
  weights = data["counts"][:, PRETRAIN] + data["counts"][:, ALIGN]
  init_keys = keys(config, "init")
  params = training.init_params(model, init_keys)
  stage = plan.stage("adam", "expected", 1)
  rates = np.full(config.seeds, plan.joint_learning_rate)
  points, log2q, state, done = [], [], None, 0
  implicit = _implicit_batch(model, kind_method, plan.degradation_iterations)
  for stop in plan.joint_stops:
    params, _, state = training.train_batch(model, stage, params, weights, np.full(config.seeds, stop - done),
                                            keys=init_keys, learning_rates=rates, opt_state=state, return_state=True,
                                            progress=progress, label=f"{unit.name} Adam to {stop}")
    done = stop
    points.append(_joint_point(run_chunks.call_in_run_chunks(
        implicit, params, jnp.asarray(probs), jnp.asarray(sizes), memory_limit_bytes=training.training_memory_limit(),
        label=f"the implicit elasticity of {model.config.label()}")))
    log2q.append(metrics.leaf_log2_probs(model, params))
  converge = implicit_elasticity.ConvergeConfig(adam_steps=0, newton_steps=plan.newton_steps,
                                                cg_iterations=plan.cg_iterations)
  solver = implicit_elasticity.SolverConfig(method="auto", max_iterations=plan.solver_iterations)
  converged, newton, final, fitted_runs = [], [], [], []
  for r in range(config.seeds):
    fitted, report = implicit_elasticity.converge_joint(model, _tree_rows(params, r), probs[r], sizes[r],
                                                        config=converge)
    result = implicit_elasticity.implicit_elasticity(model, fitted, probs[r], sizes[r], solver=solver)
    norm = jnp.linalg.norm(ravel_pytree(result.parameter_derivative)[0])
    final.append(_joint_point(dataclasses.replace(result, parameter_derivative=norm)))
    converged.append(report.converged)
    newton.append(report.newton_steps)
    fitted_runs.append(jax.tree_util.tree_map(lambda x: np.asarray(x)[None], fitted))
    if progress is not None:
      progress(r + 1, config.seeds, f"{unit.name} converged")
  points.append({name: np.stack([f[name] for f in final]) for name in final[0]})
  log2q.append(metrics.leaf_log2_probs(model, run_chunks.joined_on_host(fitted_runs)))
  arrays = {name: np.stack([p[name] for p in points], axis=1) for name in points[0]}  # (seeds, stops + 1, ...)
  log2q = np.stack(log2q, axis=1)  # (seeds, stops + 1, n_leaves)
  arrays.update(stops=np.asarray(plan.joint_stops), log2q=log2q, rates_bits=rates_of(log2q, probs[:, None]),
                newton_steps=np.asarray(newton), newton_converged=np.asarray(converged), probs=probs, sizes=sizes)
  ratio = arrays["ratio"][:, -1]
  summary = {"name": unit.name, "unit": dataclasses.asdict(unit), "parameter_count": model.parameter_count(),
             "minus_ratio_over_k_converged": (-ratio / unit.k).tolist(),
             "max_relative_residual_converged": float(np.max(np.abs(arrays["weighted_residual_bits"][:, -1])
                                                             / arrays["weighted_scale_bits"][:, -1]))}
  return summary, arrays


# The sequential arm.

@dataclasses.dataclass(frozen=True)
class _Runs:
  """A block of runs (one per seed, or several per seed) that go through one training stage together."""

  stage: object  # the StageConfig (runs with the same one share a train_batch call).
  params: dict  # starting parameters (leading run axis).
  weights: np.ndarray  # (runs, n_leaves) counts of the stage's data.
  steps: np.ndarray  # (runs,) steps.
  rates: np.ndarray  # (runs,) learning rates.
  keys: np.ndarray  # (runs, 2) minibatch keys.
  state: object = None  # the optimiser state to carry (leading run axis), None for a fresh one.


def _train_blocks(model: Model, blocks: dict[str, _Runs], progress, label: str) -> dict[str, tuple]:
  """Trains every block; returns name -> (params, state) with a leading run axis.

  Blocks with the same stage and the same largest budget share one train_batch call (a vmapped batch steps every
  run until its longest run is done, so short and long budgets are kept apart; both share the compiled program).
  """
  out = {}
  by_stage: dict = {}
  for name, block in blocks.items():
    by_stage.setdefault((block.stage, int(np.max(block.steps))), []).append(name)
  for (stage, _), names in by_stage.items():
    parts = [blocks[n] for n in names]
    sizes = [len(p.steps) for p in parts]
    carried = any(p.state is not None for p in parts)
    state = None
    if carried:
      state = run_chunks.joined_on_host([p.state if p.state is not None
                                         else training.optimizer_state(stage.optimizer, p.params) for p in parts])
    params, _, final = training.train_batch(
        model, stage, run_chunks.joined_on_host([p.params for p in parts]), np.concatenate([p.weights for p in parts]),
        np.concatenate([p.steps for p in parts]), keys=np.concatenate([p.keys for p in parts]),
        learning_rates=np.concatenate([p.rates for p in parts]), opt_state=state, return_state=True,
        progress=progress, label=f"{label} {stage.optimizer}/{stage.gradient}")
    bounds = np.cumsum([0] + sizes)
    for name, start, stop in zip(names, bounds[:-1], bounds[1:], strict=True):
      rows = slice(int(start), int(stop))
      out[name] = (_tree_rows(params, rows), _tree_rows(final, rows))
  return out


def mean_loss_steps(epochs: float, examples: np.ndarray, batch_size: int) -> np.ndarray:
  """Steps of a mean-loss stage: ceil(epochs * examples / batch_size), at least 1 where there are examples, else 0.

  Args:
    epochs: passes over the data.
    examples: the data's size in responses, per run.
    batch_size: responses per step.

  Returns:
    int64 steps per run.

  References:
    Ji et al., "Language Models Resist Alignment", ACL 2025, Section 5 (stages trained for a number of epochs).
  """
  steps = np.ceil(epochs * np.asarray(examples, np.float64) / batch_size - 1e-9).astype(np.int64)
  return np.where(np.asarray(examples) > 0, np.maximum(steps, 1), 0)


def _stage_budget(plan: ModelPlan, condition, stage: str, data: dict) -> tuple[np.ndarray, np.ndarray]:
  """(steps, learning rates) per seed of one stage of a condition (not replay).

  Mean loss: steps = ceil(epochs * n / batch) at the optimiser's constant rate. Sum loss (SGD): fixed steps and one
  learning rate eta = sum_pretrain_rate / T_p for every stage; train_batch's token-mean loss is the summed loss
  divided by the stage's tokens T_s, so the summed loss at eta is the mean loss at eta * T_s.
  """
  index = {"pretrain": PRETRAIN, "align": ALIGN, "finetune": PERTURB}[stage]
  seeds = data["sizes"].shape[0]
  if condition.loss == "sum":
    steps = {"pretrain": plan.sum_pretrain_steps, "finetune": plan.sum_finetune_steps,
             "align": plan.sum_align_steps_converged if condition.alignment == "converged"
             else plan.sum_align_steps_short}[stage]
    eta = plan.sum_pretrain_rate / data["tokens"][:, PRETRAIN]
    return np.full(seeds, steps), eta * data["tokens"][:, index]
  epochs, batch = {"pretrain": (plan.pretrain_epochs, plan.pretrain_batch_size),
                   "align": (plan.align_epochs_converged if condition.alignment == "converged"
                             else plan.align_epochs_short, plan.align_batch_size),
                   "finetune": (plan.finetune_epochs, plan.finetune_batch_size)}[stage]
  rate = plan.adam_learning_rate if condition.optimizer == "adam" else plan.sgd_learning_rate
  return mean_loss_steps(epochs, data["sizes"][:, index], batch), np.full(seeds, rate)


def _stage_config(plan: ModelPlan, condition, stage: str):
  gradient = (plan.finetune_gradient if stage == "finetune" else plan.gradient if condition.loss == "mean"
              else "expected")
  batch = {"pretrain": plan.pretrain_batch_size, "align": plan.align_batch_size,
           "finetune": plan.finetune_batch_size}[stage]
  return plan.stage(condition.optimizer, "expected" if condition.loss == "sum" else gradient, batch)


def replay_budget(plan: ModelPlan, condition, data: dict, rho: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(steps, learning rates, capped) per seed of a replay fine-tuning at fraction rho.

  Args:
    plan: the model's plan (epochs, batch size, cap, rates).
    condition: the condition (config.CONDITIONS) whose fine-tuning is replayed.
    data: unit_data of the unit.
    rho: the replayed share of D_p and D_a (>= 0).

  Returns:
    For the data n_t P_t + rho (n_p P_p + n_a P_a): a mean-loss condition takes ceil(epochs * (n_t + rho (n_p +
    n_a)) / batch) steps, capped at replay_max_steps (capped = True where the cap binds), at its constant rate; a
    sum-loss condition its fixed fine-tuning steps at eta * T_w (T_w the data's tokens).

  References:
    Rolnick et al., "Experience Replay for Continual Learning", NeurIPS 2019 (replaying earlier data);
    docs/THEORY.md §5.7 (replay as a bridge between the sequential and the joint regime).
  """
  sizes, tokens = data["sizes"], data["tokens"]
  seeds = sizes.shape[0]
  if condition.loss == "sum":
    eta = plan.sum_pretrain_rate / tokens[:, PRETRAIN]
    replay_tokens = tokens[:, PERTURB] + rho * (tokens[:, PRETRAIN] + tokens[:, ALIGN])
    return np.full(seeds, plan.sum_finetune_steps), eta * replay_tokens, np.zeros(seeds, bool)
  examples = sizes[:, PERTURB] + rho * (sizes[:, PRETRAIN] + sizes[:, ALIGN])
  wanted = mean_loss_steps(plan.finetune_epochs, examples, plan.finetune_batch_size)
  rate = plan.adam_learning_rate if condition.optimizer == "adam" else plan.sgd_learning_rate
  return np.minimum(wanted, plan.replay_max_steps), np.full(seeds, rate), wanted > plan.replay_max_steps


@functools.lru_cache(maxsize=16)
def _instantaneous_batch(model: Model, reduction: str, optimizer: str):
  """instantaneous_elasticity vmapped over runs (params, probs, fine-tuning counts, Adam state), compiled once."""
  def one(params, probs, finetune_weights, state):
    result = instantaneous_elasticity.instantaneous_elasticity(
        model, params, probs, finetune_weights, reduction=reduction, optimizer=optimizer, adam_state=state)
    return result.rate_changes_bits, result.loss

  return jax.jit(jax.vmap(one))


def _instantaneous(model, condition, params, data, state) -> tuple[np.ndarray, np.ndarray]:
  """E_i at `params` (one run per seed) with the condition's optimiser: SGD, or Adam from `state` (None: fresh)."""
  fn = _instantaneous_batch(model, condition.loss, condition.optimizer)
  changes, loss = run_chunks.call_in_run_chunks(
      fn, params, jnp.asarray(data["probs"]), jnp.asarray(data["counts"][:, PERTURB]),
      state if condition.optimizer == "adam" else None, memory_limit_bytes=training.training_memory_limit(),
      label=f"the instantaneous elasticity of {model.config.label()}")
  return np.asarray(changes), np.asarray(loss)


def _run_sequential(config: SequentialConfig, unit: Unit, data: dict, progress) -> tuple[dict, dict]:
  model = build_model(config.model_config(unit.model), config.depth)
  plan = config.plan(unit.model)
  conditions = {name: CONDITIONS[name] for name in config.conditions}
  counts = data["counts"]
  init = training.init_params(model, keys(config, "init"))
  stage_keys = {stage: keys(config, stage) for stage in STAGES}
  # Pre-training: one per optimiser and loss in use (it does not depend on the later stages).
  groups = {pretrain_group(c): c for c in conditions.values()}
  blocks = {}
  for group in (g for g in PRETRAIN_GROUPS if g in groups):
    steps, rates = _stage_budget(plan, groups[group], "pretrain", data)
    blocks[group] = _Runs(_stage_config(plan, groups[group], "pretrain"), init, counts[:, PRETRAIN], steps, rates,
                          stage_keys["pretrain"])
  pretrained = _train_blocks(model, blocks, progress, f"{unit.name} pretrain")
  budgets = {name: {stage: _stage_budget(plan, c, stage, data) for stage in STAGES} for name, c in conditions.items()}
  # Alignment: from the group's pre-trained state; 'carried' takes its Adam state along.
  blocks = {}
  for name, c in conditions.items():
    params, state = pretrained[pretrain_group(c)]
    steps, rates = budgets[name]["align"]
    blocks[name] = _Runs(_stage_config(plan, c, "align"), params, counts[:, ALIGN], steps, rates, stage_keys["align"],
                         state if c.state == "carried" else None)
  aligned = _train_blocks(model, blocks, progress, f"{unit.name} align")
  # Fine-tuning on D_t alone, and the instantaneous elasticity at the post-alignment state.
  blocks, changes, losses, counts_before = {}, [], [], []
  for name, c in conditions.items():
    params, state = aligned[name]
    carried = state if c.state == "carried" else None
    steps, rates = budgets[name]["finetune"]
    blocks[name] = _Runs(_stage_config(plan, c, "finetune"), params, counts[:, PERTURB], steps, rates,
                         stage_keys["finetune"], carried)
    change, loss = _instantaneous(model, c, params, data, carried)
    changes.append(change)
    losses.append(loss)
    counts_before.append(np.asarray(carried.count) if carried is not None and c.optimizer == "adam"
                         else np.zeros(config.seeds, np.int64))
  tuned = _train_blocks(model, blocks, progress, f"{unit.name} finetune")
  # Replay: n_t P_t + rho (n_p P_p + n_a P_a), each paired with the replayed data alone (same steps and keys).
  blocks, replay_steps, replay_capped = {}, [], []
  fractions = np.asarray(config.replay_fractions)
  for name in config.replay_conditions:
    c = conditions[name]
    params, state = aligned[name]
    carried = state if c.state == "carried" else None
    steps_r, capped_r = [], []
    for j, rho in enumerate(fractions):
      replayed = rho * (counts[:, PRETRAIN] + counts[:, ALIGN])
      steps, rates, capped = replay_budget(plan, c, data, float(rho))
      steps_r.append(steps)
      capped_r.append(capped)
      for with_t, weights in ((1, counts[:, PERTURB] + replayed), (0, replayed)):
        run_steps = steps if with_t or rho > 0 else np.zeros_like(steps)  # rho = 0 alone: no data, no steps
        blocks[(name, j, with_t)] = _Runs(_stage_config(plan, c, "finetune"), params, weights, run_steps, rates,
                                          stage_keys["finetune"], carried)
    replay_steps.append(np.stack(steps_r))
    replay_capped.append(np.stack(capped_r))
  replayed = _train_blocks(model, blocks, progress, f"{unit.name} replay") if blocks else {}
  # Exact measurements of every state (float64, every response enumerated).
  names = list(conditions)

  def measure(trees):
    return metrics.leaf_log2_probs(model, run_chunks.joined_on_host(trees)).reshape(len(trees), config.seeds, -1)

  log2q_pretrained = measure([pretrained[pretrain_group(conditions[n])][0] for n in names])
  log2q_aligned = measure([aligned[n][0] for n in names])
  log2q_tuned = measure([tuned[n][0] for n in names])
  probs = data["probs"]
  arrays = {
      "log2q_pretrained": log2q_pretrained, "log2q_aligned": log2q_aligned, "log2q_tuned": log2q_tuned,
      "rates_pretrained_bits": rates_of(log2q_pretrained, probs), "rates_aligned_bits": rates_of(log2q_aligned, probs),
      "rates_tuned_bits": rates_of(log2q_tuned, probs),
      "instantaneous_bits": np.stack(changes), "instantaneous_loss": np.stack(losses),
      "adam_count_before_finetune": np.stack(counts_before),
      "steps": np.stack([np.stack([budgets[n][s][0] for s in STAGES]) for n in names]),
      "learning_rates": np.stack([np.stack([budgets[n][s][1] for s in STAGES]) for n in names]),
      "probs": probs, "sizes": data["sizes"], "tokens": data["tokens"], "replay_fractions": fractions}
  if config.replay_conditions:
    shape = (len(config.replay_conditions), len(fractions), 2, config.seeds)
    order = [(n, j, w) for n in config.replay_conditions for j in range(len(fractions)) for w in (1, 0)]
    log2q_replay = metrics.leaf_log2_probs(model, run_chunks.joined_on_host([replayed[key][0] for key in order]))
    log2q_replay = log2q_replay.reshape(shape + (-1,))
    arrays.update(log2q_replay=log2q_replay, rates_replay_bits=rates_of(log2q_replay, probs),
                  replay_steps=np.stack(replay_steps), replay_capped=np.stack(replay_capped))
  delta = arrays["rates_tuned_bits"] - arrays["rates_aligned_bits"]
  with np.errstate(divide="ignore", invalid="ignore"):
    ratio = delta[..., ALIGN] / delta[..., PRETRAIN]
  summary = {"name": unit.name, "unit": dataclasses.asdict(unit), "conditions": names,
             "replay_conditions": list(config.replay_conditions), "parameter_count": model.parameter_count(),
             "ratio_mean_by_condition": {n: float(np.mean(ratio[i])) for i, n in enumerate(names)}}
  return summary, arrays


def run_unit(config: SequentialConfig, unit: Unit, run_dir: RunDir, progress=None) -> tuple[dict, dict]:
  """Trains and measures one unit (see the module docstring for the arms).

  Args:
    config: the study's config.
    unit: the model, arm and k.
    run_dir: the run directory (unused: a unit needs no checkpoints).
    progress: optional callable(done, total, label) between training segments.

  Returns:
    (summary, arrays) as saved: a JSON-able dict and float64 arrays, seeds along an axis of every array.

  References:
    Koh & Liang, "Understanding black-box predictions via influence functions", ICML 2017 (the joint arm's implicit
    derivative); Kingma & Ba, "Adam", ICLR 2015 (the optimiser state the conditions reset or carry).
  """
  del run_dir
  data = unit_data(config, unit.k)
  if unit.arm == "joint":
    return _run_joint(config, unit, data, progress)
  return _run_sequential(config, unit, data, progress)
