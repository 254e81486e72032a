"""theory.tabular_elasticity: node flows, conditionals, gradients and SGD elasticities against brute force and sympy."""

import math
import re

import numpy as np
import pytest
import sympy as sp

from tests.helpers import one_line_error
from theory import conventions, distributions, tabular_elasticity, token_tree

DEPTH = 4
N_NODES = token_tree.n_leaves(DEPTH)


def datasets(depth: int = DEPTH, seed: int = 0) -> np.ndarray:
  """Pre-training (whole tree), alignment (token 0 first) and perturbation (token 1 first) distributions."""
  return np.stack([distributions.leaf_distribution("pareto", depth, seed=seed + i, support=support)
                   for i, support in enumerate([(), (0,), (1,)])])


def softmax(row: np.ndarray) -> np.ndarray:
  e = np.exp(row - row.max())
  return e / e.sum()


def test_node_gradient_steps_hold_and_name_the_logit_they_differentiate():
  steps = tabular_elasticity.node_gradient_steps()
  assert [step.holds for step in steps] == [True] * 6
  for step, name, z in zip(steps[:3], ("0", "1", "EOS"), tabular_elasticity._Z, strict=True):
    assert step.claim == f"d CE / d z_{name} = m q_{name} - f_{name}"
    assert sp.simplify(step.lhs - sp.diff(tabular_elasticity.NODE_CROSS_ENTROPY, z)) == 0
  for step, z in zip(steps[3:], tabular_elasticity._Z, strict=True):
    assert step.claim == f"forced EOS layer: d CE / d {z} = 0 (limit s -> oo)" and step.rhs == 0
  # The closed form is m q_c - f_c: at q = P(. | v) = f / m the gradient vanishes.
  f0, f1, f2 = tabular_elasticity._F
  at_data = {q: f / (f0 + f1 + f2) for q, f in zip(tabular_elasticity._Q, tabular_elasticity._F, strict=True)}
  assert all(sp.simplify(entry.subs(at_data)) == 0 for entry in tabular_elasticity.NODE_GRADIENT)


def test_forced_layer_and_next_token_distributions():
  assert tabular_elasticity._forced(3).tolist() == [False, False, False, True, True, True, True]
  P = datasets()
  conditionals = tabular_elasticity.next_token_distributions(P, DEPTH)
  flows, masses = tabular_elasticity.node_flows(P, DEPTH), tabular_elasticity.pass_masses(P, DEPTH)
  for i in range(3):
    for node in range(N_NODES):
      if masses[i, node] > 0:
        np.testing.assert_allclose(conditionals[i, node], flows[i, node] / masses[i, node], rtol=1e-14)
      else:
        assert conditionals[i, node].tolist() == [0.0, 0.0, 0.0]
  assert np.all(conditionals[:, 7:, :2] == 0)  # the deepest layer can only end
  assert masses[:, 0].tolist() == pytest.approx([1.0, 1.0, 1.0], abs=1e-15)  # every response passes the root
  assert masses[1, 2] == 0 and masses[2, 1] == 0  # alignment never starts with 1, the perturbation never with 0


def test_tabular_conditionals_are_row_softmaxes_with_a_forced_last_layer():
  rng = np.random.default_rng(1)
  logits = 3.0 * rng.standard_normal((2, N_NODES, 3)) + 500.0  # large logits: softmax must shift by the row max
  logits[1, 2] = [800.0, -800.0, 0.0]
  got = tabular_elasticity.tabular_conditionals(logits, DEPTH)
  for run in range(2):
    for node in range(N_NODES):
      expected = [0.0, 0.0, 1.0] if node >= 7 else softmax(logits[run, node])
      np.testing.assert_allclose(got[run, node], expected, rtol=1e-13, atol=1e-300)
  assert got.dtype == np.float64


