"""Defences against harmful fine-tuning as pure objectives in nats: KL anchors, constrained SFT, Lisa, Booster, Vaccine.

Every objective is a pure function of (model, params, data...) that a training loop can close over, e.g.
`functools.partial(constrained_sft_loss, model, tokens=..., ...)` gives `loss(params, ...) -> scalar`, and be
differentiated with jax.grad. Data follow toy_models.likelihood: `tokens` (B, T) are responses of
theory.token_tree (every leaf, token_tree.leaf_tokens(depth), for exact objectives, or a minibatch) and
`weights` (B,) their counts. Anything describing the aligned (reference) model is passed as an array computed
beforehand and treated as a constant (no gradient flows into it). Token position t (1-based, as in the papers)
is column t - 1 of `tokens`, which is also depth t - 1 in the tree: the alignment decision is the first token
(theory.conventions.ALIGNED_PREFIX).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from theory import token_tree
from toy_models import likelihood
from toy_models.models import Model

LISA_STATES = ("alignment", "finetune")
"""States of Lisa's bi-state optimisation: steps on the alignment data, then steps on the user's data."""


# Shared pieces.

def _check_real(name: str, value, *, positive: bool = False):
  """A Python or numpy real `value` >= 0 (> 0 if `positive`) and finite, else a one-line ValueError.

  Arrays and traced values pass unchecked (a training loop may sweep hyperparameters as traced arrays).
  """
  if isinstance(value, bool) or (isinstance(value, str | bytes | type(None))):
    raise ValueError(f"{name}={value!r} is not allowed; allowed: a finite number {'>' if positive else '>='} 0")
  if isinstance(value, numbers.Real):
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
      raise ValueError(f"{name}={value!r} is not allowed; allowed: a finite number {'>' if positive else '>='} 0")
  return value


def _check_shape(name: str, array, shape: tuple) -> jax.Array:
  """`array` as a JAX array of exactly `shape`, else a one-line ValueError."""
  array = jnp.asarray(array)
  if array.shape != tuple(shape):
    raise ValueError(f"{name} has shape {array.shape}; allowed: {tuple(shape)}")
  return array


def _weights(params: dict, tokens: jax.Array, weights) -> jax.Array:
  """`weights` (B,) cast to the parameters' float type; one-line ValueError on a shape that does not match tokens."""
  return _check_shape("weights", weights, tokens.shape[:1]).astype(likelihood.params_dtype(params))


next_token_log_probs = likelihood.next_token_log_probs
"""The model's whole next-token distribution in nats at every position, (B, T, 3): likelihood.next_token_log_probs,
which the token-level anchors compare with the aligned model's."""


# 1. KL anchors.

def response_kl_nats(model: Model, params: dict, aligned_leaf_log_probs: jax.Array) -> jax.Array:
  """KL(q_theta || q_aligned) = sum_x q_theta(x) ln(q_theta(x) / q_aligned(x)) over every response x, in nats.

  Exact: every leaf of the tree of model.depth goes through the model. q_aligned is a constant.

  Args:
    model: the model.
    params: its parameters (one run).
    aligned_leaf_log_probs: (2**depth - 1,) log q_aligned(x) in nats of every leaf, in heap order
      (e.g. likelihood.leaf_log_probs of the aligned model on token_tree.leaf_tokens(depth)).

  Returns:
    The scalar KL divergence in nats per response.

  References:
    Kullback & Leibler, "On information and sufficiency", Ann. Math. Stat. 1951.
  """
  tokens = jnp.asarray(token_tree.leaf_tokens(model.depth))
  dtype = likelihood.params_dtype(params)
  reference = _check_shape("aligned_leaf_log_probs", aligned_leaf_log_probs, tokens.shape[:1]).astype(dtype)
  log_q = likelihood.leaf_log_probs(model, params, tokens)
  return (jnp.exp(log_q) * (log_q - jax.lax.stop_gradient(reference))).sum()


