"""The rebound experiment in trained toy transformers: align, then fine-tune on the opposite behaviour.

For each grid cell (family, model size, pre-training mass, order) and seed: pre-train on D_p, fine-tune on n1
first-stage examples (alignment), then on n2 second-stage examples of the other behaviour, by SFT or DPO.
Every model is measured exactly over all responses of the tree: the score (probability of the first stage's
behaviour), compression rates of the three sources in bits per response, and KL to the pre-trained model in
nats per response. The paper's Fig. 4 predicts a fast, then slow fall of the score with n2 (elasticity).
"""

from __future__ import annotations

import dataclasses
import functools
import os

import jax
import numpy as np

from experiments.rebound.config import ReboundConfig
from experiments.run_dir import RunDir, run_units
from theory import seeding, token_tree
from theory.conventions import ALIGN, LN2, PERTURB, PRETRAIN
from toy_models import checkpoints, datasets, metrics, training
from toy_models.models import build_model

POSITIVE, NEGATIVE = ALIGN, PERTURB  # source rows of the two behaviours (aligned and unaligned subtrees).


@dataclasses.dataclass(frozen=True)
class Unit:
  """One grid cell: a source family, a transformer size, a pre-training mass and an order (all seeds)."""

  family: str
  size: tuple[int, int]
  pretrain_mass: float
  order: str

  @property
  def name(self) -> str:
    """File name of the unit's results."""
    return f"{self.family}_w{self.size[0]}L{self.size[1]}_p{self.pretrain_mass:g}_{self.order}"

  @property
  def pretrain_name(self) -> str:
    """Checkpoint name of the pre-trained models (shared by both orders)."""
    return f"{self.family}_w{self.size[0]}L{self.size[1]}_p{self.pretrain_mass:g}_pretrain"


def units(config: ReboundConfig) -> list[Unit]:
  """Every unit of the experiment, in the order they run."""
  return [Unit(f, tuple(s), float(m), o) for f in config.families for s in config.model_sizes
          for m in config.pretrain_masses for o in config.orders]


def behaviours(order: str) -> tuple[int, int]:
  """Source rows (first stage, second stage) of an order."""
  return (POSITIVE, NEGATIVE) if order == "positive_first" else (NEGATIVE, POSITIVE)


def unit_data(config: ReboundConfig, unit: Unit) -> dict[str, np.ndarray]:
  """Sources and example counts of every seed of one unit.

  Returns 'sources' (seeds, 3, n_leaves), 'pretrain' (seeds, n_leaves), 'first' (seeds, n_first, n_leaves),
  'second' and 'rejected' (seeds, n_second, n_leaves): counts of responses. Samples of one source are nested in
  their size (a larger dataset contains every smaller one); the rejected responses of DPO pairs are a separate
  sample of the first stage's behaviour.
  """
  first_row, second_row = behaviours(unit.order)
  out = {"sources": [], "pretrain": [], "first": [], "second": [], "rejected": []}
  for repetition in range(config.seeds):
    probs = config.sources(unit.family, repetition)
    root = config.seed + repetition

    def sample(row, sizes, *stream, root=root, probs=probs):
      return datasets.sample_counts(probs[row], sizes, seed=seeding.derive(root, *stream), sampling=config.sampling)

    masses = np.asarray(config.pretrain_masses, dtype=np.float64)
    out["sources"].append(probs)
    out["pretrain"].append(sample(PRETRAIN, masses, "pretrain")[list(masses).index(unit.pretrain_mass)])
    out["first"].append(sample(first_row, config.first_sizes, "first", unit.order))
    out["second"].append(sample(second_row, config.second_sizes, "second", unit.order))
    out["rejected"].append(sample(first_row, config.second_sizes, "rejected", unit.order))
  return {name: np.stack(value) for name, value in out.items()}


