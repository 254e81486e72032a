"""Instantaneous elasticity: first-order change of each dataset's rate per unit learning rate of one fine-tuning step.

Fine-tuning on D_t moves the parameters by theta -> theta - eta u, where u = P(theta) grad L_t(theta) is the
optimiser's update direction (toy_models/training.py: optax.identity for SGD, optax.scale_by_adam for Adam) and
eta the learning rate of that step. Each dataset's compression rate gamma_i = -sum_x P_i(x) log2 q_theta(x) (bits
per response) then changes by eta E_i + O(eta**2) with

  E_i = -grad gamma_i(theta) . u     (bits per response per unit learning rate).

For SGD u = grad L_t (P = identity), linear in the gradient. For Adam u = mhat / (sqrt(nhat) + eps), with mhat and
nhat the bias-corrected moments after the new gradient is added to the state (mu, nu, count): u is not linear in
grad L_t, so E_i is the exact first-order change for one update from the given state, not a directional
derivative along a fixed preconditioner. From a fresh state mhat = g and nhat = g**2, so the first step is
u = g / (|g| + eps), about sign(g).

L_t is the SFT loss of D_t as training forms it: 'mean' is likelihood.weighted_token_nll with D_t's counts as
weights (nats per token), 'sum' is the loss summed over D_t's examples, sum_x w(x) (-ln q(x)) = n_t CE_t (nats).
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax

from theory import conventions, token_tree
from toy_models import likelihood, shared_prefixes
from toy_models.models import Model
from toy_models.stage_config import OPTIMIZERS

LOSS_REDUCTIONS = ("mean", "sum")
"""'mean': the token-mean NLL of training (nats per token); 'sum': summed over the examples (nats)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class AdamConfig:
  """Adam's hyperparameters; the defaults are optax.scale_by_adam()'s, which toy_models/training.py uses."""

  b1: float = 0.9  # decay of the first-moment average.
  b2: float = 0.999  # decay of the second-moment average.
  eps: float = 1e-8  # added to sqrt(nhat) in the denominator.
  eps_root: float = 0.0  # added to nhat inside the square root.

  def __post_init__(self):
    for name in ("b1", "b2"):
      value = getattr(self, name)
      if not 0 <= value < 1:
        raise ValueError(f"{name}={value!r} is not allowed; allowed: 0 <= {name} < 1")
    for name in ("eps", "eps_root"):
      value = getattr(self, name)
      if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name}={value!r} is not allowed; allowed: a finite number >= 0")

  def transform(self) -> optax.GradientTransformation:
    """The optax transform with these hyperparameters (its update is the direction u of a step)."""
    return optax.scale_by_adam(b1=self.b1, b2=self.b2, eps=self.eps, eps_root=self.eps_root)


@functools.partial(jax.tree_util.register_dataclass,
                   data_fields=["rate_changes_bits", "update", "loss_gradient", "loss", "ratio"], meta_fields=[])
@dataclasses.dataclass(frozen=True)
class InstantaneousElasticity:
  """First-order rate changes of one fine-tuning step (JAX arrays; a pytree, vmappable)."""

  rate_changes_bits: jax.Array  # (n_datasets,) E_i = -grad gamma_i . u, bits per response per unit learning rate.
  update: dict  # u, the optimiser's update direction (params pytree); the step is theta - eta u.
  loss_gradient: dict  # grad L_t (params pytree).
  loss: jax.Array  # L_t at theta: nats per token ('mean') or nats ('sum').
  ratio: jax.Array  # E_a / E_p: the alignment rate's change per unit change of the pre-training rate.


def _leaf_tokens(model: Model) -> jax.Array:
  return jnp.asarray(token_tree.leaf_tokens(model.depth))