def kl_anchor_response_loss(model: Model, params: dict, tokens: jax.Array, weights: jax.Array,
                            aligned_leaf_log_probs: jax.Array, beta: float) -> jax.Array:
  """Fine-tuning loss plus a response-level KL anchor to the aligned model.

  L(theta) = NLL_tok(theta; data) + beta * KL(q_theta || q_aligned), with NLL_tok = likelihood.weighted_token_nll
  (nats per token) and the KL exact over every response of the tree (response_kl_nats, nats per response); beta
  converts the second into the units of the first.

  Args:
    model: the model.
    params: its parameters (one run).
    tokens: fine-tuning responses (B, T).
    weights: (B,) their weights (counts).
    aligned_leaf_log_probs: (2**depth - 1,) log q_aligned of every leaf in nats (a constant).
    beta: anchor strength (>= 0).

  Returns:
    The scalar objective (nats per token + beta * nats per response).

  References:
    Ziegler et al., "Fine-Tuning Language Models from Human Preferences", arXiv:1909.08593, 2019 (KL penalty to
    the initial policy); Ouyang et al., "Training language models to follow instructions with human feedback",
    NeurIPS 2022.
  """
  _check_real("beta", beta)
  nll = likelihood.weighted_token_nll(model, params, tokens, _weights(params, tokens, weights))
  return nll + beta * response_kl_nats(model, params, aligned_leaf_log_probs)


def token_kl_nats(model: Model, params: dict, tokens: jax.Array, weights: jax.Array,
                  aligned_next_token_log_probs: jax.Array) -> jax.Array:
  """Expected per-position KL between the model's and the aligned model's next-token distributions, along the data.

  K(theta) = sum_x w(x) sum_{j < |x|} KL(p_theta(. | x_<j) || p_aligned(. | x_<j)) / sum_x w(x) |x|, in nats per
  token, the prefixes x_<j taken from the data's responses (|x| counts EOS; at the tree's last position both
  distributions put all mass on EOS, so that position adds 0).

  Why along the data: along the model's own distribution (w = q_theta) the sum over positions is exactly the
  response-level KL(q_theta || q_aligned) by the chain rule of KL divergence (response_kl_nats does that one
  exactly); along the data it is a different, data-local anchor that a minibatch estimates without sampling
  from the model. The gradient treats the data as fixed.

  Args:
    model: the model.
    params: its parameters (one run).
    tokens: responses (B, T) whose prefixes are visited.
    weights: (B,) their weights (counts).
    aligned_next_token_log_probs: (B, T, 3) next_token_log_probs of the aligned model on the same `tokens` (a
      constant).

  Returns:
    The scalar anchor in nats per token.

  References:
    Ziegler et al., "Fine-Tuning Language Models from Human Preferences", arXiv:1909.08593, 2019 (per-token
    KL); Cover & Thomas, "Elements of Information Theory", 2nd ed., Thm. 2.5.3 (chain rule for KL).
  """
  weights = _weights(params, tokens, weights)
  reference = _check_shape("aligned_next_token_log_probs", aligned_next_token_log_probs, (*tokens.shape, 3))
  allowed = likelihood.allowed_tokens(tokens.shape[1])[None]
  log_p = jnp.where(allowed, next_token_log_probs(model, params, tokens), 0.0)
  log_r = jnp.where(allowed, jax.lax.stop_gradient(reference.astype(weights.dtype)), 0.0)
  per_position = jnp.where(allowed, jnp.exp(log_p) * (log_p - log_r), 0.0).sum(axis=-1)
  per_position = jnp.where(tokens == token_tree.PAD, 0.0, per_position)
  return (weights * per_position.sum(axis=-1)).sum() / likelihood.token_mass(tokens, weights)


