"""The mitigations testbed in trained toy transformers: pre-train, align (+ a defence), attack (+ a defence).

One unit per defence (the undefended baseline first). Per seed the pipeline is pre-train on D_p -> align on n1
positives -> attack on n2 negatives for every n2 of the grid, each n2 a run of its own (one epoch over its
examples, as in experiments.rebound). The pre-trained and the aligned models are shared by every unit (checkpoints
of the run directory) and every attack of every defence uses the same examples and minibatch keys of its seed, so
differences between defences are paired by seed. Every model is measured exactly over all responses of the tree.

The corrector unit (Aligner) keeps the pre-trained model as a frozen base and trains a tabular corrector c(y | x)
on W copy pairs then C correction pairs; it is attacked through its base (the base fine-tuned on negatives) and
through itself (the corrector fine-tuned on copy pairs of negatives), each measured on the composed distribution.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from experiments.mitigations.config import ALIGNMENT_STAGE, BASELINE, CORRECTOR, MitigationsConfig
from experiments.run_dir import RunDir
from theory import seeding, token_tree
from theory.conventions import ALIGN, LN2, PERTURB, PRETRAIN
from toy_models import checkpoints, corrector, datasets, defences, likelihood, loss_training, metrics, training
from toy_models import instantaneous_elasticity as instantaneous
from toy_models.model_config import ModelConfig
from toy_models.models import Model, build_model

POSITIVE, NEGATIVE = ALIGN, PERTURB  # source rows of the aligned (positive) and unaligned (negative) behaviours.
MAIN_ATTACK = "sft"  # the attack of the frontier, the confirmatory tests and the elasticity correlation.


@dataclasses.dataclass(frozen=True)
class Unit:
  """One defence (all its strengths, attacks and seeds); 'none' is the undefended baseline."""

  defence: str

  @property
  def name(self) -> str:
    """File name of the unit's results."""
    return self.defence


def units(config: MitigationsConfig) -> list[Unit]:
  """The baseline, then every defence of the config, in the order they run."""
  return [Unit(BASELINE)] + [Unit(defence) for defence in config.defences]


@dataclasses.dataclass(frozen=True)
class Curve:
  """One attack curve of a defence: a strength of its grid attacked by one attack, for every n2 and seed."""

  strength_index: int  # index into the defence's strength grid.
  attack: str  # 'sft', 'sft lr xF', 'sft E epochs' or 'dpo'.
  lr_factor: float  # the attack's learning rate over config.attack.learning_rate.
  epochs: float  # epochs over the attack data.
  method: str  # 'sft' or 'dpo'.


def attack_names(config: MitigationsConfig, defence: str) -> list[str]:
  """The attacks a defence meets at its default strength: the main one, the breaking ladder, the long one, DPO."""
  names = [MAIN_ATTACK] + [f"sft lr x{f:g}" for f in config.breaking_lr_factors]
  names.append(f"sft {config.breaking_epochs:g} epochs")
  if defence == BASELINE or defence in config.dpo_defences:
    names.append("dpo")
  return names


def corrector_base_curves(config: MitigationsConfig) -> list[Curve]:
  """The attacks on the corrector's frozen base: the baseline's, DPO only if the corrector is in dpo_defences."""
  return [c for c in curves(config, BASELINE) if c.method == "sft" or CORRECTOR in config.dpo_defences]


def curves(config: MitigationsConfig, defence: str) -> list[Curve]:
  """Every strength of the grid under the main attack, then the other attacks at the default strength."""
  strengths = config.strengths(defence)
  default = strengths.grid.index(strengths.default)
  epochs = config.attack.epochs
  out = [Curve(i, MAIN_ATTACK, 1.0, epochs, "sft") for i in range(len(strengths.grid))]
  for name in attack_names(config, defence)[1:]:
    if name.startswith("sft lr x"):
      out.append(Curve(default, name, float(name.rsplit("x", 1)[1]), epochs, "sft"))
    elif name.endswith("epochs"):
      out.append(Curve(default, name, 1.0, config.breaking_epochs, "sft"))
    else:
      out.append(Curve(default, name, 1.0, epochs, "dpo"))
  return out


# Data and keys.