def finetune_loss(model: Model, params, finetune_weights: jax.Array, *, reduction: str = "mean") -> jax.Array:
  """L_t: the SFT loss of the fine-tuning data with counts `finetune_weights` (n_leaves,).

  Args:
    model: the model.
    params: parameters of one run (float64).
    finetune_weights: how often each response occurs in D_t (e.g. n_t P_t), shape (2**depth - 1,).
    reduction: 'mean' (likelihood.weighted_token_nll, nats per token, as training uses it) or 'sum'
      (sum_x w(x) (-ln q(x)) = n_t CE_t, nats).

  Returns:
    The scalar loss.

  References:
    Ji et al., "Language Models Resist Alignment", ACL 2025, Section 5 (SFT loss).
  """
  if reduction not in LOSS_REDUCTIONS:
    raise ValueError(f"unknown reduction {reduction!r}; allowed: {', '.join(LOSS_REDUCTIONS)}")
  tokens = _leaf_tokens(model)
  if reduction == "mean":
    return likelihood.weighted_token_nll(model, params, tokens, finetune_weights)
  return -(finetune_weights * shared_prefixes.tree_leaf_log_probs(model, params, model.depth)).sum()


def rate_gradients_bits(model: Model, params, probs: jax.Array):
  """grad gamma_i for every dataset: the params pytree with a leading dataset axis, bits per response per unit.

  References:
    Ji et al., "Language Models Resist Alignment", ACL 2025, Def. 3.3 (compression rate).
  """
  _, pullback = jax.vjp(lambda p: shared_prefixes.tree_leaf_log_probs(model, p, model.depth), params)
  return jax.vmap(pullback)(-probs / conventions.LN2)[0]


def _dot_per_dataset(stacked, tree) -> jax.Array:
  """sum over leaves of <stacked[i], tree> for each i: (n_datasets,)."""
  products = jax.tree_util.tree_map(lambda s, t: (s * t[None]).reshape(s.shape[0], -1).sum(axis=1), stacked, tree)
  return sum(jax.tree_util.tree_leaves(products))


@functools.partial(jax.jit, static_argnames=("model", "reduction", "optimizer", "adam"))
def _instantaneous(model: Model, reduction: str, optimizer: str, adam: AdamConfig, params, probs, finetune_weights,
                   adam_state):
  loss, gradient = jax.value_and_grad(functools.partial(finetune_loss, model, reduction=reduction))(
      params, finetune_weights)
  if optimizer == "sgd":
    update = gradient
  else:
    update, _ = adam.transform().update(gradient, adam_state, params)
  changes = -_dot_per_dataset(rate_gradients_bits(model, params, probs), update)
  return InstantaneousElasticity(rate_changes_bits=changes, update=update, loss_gradient=gradient, loss=loss,
                                 ratio=changes[conventions.ALIGN] / changes[conventions.PRETRAIN])


def fresh_adam_state(params, *, adam: AdamConfig = AdamConfig()) -> optax.ScaleByAdamState:
  """The state a new fine-tuning stage starts from (training.train_batch initialises it per stage): zeros, count 0."""
  return adam.transform().init(params)