def test_bad_logits_and_conditionals_are_named():
  assert one_line_error(tabular_elasticity.tabular_conditionals, np.zeros((3, 3)), DEPTH) == (
      "logits have shape (3, 3); allowed: (..., 15, 3) for depth=4")
  assert one_line_error(tabular_elasticity.tabular_conditionals, np.zeros((N_NODES, 2)), DEPTH) == (
      "logits have shape (15, 2); allowed: (..., 15, 3) for depth=4")
  logits = np.zeros((N_NODES, 3))
  logits[4, 1] = np.nan
  assert one_line_error(tabular_elasticity.tabular_conditionals, logits, DEPTH) == (
      f"logits contain {np.float64('nan')!r}; allowed: finite numbers")
  logits[4, 1] = -np.inf
  assert one_line_error(tabular_elasticity.tabular_conditionals, logits, DEPTH) == (
      f"logits contain {np.float64('-inf')!r}; allowed: finite numbers")
  conditionals = np.full((N_NODES - 1, 3), 1 / 3)
  assert one_line_error(tabular_elasticity.cross_entropy_gradients_nats, conditionals, datasets(), DEPTH) == (
      "conditionals have shape (14, 3); allowed: (..., 15, 3) for depth=4")
  assert one_line_error(tabular_elasticity.pass_masses, datasets(3), DEPTH) == (
      "P has 7 leaves; allowed: 15 (2**depth - 1 for depth=4)")
  assert one_line_error(tabular_elasticity.cross_entropy_gradients_nats, np.full((N_NODES, 3), 0.3), datasets(),
                        DEPTH).startswith("conditionals row (0,) sums to ")
  assert one_line_error(tabular_elasticity.cross_entropy_gradients_nats, np.full(3, 1 / 3), datasets(), DEPTH) == (
      "conditionals must have at least 2 dimension(s), got shape (3,)")
  assert one_line_error(tabular_elasticity.cross_entropy_gradients_nats, np.full((N_NODES, 3), 1 / 3), datasets()[0],
                        DEPTH) == "P must have at least 2 dimension(s), got shape (15,)"
  assert one_line_error(tabular_elasticity.mean_response_length_tokens, datasets(3), DEPTH) == (
      "P has 7 leaves; allowed: 15 (2**depth - 1 for depth=4)")
  assert one_line_error(tabular_elasticity.sgd_elasticities_bits, np.full((N_NODES, 3), 1 / 3), datasets(), DEPTH,
                        reduction="sum", perturb_size="many") == "perturb_size must be numeric, got 'many'"


def brute_force_gradients_nats(logits: np.ndarray, P: np.ndarray, depth: int) -> np.ndarray:
  """d CE_i / d z_v by central differences of CE_i = -sum_x P_i(x) ln q(x), q the product of conditionals."""
  def cross_entropies(z):
    conditionals = tabular_elasticity.tabular_conditionals(z, depth)
    log_q = np.zeros(token_tree.n_leaves(depth))
    for leaf in range(token_tree.n_leaves(depth)):
      node = 0
      for bit in token_tree.leaf_bits(leaf, depth):
        log_q[leaf] += math.log(conditionals[node, bit])
        node = 2 * node + 1 + bit
      log_q[leaf] += math.log(conditionals[node, token_tree.EOS])
    return -(P * log_q).sum(axis=-1)

  out = np.zeros((len(P), token_tree.n_leaves(depth), 3))
  step = 1e-6
  for node in range(token_tree.n_leaves(depth)):
    for c in range(3):
      up, down = logits.copy(), logits.copy()
      up[node, c] += step
      down[node, c] -= step
      out[:, node, c] = (cross_entropies(up) - cross_entropies(down)) / (2 * step)
  return out


def test_gradients_equal_finite_differences_in_nats_and_bits():
  depth = 3
  P = datasets(depth, seed=5)
  logits = np.random.default_rng(2).standard_normal((7, 3))
  conditionals = tabular_elasticity.tabular_conditionals(logits, depth)
  nats = tabular_elasticity.cross_entropy_gradients_nats(conditionals, P, depth)
  np.testing.assert_allclose(nats, brute_force_gradients_nats(logits, P, depth), atol=1e-8)
  assert np.all(nats[:, 3:] == 0)  # the forced layer has no free choice
  np.testing.assert_allclose(tabular_elasticity.rate_gradients_bits(conditionals, P, depth), nats / math.log(2),
                             rtol=1e-15)


def test_mean_response_length_counts_eos():
  P = datasets()
  lengths = np.array([len(token_tree.leaf_bits(i, DEPTH)) + 1 for i in range(N_NODES)])
  np.testing.assert_allclose(tabular_elasticity.mean_response_length_tokens(P, DEPTH), P @ lengths, rtol=1e-15)
  assert tabular_elasticity.mean_response_length_tokens(np.eye(N_NODES)[0], DEPTH) == 1.0  # EOS alone


