"""The resistance experiment in trained toy transformers: forward against inverse alignment (paper Table 1).

Per seed, alignment dataset and model size: pre-train, SFT on the alignment dataset with checkpoints θ1, θ2, θ3
along one run, then for each pair (θi, θj), i < j, train θi on θj's outputs (forward alignment) and θj on θi's
(inverse alignment) for the same budget and minibatch stream. The paper predicts a lower final training loss for
inverse alignment: a model returns to an earlier state more easily than it moves to a later one.
"""

from __future__ import annotations

import dataclasses
import os

import jax
import numpy as np

from theory import token_tree
from toy_models import datasets, metrics, training
from toy_models.models import build_model
from toy_models.resistance_config import PAIRS, ResistanceConfig
from toy_models.run_dir import RunDir, run_units

LN2 = float(np.log(2.0))


@dataclasses.dataclass(frozen=True)
class Unit:
  """One alignment dataset and one model size (all seeds, all pairs, both directions)."""

  dataset: str
  size: tuple[int, int]

  @property
  def name(self) -> str:
    """File name of the unit's results."""
    return f"{self.dataset}_w{self.size[0]}L{self.size[1]}"


def units(config: ResistanceConfig) -> list[Unit]:
  """Every unit of the experiment, in the order they run."""
  return [Unit(d, tuple(s)) for d in config.datasets for s in config.model_sizes]


def _keys(config: ResistanceConfig, stage: int, count: int) -> jax.Array:
  """`count` keys per seed for stage `stage`, seed-major."""
  return jax.numpy.concatenate([jax.random.split(jax.random.fold_in(jax.random.PRNGKey(config.seed + r), stage), count)
                                for r in range(config.seeds)])


def _repeat(params, count: int):
  return jax.tree_util.tree_map(lambda p: jax.numpy.repeat(p, count, axis=0), params)


def token_entropy_nats(weights: np.ndarray, depth: int) -> np.ndarray:
  """The smallest SFT loss on data with leaf weights `weights`: sum w (-ln w) / sum w |x|, nats per token (...,)."""
  probs = datasets.empirical(weights)
  terms = np.zeros_like(probs)
  np.multiply(-probs, np.log(probs, where=probs > 0, out=np.zeros_like(probs)), out=terms, where=probs > 0)
  return terms.sum(axis=-1) / (probs @ token_tree.response_lengths(depth))


def kl_target_nats(target: np.ndarray, log2q: np.ndarray) -> np.ndarray:
  """KL(target ‖ model) in nats per response, target a leaf distribution (..., n) and log2q the model's."""
  probs = datasets.empirical(target)
  log_target = np.log(probs, where=probs > 0, out=np.zeros_like(probs))
  terms = np.zeros(np.broadcast_shapes(probs.shape, np.shape(log2q)))
  np.multiply(probs, log_target - np.asarray(log2q) * LN2, out=terms, where=probs > 0)
  return terms.sum(axis=-1)


