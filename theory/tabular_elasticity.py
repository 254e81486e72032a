"""Closed-form gradients and SGD elasticities of the tabular toy model (a free logit vector per node of the tree).

The tabular model (toy_models/tabular.py) keeps one logit vector z_v over the next tokens (0, 1, EOS) at every
node v of the pruned token tree, heap-indexed like the leaves (theory.token_tree): the node of a binary prefix of
length t and big-endian value u has index 2**t - 1 + u, its children are 2v + 1 (token 0) and 2v + 2 (token 1).
At the deepest layer (t = depth - 1) only EOS is possible, so q(EOS | v) = 1 there whatever z_v.

A dataset P_i over the leaves puts the flow f_i(v, c) on the edge (v, c): the probability that a response of P_i
reaches node v and continues with token c there. The mass through v is m_i(v) = sum_c f_i(v, c) and the
next-token distribution P_i(c | v) = f_i(v, c) / m_i(v). Because -log q(x) is the sum of -log q(c | v) along the
edges of x, the cross-entropy splits into one term per node, CE_i = -sum_v sum_c f_i(v, c) log q(c | v) (nats per
response), and sympy differentiates one such term (node_gradient_steps):

  d CE_i / d z_v = m_i(v) q(. | v) - f_i(v, .) = m_i(v) (q(. | v) - P_i(. | v))   [nats per response per logit],

zero at the deepest layer (no free choice) and at nodes P_i never reaches (m_i(v) = 0). Rates gamma_i are the same
cross-entropies in bits (divide by ln 2). Under plain gradient descent on a fine-tuning loss L_t, the first-order
change of gamma_i per unit learning rate is E_i = -grad gamma_i . grad L_t, a sum over nodes of products of these
gradients: it depends only on the model's conditionals q(. | v) and on the datasets.
"""

from __future__ import annotations

import functools

import numpy as np
import sympy as sp

from theory import conventions, symbolic, token_tree, validation

LOSS_REDUCTIONS = ("mean", "sum")
"""Normalisations of the fine-tuning loss L_t: 'mean' is the token-mean NLL of training (likelihood.
weighted_token_nll: CE_t divided by D_t's mean response length in tokens, EOS counted, nats per token); 'sum' is the
loss summed over the n_t examples, n_t CE_t (nats)."""

# One node: logits z_c and edge flows f_c over the next tokens c = 0, 1, EOS; q_c the model's conditionals.
_Z = sp.symbols("z_0 z_1 z_EOS", real=True)
_F = sp.symbols("f_0 f_1 f_EOS", nonnegative=True)
_Q = sp.symbols("q_0 q_1 q_EOS", positive=True)
_SOFTMAX = tuple(sp.exp(z) / sum(sp.exp(w) for w in _Z) for z in _Z)

NODE_CROSS_ENTROPY = -sum(f * sp.log(q) for f, q in zip(_F, _SOFTMAX, strict=True))
"""One node's share of CE_i: -sum_c f_i(v, c) log q(c | v) with q = softmax(z_v), nats per response."""

NODE_GRADIENT_RAW = tuple(sp.diff(NODE_CROSS_ENTROPY, z) for z in _Z)
"""d NODE_CROSS_ENTROPY / d z_c for c = 0, 1, EOS, exactly as sympy differentiates it."""

NODE_GRADIENT = tuple(sum(_F) * q - f for f, q in zip(_F, _Q, strict=True))
"""Closed form of NODE_GRADIENT_RAW in the conditionals q_c = q(c | v): m q_c - f_c = m (q_c - P(c | v))."""

_MASK = sp.Symbol("s", positive=True)  # how far the non-EOS logits are pushed down (masked as s -> oo).
FORCED_NODE_CROSS_ENTROPY = -_F[2] * sp.log(
    sp.exp(_Z[2]) / (sp.exp(_Z[0] - _MASK) + sp.exp(_Z[1] - _MASK) + sp.exp(_Z[2])))