def seed_data(config: MitigationsConfig) -> dict[str, np.ndarray]:
  """Sources and example counts of every seed (leading axis = seeds).

  Returns 'sources' (3, n), 'pretrain' (n,), 'align' (n,), 'attack' and 'rejected' (n_sizes, n) nested in n2
  (rejected: positives, the DPO attack's rejected responses), 'harmful' (n,) (Booster's own negatives),
  'copies' (n_ratios, n) nested in W (inputs of copy pairs, from D_p) and 'corrections' (n, n) pair counts.
  """
  n_sizes = np.asarray(config.attack_sizes, dtype=np.float64)
  out: dict[str, list] = {name: [] for name in ("sources", "pretrain", "align", "attack", "rejected", "harmful",
                                                "copies", "corrections")}
  for repetition in range(config.seeds):
    root = config.seed + repetition
    probs = config.sources(repetition)

    def sample(row, sizes, stream, root=root, probs=probs):
      return datasets.sample_counts(probs[row], sizes, seed=seeding.derive(root, stream))

    out["sources"].append(probs)
    out["pretrain"].append(sample(PRETRAIN, [config.pretrain_size], "pretrain")[0])
    out["align"].append(sample(POSITIVE, [config.align_size], "align")[0])
    out["attack"].append(sample(NEGATIVE, n_sizes, "attack"))
    out["rejected"].append(sample(POSITIVE, n_sizes, "rejected"))
    out["harmful"].append(sample(NEGATIVE, [config.booster_harmful_size], "harmful")[0])
    out["copies"].append(sample(PRETRAIN, config.copy_sizes().astype(np.float64), "copy"))
    inputs, outputs = corrector.draw_correction_pairs(config.depth, config.corrector_corrections, probs[NEGATIVE],
                                                      seed=seeding.derive(root, "correction"))
    out["corrections"].append(corrector.pair_weights(config.depth, inputs, outputs))
  return {name: np.stack(values) for name, values in out.items()}


def run_keys(config: MitigationsConfig, *stream, count: int = 1) -> np.ndarray:
  """(seeds * count, 2) raw PRNG keys, seed-major: key [r * count + i] is derive(seed + r, 'train', *stream, i)."""
  return np.stack([np.asarray(jax.random.PRNGKey(seeding.derive(config.seed + r, "train", *stream, i)))
                   for r in range(config.seeds) for i in range(count)])


def replay_counts(config: MitigationsConfig, defence: str, strength: float, data: dict, seed: int,
                  n2: float) -> np.ndarray:
  """Counts (n,) replayed into an attack on n2 examples: rho / (1 - rho) n2 responses (a share rho of the mixed
  data), in the proportions of the replayed dataset (alignment or pre-training data); zeros for other defences."""
  if not defence.startswith("replay"):
    return np.zeros(data["attack"].shape[-1])
  replayed = data["align"][seed] if defence == "replay_alignment" else data["pretrain"][seed]
  return strength / (1.0 - strength) * n2 * datasets.empirical(replayed)


def _host(tree):
  return jax.tree_util.tree_map(np.asarray, jax.device_get(tree))


def _rows(tree, rows) -> dict:
  """The rows `rows` of every leaf of a host tree (leading axis = runs)."""
  return jax.tree_util.tree_map(lambda x: x[np.asarray(rows)], tree)


# Losses (built once per static choice: the same object keeps one compiled program).

def _tokens(depth: int) -> jax.Array:
  return jnp.asarray(token_tree.leaf_tokens(depth))


def _draw(key, weights, count: int):
  """`count` response indices drawn with probabilities weights / sum (training.py's minibatch draw)."""
  return jax.random.choice(key, weights.shape[0], (count,), p=weights / weights.sum())


@functools.cache
def alignment_loss(model: Model, kind: str, batch_size: int, booster_alpha: float):
  """The alignment stage's minibatch loss: 'sft' (the baseline), 'booster' or 'vaccine' (strength = data)."""
  tokens = _tokens(model.depth)

  def loss(params, data, key):
    picks = _draw(key, data["align"], batch_size)
    ones = jnp.ones(batch_size, likelihood.params_dtype(params))
    if kind == "booster":
      harmful = _draw(jax.random.fold_in(key, 1), data["harmful"], batch_size)
      batch = jnp.concatenate([tokens[picks], tokens[harmful]])
      align_weights, harm_weights = jnp.concatenate([ones, 0 * ones]), jnp.concatenate([0 * ones, ones])
      return defences.booster_loss(model, params, batch, align_weights, harm_weights, lam=data["strength"],
                                   alpha=booster_alpha, first_order=True)
    if kind == "vaccine":
      return defences.vaccine_loss(model, params, tokens[picks], ones, data["strength"])
    return likelihood.weighted_token_nll(model, params, tokens[picks], ones)

  return loss


ATTACK_OBJECTIVES = ("kl_anchor_response", "kl_anchor_token", "tokenwise_constrained", "lisa")
"""Defences with an attack-stage objective of their own; every other pipeline attacks with the plain loss (replay
changes only the data it is drawn from), so they share one compiled program."""


def loss_kind(defence: str) -> str:
  """The attack objective a defence uses: its own (ATTACK_OBJECTIVES) or 'plain' SFT / DPO."""
  return defence if defence in ATTACK_OBJECTIVES else "plain"