def kl_anchor_token_loss(model: Model, params: dict, tokens: jax.Array, weights: jax.Array,
                         aligned_next_token_log_probs: jax.Array, beta: float) -> jax.Array:
  """Fine-tuning loss plus a token-level KL anchor to the aligned model, both along the data, in nats per token.

  L(theta) = NLL_tok(theta; data) + beta * K(theta), K = token_kl_nats (the expected per-position KL along the
  data's responses).

  Args:
    model: the model.
    params: its parameters (one run).
    tokens: fine-tuning responses (B, T).
    weights: (B,) their weights (counts).
    aligned_next_token_log_probs: (B, T, 3) next-token log-probabilities of the aligned model (a constant).
    beta: anchor strength (>= 0).

  Returns:
    The scalar objective in nats per token.

  References:
    Ziegler et al., "Fine-Tuning Language Models from Human Preferences", arXiv:1909.08593, 2019.
  """
  _check_real("beta", beta)
  nll = likelihood.weighted_token_nll(model, params, tokens, _weights(params, tokens, weights))
  return nll + beta * token_kl_nats(model, params, tokens, weights, aligned_next_token_log_probs)


# 2. Token-wise constrained fine-tuning.

@dataclasses.dataclass(frozen=True, kw_only=True)
class TokenwiseBetas:
  """Per-position inverse temperatures beta_t of the token-wise constrained objective (t = 1-based position).

  The defaults are the setting reported with Qi et al.'s code: beta = 0.1 with weights x5 on the first token and
  x20 on tokens 2..5.
  """

  first: float = 0.5  # beta_1, the first token (in this tree the aligned / unaligned decision); >= 0.
  early: float = 2.0  # beta_t for t = 2..early_last; >= 0.
  early_last: int = 5  # last (1-based) position that uses `early`; >= 1 (1: no early positions).
  late: float = 0.1  # beta_t for t > early_last; >= 0.

  def __post_init__(self):
    for name in ("first", "early", "late"):
      _check_real(name, getattr(self, name))
    if isinstance(self.early_last, bool) or not isinstance(self.early_last, int) or self.early_last < 1:
      raise ValueError(f"early_last={self.early_last!r} is not allowed; allowed: an integer >= 1")

  def betas(self, positions: int) -> np.ndarray:
    """beta_t for t = 1..positions as a float64 array (positions,) (column t - 1 of the tokens)."""
    if isinstance(positions, bool) or not isinstance(positions, int) or positions < 1:
      raise ValueError(f"positions={positions!r} is not allowed; allowed: an integer >= 1")
    t = np.arange(1, positions + 1)
    return np.where(t == 1, self.first, np.where(t <= self.early_last, self.early, self.late)).astype(np.float64)


def _softplus_minus_ln2(z: jax.Array) -> jax.Array:
  """softplus(-z) - ln 2 = ln((1 + e^-z) / 2), accurate also for |z| << 1 (no cancellation)."""
  small = jnp.abs(z) < 1.0
  z_small = jnp.where(small, z, 0.0)  # keeps the unused branch finite (and its gradient)
  return jnp.where(small, jnp.log1p(0.5 * jnp.expm1(-z_small)), jax.nn.softplus(-z) - math.log(2.0))