"""A deepest-layer node with its non-EOS logits lowered by s; s -> oo is the forced EOS (q(EOS | v) = 1)."""


def node_gradient_steps() -> list[symbolic.ProofStep]:
  """Sympy checks of the node gradient: raw derivative = closed form (per token), and 0 at the forced layer.

  Returns:
    One symbolic.ProofStep per claim; `holds` is True when sympy reduced lhs - rhs to zero.

  References:
    Bishop, "Pattern Recognition and Machine Learning", 2006, Eq. 4.109 (softmax cross-entropy gradient).
  """
  at_softmax = dict(zip(_Q, _SOFTMAX, strict=True))
  steps = []
  for name, raw, closed in zip(("0", "1", "EOS"), NODE_GRADIENT_RAW, NODE_GRADIENT, strict=True):
    rhs = closed.subs(at_softmax)
    holds = sp.simplify(raw - rhs) == 0
    steps.append(symbolic.ProofStep(f"d CE / d z_{name} = m q_{name} - f_{name}", raw, rhs, bool(holds)))
  for z in _Z:
    raw = sp.limit(sp.diff(FORCED_NODE_CROSS_ENTROPY, z), _MASK, sp.oo)
    steps.append(symbolic.ProofStep(f"forced EOS layer: d CE / d {z} = 0 (limit s -> oo)", raw, sp.Integer(0),
                                    bool(sp.simplify(raw) == 0)))
  return steps


@functools.cache
def _node_gradient_numeric():
  """NODE_GRADIENT lambdified: (q_0, q_1, q_EOS, f_0, f_1, f_EOS) -> the three gradient entries (numpy)."""
  return sp.lambdify((*_Q, *_F), list(NODE_GRADIENT), modules="numpy", cse=True)


def _check_leaves(name: str, P, depth: int, *, min_ndim: int = 1) -> np.ndarray:
  P = validation.check_probabilities(name, P, min_ndim=min_ndim)
  if P.shape[-1] != token_tree.n_leaves(depth):
    raise ValueError(f"{name} has {P.shape[-1]} leaves; allowed: {token_tree.n_leaves(depth)} (2**depth - 1 for "
                     f"depth={depth})")
  return P


def _forced(depth: int) -> np.ndarray:
  """Mask of the deepest-layer nodes (only EOS possible), shape (2**depth - 1,)."""
  forced = np.zeros(token_tree.n_leaves(depth), dtype=bool)
  forced[token_tree.layer_slices(depth)[-1]] = True
  return forced


def pass_masses(P, depth: int) -> np.ndarray:
  """m_i(v): the probability that a response of P reaches node v, shape (..., 2**depth - 1) (heap-indexed nodes).

  Args:
    P: leaf distributions, shape (..., 2**depth - 1), rows summing to one.
    depth: depth of the token tree.

  Returns:
    float64 array: m(v) = P(leaf v) + m(2v + 1) + m(2v + 2), the mass of the subtree rooted at v; m(root) = 1.

  References:
    Ji et al., "Language Models Resist Alignment", ACL 2025, Def. 3.1 (token tree).
  """
  P = _check_leaves("P", P, depth)
  masses = P.copy()
  slices = token_tree.layer_slices(depth)
  for upper, lower in zip(slices[-2::-1], slices[:0:-1], strict=True):
    masses[..., upper] += masses[..., lower][..., 0::2] + masses[..., lower][..., 1::2]
  return masses


