"""Claim 2 checks: the size-weighted mixture minimises the weighted total code length of the union."""

from __future__ import annotations

import math

import numpy as np
import scipy.optimize

from proofs_check import constants
from proofs_check.configs import ElasticityConfig
from proofs_check.runner import Outcome
from theory import mixture

PERTURBATION_SCALES = (1e-1, 1e-3, 1e-6)  # eps of the competitors (1 - eps) q + eps r.
COMPETITORS_PER_SCALE = 4  # random directions r drawn per scale.


def weighted_total(weights: np.ndarray, model: np.ndarray) -> float:
  """sum_i n_i CE_i(m) = -sum_x w(x) log2 m(x), w = sum_i n_i P_i; bits times size (+inf if m misses w)."""
  present = weights > 0
  if np.any(model[present] <= 0):
    return math.inf
  return float(-(weights[present] * np.log2(model[present])).sum())


def _optimised_total(weights: np.ndarray) -> tuple[float, np.ndarray]:
  """Minimises the weighted total over the simplex on supp(w) with L-BFGS-B on softmax logits."""
  present = weights > 0
  w = weights[present]
  total = w.sum()

  def objective(logits):
    shifted = logits - logits.max()
    log_m = shifted - np.log(np.exp(shifted).sum())
    m = np.exp(log_m)
    return -(w * log_m).sum() / math.log(2), (total * m - w) / math.log(2)

  result = scipy.optimize.minimize(objective, np.zeros(len(w)), jac=True, method="L-BFGS-B",
                                   options={"maxiter": 2000, "gtol": 1e-12, "ftol": 1e-15})
  shifted = result.x - result.x.max()
  model = np.zeros_like(weights)
  model[present] = np.exp(shifted) / np.exp(shifted).sum()
  return weighted_total(weights, model), model


def mixture_optimality(config: ElasticityConfig) -> Outcome:
  """Claim 2 at one configuration: no competitor model m has a smaller weighted total than the mixture q.

  Competitors: (1 - eps) q + eps r for random r on the simplex (seeded by the config), and for trees of at
  most OPTIMIZER_MAX_LEAVES leaves the minimiser scipy.optimize finds. Error: the largest
  (total(q) - total(m)) / max(total(q), N) over competitors, clipped at 0 (relative to the total, or to
  one bit per response when the total is ~0; 0 when q wins).

  References:
    Cover & Thomas, Elements of Information Theory, 2nd ed., Thm. 2.6.3 (Gibbs: cross-entropy >= entropy).
  """
  P, sizes = config.probabilities(), config.sizes()
  q = mixture.size_weighted_mixture(P, sizes)
  weights = sizes @ P
  best = weighted_total(weights, q)
  rng = np.random.default_rng([config.pretrain.seed, config.align.seed, config.perturb.seed])
  competitors = []
  for eps in PERTURBATION_SCALES:
    for direction in rng.dirichlet(np.ones(len(q)), size=COMPETITORS_PER_SCALE):
      competitors.append(weighted_total(weights, (1 - eps) * q + eps * direction))
  optimiser_gap = math.nan
  if np.count_nonzero(weights) <= constants.OPTIMIZER_MAX_LEAVES:
    optimised, model = _optimised_total(weights)
    competitors.append(optimised)
    optimiser_gap = float(np.abs(model - q).max())
  scale = max(abs(best), float(weights.sum()))  # the total, or one bit per response if the total is ~0
  gap = max(0.0, max((best - c) / scale for c in competitors))
  return Outcome(error=gap, holds=gap <= constants.MIXTURE_RTOL,
                 values={"optimiser_max_abs_diff_from_q": optimiser_gap})
