"""Aligner-style residual corrector: a tabular conditional model c(y | x) over the tree's responses, composed exactly.

The corrector reads the base model's whole response x and writes a corrected response y token by token: for each
input x it holds a free next-token logit vector per node (prefix) of the pruned tree, i.e. one tabular model
(toy_models.tabular) per input response. With n = 2**depth - 1 responses the full conditional matrix
c(y | x), (n, n), is enumerable (depth <= 10), so the composed distribution of base + corrector,
p(y) = sum_x q_base(x) c(y | x), and every metric of it are exact. Log-probabilities are in nats unless a name says
log2 (bits); rates are probabilities.
"""

from __future__ import annotations

import numbers

import jax
import jax.numpy as jnp
import numpy as np
from scipy import special

from theory import token_tree
from theory.conventions import ALIGNED_PREFIX, LN2, UNALIGNED_PREFIX
from toy_models import likelihood, metrics
from toy_models.model_config import VOCAB_OUT, ModelConfig
from toy_models.models import build_model

MAX_DEPTH = 10  # the (n, n, 3) table has 3 (2**depth - 1)**2 entries: 3.1 million at depth 10.


def _check_depth(depth: int) -> int:
  if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= MAX_DEPTH:
    raise ValueError(f"corrector depth={depth!r} is not allowed; allowed: an integer 1..{MAX_DEPTH}")
  return depth


def _depth_of(table_rows: int) -> int:
  """The depth whose tree has `table_rows` responses, else a one-line ValueError."""
  depth = int(round(np.log2(table_rows + 1)))
  if table_rows < 1 or 2**depth - 1 != table_rows:
    raise ValueError(f"corrector table has {table_rows} rows; allowed: 2**depth - 1 (one per response)")
  return _check_depth(depth)


def init_corrector(key: jax.Array, depth: int, scale: float, dtype) -> dict:
  """Parameters {'logits': (n, n, 3)}: for input response x (heap index), next-token logits per output node.

  Args:
    key: PRNG key.
    depth: tree depth (1..MAX_DEPTH); n = 2**depth - 1 responses, also the number of nodes.
    scale: standard deviation of the initial logits (>= 0).
    dtype: float type of the table.

  Returns:
    The parameter pytree.

  References:
    Ji et al., "Aligner: Efficient Alignment by Learning to Correct", NeurIPS 2024 (arXiv:2402.02416).
  """
  n = token_tree.n_leaves(_check_depth(depth))
  if not isinstance(scale, numbers.Real) or not 0 <= scale < 10:
    raise ValueError(f"scale={scale!r} is not allowed; allowed: 0 <= scale < 10")
  return {"logits": scale * jax.random.normal(key, (n, n, VOCAB_OUT), dtype=dtype)}


def identity_corrector(depth: int, margin: float, dtype) -> dict:
  """A corrector that copies its input: along x's own path the logit of x's next token is `margin`, others 0.

  c(x | x) = prod over x's free tokens of 1 / (1 + 2 e**-margin), so 1 - c(x | x) <= 2 depth e**-margin (e.g.
  < 1e-20 at margin 50, 1.0 in float64): Aligner's identity warm-up, reached by construction.

  Args:
    depth: tree depth (1..MAX_DEPTH).
    margin: logit margin of the copied token (> 0).
    dtype: float type of the table.

  Returns:
    The parameter pytree {'logits': (n, n, 3)}.

  References:
    Ji et al., "Aligner: Efficient Alignment by Learning to Correct", NeurIPS 2024 (identity warm-up).
  """
  n = token_tree.n_leaves(_check_depth(depth))
  if not isinstance(margin, numbers.Real) or not 0 < margin < 1e3:
    raise ValueError(f"margin={margin!r} is not allowed; allowed: 0 < margin < 1000")
  table = np.zeros((n, n, VOCAB_OUT))
  for x in range(n):
    bits = token_tree.leaf_bits(x, depth)
    for position, token in enumerate((*bits, token_tree.EOS)):
      table[x, token_tree.leaf_index(bits[:position]), token] = margin
  return {"logits": jnp.asarray(table, dtype=dtype)}