def node_flows(P, depth: int) -> np.ndarray:
  """f_i(v, c): probability that a response of P reaches node v and continues with token c (0, 1, EOS).

  Args:
    P: leaf distributions, shape (..., 2**depth - 1).
    depth: depth of the token tree.

  Returns:
    float64 array (..., 2**depth - 1, 3): f(v, 0) = m(2v + 1), f(v, 1) = m(2v + 2), f(v, EOS) = P(leaf v); at
    the deepest layer only f(v, EOS) can be positive.

  References:
    Ji et al., "Language Models Resist Alignment", ACL 2025, Def. 3.1 (token tree).
  """
  P = _check_leaves("P", P, depth)
  masses = pass_masses(P, depth)
  flows = np.zeros((*P.shape, 3))
  flows[..., token_tree.EOS] = P
  inner = 2 ** (depth - 1) - 1  # nodes above the deepest layer; their children are nodes 1 .. 2**depth - 2
  flows[..., :inner, 0] = masses[..., 1::2]
  flows[..., :inner, 1] = masses[..., 2::2]
  return flows


def next_token_distributions(P, depth: int) -> np.ndarray:
  """P_i(c | v) = f_i(v, c) / m_i(v), shape (..., 2**depth - 1, 3); rows of unreached nodes (m = 0) are all 0."""
  flows = node_flows(P, depth)
  masses = flows.sum(axis=-1, keepdims=True)
  return np.divide(flows, masses, out=np.zeros_like(flows), where=masses > 0)


def tabular_conditionals(logits, depth: int) -> np.ndarray:
  """The tabular model's q(c | v) from its logits (2**depth - 1, 3), with the forced EOS at the deepest layer.

  Args:
    logits: the model's parameter "logits" (toy_models/tabular.py), shape (..., 2**depth - 1, 3), nats.
    depth: depth of the token tree.

  Returns:
    float64 (..., 2**depth - 1, 3): softmax of each row; rows of the deepest layer are (0, 0, 1).
  """
  logits = validation.as_float_array("logits", logits)
  n_nodes = token_tree.n_leaves(depth)
  if logits.shape[-2:] != (n_nodes, 3):
    raise ValueError(f"logits have shape {logits.shape}; allowed: (..., {n_nodes}, 3) for depth={depth}")
  if not np.all(np.isfinite(logits)):
    raise ValueError(f"logits contain {logits[~np.isfinite(logits)][0]!r}; allowed: finite numbers")
  shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
  conditionals = shifted / shifted.sum(axis=-1, keepdims=True)
  conditionals[..., _forced(depth), :] = np.array([0.0, 0.0, 1.0])
  return conditionals


def _check_conditionals(conditionals, depth: int) -> np.ndarray:
  conditionals = validation.check_probabilities("conditionals", conditionals, min_ndim=2)
  n_nodes = token_tree.n_leaves(depth)
  if conditionals.shape[-2:] != (n_nodes, 3):
    raise ValueError(f"conditionals have shape {conditionals.shape}; allowed: (..., {n_nodes}, 3) for "
                     f"depth={depth}")
  return conditionals


def cross_entropy_gradients_nats(conditionals, P, depth: int) -> np.ndarray:
  """d CE_i / d z_v = m_i(v) (q(. | v) - P_i(. | v)) for every dataset and node, nats per response per logit.

  Args:
    conditionals: the model's q(c | v), shape (2**depth - 1, 3) (or with leading axes broadcasting against P's),
      rows summing to one (tabular_conditionals); the deepest layer's rows are ignored.
    P: leaf distributions of the datasets, shape (..., n_datasets, 2**depth - 1).
    depth: depth of the token tree.

  Returns:
    float64 (..., n_datasets, 2**depth - 1, 3), evaluated with the lambdified NODE_GRADIENT; 0 at the deepest
    layer (only EOS possible) and at nodes a dataset never reaches.

  References:
    Bishop, "Pattern Recognition and Machine Learning", 2006, Eq. 4.109 (softmax cross-entropy gradient);
    Ji et al., "Language Models Resist Alignment", ACL 2025, Def. 3.3 (compression rate).
  """
  conditionals = _check_conditionals(conditionals, depth)
  P = _check_leaves("P", P, depth, min_ndim=2)
  flows = node_flows(P, depth)
  q = np.broadcast_to(conditionals[..., None, :, :], np.broadcast_shapes(conditionals[..., None, :, :].shape,
                                                                         flows.shape))
  entries = _node_gradient_numeric()(*np.moveaxis(q, -1, 0), *np.moveaxis(flows, -1, 0))
  gradients = np.stack([np.broadcast_to(entry, q.shape[:-1]) for entry in entries], axis=-1)
  return np.where(_forced(depth)[:, None], 0.0, gradients)