def attack_loss(model: Model, defence: str, method: str, batch_size: int, dpo_beta: float,
                lisa: defences.LisaSchedule | None):
  """The attack stage's minibatch loss of `defence` under `method` ('sft' or 'dpo'); data fields: attack_fields."""
  return _attack_loss(model, loss_kind(defence), method, batch_size, dpo_beta, lisa)


@functools.cache
def _attack_loss(model: Model, defence: str, method: str, batch_size: int, dpo_beta: float,
                 lisa: defences.LisaSchedule | None):
  tokens = _tokens(model.depth)
  betas = jnp.asarray(defences.TokenwiseBetas().betas(model.depth))

  def sft(params, data, key):
    weights = data["attack"] + data["replay"] if defence == "plain" else data["attack"]
    picks = _draw(key, weights, batch_size)
    ones = jnp.ones(batch_size, likelihood.params_dtype(params))
    if defence == "kl_anchor_response":
      return defences.kl_anchor_response_loss(model, params, tokens[picks], ones, data["reference"],
                                              data["strength"])
    if defence == "kl_anchor_token":
      return defences.kl_anchor_token_loss(model, params, tokens[picks], ones, data["next_log_probs"][picks],
                                           data["strength"])
    if defence == "tokenwise_constrained":
      return defences.constrained_sft_loss(model, params, tokens[picks], ones, data["token_log_probs"][picks],
                                           data["strength"] * betas)
    return likelihood.weighted_token_nll(model, params, tokens[picks], ones)

  def dpo(params, data, key):
    chosen_key, rejected_key = jax.random.split(key)
    chosen, rejected = _draw(chosen_key, data["attack"], batch_size), _draw(rejected_key, data["rejected"], batch_size)
    reference = data["reference"]
    value = likelihood.dpo_pair_loss(model, params, tokens[chosen], tokens[rejected], reference[chosen],
                                     reference[rejected], dpo_beta)
    if defence == "kl_anchor_response":
      value = value + data["strength"] * defences.response_kl_nats(model, params, reference)
    if defence == "kl_anchor_token":
      ones = jnp.ones(batch_size, likelihood.params_dtype(params))
      value = value + data["strength"] * defences.token_kl_nats(model, params, tokens[chosen], ones,
                                                                data["next_log_probs"][chosen])
    return value

  user = dpo if method == "dpo" else sft
  if defence != "lisa":
    return user

  def lisa_loss(params, data, key, anchor, step):
    aligning = lisa.is_alignment_step(step)
    picks = _draw(jax.random.fold_in(key, 2), data["align"], batch_size)
    ones = jnp.ones(batch_size, likelihood.params_dtype(params))
    align_value = likelihood.weighted_token_nll(model, params, tokens[picks], ones)
    value = jnp.where(aligning, align_value, user(params, data, key))
    return value + defences.proximal_penalty(params, anchor, data["strength"])

  return lisa_loss


@functools.cache
def lisa_reanchor(lisa: defences.LisaSchedule):
  """Lisa's anchor rule: the parameters at every switch of state (the start of each phase)."""
  cycle = lisa.alignment_steps + lisa.finetune_steps

  def reanchor(step):
    return (step % cycle == 0) | (step % cycle == lisa.alignment_steps)

  return reanchor


def lisa_schedule(config: MitigationsConfig) -> defences.LisaSchedule:
  """Lisa's schedule (its rho is per run, in the data)."""
  return defences.LisaSchedule(alignment_steps=config.lisa_alignment_steps, finetune_steps=config.lisa_finetune_steps)


def attack_fields(defence: str, method: str) -> tuple[str, ...]:
  """The per-run data fields the attack loss of `defence` reads."""
  kind = loss_kind(defence)
  fields = ["attack"]
  if method == "dpo":
    fields += ["rejected", "reference"]
  elif kind == "plain":
    fields.append("replay")
  if kind == "kl_anchor_response":
    fields.append("reference")
  if kind == "kl_anchor_token":
    fields.append("next_log_probs")
  if kind == "tokenwise_constrained":
    fields.append("token_log_probs")
  if kind == "lisa":
    fields.append("align")
  if kind != "plain":
    fields.append("strength")
  return tuple(dict.fromkeys(fields))


def attack_steps(config: MitigationsConfig, defence: str, curve: Curve, n2: int, strength: float) -> int:
  """Optimiser steps of one attack run: epochs over the attack stage's data (with the replayed share for replay);
  for Lisa the user-data steps plus K1 alignment steps per started cycle of K2 user-data steps."""
  stage = dataclasses.replace(config.attack, epochs=curve.epochs)
  mass = n2 / (1.0 - strength) if defence.startswith("replay") and curve.method == "sft" else n2
  user = stage.steps_for(mass)
  if defence == "lisa":
    return user + config.lisa_alignment_steps * math.ceil(user / config.lisa_finetune_steps)
  return user


# Stages.