def corrector_log_probs(params: dict) -> jax.Array:
  """log c(y | x) in nats for every input x (rows) and output y (columns), shape (n, n); each row sums to one.

  Row x is the tabular model with logit table params['logits'][x] evaluated on every response by
  likelihood.leaf_log_probs (so the last position is forced to EOS, as for every model of the toolkit).

  Args:
    params: corrector parameters {'logits': (n, n, 3)}.

  Returns:
    The conditional log-probability matrix (n, n) in nats.

  References:
    Ji et al., "Aligner: Efficient Alignment by Learning to Correct", NeurIPS 2024 (arXiv:2402.02416).
  """
  table = params["logits"]
  if table.ndim != 3 or table.shape[1:] != (table.shape[0], VOCAB_OUT):
    raise ValueError(f"corrector logits have shape {table.shape}; allowed: (n, n, {VOCAB_OUT}), n = 2**depth - 1")
  depth = _depth_of(table.shape[0])
  model = build_model(ModelConfig(kind="tabular"), depth)
  tokens = jnp.asarray(token_tree.leaf_tokens(depth))
  return jax.vmap(lambda rows: likelihood.leaf_log_probs(model, {"logits": rows}, tokens))(table)


def corrector_nll(params: dict, pair_weights: jax.Array) -> jax.Array:
  """The corrector's training loss: NLL of the output y given the input x, in nats per token of y.

  L = sum_{x,y} w(x, y) (-ln c(y | x)) / sum_{x,y} w(x, y) |y|, |y| counting EOS. Over a free table its minimisers
  are the empirical conditionals c(y | x) = w(x, y) / sum_y' w(x, y') on every input x with data (rows without
  data are left free).

  Args:
    params: corrector parameters {'logits': (n, n, 3)}.
    pair_weights: (n, n) counts w(x, y) >= 0 of the training pairs (copy_pair_weights + pair_weights).

  Returns:
    The scalar loss in nats per output token.

  References:
    Ji et al., "Aligner: Efficient Alignment by Learning to Correct", NeurIPS 2024, Section 2 (the corrector's
    conditional log-likelihood).
  """
  weights = jnp.asarray(pair_weights)
  if weights.shape != params["logits"].shape[:2]:
    raise ValueError(f"pair_weights have shape {weights.shape}; allowed: {params['logits'].shape[:2]}")
  log_c = corrector_log_probs(params)
  weights = weights.astype(log_c.dtype)
  lengths = jnp.asarray(token_tree.response_lengths(_depth_of(log_c.shape[0])), log_c.dtype)
  total = -(weights * log_c).sum()
  return total / jnp.maximum((weights * lengths[None, :]).sum(), jnp.finfo(log_c.dtype).tiny)


def copy_pair_weights(counts) -> np.ndarray:
  """Weights (n, n) of the copy pairs (x, x): `counts` (n,) on the diagonal (Aligner's identity warm-up data).

  References:
    Ji et al., "Aligner: Efficient Alignment by Learning to Correct", NeurIPS 2024 (identity warm-up).
  """
  counts = np.asarray(counts, dtype=np.float64)
  if counts.ndim != 1 or not np.all(np.isfinite(counts) & (counts >= 0)):
    raise ValueError(f"copy counts of shape {counts.shape} are not allowed; allowed: a vector of finite counts >= 0")
  _depth_of(counts.shape[0])
  return np.diag(counts)


