"""The resistance experiment in trained toy transformers: forward against inverse alignment (paper Table 1).

Per seed, alignment dataset and model size: pre-train (once per size and seed, shared by every dataset), SFT on
the alignment dataset with checkpoints θ1, θ2, θ3 along one run, then for each pair (θi, θj), i < j, train θi on
θj's outputs (forward alignment) and θj on θi's (inverse alignment) for the same budget and minibatch stream. The
paper predicts a lower final training loss for inverse alignment: a model returns to an earlier state more easily
than it moves to a later one.

Every stage trains 3 * seeds runs in one vmapped call (pre-training: three identical copies per seed, which SFT
stops after θ1's, θ2's and θ3's steps; forward and inverse: one run per seed and pair), so a model size compiles
its training loop once.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from experiments.resistance.config import PAIRS, ResistanceConfig
from experiments.run_dir import RunDir
from theory import seeding, token_tree
from theory.conventions import LN2
from toy_models import checkpoints, datasets, metrics, training
from toy_models.models import Model, build_model

PRETRAIN_STAGE, SFT_STAGE, TRANSFER_STAGE = "pretrain", "sft", "transfer"  # key streams, one per stage.


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


def _sample_seed(config: ResistanceConfig, repetition: int, *stream) -> int:
  """The numpy seed of one sample of one repetition (theory.seeding)."""
  return seeding.derive(config.seed + repetition, "sample", *stream)


def _seed_keys(config: ResistanceConfig, *path: int) -> list[jax.Array]:
  """One key per seed for the stream `path` (stage, then dataset index; theory.seeding)."""
  return [jax.random.PRNGKey(seeding.derive(config.seed + repetition, *path)) for repetition in range(config.seeds)]


def token_entropy_nats(weights: np.ndarray, depth: int) -> np.ndarray:
  """The smallest SFT loss on data with leaf weights `weights`: sum p (-ln p) / sum p |x| in nats per token.

  Args:
    weights: leaf weights (..., 2**depth - 1), normalised here.
    depth: tree depth (|x| counts EOS).

  Returns:
    Shape (...,): the loss a model equal to the data's distribution reaches, below every other model's.

  References:
    Cover & Thomas, "Elements of Information Theory", 2nd ed., Thm. 2.6.3 (Gibbs' inequality).
  """
  probs = datasets.empirical(weights)
  terms = np.zeros_like(probs)
  np.multiply(-probs, np.log(probs, where=probs > 0, out=np.zeros_like(probs)), out=terms, where=probs > 0)
  return terms.sum(axis=-1) / (probs @ token_tree.response_lengths(depth))


def tokens_per_response(weights: np.ndarray, depth: int) -> np.ndarray:
  """Mean response length E_p|x| (tokens, EOS counted) of the data with leaf weights `weights`, shape (...,)."""
  return datasets.empirical(weights) @ token_tree.response_lengths(depth).astype(np.float64)


def kl_target_nats(target: np.ndarray, log2q: np.ndarray) -> np.ndarray:
  """KL(target ‖ model) = sum_x p(x) ln(p(x) / q(x)) in nats per response.

  Args:
    target: leaf weights of the training data (..., n), normalised here to p.
    log2q: the model's log2-probabilities of every leaf (..., n).

  Returns:
    Shape (...,): the training loss's excess over the data's entropy, per response (loss - entropy per token
    times E_p|x|); +inf where p puts mass on a leaf the model gives probability 0.

  References:
    Kullback & Leibler, "On information and sufficiency", Ann. Math. Stat. 1951; Ji et al., "Language Models
    Resist Alignment", ACL 2025, Appendix Table 2 (KL change).
  """
  probs = datasets.empirical(target)
  log_target = np.log(probs, where=probs > 0, out=np.zeros_like(probs))
  terms = np.zeros(np.broadcast_shapes(probs.shape, np.shape(log2q)))
  np.multiply(probs, log_target - np.asarray(log2q) * LN2, out=terms, where=probs > 0)
  return terms.sum(axis=-1)


def unit_data(config: ResistanceConfig, dataset: str) -> dict[str, np.ndarray]:
  """Leaf counts of every seed's datasets: 'pretrain' (seeds, n) from D_p and 'align' (seeds, n) from `dataset`.

  D_p's sample depends on the seed only (every dataset and size shares the pre-trained model); the alignment
  sample also on the dataset.
  """
  index = config.datasets.index(dataset)
  pretrain, align = [], []
  for repetition in range(config.seeds):
    pretrain_probs, align_probs = config.source(dataset, repetition)
    pretrain.append(datasets.sample_counts(pretrain_probs, [config.pretrain_mass], sampling="sampled",
                                           seed=_sample_seed(config, repetition, "pretrain"))[0])
    align.append(datasets.sample_counts(align_probs, [config.align_mass], sampling="sampled",
                                        seed=_sample_seed(config, repetition, "align", index))[0])
  return {"pretrain": np.stack(pretrain), "align": np.stack(align)}


def _pretrained(config: ResistanceConfig, model: Model, size: tuple[int, int], pretrain: np.ndarray,
                run_dir: RunDir | None, progress) -> dict:
  """Pre-trained parameters, 3 identical copies per seed (seed-major); saved in run_dir and reused by every dataset."""
  keys = jnp.stack([key for key in _seed_keys(config, PRETRAIN_STAGE) for _ in range(3)])
  init = functools.partial(training.init_params, model)
  path = None if run_dir is None else run_dir.checkpoint_path(f"pretrain_w{size[0]}L{size[1]}")
  if path is not None and path.exists():
    return checkpoints.load_params(path, init(keys))
  params = init(keys)
  steps = np.full(len(keys), config.pretrain.steps_for(config.pretrain_mass))
  params, _ = training.train_batch(model, config.pretrain, params, np.repeat(pretrain, 3, axis=0), steps, keys=keys,
                                   progress=progress, label=f"w{size[0]}L{size[1]} pretrain")
  if path is not None:
    checkpoints.save_params(path, params)
  return params


def _checkpoint_outputs(config: ResistanceConfig, theta_log2q: np.ndarray, index: int) -> np.ndarray:
  """Each checkpoint's outputs as leaf weights (seeds, 3, n): its exact distribution, or a sample of it."""
  exact = datasets.empirical(np.exp2(theta_log2q))  # renormalised against float error only
  if config.outputs == "exact":
    return exact
  return np.stack([[datasets.sample_counts(exact[s, i], [config.output_samples], sampling="sampled",
                                           seed=_sample_seed(config, s, "outputs", index, i))[0]
                    for i in range(3)] for s in range(config.seeds)])


def run_unit(config: ResistanceConfig, unit: Unit, run_dir: RunDir | None = None, progress=None) -> tuple[dict, dict]:
  """Trains and measures one unit; returns (summary, arrays) as saved.

  Args:
    config: the experiment's config.
    unit: the dataset and model size.
    run_dir: where the pre-trained checkpoint of the unit's size is saved and reused (None: not saved).
    progress: optional callable(done_steps, total_steps, label).

  Returns:
    The unit's summary (names, parameter count) and arrays. Arrays with a pair axis have shape (seeds, 3) in
    PAIRS order, for each direction ('forward_' and 'inverse_'): loss_nats_per_token (the final training loss,
    exact over every response), target_entropy_nats_per_token (the smallest loss possible on that target),
    excess_nats_per_token (their difference, >= 0), target_tokens_per_response, kl_before_nats and kl_after_nats
    (KL(target ‖ model) in nats per response at the start and the end of training), steps and learning_rate.
    Also theta_log2q_bits (seeds, 3, n), checkpoint_steps (3,) and theta_positive_score (seeds, 3).

  References:
    Ji et al., "Language Models Resist Alignment", ACL 2025, Section 5.1, Table 1 and Appendix Table 2.
  """
  model = build_model(config.model_config(unit.size), config.depth)
  index = config.datasets.index(unit.dataset)
  n_seeds, n_pairs = config.seeds, len(PAIRS)
  data = unit_data(config, unit.dataset)
  params = _pretrained(config, model, unit.size, data["pretrain"], run_dir, progress)

  # θ1, θ2, θ3: copy c of a seed stops after checkpoint c's steps; same key and constant schedule, so one run.
  checkpoint_steps = np.asarray(config.checkpoint_steps())
  sft_keys = jnp.stack([key for key in _seed_keys(config, SFT_STAGE, index) for _ in range(3)])
  thetas, _ = training.train_batch(model, config.sft, params, np.repeat(data["align"], 3, axis=0),
                                   np.tile(checkpoint_steps, n_seeds), keys=sft_keys, progress=progress,
                                   label=f"{unit.name} sft")
  theta_log2q = metrics.leaf_log2_probs(model, thetas).reshape(n_seeds, 3, -1)
  outputs = _checkpoint_outputs(config, theta_log2q, index)

  # Runs (seed, pair), seed-major; forward and inverse of a pair share the key (the same minibatch draws).
  pair_keys = jnp.stack([jax.random.PRNGKey(seeding.derive(config.seed + s, TRANSFER_STAGE, index, p))
                         for s in range(n_seeds) for p in range(n_pairs)])
  seed_index = np.repeat(np.arange(n_seeds), n_pairs)
  early, late = (np.tile([pair[k] for pair in PAIRS], n_seeds) for k in (0, 1))
  arrays = {}
  for direction, start, goal in (("forward", early, late), ("inverse", late, early)):
    start_params = jax.tree_util.tree_map(lambda p, s=start: p[3 * seed_index + s], thetas)
    targets = outputs[seed_index, goal]
    steps = np.full(len(start), config.transfer.steps)
    rates = np.full(len(start), config.transfer.learning_rate)
    trained, losses = training.train_batch(model, config.transfer, start_params, targets, steps, keys=pair_keys,
                                           learning_rates=rates, progress=progress,
                                           label=f"{unit.name} {direction}")
    entropy = token_entropy_nats(targets, config.depth)
    values = {"loss_nats_per_token": losses, "target_entropy_nats_per_token": entropy,
              "excess_nats_per_token": losses - entropy,
              "target_tokens_per_response": tokens_per_response(targets, config.depth),
              "kl_before_nats": kl_target_nats(targets, theta_log2q[seed_index, start]),
              "kl_after_nats": kl_target_nats(targets, metrics.leaf_log2_probs(model, trained)),
              "steps": steps, "learning_rate": rates}
    arrays.update({f"{direction}_{name}": np.reshape(value, (n_seeds, n_pairs)) for name, value in values.items()})
  arrays.update(theta_log2q_bits=theta_log2q, checkpoint_steps=checkpoint_steps,
                theta_positive_score=metrics.positive_score(theta_log2q, config.depth))
  summary = {"unit": {"dataset": unit.dataset, "size": list(unit.size)}, "name": unit.name,
             "parameter_count": model.parameter_count()}
  return summary, arrays
