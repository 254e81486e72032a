"""The Hooke's-law experiment in trained toy models: Δγ_p and Δγ_a against l, for several k, regimes and models.

For each model kind, regime and k, every seed trains the unperturbed model (l = 0) and the perturbed ones
(l in l_grid); Δγ_i(l) = γ_i(l) - γ_i(0) in bits per response, with γ_i the exact compression rate of dataset
i's empirical distribution under the trained model. The theory (docs/THEORY.md §4.4, (4.7); §5.1 for the regimes)
predicts, in the joint regime, Δγ_a / Δγ_p -> -k as l -> 0, hence a slope of 1 for log|Δγ_a / Δγ_p| against log k.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from experiments.hooke.config import HookeConfig
from experiments.run_dir import RunDir
from theory import elasticity, mixture, seeding
from theory.conventions import ALIGN, PERTURB, PRETRAIN
from toy_models import checkpoints, datasets, metrics, training
from toy_models.models import build_model


@dataclasses.dataclass(frozen=True)
class Unit:
  """One unit of work: a model kind, a regime and a k (all seeds and all l at once)."""

  model: str
  regime: str
  k: float

  @property
  def name(self) -> str:
    """File name of the unit's results."""
    return f"{self.model}_{self.regime}_k{self.k:g}"


def units(config: HookeConfig) -> list[Unit]:
  """Every unit of the experiment, in the order they run."""
  return [Unit(m, r, float(k)) for m in config.models for r in config.regimes for k in config.k_grid]


def unit_data(config: HookeConfig, k: float) -> dict[str, np.ndarray]:
  """Datasets of every seed for one k: empirical distributions and masses of (D_p, D_a, D_t(l)).

  Returns 'probs' (seeds, 1 + L, 3, n_leaves) and 'sizes' (seeds, 1 + L, 3): for l index j, the three
  datasets and their masses (at l = 0, D_t has mass 0 and
  its row is the source distribution); D_t(l) for larger l contains D_t for smaller l.
  """
  all_l = np.asarray(config.all_l())
  probs, sizes = [], []
  for repetition in range(config.seeds):
    source = config.source(repetition).probabilities()
    root = config.seed + repetition
    counts_p = datasets.sample_counts(source[PRETRAIN], [k * config.align_mass], seed=seeding.derive(root, "pretrain"),
                                      sampling=config.sampling)[0]
    counts_a = datasets.sample_counts(source[ALIGN], [config.align_mass], seed=seeding.derive(root, "align"),
                                      sampling=config.sampling)[0]
    counts_t = datasets.sample_counts(source[PERTURB], all_l * config.align_mass, seed=seeding.derive(root, "perturb"),
                                      sampling=config.sampling)
    counts = np.stack([np.broadcast_to(counts_p, counts_t.shape), np.broadcast_to(counts_a, counts_t.shape),
                       counts_t], axis=1)
    empirical = datasets.empirical(counts)
    empty = counts.sum(axis=-1) == 0  # D_t at l = 0: its rows stand for the source (mass 0, no effect)
    empirical[empty] = np.broadcast_to(source, counts.shape)[empty]
    probs.append(empirical)
    sizes.append(counts.sum(axis=-1))
  return {"probs": np.stack(probs), "sizes": np.stack(sizes)}


def _keys(config: HookeConfig, count_per_seed: int) -> jax.Array:
  """One key per run; runs of the same seed share it (same init and minibatch stream for every l)."""
  seeds = [jax.random.PRNGKey(seeding.derive(config.seed + repetition, "train")) for repetition in range(config.seeds)]
  return jax.numpy.stack([key for key in seeds for _ in range(count_per_seed)])


def _train_joint(config, unit, data, progress):
  model = build_model(config.model_config(unit.model), config.depth)
  stage = config.plan(unit.model).joint
  n_l = len(config.all_l())
  weights = (data["probs"] * data["sizes"][..., None]).sum(axis=2).reshape(config.seeds * n_l, -1)
  keys = _keys(config, n_l)
  params = training.init_params(model, keys)
  steps = np.full(weights.shape[0], stage.steps)
  params, losses = training.train_batch(model, stage, params, weights, steps, keys=keys, progress=progress,
                                        label=f"{unit.name} joint")
  log2q = metrics.leaf_log2_probs(model, params).reshape(config.seeds, n_l, -1)
  return log2q, losses.reshape(config.seeds, n_l), steps.reshape(config.seeds, n_l), None