def rate_gradients_bits(conditionals, P, depth: int) -> np.ndarray:
  """d gamma_i / d z_v in bits per response per logit: cross_entropy_gradients_nats / ln 2, same shape."""
  return cross_entropy_gradients_nats(conditionals, P, depth) / conventions.LN2


def mean_response_length_tokens(P, depth: int) -> np.ndarray:
  """E_{x~P}[|x|] in tokens (EOS counted), shape (...): the token-mean loss divides CE by it."""
  P = _check_leaves("P", P, depth)
  return P @ token_tree.response_lengths(depth).astype(np.float64)


def sgd_elasticities_bits(conditionals, P, depth: int, *, reduction: str = "mean",
                          perturb_size=None) -> np.ndarray:
  """E_i = -grad gamma_i . grad L_t: first-order change of each rate per unit SGD learning rate on D_t's loss.

  One SGD step theta -> theta - eta grad L_t changes gamma_i by eta E_i + O(eta**2). With
  g_i(v) = d CE_i / d z_v (cross_entropy_gradients_nats), E_i = -c sum_v g_i(v) . g_t(v) / ln 2, where c = 1 /
  E_{P_t}[|x|] for the token-mean loss and c = n_t for the loss summed over D_t's n_t examples.

  Args:
    conditionals: the model's q(c | v), shape (2**depth - 1, 3) (leading axes broadcast against P's).
    P: leaf distributions (..., n_datasets, 2**depth - 1); the fine-tuning data is P[..., PERTURB, :]
      (theory.conventions).
    depth: depth of the token tree.
    reduction: one of LOSS_REDUCTIONS.
    perturb_size: n_t (responses, > 0), shape broadcasting to P's leading axes; required for 'sum' only.

  Returns:
    float64 (..., n_datasets): bits per response per unit learning rate (for 'sum' the learning rate multiplies
    a loss in nats, for 'mean' one in nats per token).

  References:
    Ji et al., "Language Models Resist Alignment", ACL 2025, Section 4 (elasticity), Section 5 (SFT loss);
    Robbins & Monro, "A stochastic approximation method", Ann. Math. Stat. 1951 (gradient descent).
  """
  if reduction not in LOSS_REDUCTIONS:
    raise ValueError(f"unknown reduction {reduction!r}; allowed: {', '.join(LOSS_REDUCTIONS)}")
  P = _check_leaves("P", P, depth, min_ndim=2)
  if P.shape[-2] <= conventions.PERTURB:
    raise ValueError(f"P has {P.shape[-2]} datasets; allowed: at least {conventions.PERTURB + 1} (D_p, D_a, D_t)")
  if reduction == "mean":
    if perturb_size is not None:
      raise ValueError("perturb_size given with reduction='mean'; allowed: only with reduction='sum'")
    scale = 1.0 / mean_response_length_tokens(P[..., conventions.PERTURB, :], depth)
  else:
    if perturb_size is None:
      raise ValueError("perturb_size is missing; allowed: n_t > 0 with reduction='sum'")
    scale = validation.as_float_array("perturb_size", perturb_size)
    if not np.all(np.isfinite(scale) & (scale > 0)):
      raise ValueError(f"perturb_size={perturb_size!r} is not allowed; allowed: finite numbers > 0")
  gradients = cross_entropy_gradients_nats(conditionals, P, depth)
  perturb = gradients[..., conventions.PERTURB, None, :, :]
  products = (gradients * perturb).sum(axis=(-2, -1))
  return -np.asarray(scale)[..., None] * products / conventions.LN2