def instantaneous_elasticity(model: Model, params, probs, finetune_weights, *, reduction: str = "mean",
                             optimizer: str = "sgd", adam_state=None, adam: AdamConfig = AdamConfig()
                             ) -> InstantaneousElasticity:
  """E_i = -grad gamma_i(theta) . u: each rate's first-order change per unit learning rate of one fine-tuning step.

  The step is theta - eta u with u = P grad L_t: P = identity for 'sgd'; for 'adam' u is optax.scale_by_adam's
  update from `adam_state` (fresh if None) after adding grad L_t, exactly as training applies it. Then
  gamma_i(theta - eta u) - gamma_i(theta) = eta E_i + O(eta**2).

  Args:
    model: the model (float64).
    params: parameters of one run (float64 pytree); vmap over runs if needed.
    probs: leaf distributions of the datasets whose rates are tracked, (n_datasets, 2**depth - 1), float64, on
      theory.conventions' axes (E_a / E_p is returned as `ratio`).
    finetune_weights: counts of the fine-tuning data D_t per response (e.g. n_t P_t), (2**depth - 1,), float64.
    reduction: one of LOSS_REDUCTIONS ('mean' = training's token-mean loss, 'sum' = summed over examples).
    optimizer: 'sgd' or 'adam' (toy_models.stage_config.OPTIMIZERS).
    adam_state: 'adam' only: the optax.ScaleByAdamState (mu, nu, count) before the step; None = fresh.
    adam: Adam's hyperparameters (optax defaults, as in training).

  Returns:
    InstantaneousElasticity: E_i in bits per response per unit learning rate, u, grad L_t, L_t, E_a / E_p.

  References:
    Ji et al., "Language Models Resist Alignment", ACL 2025, Section 4 (elasticity), Section 5 (fine-tuning);
    Kingma & Ba, "Adam: A method for stochastic optimization", ICLR 2015, Alg. 1.
  """
  if reduction not in LOSS_REDUCTIONS:
    raise ValueError(f"unknown reduction {reduction!r}; allowed: {', '.join(LOSS_REDUCTIONS)}")
  if optimizer not in OPTIMIZERS:
    raise ValueError(f"unknown optimizer {optimizer!r}; allowed: {', '.join(OPTIMIZERS)}")
  if not isinstance(adam, AdamConfig):
    raise ValueError(f"adam must be an AdamConfig, got {type(adam).__name__}")
  if optimizer == "sgd" and adam_state is not None:
    raise ValueError("adam_state given with optimizer='sgd'; allowed: only with optimizer='adam'")
  _check_inputs(model, params, probs, finetune_weights)
  if optimizer == "adam" and adam_state is None:
    adam_state = fresh_adam_state(params, adam=adam)
  return _instantaneous(model, reduction, optimizer, adam, params, jnp.asarray(probs),
                        jnp.asarray(finetune_weights), adam_state)


def _check_inputs(model: Model, params, probs, finetune_weights) -> None:
  """Shape, dtype and (for concrete arrays) value checks; one-line ValueError."""
  if not isinstance(model, Model):
    raise ValueError(f"model must be a toy_models.models.Model, got {type(model).__name__}")
  dtypes = {str(leaf.dtype) for leaf in jax.tree_util.tree_leaves(params)}
  if dtypes != {"float64"}:
    raise ValueError(f"params have dtype {', '.join(sorted(dtypes))}; allowed: float64 (ModelConfig dtype='float64' "
                     "with jax_enable_x64 on)")
  n_leaves = token_tree.n_leaves(model.depth)
  if np.ndim(probs) != 2 or np.shape(probs)[1] != n_leaves or np.shape(probs)[0] <= conventions.PERTURB:
    raise ValueError(f"probs have shape {np.shape(probs)}; allowed: (n_datasets >= 3, {n_leaves})")
  if np.shape(finetune_weights) != (n_leaves,):
    raise ValueError(f"finetune_weights have shape {np.shape(finetune_weights)}; allowed: ({n_leaves},)")
  for name, array in (("probs", probs), ("finetune_weights", finetune_weights)):
    if isinstance(array, jax.core.Tracer):
      continue
    if jnp.asarray(array).dtype != jnp.float64:
      raise ValueError(f"{name} have dtype {jnp.asarray(array).dtype}; allowed: float64 (jax_enable_x64 on)")
    values = np.asarray(array)
    good = np.isfinite(values) & (values >= 0)
    if not np.all(good):
      raise ValueError(f"{name} contain {values[~good][0]!r}; allowed: finite numbers >= 0")
  if not isinstance(finetune_weights, jax.core.Tracer) and not np.asarray(finetune_weights).sum() > 0:
    raise ValueError("finetune_weights are all 0; allowed: some positive count")
  if not isinstance(probs, jax.core.Tracer) and np.max(np.abs(np.asarray(probs).sum(axis=1) - 1)) > 1e-9:
    raise ValueError(f"probs rows sum to {np.asarray(probs).sum(axis=1).tolist()}; allowed: 1 within 1e-9")
