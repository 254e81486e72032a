"""Second computations of d gamma / dl to check theory.elasticity against: finite differences, closed forms.

Finite differences differentiate theory.mixture.compression_rates (or any rate function with its
signature) in l = n_t / n_a with a 5-point stencil (central where l allows it, forward near l = 0). The step
is a fraction of the smallest curvature scale of log q along l over the dataset's support, so the stencil
stays in the region where log q is smooth.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from proofs_check import constants
from proofs_check.configs import ALIGN, PERTURB, PRETRAIN, ElasticityConfig
from theory import mixture

_CENTRAL = (np.array([-2.0, -1.0, 1.0, 2.0]), np.array([1.0, -8.0, 8.0, -1.0]) / 12.0)
_FORWARD = (np.arange(5.0), np.array([-25.0, 48.0, -36.0, 16.0, -3.0]) / 12.0)


def curvature_scales(config: ElasticityConfig) -> np.ndarray:
  """For each dataset, the smallest l-distance over which log q(x) changes by O(1) on its support, shape (3,).

  At leaf x, q(x) is proportional to (R(x) + l n_a P_t(x)) / (N0 + l n_a) with R the mass of D_p and D_a,
  so log q changes on the scales l + R(x) / (n_a P_t(x)) and (N0 / n_a + l). Zero where a dataset has
  mass on a leaf that only the perturbation covers, at l = 0 (no finite difference is possible there).
  """
  P = config.probabilities()
  sizes = config.sizes()
  n_a = sizes[ALIGN]
  rest = sizes[PRETRAIN] * P[PRETRAIN] + sizes[ALIGN] * P[ALIGN]
  total_scale = (sizes[PRETRAIN] + sizes[ALIGN]) / n_a + config.l
  with np.errstate(divide="ignore", invalid="ignore"):
    leaf_scale = np.where(P[PERTURB] > 0, config.l + rest / (n_a * P[PERTURB]), np.inf)
  scales = np.array([np.min(np.where(P[i] > 0, leaf_scale, np.inf)) for i in range(3)])
  return np.minimum(scales, total_scale)


def finite_differences(config: ElasticityConfig, rate_fn: Callable = mixture.compression_rates,
                       step_fraction: float = constants.FD_STEP_FRACTION) -> tuple[np.ndarray, np.ndarray]:
  """5-point finite differences of `rate_fn` in l for each dataset, with their rounding allowances.

  Args:
    config: the datasets, k, n_a and the l to differentiate at.
    rate_fn: (P, sizes) -> rates of shape (..., 3), e.g. theory.mixture.compression_rates.
    step_fraction: step as a fraction of the dataset's curvature scale (see curvature_scales).

  Returns:
    (derivatives, rounding), each shape (3,), bits per response per unit l. `rounding` is
    FD_ROUNDING_FACTOR * eps * max|rate| / step, the error float64 rounding alone can make. Both are NaN
    for a dataset where no step is possible (mass only the perturbation covers, at l = 0).
  """
  P = config.probabilities()
  steps = step_fraction * curvature_scales(config)
  derivatives = np.full(3, np.nan)
  rounding = np.full(3, np.nan)
  for i in range(3):
    step = steps[i]
    if not (step > 0 and math.isfinite(step)):
      continue
    offsets, weights = _CENTRAL if config.l >= 2 * step else _FORWARD
    sizes = np.stack([config.sizes(config.l + offset * step) for offset in offsets])
    rates = np.asarray(rate_fn(np.broadcast_to(P, (len(offsets),) + P.shape), sizes))[:, i]
    derivatives[i] = float(weights @ rates) / step
    rounding[i] = constants.FD_ROUNDING_FACTOR * np.finfo(np.float64).eps * np.abs(rates).max() / step
  return derivatives, rounding


def closed_form(config: ElasticityConfig) -> tuple[np.ndarray, np.ndarray]:
  """docs/THEORY.md (4.2): d gamma_i / dl = (n_a / N)(1 - E_{P_t}[P_i / q]) / ln 2, computed directly, and its scale.

  Returns:
    (derivatives, scales), shape (3,): the scale (n_a / N)(1 + E_{P_t}[P_i / q]) / ln 2 is the size of the
    two terms whose difference is the derivative, the natural unit for its errors. E is +inf (derivative
    -inf) for the perturbation where it has mass the mixture lacks; leaves with P_i = 0 contribute 0.
  """
  P = config.probabilities()
  sizes = config.sizes()
  q = (sizes[:, None] * P).sum(axis=0) / sizes.sum()
  share = sizes[ALIGN] / sizes.sum()
  expectations = np.empty(3)
  for i in range(3):
    terms = np.zeros_like(q)
    present = (P[i] > 0) & (P[PERTURB] > 0)
    with np.errstate(divide="ignore"):
      terms[present] = P[PERTURB][present] * P[i][present] / q[present]
    expectations[i] = terms.sum()
  return share * (1 - expectations) / math.log(2), share * (1 + expectations) / math.log(2)


def chi_square_form(config: ElasticityConfig) -> float:
  """d gamma_t / dl as -(n_a / N) chi^2(P_t || q) / ln 2 (claim 6), computed directly; -inf if uncovered."""
  P = config.probabilities()
  sizes = config.sizes()
  q = (sizes[:, None] * P).sum(axis=0) / sizes.sum()
  if np.any((P[PERTURB] > 0) & (q == 0)):
    return -math.inf
  present = q > 0
  chi_square = float((P[PERTURB][present] ** 2 / q[present]).sum() - 1.0)
  return -(sizes[ALIGN] / sizes.sum()) * chi_square / math.log(2)


def covered_at_zero(config: ElasticityConfig) -> bool:
  """Whether supp(P_t) lies inside supp(q) at l = 0, i.e. inside the support of D_p or D_a."""
  P = config.probabilities()
  return bool(np.all((P[PERTURB] == 0) | (P[PRETRAIN] > 0) | (P[ALIGN] > 0)))