def test_sgd_elasticities_are_minus_scaled_gradient_products_in_bits():
  P = datasets(seed=3)
  conditionals = tabular_elasticity.tabular_conditionals(np.random.default_rng(4).standard_normal((N_NODES, 3)), DEPTH)
  g = tabular_elasticity.cross_entropy_gradients_nats(conditionals, P, DEPTH)
  dots = np.array([(g[i] * g[conventions.PERTURB]).sum() for i in range(3)])
  mean_length = tabular_elasticity.mean_response_length_tokens(P[conventions.PERTURB], DEPTH)
  mean = tabular_elasticity.sgd_elasticities_bits(conditionals, P, DEPTH)
  np.testing.assert_allclose(mean, -dots / mean_length / math.log(2), rtol=1e-13)
  summed = tabular_elasticity.sgd_elasticities_bits(conditionals, P, DEPTH, reduction="sum", perturb_size=250.0)
  np.testing.assert_allclose(summed, -250.0 * dots / math.log(2), rtol=1e-13)
  assert mean[conventions.PERTURB] < 0  # a step on D_t's loss lowers D_t's own rate: -|g_t|^2 < 0
  batched = tabular_elasticity.sgd_elasticities_bits(conditionals, np.stack([P, P]), DEPTH, reduction="sum",
                                                     perturb_size=np.array([1.0, 2.0]))
  np.testing.assert_allclose(batched, [-dots / math.log(2), -2 * dots / math.log(2)], rtol=1e-13)


@pytest.mark.parametrize("kwargs, message", [
    ({"reduction": "max"}, "unknown reduction 'max'; allowed: mean, sum"),
    ({"reduction": "sum"}, "perturb_size is missing; allowed: n_t > 0 with reduction='sum'"),
    ({"perturb_size": 3.0}, "perturb_size given with reduction='mean'; allowed: only with reduction='sum'"),
    ({"reduction": "sum", "perturb_size": 0.0}, "perturb_size=0.0 is not allowed; allowed: finite numbers > 0"),
    ({"reduction": "sum", "perturb_size": float("inf")},
     "perturb_size=inf is not allowed; allowed: finite numbers > 0"),
    ({"reduction": "sum", "perturb_size": [2.0, -1.0]}, "perturb_size=[2.0, -1.0] is not allowed; allowed: finite "
                                                        "numbers > 0"),
])
def test_bad_reductions_and_sizes_are_named(kwargs, message):
  conditionals = np.full((N_NODES, 3), 1 / 3)
  assert one_line_error(tabular_elasticity.sgd_elasticities_bits, conditionals, datasets(), DEPTH, **kwargs) == message


def test_elasticities_need_the_perturbation_dataset():
  conditionals = np.full((N_NODES, 3), 1 / 3)
  assert one_line_error(tabular_elasticity.sgd_elasticities_bits, conditionals, datasets()[:2], DEPTH) == (
      "P has 2 datasets; allowed: at least 3 (D_p, D_a, D_t)")
  assert re.fullmatch(r"P must have at least 2 dimension\(s\), got shape \(15,\)",
                      one_line_error(tabular_elasticity.sgd_elasticities_bits, conditionals, datasets()[0], DEPTH))


def test_gradients_ignore_the_deepest_rows_and_broadcast_model_batches():
  P = datasets(seed=6)
  uniform = np.full((N_NODES, 3), 1 / 3)  # not a tabular model's conditionals: the deepest rows are not (0, 0, 1)
  gradients = tabular_elasticity.cross_entropy_gradients_nats(uniform, P, DEPTH)
  assert np.all(gradients[:, 7:] == 0)  # the deepest layer has no free choice, whatever its rows say
  flows, masses = tabular_elasticity.node_flows(P, DEPTH), tabular_elasticity.pass_masses(P, DEPTH)
  np.testing.assert_allclose(gradients[:, :7], masses[:, :7, None] / 3 - flows[:, :7], rtol=1e-14, atol=1e-16)
  models = tabular_elasticity.tabular_conditionals(np.random.default_rng(7).standard_normal((2, N_NODES, 3)), DEPTH)
  batched = tabular_elasticity.cross_entropy_gradients_nats(models, P, DEPTH)  # two models, one set of datasets
  assert batched.shape == (2, 3, N_NODES, 3)
  for run in range(2):
    np.testing.assert_array_equal(batched[run], tabular_elasticity.cross_entropy_gradients_nats(models[run], P, DEPTH))


def test_node_flows_names_the_bad_argument():
  with pytest.raises(ValueError, match=r"^P row \(0,\) sums to 0\.5; allowed: rows summing to 1"):
    tabular_elasticity.node_flows(np.array([0.25, 0.125, 0.125]), 2)