def constrained_sft_loss(model: Model, params: dict, tokens: jax.Array, weights: jax.Array,
                         aligned_token_log_probs: jax.Array, betas) -> jax.Array:
  """Qi et al.'s token-wise constrained fine-tuning objective, shifted to reduce to the token NLL as beta_t -> 0.

  With Delta_t = ln pi_theta(y_t | y_<t) - ln pi_aligned(y_t | y_<t), Qi et al. minimise
  sum_t (2 / beta_t) softplus(-beta_t Delta_t) (= -(2 / beta_t) log sigmoid(beta_t Delta_t)). Since
  softplus(-z) = ln 2 - z/2 + z**2/8 + O(z**4), subtracting the constant (in theta) 2 ln 2 / beta_t - ln pi_aligned
  gives the per-token loss

    l_t = (2 / beta_t) (softplus(-beta_t Delta_t) - ln 2) - ln pi_aligned(y_t | y_<t)
        = -ln pi_theta(y_t | y_<t) + beta_t Delta_t**2 / 4 + O(beta_t**3),

  which is the token NLL plus a penalty >= 0 (softplus(-z) >= ln 2 - z/2 by convexity) that vanishes as
  beta_t -> 0, and is exactly the NLL at beta_t = 0. The loss is sum_x w(x) sum_t l_t(x) / sum_x w(x) |x|, in
  nats per token (likelihood.weighted_token_nll at beta = 0); the forced EOS at the tree's last position has
  Delta = 0 and contributes 0. Large beta_t turn the penalty into 2 max(-Delta_t, 0): a token may gain
  probability freely but loses it only against a hinge.

  Args:
    model: the model.
    params: its parameters (one run).
    tokens: fine-tuning responses (B, T).
    weights: (B,) their weights (counts).
    aligned_token_log_probs: (B, T) likelihood.token_log_probs of the aligned model on `tokens` (a constant).
    betas: (T,) beta_t >= 0 of each position (TokenwiseBetas().betas(T) for the paper's setting).

  Returns:
    The scalar objective in nats per token.

  References:
    Qi et al., "Safety Alignment Should Be Made More Than Just a Few Tokens Deep", arXiv:2406.05946, 2024
    (ICLR 2025), Section 4 (token-wise constrained objective, its beta -> 0 limit and per-token betas).
  """
  weights = _weights(params, tokens, weights)
  dtype = weights.dtype
  if not isinstance(betas, jax.core.Tracer):
    values = np.asarray(betas, dtype=np.float64)
    if values.shape == tokens.shape[1:] and not np.all(np.isfinite(values) & (values >= 0)):
      raise ValueError(f"betas={values.tolist()} is not allowed; allowed: finite numbers >= 0")
  betas = _check_shape("betas", betas, tokens.shape[1:]).astype(dtype)
  reference = jax.lax.stop_gradient(
      _check_shape("aligned_token_log_probs", aligned_token_log_probs, tokens.shape).astype(dtype))
  delta = likelihood.token_log_probs(model, params, tokens) - reference
  positive = (betas > 0)[None, :]
  safe_betas = jnp.where(positive, betas[None, :], 1.0)
  constrained = jnp.where(positive, 2.0 / safe_betas * _softplus_minus_ln2(safe_betas * delta), -delta)
  per_token = jnp.where(tokens == token_tree.PAD, 0.0, constrained - reference)
  return (weights * per_token.sum(axis=-1)).sum() / likelihood.token_mass(tokens, weights)


# 3. Proximal term and Lisa's bi-state alternation.

def proximal_penalty(params: dict, anchor_params: dict, rho: float) -> jax.Array:
  """rho / 2 * ||theta - theta_anchor||**2 summed over every parameter (the anchor is a constant).

  Args:
    params: the parameters theta.
    anchor_params: the anchor theta_anchor (same structure).
    rho: proximal strength (>= 0).

  Returns:
    The scalar penalty (in the loss's units per squared parameter unit).

  References:
    Huang et al., "Lisa: Lazy Safety Alignment for Large Language Models against Harmful Fine-tuning Attack",
    NeurIPS 2024 (proximal term); Rockafellar, "Monotone operators and the proximal point algorithm", 1976.
  """
  _check_real("rho", rho)
  if jax.tree_util.tree_structure(params) != jax.tree_util.tree_structure(anchor_params):
    raise ValueError("anchor_params have another structure than params; allowed: the same pytree structure")
  squares = jax.tree_util.tree_map(lambda p, a: ((p - jax.lax.stop_gradient(a).astype(p.dtype)) ** 2).sum(),
                                   params, anchor_params)
  return 0.5 * rho * sum(jax.tree_util.tree_leaves(squares))


