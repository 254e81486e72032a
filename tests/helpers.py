"""Shared test tolerances and random configurations (all seeded)."""

import numpy as np

from theory import distributions

RTOL_FLOAT64 = 1e-9  # closed form vs closed form in float64.
RTOL_FINITE_DIFFERENCE = 1e-5  # closed-form derivative vs central finite difference.


def random_config(seed: int, depth: int = 5, n_datasets: int = 3, families=("pareto", "zipf", "dirichlet")):
  """Leaf distributions (n_datasets, 2**depth - 1) with random supports, and sizes spanning k up to 1e6."""
  rng = np.random.default_rng(seed)
  supports = [(), (0,), (1,), (1, 0), (0, 1)]
  P = np.stack([
      distributions.leaf_distribution(str(rng.choice(families)), depth, seed=int(rng.integers(1 << 30)),
                                      support=supports[int(rng.integers(len(supports)))])
      for _ in range(n_datasets)
  ])
  sizes = np.concatenate([[10 ** rng.uniform(0, 6)], [1.0], 10 ** rng.uniform(-4, 1, n_datasets - 2)])
  return P, sizes