def pair_weights(depth: int, inputs, outputs) -> np.ndarray:
  """Counts (n, n) of the pairs (inputs[i], outputs[i]) of response heap indices (e.g. correction pairs)."""
  n = token_tree.n_leaves(_check_depth(depth))
  inputs, outputs = np.asarray(inputs), np.asarray(outputs)
  if inputs.shape != outputs.shape or inputs.ndim != 1:
    raise ValueError(f"pair indices have shapes {inputs.shape} and {outputs.shape}; allowed: two equal 1-d shapes")
  for name, indices in (("inputs", inputs), ("outputs", outputs)):
    if indices.size and (not np.issubdtype(indices.dtype, np.integer) or indices.min() < 0 or indices.max() >= n):
      raise ValueError(f"pair {name} {indices.tolist()[:5]} are not allowed; allowed: integer indices 0..{n - 1}")
  weights = np.zeros((n, n))
  np.add.at(weights, (inputs, outputs), 1.0)
  return weights


def mirror_responses(indices, depth: int) -> np.ndarray:
  """The responses with the first token flipped (1 <-> 0), the rest kept: the smallest edit between behaviours.

  The toy's correction of an unaligned response x = (1, b...) is the aligned (0, b...). The EOS-only response
  (index 0) has no first token and is not allowed.
  """
  n = token_tree.n_leaves(_check_depth(depth))
  indices = np.asarray(indices)
  if indices.size and (not np.issubdtype(indices.dtype, np.integer) or indices.min() < 1 or indices.max() >= n):
    raise ValueError(f"indices {indices.tolist()[:5]} are not allowed; allowed: integers 1..{n - 1} (not EOS-only)")
  lengths = token_tree.response_lengths(depth)[indices] - 1  # binary tokens
  values = indices - (2**lengths - 1)
  return (2**lengths - 1 + (values ^ (1 << (lengths - 1)))).astype(np.int64)


def draw_correction_pairs(depth: int, count: int, unaligned_probs, aligned_probs=None, *,
                          seed: int) -> tuple[np.ndarray, np.ndarray]:
  """Draws `count` correction pairs (x unaligned -> y aligned) as heap indices.

  x ~ unaligned_probs (must vanish outside the unaligned subtree, theory.conventions.UNALIGNED_PREFIX); y is
  mirror_responses(x) when aligned_probs is None (a residual, minimal correction), else an independent draw from
  aligned_probs (must vanish outside the aligned subtree).

  Args:
    depth: tree depth.
    count: number of pairs (>= 0).
    unaligned_probs: (n,) distribution of the inputs.
    aligned_probs: optional (n,) distribution of the outputs.
    seed: seed of the draws.

  Returns:
    (inputs, outputs), two int64 arrays (count,).

  References:
    Ji et al., "Aligner: Efficient Alignment by Learning to Correct", NeurIPS 2024 (Q-A-C correction data).
  """
  if isinstance(count, bool) or not isinstance(count, int) or count < 0:
    raise ValueError(f"count={count!r} is not allowed; allowed: an integer >= 0")
  rng = np.random.default_rng(seed)
  inputs = rng.choice(token_tree.n_leaves(_check_depth(depth)),
                      size=count, p=_subtree_probs("unaligned_probs", unaligned_probs, depth, UNALIGNED_PREFIX))
  if aligned_probs is None:
    return inputs.astype(np.int64), mirror_responses(inputs, depth)
  probs = _subtree_probs("aligned_probs", aligned_probs, depth, ALIGNED_PREFIX)
  return inputs.astype(np.int64), rng.choice(probs.shape[0], size=count, p=probs).astype(np.int64)


def _subtree_probs(name: str, probs, depth: int, prefix: tuple) -> np.ndarray:
  """`probs` as a distribution (n,) that vanishes outside the subtree of `prefix`, else a one-line ValueError."""
  probs = np.asarray(probs, dtype=np.float64)
  mask = token_tree.prefix_mask(depth, prefix)
  if probs.shape != mask.shape or not np.all(np.isfinite(probs) & (probs >= 0)) or abs(probs.sum() - 1) > 1e-9:
    raise ValueError(f"{name} of shape {probs.shape} is not allowed; allowed: a distribution over {mask.size} leaves")
  if np.any(probs[~mask] > 0):
    raise ValueError(f"{name} has mass {probs[~mask].sum():.3g} outside prefix {prefix}; allowed: 0")
  return probs