def lisa_loss(model: Model, params: dict, anchor_params: dict, tokens: jax.Array, weights: jax.Array,
              rho: float) -> jax.Array:
  """One Lisa state's objective: the token NLL of that state's data plus the proximal term to its anchor.

  L(theta) = NLL_tok(theta; data) + rho / 2 ||theta - theta_anchor||**2, in nats per token; the data and the anchor
  of each step come from LisaSchedule.phases.

  Args:
    model: the model.
    params: its parameters (one run).
    anchor_params: the phase's anchor (the parameters at the last switch of state), a constant.
    tokens: the state's responses (B, T) (alignment data or the user's data).
    weights: (B,) their weights.
    rho: proximal strength (>= 0).

  Returns:
    The scalar objective.

  References:
    Huang et al., "Lisa: Lazy Safety Alignment for Large Language Models against Harmful Fine-tuning Attack",
    NeurIPS 2024.
  """
  nll = likelihood.weighted_token_nll(model, params, tokens, _weights(params, tokens, weights))
  return nll + proximal_penalty(params, anchor_params, rho)


@dataclasses.dataclass(frozen=True, kw_only=True)
class LisaPhase:
  """A run of consecutive steps in one state of Lisa's alternation."""

  state: str  # one of LISA_STATES.
  data: str  # which data the steps use: 'alignment' (the aligned data) or 'user' (the fine-tuning data).
  start: int  # first step (0-based) of the phase.
  steps: int  # number of steps.
  anchor_step: int  # the proximal anchor: the parameters after this many steps (= start: the last switch).


@dataclasses.dataclass(frozen=True, kw_only=True)
class LisaSchedule:
  """Lisa's bi-state optimisation: cycles of alignment steps then user-data steps, each anchored proximally.

  A training loop follows `phases(total)`: at the start of each phase it stores the current parameters as the
  anchor, then takes the phase's steps on lisa_loss with the phase's data and that anchor. So the alignment state
  is pulled towards the checkpoint left by the last fine-tuning state and vice versa (Lisa's proximal term against
  the drift towards the switching iterates). The step counts are this toolkit's defaults, not the paper's.
  """

  alignment_steps: int = 10  # K1: steps per alignment state (>= 0).
  finetune_steps: int = 90  # K2: steps per fine-tuning state on the user's data (>= 0; K1 + K2 >= 1).
  rho: float = 1.0  # proximal strength of lisa_loss (>= 0; 0 gives plain bi-state optimisation, BSO).

  def __post_init__(self):
    for name in ("alignment_steps", "finetune_steps"):
      value = getattr(self, name)
      if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name}={value!r} is not allowed; allowed: an integer >= 0")
    if self.alignment_steps + self.finetune_steps == 0:
      raise ValueError("alignment_steps + finetune_steps = 0 is not allowed; allowed: a cycle of >= 1 step")
    _check_real("rho", self.rho)

  def is_alignment_step(self, step):
    """Whether (0-based) `step` is in an alignment state; works on ints and on traced integer arrays."""
    return step % (self.alignment_steps + self.finetune_steps) < self.alignment_steps

  def phases(self, total_steps: int) -> tuple[LisaPhase, ...]:
    """The phases covering steps 0..total_steps-1, alternating alignment then fine-tuning, the last one cut short.

    References:
      Huang et al., "Lisa: Lazy Safety Alignment for Large Language Models against Harmful Fine-tuning Attack",
      NeurIPS 2024 (bi-state optimisation with a proximal term).
    """
    if isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps < 0:
      raise ValueError(f"total_steps={total_steps!r} is not allowed; allowed: an integer >= 0")
    phases, start = [], 0
    while start < total_steps:
      for state, data, length in (("alignment", "alignment", self.alignment_steps),
                                  ("finetune", "user", self.finetune_steps)):
        steps = min(length, total_steps - start)
        if steps > 0:
          phases.append(LisaPhase(state=state, data=data, start=start, steps=steps, anchor_step=start))
          start += steps
    return tuple(phases)


# 4. Booster's simulated-attack penalty.

def _normalised(tree, radius):
  """radius * tree / ||tree|| (Frobenius norm over every leaf); zeros where the tree is all zero (no NaN)."""
  squares = sum(jnp.vdot(leaf, leaf) for leaf in jax.tree_util.tree_leaves(tree))
  nonzero = squares > 0
  scale = jnp.where(nonzero, radius / jnp.sqrt(jnp.where(nonzero, squares, 1.0)), 0.0)
  return jax.tree_util.tree_map(lambda leaf: scale.astype(leaf.dtype) * leaf, tree)