@functools.lru_cache(maxsize=8)
def _token_level_fns(model: Model):
  """Jitted per-run functions of every leaf: next-token log-probs (n, T, 3) and token log-probs (n, T), nats."""
  tokens = _tokens(model.depth)

  def as64(params):
    return jax.tree_util.tree_map(lambda p: p.astype(jnp.float64), params)

  nexts = jax.jit(jax.vmap(lambda p: defences.next_token_log_probs(model, as64(p), tokens)))
  picked = jax.jit(jax.vmap(lambda p: likelihood.token_log_probs(model, as64(p), tokens)))
  return nexts, picked


def pretrained_params(config: MitigationsConfig, model: Model, data: dict, run_dir: RunDir, progress=None):
  """Pre-trained parameters of every seed (the shared checkpoint when saved earlier)."""
  like = training.init_params(model, run_keys(config, "init"))
  path = run_dir.checkpoint_path("pretrained")
  if path.exists():
    return checkpoints.load_params(path, like)
  steps = np.full(config.seeds, config.pretrain.steps_for(config.pretrain_size))
  params, _ = training.train_batch(model, config.pretrain, like, data["pretrain"], steps,
                                   keys=run_keys(config, "pretrain"), progress=progress, label="pre-training")
  checkpoints.save_params(path, params)
  return params


def align(config: MitigationsConfig, model: Model, data: dict, pretrained, kind: str, strengths, progress=None):
  """Aligned parameters for every strength and seed (strength-major rows), by the alignment loss `kind`."""
  seeds = config.seeds
  count = len(strengths)
  rows = np.tile(np.arange(seeds), count)
  batch = {"align": data["align"][rows], "harmful": data["harmful"][rows],
           "strength": np.repeat(np.asarray(strengths, dtype=np.float64), seeds)}
  steps = np.full(seeds * count, config.align.steps_for(config.align_size))
  loss = alignment_loss(model, kind, config.align.batch_size, float(config.booster_alpha))
  params, _ = loss_training.train_with_loss(
      model, loss, _rows(_host(pretrained), rows), batch, steps, keys=run_keys(config, "align")[rows],
      learning_rates=np.full(seeds * count, config.align.learning_rate), optimizer=config.align.optimizer,
      schedule=config.align.schedule, warmup_fraction=config.align.warmup_fraction, progress=progress,
      label=f"alignment ({kind})")
  return params


def aligned_params(config: MitigationsConfig, model: Model, data: dict, pretrained, run_dir: RunDir, progress=None):
  """The undefended aligned parameters of every seed (the shared checkpoint when saved earlier)."""
  path = run_dir.checkpoint_path("aligned")
  if path.exists():
    return checkpoints.load_params(path, pretrained)
  params = align(config, model, data, pretrained, "sft", (0.0,), progress)
  checkpoints.save_params(path, params)
  return params


def attack(config: MitigationsConfig, model: Model, defence: str, curve_list: list[Curve], starts, strengths,
           data: dict, progress=None) -> np.ndarray:
  """log2 q (curves, seeds, n_sizes, n) in bits of every attacked model; column 0 (n2 = 0) is the start model.

  Args:
    starts: parameters before the attack, rows strength-major (len(strengths) * seeds).
    strengths: the defence's strength grid (curve.strength_index indexes it).
  """
  seeds, sizes = config.seeds, config.attack_sizes
  starts = _host(starts)
  start_log2q = metrics.leaf_log2_probs(model, starts).reshape(len(strengths), seeds, -1)
  out = np.empty((len(curve_list), seeds, len(sizes), start_log2q.shape[-1]))
  for index, curve in enumerate(curve_list):
    out[index, :, 0] = start_log2q[curve.strength_index]
  needs = set(attack_fields(defence, "sft")) | set(attack_fields(defence, "dpo"))
  nexts, tokens_log = _token_level_fns(model)
  next_log_probs = np.asarray(nexts(starts)) if "next_log_probs" in needs else None
  token_log_probs = np.asarray(tokens_log(starts)) if "token_log_probs" in needs else None
  lisa = lisa_schedule(config) if defence == "lisa" else None
  groups: dict = {}
  for index, curve in enumerate(curve_list):
    groups.setdefault((curve.method, curve.epochs), []).append(index)

  def steps_of(index: int, size_index: int) -> int:
    curve = curve_list[index]
    return attack_steps(config, defence, curve, sizes[size_index], float(strengths[curve.strength_index]))

  plans = {key: (len(members) * seeds, [max(steps_of(i, s) for i in members) for s in range(1, len(sizes))])
           for key, members in groups.items()}
  for (method, epochs), members in groups.items():
    padded = _padding(config, plans, (method, epochs))
    fields = attack_fields(defence, method)
    stream_keys = run_keys(config, "attack", method, count=len(sizes))
    loss = attack_loss(model, defence, method, config.attack.batch_size, float(config.dpo_beta), lisa)
    for size_index in range(1, len(sizes)):  # one call per n2: no run carries another's longer budget
      n2 = sizes[size_index]
      batch = {name: [] for name in fields}
      params_rows, steps, rates, keys = [], [], [], []
      for index in members:
        curve = curve_list[index]
        strength = float(strengths[curve.strength_index])
        for seed in range(seeds):
          row = curve.strength_index * seeds + seed
          values = {"attack": data["attack"][seed, size_index], "rejected": data["rejected"][seed, size_index],
                    "reference": start_log2q[curve.strength_index, seed] * LN2, "align": data["align"][seed],
                    "strength": np.float64(strength),
                    "replay": replay_counts(config, defence, strength, data, seed, n2)}
          for name in fields:
            if name == "next_log_probs":
              batch[name].append(next_log_probs[row])
            elif name == "token_log_probs":
              batch[name].append(token_log_probs[row])
            else:
              batch[name].append(values[name])
          params_rows.append(row)
          steps.append(steps_of(index, size_index))
          rates.append(config.attack.learning_rate * curve.lr_factor)
          keys.append(stream_keys[seed * len(sizes) + size_index])
      trained, _ = loss_training.train_with_loss(
          model, loss, _rows(starts, params_rows), {name: np.stack(v) for name, v in batch.items()},
          np.asarray(steps), keys=np.stack(keys), learning_rates=np.asarray(rates), optimizer=config.attack.optimizer,
          schedule=config.attack.schedule, warmup_fraction=config.attack.warmup_fraction,
          reanchor=lisa_reanchor(lisa) if lisa is not None else None, progress=progress,
          label=f"{defence} {method} {epochs:g} epochs n2={n2}", padded_runs=padded)
      log2q = metrics.leaf_log2_probs(model, trained).reshape(len(members), seeds, -1)
      for position, index in enumerate(members):
        out[index, :, size_index] = log2q[position]
  return out