def _keys(config: ReboundConfig, stage: int, count: int) -> jax.Array:
  """`count` keys per seed for training stage `stage` (seed-major): init and minibatch streams (theory.seeding)."""
  return jax.numpy.stack([jax.random.PRNGKey(seeding.derive(config.seed + repetition, "train", stage, index))
                          for repetition in range(config.seeds) for index in range(count)])


@functools.partial(jax.jit, static_argnums=1)
def _repeat(params, count: int):
  """Each run's parameters `count` times in a row along the run axis (compiled: one call, not one per leaf)."""
  return jax.tree_util.tree_map(lambda p: jax.numpy.repeat(p, count, axis=0), params)


def _pretrain(config, unit, model, data, run_dir, progress):
  """Pre-trained parameters of every seed (loaded from the shared checkpoint when saved earlier)."""
  keys = _keys(config, 0, 1)
  path = run_dir.checkpoint_path(unit.pretrain_name)
  if path.exists():
    return checkpoints.load_params(path, training.init_params(model, keys))
  params = training.init_params(model, keys)
  steps = np.full(config.seeds, config.pretrain.steps_for(unit.pretrain_mass))
  params, _ = training.train_batch(model, config.pretrain, params, data["pretrain"], steps, keys=keys,
                                   progress=progress, label=f"{unit.name} pretrain")
  checkpoints.save_params(path, params)
  return params


def run_unit(config: ReboundConfig, unit: Unit, run_dir: RunDir, progress=None) -> tuple[dict, dict]:
  """Trains and measures one unit; returns (summary, arrays) as saved.

  Arrays with a method axis have shape (methods, seeds, n_first, n_second); index 0 of n_second is the model
  after the first stage (no second-stage example), identical for every method.
  """
  model = build_model(config.model_config(unit.size), config.depth)
  data = unit_data(config, unit)
  n_seeds, n_first, n_second = config.seeds, len(config.first_sizes), len(config.second_sizes)
  pretrained = _pretrain(config, unit, model, data, run_dir, progress)
  pretrained_log2q = metrics.leaf_log2_probs(model, pretrained)  # (seeds, n)

  params = _repeat(pretrained, n_first)
  first = data["first"].reshape(n_seeds * n_first, -1)
  steps = np.array([config.first.steps_for(n) for _ in range(n_seeds) for n in config.first_sizes])
  params, first_losses = training.train_batch(model, config.first, params, first, steps,
                                              keys=_keys(config, 1, n_first), progress=progress,
                                              label=f"{unit.name} first stage")
  first_log2q = metrics.leaf_log2_probs(model, params)  # (seeds * n_first, n)

  later = n_second - 1
  tiled = _repeat(params, later)
  second = np.repeat(data["second"][:, None, 1:], n_first, axis=1).reshape(n_seeds * n_first * later, -1)
  rejected = np.repeat(data["rejected"][:, None, 1:], n_first, axis=1).reshape(second.shape)
  reference = np.repeat(first_log2q * LN2, later, axis=0)
  steps = np.array([config.second.steps_for(n) for _ in range(n_seeds * n_first) for n in config.second_sizes[1:]])
  log2q, losses = [], []
  for index, method in enumerate(config.methods):
    stage = config.second_stage(method)
    extra = {"rejected_weights": rejected, "reference_log_probs": reference} if method == "dpo" else {}
    keys = _keys(config, 2 + index, n_first * later)
    tuned, loss = training.train_batch(model, stage, tiled, second, steps, keys=keys, progress=progress,
                                       label=f"{unit.name} {method}", **extra)
    tuned_log2q = metrics.leaf_log2_probs(model, tuned).reshape(n_seeds, n_first, later, -1)
    log2q.append(np.concatenate([first_log2q.reshape(n_seeds, n_first, 1, -1), tuned_log2q], axis=2))
    losses.append(np.concatenate([first_losses.reshape(n_seeds, n_first, 1), loss.reshape(n_seeds, n_first, later)],
                                 axis=2))
  log2q = np.stack(log2q)  # (methods, seeds, n_first, n_second, n)
  arrays = measure(config, unit, log2q, pretrained_log2q, data["sources"])
  arrays.update(final_loss_nats=np.stack(losses), first_sizes=np.asarray(config.first_sizes),
                second_sizes=np.asarray(config.second_sizes),
                second_steps=np.concatenate([[0], [config.second.steps_for(n) for n in config.second_sizes[1:]]]),
                first_steps=np.asarray([config.first.steps_for(n) for n in config.first_sizes]))
  summary = {"unit": {**dataclasses.asdict(unit), "size": list(unit.size)}, "name": unit.name,
             "methods": list(config.methods), "parameter_count": model.parameter_count(),
             "pretrain_steps": config.pretrain.steps_for(unit.pretrain_mass),
             "pretrain_tokens": float(np.mean(data["pretrain"] @ token_tree.response_lengths(config.depth))),
             "score_mean": arrays["score"].mean(axis=1).tolist()}
  return summary, arrays