def booster_penalty(harmful_loss: Callable[[dict], jax.Array], params: dict, alpha: float, *,
                    first_order: bool = False) -> jax.Array:
  """Booster's harmful perturbation: L_h(theta) - L_h(theta - alpha g / ||g||), g = grad L_h(theta).

  The decrease of the harmful loss after one normalised gradient step of size alpha, the simulated attack. With
  first_order=False the gradient flows through the inner step (g's dependence on theta included, a Hessian-vector
  product); first_order=True holds the step constant, which gives the first-order update
  grad L_h(theta) - grad L_h(theta - alpha g / ||g||) of Booster's algorithm. The value is the same either way;
  g = 0 gives 0.

  Args:
    harmful_loss: params -> scalar harmful loss L_h (e.g. weighted_token_nll on the harmful data).
    params: parameters theta.
    alpha: inner step size (>= 0), in parameter units (the step's norm).
    first_order: hold the inner step constant for the gradient.

  Returns:
    The scalar penalty in the harmful loss's units.

  References:
    Huang et al., "Booster: Tackling Harmful Fine-tuning for Large Language Models via Attenuating Harmful
    Perturbation", arXiv:2409.01586, 2024 (ICLR 2025).
  """
  _check_real("alpha", alpha)
  loss, grads = jax.value_and_grad(harmful_loss)(params)
  step = _normalised(grads, alpha)
  if first_order:
    step = jax.lax.stop_gradient(step)
  return loss - harmful_loss(jax.tree_util.tree_map(lambda p, s: p - s, params, step))


def booster_objective(align_loss: Callable[[dict], jax.Array], harmful_loss: Callable[[dict], jax.Array],
                      params: dict, *, lam: float, alpha: float, first_order: bool = False) -> jax.Array:
  """Booster's alignment objective L_a(theta) + lam * (L_h(theta) - L_h(theta - alpha g / ||g||)), g = grad L_h.

  Args:
    align_loss: params -> scalar alignment loss L_a.
    harmful_loss: params -> scalar harmful loss L_h.
    params: parameters theta.
    lam: penalty weight lambda (>= 0).
    alpha: inner step size (>= 0).
    first_order: hold the inner step constant for the gradient (booster_penalty).

  Returns:
    The scalar objective.

  References:
    Huang et al., "Booster: Tackling Harmful Fine-tuning for Large Language Models via Attenuating Harmful
    Perturbation", arXiv:2409.01586, 2024 (ICLR 2025).
  """
  _check_real("lam", lam)
  _check_real("alpha", alpha)
  return align_loss(params) + lam * booster_penalty(harmful_loss, params, alpha, first_order=first_order)


def booster_loss(model: Model, params: dict, tokens: jax.Array, align_weights: jax.Array,
                 harmful_weights: jax.Array, *, lam: float, alpha: float, first_order: bool = False) -> jax.Array:
  """booster_objective with token NLLs (nats per token) of the alignment and the harmful data as L_a and L_h.

  Args:
    model: the model.
    params: its parameters (one run).
    tokens: responses (B, T) (e.g. every leaf).
    align_weights: (B,) weights of the alignment data.
    harmful_weights: (B,) weights of the harmful data the defender simulates the attack with.
    lam: penalty weight (>= 0).
    alpha: inner step size (>= 0).
    first_order: hold the inner step constant for the gradient.

  Returns:
    The scalar objective in nats per token.

  References:
    Huang et al., "Booster: Tackling Harmful Fine-tuning for Large Language Models via Attenuating Harmful
    Perturbation", arXiv:2409.01586, 2024 (ICLR 2025).
  """
  align_weights = _weights(params, tokens, align_weights)
  harmful_weights = _weights(params, tokens, harmful_weights)
  return booster_objective(lambda p: likelihood.weighted_token_nll(model, p, tokens, align_weights),
                           lambda p: likelihood.weighted_token_nll(model, p, tokens, harmful_weights), params,
                           lam=lam, alpha=alpha, first_order=first_order)