def run_unit(config: ResistanceConfig, unit: Unit, progress=None) -> tuple[dict, dict]:
  """Trains and measures one unit; returns (summary, arrays) as saved.

  Arrays with a pair axis have shape (seeds, 3 pairs); 'forward_*' and 'inverse_*': final training loss (nats
  per token), the target's smallest possible loss (its entropy per token), the excess (loss - entropy, the
  entropy-free part), and KL(target ‖ model) in nats per response before and after training.
  """
  model = build_model(config.model_config(unit.size), config.depth)
  n_seeds = config.seeds
  pretrain_probs, align_probs = zip(*(config.source(unit.dataset, r) for r in range(n_seeds)), strict=True)
  base = [1000 * (config.seed + r) for r in range(n_seeds)]
  pretrain = np.stack([datasets.sample_counts(p, [config.pretrain_mass], seed=b, sampling="sampled")[0]
                       for p, b in zip(pretrain_probs, base, strict=True)])
  align = np.stack([datasets.sample_counts(p, [config.align_mass], seed=b + 1, sampling="sampled")[0]
                    for p, b in zip(align_probs, base, strict=True)])

  keys = _keys(config, 0, 1)
  params = training.init_params(model, keys)
  steps = np.full(n_seeds, config.pretrain.steps_for(config.pretrain_mass))
  params, _ = training.train_batch(model, config.pretrain, params, pretrain, steps, keys=keys, progress=progress,
                                   label=f"{unit.name} pretrain")

  # θ1, θ2, θ3: one SFT run per seed, stopped after each checkpoint's steps (same key, constant schedule).
  checkpoint_steps = np.asarray(config.checkpoint_steps())
  sft_keys = jax.numpy.repeat(_keys(config, 1, 1), 3, axis=0)
  thetas, _ = training.train_batch(model, config.sft, _repeat(params, 3), np.repeat(align, 3, axis=0),
                                   np.tile(checkpoint_steps, n_seeds), keys=sft_keys, progress=progress,
                                   label=f"{unit.name} sft")
  theta_log2q = metrics.leaf_log2_probs(model, thetas).reshape(n_seeds, 3, -1)
  outputs = np.exp2(theta_log2q)  # exact output distributions
  if config.outputs == "sampled":
    outputs = np.stack([[datasets.sample_counts(outputs[s, i] / outputs[s, i].sum(), [config.output_samples],
                                                seed=base[s] + 10 + i, sampling="sampled")[0] for i in range(3)]
                        for s in range(n_seeds)])

  # Runs, seed-major: for each pair, forward (start at the earlier, fit the later) then inverse.
  starts, targets = [], []
  for s in range(n_seeds):
    for early, late in PAIRS:
      starts += [3 * s + early, 3 * s + late]
      targets += [outputs[s, late], outputs[s, early]]
  targets = np.stack(targets)
  start_params = jax.tree_util.tree_map(lambda p: p[np.asarray(starts)], thetas)
  start_log2q = theta_log2q.reshape(3 * n_seeds, -1)[np.asarray(starts)]
  pair_keys = jax.numpy.repeat(_keys(config, 2, len(PAIRS)), 2, axis=0)  # forward and inverse share a stream
  steps = np.full(len(starts), config.transfer.steps)
  trained, losses = training.train_batch(model, config.transfer, start_params, targets, steps, keys=pair_keys,
                                         progress=progress, label=f"{unit.name} forward/inverse")
  final_log2q = metrics.leaf_log2_probs(model, trained)
  entropy = token_entropy_nats(targets, config.depth)
  shape = (n_seeds, len(PAIRS), 2)
  values = {"loss_nats_per_token": losses, "target_entropy_nats_per_token": entropy,
            "excess_nats_per_token": losses - entropy, "kl_before_nats": kl_target_nats(targets, start_log2q),
            "kl_after_nats": kl_target_nats(targets, final_log2q)}
  arrays = {}
  for name, value in values.items():
    value = np.asarray(value).reshape(shape)
    arrays[f"forward_{name}"], arrays[f"inverse_{name}"] = value[..., 0], value[..., 1]
  arrays.update(theta_log2q_bits=theta_log2q, checkpoint_steps=checkpoint_steps,
                theta_positive_score=metrics.positive_score(theta_log2q, config.depth))
  summary = {"unit": {"dataset": unit.dataset, "size": list(unit.size)}, "name": unit.name,
             "parameter_count": model.parameter_count()}
  return summary, arrays


def run(config: ResistanceConfig, out_dir: str | os.PathLike, *, fresh: bool = False, progress=None) -> RunDir:
  """Runs every unit not yet saved in `out_dir` and returns the run directory.

  Args:
    config: the experiment's config.
    out_dir: the run directory (a directory holding another config's results is refused).
    fresh: discard earlier results in out_dir first.
    progress: optional object with unit_started, steps and unit_finished methods (the CLI's progress bar).

  References:
    Ji et al., "Language Models Resist Alignment", ACL 2025, Section 5.1, Table 1 and Appendix Table 2.
  """
  run_dir = RunDir(out_dir, config, fresh=fresh)
  return run_units(run_dir, units(config), lambda unit, steps: run_unit(config, unit, steps), progress)
