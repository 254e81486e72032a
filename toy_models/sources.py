"""Leaf distributions of the toy datasets: the theory families plus a token-by-token Markov source."""

from __future__ import annotations

import functools

import numpy as np

from theory import distributions, token_tree, validation

STRUCTURED_FAMILIES = ("markov",)
"""Families generated token by token (a model must generalise across leaves, not memorise them)."""

ALL_FAMILIES = tuple(sorted(distributions.FAMILIES)) + STRUCTURED_FAMILIES
"""Every family a toy dataset can be drawn from."""

_PARAM_NAMES = {"pareto": "shape", "zipf": "exponent", "dirichlet": "concentration", "markov": "order"}


def markov_leaf_distribution(depth: int, *, order: int = 2, concentration: float = 1.0, seed: int = 0,
                             support=()) -> np.ndarray:
  """Exact leaf distribution of an order-`order` Markov source over tokens {0, 1, EOS}, pruned at `depth`.

  Each context (the last `order` tokens, padded at the start with a begin marker) has its own next-token
  distribution over (0, 1, EOS), drawn from a symmetric Dirichlet(concentration) seeded by `seed`; at the
  last position of the pruned tree EOS is forced. Leaves outside `support` (a binary prefix) get probability
  0 and the rest is renormalised (the source conditioned on starting with that prefix).

  Args:
    depth: depth d of the pruned token tree (2**d - 1 leaves).
    order: context length c >= 0 (0: i.i.d. tokens).
    concentration: Dirichlet concentration of each context's next-token distribution (> 0).
    seed: seed of the parameters.
    support: binary prefix the responses must start with; () for the whole tree.

  Returns:
    float64 array of shape (2**depth - 1,), summing to one.

  References:
    Rissanen, "A universal data compression system", IEEE Trans. Inf. Theory 1983 (variable-order Markov
    sources); Ji et al., "Language Models Resist Alignment", ACL 2025, Def. 3.1 (token trees).
  """
  depth = validation.check_depth(depth)
  if isinstance(order, bool) or int(order) != order or not 0 <= order <= 16:
    raise ValueError(f"markov order={order!r} is not allowed; allowed: an integer 0..16")
  if not np.isfinite(concentration) or concentration <= 0:
    raise ValueError(f"markov concentration={concentration!r} is not allowed; allowed: a finite number > 0")
  order = int(order)
  rng = np.random.default_rng(seed)
  # Context id: base-3 digits of the last `order` symbols, symbol 2 = before the start of the response.
  table = rng.dirichlet(np.full(3, float(concentration)), size=3**order)
  table = np.maximum(table, 1e-300)
  log_table = np.log(table)
  log_probs = _leaf_log_probs(depth, order, log_table)
  probs = np.exp(log_probs - log_probs.max())
  mask = token_tree.prefix_mask(depth, tuple(support))
  probs = np.where(mask, probs, 0.0)
  return probs / probs.sum()


def _leaf_log_probs(depth: int, order: int, log_table: np.ndarray) -> np.ndarray:
  tokens = token_tree.leaf_tokens(depth)
  lengths = token_tree.response_lengths(depth)
  n = tokens.shape[0]
  context = np.full(n, 3**order - 1 if order else 0, dtype=np.int64)  # all 'start' symbols
  total = np.zeros(n)
  for position in range(depth):
    live = position < lengths
    target = np.minimum(tokens[:, position], 2)
    step = log_table[context, target]
    if position == depth - 1:  # EOS forced at the deepest layer: probability one, whatever the source says
      step = np.zeros(n)
    total += np.where(live, step, 0.0)
    if order:
      context = (context * 3 + target) % (3**order)
  return total


def source_distribution(family: str, depth: int, *, param: float | None = None, seed: int = 0,
                        support=()) -> np.ndarray:
  """The leaf distribution of a toy dataset: any theory family (theory.distributions) or 'markov'.

  `param` is the family's parameter (Pareto shape, Zipf exponent, Dirichlet concentration, Markov order);
  None takes the family's default.
  """
  if family not in ALL_FAMILIES:
    raise ValueError(f"unknown distribution family {family!r}; allowed: {', '.join(ALL_FAMILIES)}")
  return _cached(family, depth, param, seed, tuple(int(b) for b in support)).copy()


@functools.lru_cache(maxsize=128)
def _cached(family, depth, param, seed, support):
  params = {} if param is None or family not in _PARAM_NAMES else {_PARAM_NAMES[family]: param}
  if family == "markov":
    return markov_leaf_distribution(depth, seed=seed, support=support, **params)
  return distributions.leaf_distribution(family, depth, seed=seed, support=support, **params)