def _padding(config: MitigationsConfig, plans: dict, key) -> int:
  """The run count every call of a group of attack runs is compiled for: one bucket for every group of a method
  across all defences (the largest group any defence of the config has, training.run_bucket's coarsest choice), so
  that defences sharing a loss share its program, when padding up to it costs at most
  training.CPU_PADDING_RUN_STEPS run-steps over the group's calls on a CPU (any amount on an accelerator); else the
  group's own bucket (one program for all its n2)."""
  runs, steps = plans[key]
  own = training.run_bucket(runs, max(steps))
  grid = max(len(config.strengths(d).grid) for d in (BASELINE,) + tuple(config.defences))
  largest = (grid + len(config.breaking_lr_factors) if key[0] == "sft" else 1) * config.seeds
  shared = training.run_bucket(max(largest, runs), 1)
  budget = training.default_padding_run_steps()  # None on accelerators: any amount
  return shared if budget is None or (shared - runs) * sum(steps) <= budget else own


def elasticity(config: MitigationsConfig, model: Model, defence: str, starts, strengths, data: dict
               ) -> tuple[np.ndarray, np.ndarray]:
  """E_i (bits per response per unit learning rate) of one fresh-Adam step of the attack, per strength and seed.

  Returns (stage, plain), each (strengths, seeds, 3) on the D_p, positive, negative axes: 'stage' for the attack
  stage's own fine-tuning data at the largest n2 (for replay: the attack data plus the replayed share), 'plain' for
  the attack data alone. The extra terms of the KL anchors, the constrained objective and the proximal term have zero
  gradient at the start of the attack (they vanish at the aligned model to second order), so these defences share
  the baseline's values by construction.

  References:
    Ji et al., "Language Models Resist Alignment", ACL 2025, Section 4 (elasticity); toy_models.
    instantaneous_elasticity.
  """
  starts = jax.tree_util.tree_map(lambda x: np.asarray(x, dtype=np.float64), _host(starts))
  seeds = config.seeds
  stage = np.empty((len(strengths), seeds, 3))
  plain = np.empty_like(stage)
  for s, strength in enumerate(strengths):
    for seed in range(seeds):
      params = jax.tree_util.tree_map(lambda x, row=s * seeds + seed: x[row], starts)
      attack_data = data["attack"][seed, -1]
      mixed = attack_data + replay_counts(config, defence, float(strength), data, seed, config.attack_sizes[-1])
      probs = jnp.asarray(data["sources"][seed])
      for out, weights in ((plain, attack_data), (stage, mixed)):
        result = instantaneous.instantaneous_elasticity(model, params, probs, jnp.asarray(weights), optimizer="adam")
        out[s, seed] = np.asarray(result.rate_changes_bits)
  return stage, plain