def _train_sequential(config, unit, data, run_dir, progress):
  model = build_model(config.model_config(unit.model), config.depth)
  plan = config.plan(unit.model)
  n_l = len(config.all_l())
  base_keys = _keys(config, 1)
  params = training.init_params(model, base_keys)
  masses = data["sizes"][:, 0]  # (seeds, 3) at l = 0
  for stage_name, index in (("pretrain", PRETRAIN), ("align", ALIGN)):
    stage = getattr(plan, stage_name)
    path = run_dir.checkpoint_path(f"{unit.model}_k{unit.k:g}_{stage_name}")
    if path.exists():
      params = checkpoints.load_params(path, params)
      continue
    weights = data["probs"][:, 0, index] * masses[:, index, None]
    steps = np.array([stage.steps_for(m) for m in masses[:, index]])
    params, _ = training.train_batch(model, stage, params, weights, steps, keys=base_keys, progress=progress,
                                     label=f"{unit.name} {stage_name}")
    checkpoints.save_params(path, params)
  aligned = metrics.leaf_log2_probs(model, params)  # (seeds, n)
  stage = plan.finetune
  tiled = jax.tree_util.tree_map(lambda p: jax.numpy.repeat(p, n_l - 1, axis=0), params)
  weights = (data["probs"][:, 1:, PERTURB] * data["sizes"][:, 1:, PERTURB, None]).reshape(-1, data["probs"].shape[-1])
  steps = np.array([stage.steps_for(m) for m in data["sizes"][:, 1:, PERTURB].reshape(-1)])
  params, losses = training.train_batch(model, stage, tiled, weights, steps, keys=_keys(config, n_l - 1),
                                        progress=progress, label=f"{unit.name} finetune")
  tuned = metrics.leaf_log2_probs(model, params).reshape(config.seeds, n_l - 1, -1)
  log2q = np.concatenate([aligned[:, None], tuned], axis=1)
  losses = np.concatenate([np.full((config.seeds, 1), np.nan), losses.reshape(config.seeds, n_l - 1)], axis=1)
  steps = np.concatenate([np.zeros((config.seeds, 1), int), steps.reshape(config.seeds, n_l - 1)], axis=1)
  return log2q, losses, steps, aligned


def run_unit(config: HookeConfig, unit: Unit, run_dir: RunDir, progress=None) -> tuple[dict, dict]:
  """Trains and measures one unit; returns (summary, arrays) as saved."""
  data = unit_data(config, unit.k)
  if unit.regime == "joint":
    log2q, losses, steps, _ = _train_joint(config, unit, data, progress)
  else:
    log2q, losses, steps, _ = _train_sequential(config, unit, data, run_dir, progress)
  probs, sizes = data["probs"], data["sizes"]
  flat = metrics.exact_metrics(log2q.reshape(-1, log2q.shape[-1]), probs.reshape(-1, *probs.shape[2:]),
                               sizes.reshape(-1, 3), config.depth)
  shape = log2q.shape[:2]
  arrays = {name: value.reshape(shape + value.shape[1:]) for name, value in flat.items()}
  baseline = log2q[:, :1]
  arrays["kl_to_unperturbed_nats"] = metrics.kl_nats(log2q, baseline)
  arrays.update(losses_nats_per_token=losses, steps=steps, sizes=sizes, l=np.asarray(config.all_l()))
  # The theory's exact derivative at l = 0 for the same empirical datasets (mixture of D_p and D_a only).
  arrays["theory_ratio_at_0"] = elasticity.derivative_ratio(probs[:, 0], sizes[:, 0])
  arrays["theory_mixture_rate_bits"] = mixture.compression_rates(probs.reshape(-1, *probs.shape[2:]),
                                                                 sizes.reshape(-1, 3)).reshape(shape + (3,))
  delta = arrays["rate_bits_per_response"] - arrays["rate_bits_per_response"][:, :1]
  ratio = delta[:, 1:, ALIGN] / delta[:, 1:, PRETRAIN]
  # Model against theory, for datasets actually trained on (D_t at l = 0 has mass 0 and may lie off q's support).
  gap = np.abs(arrays["rate_bits_per_response"] - arrays["theory_rate_bits_per_response"])[sizes > 0]
  summary = {"unit": dataclasses.asdict(unit), "name": unit.name,
             "ratio_by_l": {f"{l:g}": ratio[:, j].tolist() for j, l in enumerate(config.l_grid)},
             "max_abs_rate_gap_to_theory_bits": float(np.nanmax(gap)),
             "parameter_count": build_model(config.model_config(unit.model), config.depth).parameter_count()}
  return summary, arrays