# 5. Vaccine's perturbation-aware alignment.

def _shifted_model(model: Model, embedding_shift: jax.Array) -> Model:
  """`model` whose logits add `embedding_shift` to the transformer's input embeddings."""
  return dataclasses.replace(model, logits=functools.partial(model.logits, embedding_shift=embedding_shift))


def vaccine_perturbation(model: Model, params: dict, tokens: jax.Array, weights: jax.Array, rho: float):
  """Vaccine's worst-case perturbation of norm rho: rho * g / ||g|| with g the alignment loss's gradient w.r.t. it.

  The alignment loss is the token NLL of the data (nats per token); the perturbation is one normalised gradient
  ascent step from 0, the maximiser of the loss's linearisation on the ball of radius rho (Frobenius norm over
  all its entries). Returned as a constant (no gradient flows through it).
  - transformer: a shift (B, T, width) of the input embeddings (token plus position) of each response, the
    argument embedding_shift of toy_models.transformer.logits. Vaccine perturbs the output of every layer; here
    only the embeddings are perturbed.
  - tabular and ngram: these have no representation besides their logit table, so the table itself is perturbed:
    the result is a pytree like params (a shift of the 'logits' leaf), and Vaccine becomes sharpness-aware
    minimisation of the table (Foret et al., ICLR 2021).

  Args:
    model: the model.
    params: its parameters (one run).
    tokens: alignment responses (B, T).
    weights: (B,) their weights.
    rho: perturbation norm (>= 0).

  Returns:
    The perturbation: (B, T, width) for transformers, a params-shaped pytree for tabular and ngram models.

  References:
    Huang et al., "Vaccine: Perturbation-aware Alignment for Large Language Models against Harmful Fine-tuning",
    NeurIPS 2024 (arXiv:2402.01109); Foret et al., "Sharpness-Aware Minimization for Efficiently Improving
    Generalization", ICLR 2021.
  """
  _check_real("rho", rho)
  weights = _weights(params, tokens, weights)
  if model.config.kind == "transformer":
    zero = jnp.zeros((*tokens.shape, model.config.width), likelihood.params_dtype(params))
    grads = jax.grad(lambda shift: likelihood.weighted_token_nll(_shifted_model(model, shift), params, tokens,
                                                                 weights))(zero)
  else:
    grads = jax.grad(lambda table: likelihood.weighted_token_nll(model, table, tokens, weights))(params)
  return jax.lax.stop_gradient(_normalised(grads, rho))


def vaccine_loss(model: Model, params: dict, tokens: jax.Array, weights: jax.Array, rho: float) -> jax.Array:
  """Vaccine's objective: the alignment token NLL under the worst-case perturbation of norm rho, in nats per token.

  L(theta) = NLL_tok(theta; data | perturbation eps*(theta)), eps* from vaccine_perturbation, held constant for the
  parameter gradient (Vaccine's two passes: find eps*, then descend at the perturbed representation). rho = 0
  gives the plain alignment loss.

  Args:
    model: the model.
    params: its parameters (one run).
    tokens: alignment responses (B, T).
    weights: (B,) their weights.
    rho: perturbation norm (>= 0).

  Returns:
    The scalar objective in nats per token.

  References:
    Huang et al., "Vaccine: Perturbation-aware Alignment for Large Language Models against Harmful Fine-tuning",
    NeurIPS 2024 (arXiv:2402.01109).
  """
  perturbation = vaccine_perturbation(model, params, tokens, weights, rho)
  weights = _weights(params, tokens, weights)
  if model.config.kind == "transformer":
    return likelihood.weighted_token_nll(_shifted_model(model, perturbation), params, tokens, weights)
  shifted = jax.tree_util.tree_map(lambda p, e: p + e, params, perturbation)
  return likelihood.weighted_token_nll(model, shifted, tokens, weights)