def within_aligned_kl_nats(log2q: np.ndarray, reference_log2q: np.ndarray, depth: int) -> np.ndarray:
  """KL(q(. | A) || q_ref(. | A)) in nats per response: distortion inside the aligned subtree A, the mass on A
  factored out (the cost to the aligned behaviour itself)."""
  mask = datasets.aligned_mask(depth)
  log2q, reference = np.broadcast_arrays(np.asarray(log2q, np.float64), np.asarray(reference_log2q, np.float64))
  inside, inside_reference = log2q[..., mask], reference[..., mask]
  conditional = inside - np.log2(np.exp2(inside).sum(axis=-1, keepdims=True))
  conditional_reference = inside_reference - np.log2(np.exp2(inside_reference).sum(axis=-1, keepdims=True))
  return (np.exp2(conditional) * (conditional - conditional_reference)).sum(axis=-1) * LN2


def rates(log2q: np.ndarray, sources: np.ndarray) -> np.ndarray:
  """Rates (bits per response) of the three sources (seeds, 3, n) under models (..., seeds, n): (..., seeds, 3)."""
  return metrics.rates_bits(log2q, np.broadcast_to(sources, np.shape(log2q)[:-1] + sources.shape[-2:]))


def run_unit(config: MitigationsConfig, unit: Unit, run_dir: RunDir, progress=None) -> tuple[dict, dict]:
  """Trains and measures one defence (or the corrector); returns (summary, arrays) as saved."""
  model = build_model(config.model_config(), config.depth)
  data = seed_data(config)
  pretrained = pretrained_params(config, model, data, run_dir, progress)
  if unit.defence == CORRECTOR:
    return run_corrector(config, model, data, pretrained, progress)
  aligned = aligned_params(config, model, data, pretrained, run_dir, progress)
  strengths = config.strengths(unit.defence).grid
  if unit.defence in ALIGNMENT_STAGE:
    starts = align(config, model, data, pretrained, unit.defence, strengths, progress)
  else:
    starts = _rows(_host(aligned), np.tile(np.arange(config.seeds), len(strengths)))
  curve_list = curves(config, unit.defence)
  log2q = attack(config, model, unit.defence, curve_list, starts, strengths, data, progress)
  stage_e, plain_e = elasticity(config, model, unit.defence, starts, strengths, data)
  pretrained_log2q = metrics.leaf_log2_probs(model, pretrained)
  start_log2q = log2q[:len(strengths), :, 0]  # the first curves are the grid's strengths in order (curves())
  arrays = {
      "log2q_bits": log2q, "positive_score": metrics.positive_score(log2q, config.depth),
      "start_log2q_bits": start_log2q, "pretrained_log2q_bits": pretrained_log2q,
      "pretrained_positive_score": metrics.positive_score(pretrained_log2q, config.depth),
      "sources": data["sources"], "strengths": np.asarray(strengths, dtype=np.float64),
      "attack_sizes": np.asarray(config.attack_sizes), "elasticity_bits": stage_e, "elasticity_plain_bits": plain_e,
      "start_rates_bits": rates(start_log2q, data["sources"]),
      "pretrained_rates_bits": rates(pretrained_log2q, data["sources"]),
      "start_within_aligned_kl_nats": within_aligned_kl_nats(start_log2q, pretrained_log2q[None], config.depth),
      "final_rates_bits": rates(log2q[:, :, -1], data["sources"]),
  }
  if unit.defence.startswith("replay"):
    arrays.update(replay_arrays(config, unit.defence, strengths, data))
  summary = {"defence": unit.defence, "name": unit.name, "curves": [dataclasses.asdict(c) for c in curve_list],
             "strengths": list(strengths), "parameter_count": model.parameter_count(),
             "positive_score_mean": arrays["positive_score"].mean(axis=1).tolist()}
  return summary, arrays


def replay_arrays(config: MitigationsConfig, defence: str, strengths, data: dict) -> dict[str, np.ndarray]:
  """The attack stage's mixture at the largest n2 and the positive scores the mixture theory predicts there.

  'replay_mixture_counts' (strengths, seeds, n): the attack data plus the replayed counts. Stage prediction: a free
  model minimising the attack stage's loss reaches the mixture's leaf distribution, whose positive score is
  (n_replay s_replay) / (n2 + n_replay) = rho s_replay, s_replay the replayed dataset's positive share (1 for the
  alignment data). History prediction (the paper's compression view: the size-weighted mixture of every dataset the
  model was trained on): (N_p s_p + n1 + n_replay s_replay) / (N_p + n1 + n2 + n_replay).
  """
  mask = datasets.aligned_mask(config.depth)
  n2 = config.attack_sizes[-1]
  seeds = config.seeds
  replayed = data["align"] if defence == "replay_alignment" else data["pretrain"]
  share = (replayed @ mask) / replayed.sum(axis=1)  # (seeds,)
  rho = np.asarray(strengths, dtype=np.float64)[:, None]
  n_replay = rho / (1.0 - rho) * n2
  mixture = np.stack([[data["attack"][seed, -1] + replay_counts(config, defence, float(s), data, seed, n2)
                       for seed in range(seeds)] for s in strengths])
  pretrain_share = (data["pretrain"] @ mask) / data["pretrain"].sum(axis=1)
  history = ((config.pretrain_size * pretrain_share + config.align_size + n_replay * share)
             / (config.pretrain_size + config.align_size + n2 + n_replay))
  return {"replay_mixture_counts": mixture, "replay_source_positive_share": share,
          "replay_predicted_stage": rho * share[None, :], "replay_predicted_history": history}