def composed_log_probs(base_log_probs, corrector_log_matrix) -> np.ndarray:
  """log p(y) in nats of base + corrector, p(y) = sum_x q_base(x) c(y | x), float64, shape (..., n).

  Args:
    base_log_probs: (..., n) log q_base(x) in nats of every response (e.g. metrics.leaf_log2_probs * LN2).
    corrector_log_matrix: (n, n) log c(y | x) in nats (corrector_log_probs), rows = inputs x.

  Returns:
    The composed log-probabilities (..., n) in nats.

  References:
    Ji et al., "Aligner: Efficient Alignment by Learning to Correct", NeurIPS 2024 (the corrector stacked on an
    upstream model).
  """
  base, matrix = _composition_inputs(base_log_probs, corrector_log_matrix)
  return special.logsumexp(base[..., :, None] + matrix, axis=-2)


def _composition_inputs(base_log_probs, corrector_log_matrix) -> tuple[np.ndarray, np.ndarray]:
  base = np.asarray(base_log_probs, dtype=np.float64)
  matrix = np.asarray(corrector_log_matrix, dtype=np.float64)
  if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or base.shape[-1:] != matrix.shape[:1]:
    raise ValueError(f"corrector matrix {matrix.shape} does not fit base log-probs {base.shape}; allowed: (n, n) "
                     "and (..., n)")
  _depth_of(matrix.shape[0])
  return base, matrix


def composed_metrics(base_log_probs, corrector_log_matrix, depth: int) -> dict[str, np.ndarray]:
  """Exact metrics of base + corrector: the composed distribution, its positive score and the corrector's rates.

  With A / U the aligned / unaligned subtrees (theory.conventions prefixes) and q = q_base:
  - composed_log2_probs (..., n): log2 p(y) in bits, for toy_models.metrics (rates_bits, exact_metrics).
  - positive_score_base, positive_score (...,): q(A) and p(A), the mass on the aligned subtree.
  - correction_rate (...,): P(y in A | x in U) = sum_{x in U} q(x) c(A | x) / q(U), the unaligned mass corrected.
  - degradation_rate (...,): P(y in U | x in A), the aligned mass the corrector spoils.
  - copy_rate (...,): E_{x~q} c(x | x), the probability that the response is left unchanged.
  Rates are probabilities (NaN where the conditioning subtree has no base mass).

  Args:
    base_log_probs: (..., n) log q_base in nats.
    corrector_log_matrix: (n, n) log c(y | x) in nats.
    depth: tree depth (n = 2**depth - 1).

  Returns:
    dict of float64 arrays as above.

  References:
    Ji et al., "Aligner: Efficient Alignment by Learning to Correct", NeurIPS 2024 (arXiv:2402.02416).
  """
  base, matrix = _composition_inputs(base_log_probs, corrector_log_matrix)
  if matrix.shape[0] != token_tree.n_leaves(_check_depth(depth)):
    raise ValueError(f"depth={depth} does not fit a corrector over {matrix.shape[0]} responses; allowed: "
                     f"{_depth_of(matrix.shape[0])}")
  composed_log2 = composed_log_probs(base, matrix) / LN2
  q, c = np.exp(base), np.exp(matrix)
  aligned, unaligned = (token_tree.prefix_mask(depth, prefix).astype(np.float64)
                        for prefix in (ALIGNED_PREFIX, UNALIGNED_PREFIX))
  with np.errstate(invalid="ignore", divide="ignore"):
    correction = (q * unaligned) @ (c @ aligned) / (q @ unaligned)
    degradation = (q * aligned) @ (c @ unaligned) / (q @ aligned)
  return {"composed_log2_probs": composed_log2, "positive_score_base": metrics.positive_score(base / LN2, depth),
          "positive_score": metrics.positive_score(composed_log2, depth), "correction_rate": correction,
          "degradation_rate": degradation, "copy_rate": q @ np.diag(c)}