def measure(config: ReboundConfig, unit: Unit, log2q: np.ndarray, pretrained_log2q: np.ndarray,
            sources: np.ndarray) -> dict[str, np.ndarray]:
  """Exact metrics of every trained model (float64).

  Args:
    log2q: (methods, seeds, n_first, n_second, n_leaves) model log2-probabilities in bits.
    pretrained_log2q: (seeds, n_leaves), the pre-trained models.
    sources: (seeds, 3, n_leaves), the D_p, positive and negative sources.

  Returns:
    score (probability of the first stage's behaviour), positive_score, rates_bits (bits per response of the
    D_p, positive and negative sources; last axis 3), kl_to_pretrained_nats = KL(model || pre-trained) and
    kl_pretrained_to_model_nats = KL(pre-trained || model), in nats per response; the same for the pre-trained
    models (pretrained_*), and log2q itself.
  """
  positive = metrics.positive_score(log2q, config.depth)
  score = positive if unit.order == "positive_first" else 1.0 - positive
  reference = pretrained_log2q[None, :, None, None]
  pre_positive = metrics.positive_score(pretrained_log2q, config.depth)
  return {
      "log2q_bits": log2q, "score": score, "positive_score": positive,
      "rates_bits": metrics.rates_bits(log2q, np.broadcast_to(sources[None, :, None, None],
                                                              log2q.shape[:-1] + sources.shape[1:])),
      "kl_to_pretrained_nats": metrics.kl_nats(log2q, reference),
      "kl_pretrained_to_model_nats": metrics.kl_nats(np.broadcast_to(reference, log2q.shape), log2q),
      "pretrained_log2q_bits": pretrained_log2q,
      "pretrained_score": pre_positive if unit.order == "positive_first" else 1.0 - pre_positive,
      "pretrained_positive_score": pre_positive,
      "pretrained_rates_bits": metrics.rates_bits(pretrained_log2q, sources),
      "pretrain_source_positive_share": sources[:, PRETRAIN] @ datasets.aligned_mask(config.depth),
  }


def run(config: ReboundConfig, out_dir: str | os.PathLike, *, fresh: bool = False, progress=None) -> RunDir:
  """Runs every unit not yet saved in `out_dir` and returns the run directory.

  Args:
    config: the experiment's config.
    out_dir: the run directory (a directory holding another config's results is refused).
    fresh: discard earlier results in out_dir first.
    progress: optional object with unit_started, steps and unit_finished methods (the CLI's progress bar).

  References:
    Ji et al., "Language Models Resist Alignment", ACL 2025, Section 5.2, Fig. 4-6 and Appendix Table 3.
  """
  run_dir = RunDir(out_dir, config, fresh=fresh)
  return run_units(run_dir, units(config), lambda unit, steps: run_unit(config, unit, run_dir, steps), progress)