# The corrector (Aligner).

@functools.cache
def corrector_loss(depth: int, batch_size: int):
  """Minibatch NLL of corrector pairs in nats per output token: `batch_size` pairs (x, y) drawn from the flat pair
  counts (n * n,), each scored as -ln c(y | x) by row x of the table alone (corrector.corrector_nll's terms)."""
  tokens = _tokens(depth)
  lengths = jnp.asarray(token_tree.response_lengths(depth), dtype=jnp.float64)
  n = token_tree.n_leaves(depth)
  tabular = build_model(ModelConfig(kind="tabular"), depth)

  def pair_log_prob(table, response):
    return likelihood.leaf_log_probs(tabular, {"logits": table}, response[None])[0]

  def loss(params, data, key):
    picks = _draw(key, data["pairs"], batch_size)
    inputs, outputs = picks // n, picks % n
    log_c = jax.vmap(pair_log_prob)(params["logits"][inputs], tokens[outputs])
    return -log_c.sum() / lengths.astype(log_c.dtype)[outputs].sum()

  return loss


@functools.lru_cache(maxsize=4)
def _batched_corrector_log_probs(depth: int):
  del depth
  return jax.jit(jax.vmap(lambda table: corrector.corrector_log_probs({"logits": table})))


def corrector_matrices(depth: int, logits) -> np.ndarray:
  """corrector.corrector_log_probs of every run's table (leading run axis), in nats: (runs, n, n).

  A chunk of runs at a time within metrics.MEMORY_LIMIT_BYTES (metrics.evaluation_bytes of the tabular model, once
  per input row); the last chunk repeats the last run, so that every chunk runs one program. At the paper scale
  (depth 8, 400 attacked correctors) all runs at once had reached 10.6 GB resident on a CPU.
  """
  logits = np.asarray(logits)
  runs, n = logits.shape[0], token_tree.n_leaves(depth)
  per_run = n * metrics.evaluation_bytes(build_model(ModelConfig(kind="tabular"), depth), 1, n)
  chunk = int(max(1, min(runs, metrics.MEMORY_LIMIT_BYTES // per_run)))
  batched = _batched_corrector_log_probs(depth)
  parts = [np.asarray(batched(logits[np.minimum(np.arange(start, start + chunk), runs - 1)]))
           for start in range(0, runs, chunk)]
  return np.concatenate(parts)[:runs]


def train_corrector(config: MitigationsConfig, params, pairs: np.ndarray, steps: np.ndarray, stage, keys, progress,
                    label: str):
  """Trains corrector tables (leading run axis) on pair counts (runs, n, n) for their own steps."""
  tabular = build_model(ModelConfig(kind="tabular"), config.depth)
  loss = corrector_loss(config.depth, stage.batch_size)
  runs = pairs.shape[0]
  trained, _ = loss_training.train_with_loss(
      tabular, loss, params, {"pairs": pairs.reshape(runs, -1)}, steps, keys=keys,
      learning_rates=np.full(runs, stage.learning_rate), optimizer=stage.optimizer, schedule=stage.schedule,
      warmup_fraction=stage.warmup_fraction, progress=progress, label=label)
  return trained


def run_corrector(config: MitigationsConfig, model: Model, data: dict, pretrained, progress=None
                  ) -> tuple[dict, dict]:
  """Trains the corrector at every W/C of its grid and attacks it through its base and through itself.

  The base is the pre-trained model, frozen; the corrector starts from small random logits, trains one epoch on W
  copy pairs (x, x), x ~ D_p (Aligner's identity warm-up), then one epoch on C correction pairs (x, mirror(x)),
  x ~ negatives. Base attacks: the baseline's attacks applied to the pre-trained base (DPO's reference: the base).
  Corrector attack: the trained corrector fine-tuned for one epoch on n2 copy pairs (x, x), x the attack's negatives.
  """
  seeds, n = config.seeds, token_tree.n_leaves(config.depth)
  ratios = config.corrector.grid
  levels = len(ratios)
  rows = np.tile(np.arange(seeds), levels)  # level-major runs
  init_keys = run_keys(config, "corrector-init")
  start = jax.vmap(lambda key: corrector.init_corrector(key, config.depth, config.corrector_init_scale,
                                                       jnp.float64))(jnp.asarray(init_keys))
  start = _rows(_host(start), rows)
  copies = data["copies"].transpose(1, 0, 2).reshape(levels * seeds, n)  # level-major
  copy_pairs = np.stack([corrector.copy_pair_weights(c) for c in copies])
  stage = config.corrector_stage
  copy_steps = np.array([stage.steps_for(w) for w in np.repeat(config.copy_sizes(), seeds)])
  warm = train_corrector(config, start, copy_pairs, copy_steps, stage, run_keys(config, "corrector-copy")[rows],
                         progress, "corrector: copy pairs")
  correction_steps = np.full(levels * seeds, stage.steps_for(config.corrector_corrections))
  trained = train_corrector(config, warm, data["corrections"][rows], correction_steps, stage,
                            run_keys(config, "corrector-correct")[rows], progress, "corrector: correction pairs")
  matrices = corrector_matrices(config.depth, trained["logits"]).reshape(levels, seeds, n, n)

  # The corrector attack: copy pairs of the attack's negatives, one run per (level, seed, n2 > 0).
  sizes = config.attack_sizes
  attack_rows = [(level, seed, i) for level in range(levels) for seed in range(seeds) for i in range(1, len(sizes))]
  host = _host(trained)
  attack_pairs = np.stack([corrector.copy_pair_weights(data["attack"][seed, i]) for _, seed, i in attack_rows])
  attack_keys = run_keys(config, "corrector-attack", count=len(sizes))
  attacked = train_corrector(
      config, _rows(host, [level * seeds + seed for level, seed, _ in attack_rows]), attack_pairs,
      np.array([config.corrector_attack.steps_for(sizes[i]) for *_, i in attack_rows]), config.corrector_attack,
      np.stack([attack_keys[seed * len(sizes) + i] for _, seed, i in attack_rows]), progress, "corrector attack")
  attacked_matrices = corrector_matrices(config.depth, attacked["logits"]).reshape(levels, seeds, len(sizes) - 1, n,
                                                                                  n)

  # The base attacks (the baseline's attacks applied to the frozen base).
  base_curves = corrector_base_curves(config)
  base_log2q = attack(config, model, BASELINE, base_curves, pretrained, (0.0,), data, progress)
  pretrained_log2q = base_log2q[0, :, 0]
  composed_base = np.stack([[[corrector.composed_log_probs(base_log2q[v, seed] * LN2, matrices[level, seed]) / LN2
                              for seed in range(seeds)] for level in range(levels)]
                            for v in range(len(base_curves))])  # (attacks, levels, seeds, n_sizes, n)
  composed_self = np.empty((levels, seeds, len(sizes), n))
  for level in range(levels):
    for seed in range(seeds):
      base = pretrained_log2q[seed] * LN2
      composed_self[level, seed, 0] = corrector.composed_log_probs(base, matrices[level, seed]) / LN2
      for i in range(1, len(sizes)):
        composed_self[level, seed, i] = corrector.composed_log_probs(base, attacked_matrices[level, seed, i - 1]) / LN2
  corrector_rates = {name: np.stack([[corrector.composed_metrics(pretrained_log2q[seed] * LN2, matrices[level, seed],
                                                       config.depth)[name] for seed in range(seeds)]
                           for level in range(levels)])
           for name in ("correction_rate", "degradation_rate", "copy_rate")}
  start_log2q = composed_self[:, :, 0]
  arrays = {
      "ratios": np.asarray(ratios, dtype=np.float64), "copy_sizes": config.copy_sizes(),
      "attack_sizes": np.asarray(sizes), "corrector_log_matrix": matrices,
      "base_attack_log2q_bits": base_log2q, "composed_base_attack_log2q_bits": composed_base,
      "composed_base_attack_positive_score": metrics.positive_score(composed_base, config.depth),
      "composed_self_attack_log2q_bits": composed_self,
      "composed_self_attack_positive_score": metrics.positive_score(composed_self, config.depth),
      "pretrained_log2q_bits": pretrained_log2q,
      "pretrained_positive_score": metrics.positive_score(pretrained_log2q, config.depth),
      "sources": data["sources"], "start_log2q_bits": start_log2q,
      "start_rates_bits": rates(start_log2q, data["sources"]),
      "pretrained_rates_bits": rates(pretrained_log2q, data["sources"]),
      "start_within_aligned_kl_nats": within_aligned_kl_nats(start_log2q, pretrained_log2q[None], config.depth),
      **{f"start_{name}": value for name, value in corrector_rates.items()},
  }
  summary = {"defence": CORRECTOR, "name": CORRECTOR, "curves": [dataclasses.asdict(c) for c in base_curves],
             "strengths": list(ratios), "copy_sizes": config.copy_sizes().tolist(),
             "self_attack_positive_score_mean": arrays["composed_self_attack_positive_score"].mean(axis=1).tolist()}
  return summary, arrays
