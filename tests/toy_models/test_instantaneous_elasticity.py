"""Tests of toy_models.instantaneous_elasticity and theory.tabular_elasticity: one-step rate changes, closed forms."""

import functools

import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from theory import conventions, distributions, tabular_elasticity, token_tree
from toy_models import implicit_elasticity, likelihood, metrics, training
from toy_models import instantaneous_elasticity as inst
from toy_models.model_config import ModelConfig
from toy_models.models import build_model
from toy_models.stage_config import StageConfig

DEPTH = 4
PERTURB_SIZE = 30.0  # n_t: D_t's counts are PERTURB_SIZE * P_t.
RATIO_TOLERANCE = 0.2  # |error(eta) / error(eta / 2) - 4| allowed: the first-order error is O(eta**2).
RTOL_CLOSED_FORM = 1e-10  # tabular closed form vs JAX autodiff, float64.
CONFIGS = {"tabular": ModelConfig(kind="tabular"), "ngram": ModelConfig(kind="ngram", context=2),
           "transformer": ModelConfig(kind="transformer", width=4, layers=1, heads=1, mlp_ratio=2, init_scale=0.3)}


def row(x, index: int):
  """Run `index` of a leaf with a leading run axis."""
  return x[index]


def datasets(depth: int = DEPTH) -> np.ndarray:
  """D_p on the whole tree, D_a on the aligned subtree, D_t on the unaligned one (3, n_leaves)."""
  return np.stack([
      distributions.leaf_distribution("pareto", depth, seed=1),
      distributions.leaf_distribution("dirichlet", depth, seed=2, support=conventions.ALIGNED_PREFIX),
      distributions.leaf_distribution("zipf", depth, seed=3, support=conventions.UNALIGNED_PREFIX)])


def finetune_weights(depth: int = DEPTH) -> np.ndarray:
  return PERTURB_SIZE * datasets(depth)[conventions.PERTURB]


@functools.cache
def initial(kind: str) -> dict:
  """Initial parameters of one run (cached)."""
  return jax.jit(build_model(CONFIGS[kind], DEPTH).init)(jax.random.PRNGKey(1))


def rates_of_runs(model, params) -> np.ndarray:
  """Rates (runs, 3) in bits per response, through toy_models.metrics (apart from the module under test)."""
  log2q = metrics.leaf_log2_probs(model, params)
  probs = datasets()
  return metrics.rates_bits(log2q, np.broadcast_to(probs, (log2q.shape[0], *probs.shape)))


def assert_second_order(changes: np.ndarray, learning_rates: np.ndarray, first_order: np.ndarray) -> None:
  """changes (runs, 3) after one step at learning_rates (eta, eta/2, eta/4) vs eta E: error shrinks ~4x per halving."""
  errors = changes - learning_rates[:, None] * first_order[None, :]
  assert np.all(np.abs(first_order) > 1e-3)  # a real effect to approximate
  assert np.abs(errors[0]).max() < 0.05 * np.abs(learning_rates[0] * first_order).max()  # small next to eta E
  np.testing.assert_allclose(errors[0] / errors[1], 4.0, atol=RATIO_TOLERANCE)
  np.testing.assert_allclose(errors[1] / errors[2], 4.0, atol=RATIO_TOLERANCE)


def stacked(params: dict, runs: int) -> dict:
  return jax.tree_util.tree_map(lambda x: jnp.stack([x] * runs), params)


# One step of training against the first-order prediction.

@pytest.mark.parametrize("kind,optimizer", [("tabular", "sgd"), ("ngram", "sgd"), ("tabular", "adam"),
                                            ("transformer", "adam")])
def test_one_training_step_changes_rates_by_eta_e_up_to_second_order(kind, optimizer):
  model = build_model(CONFIGS[kind], DEPTH)
  params = initial(kind)
  result = inst.instantaneous_elasticity(model, params, jnp.asarray(datasets()), jnp.asarray(finetune_weights()),
                                         optimizer=optimizer)
  learning_rates = 5e-4 / np.array([1.0, 2.0, 4.0])
  stage = StageConfig(steps=1, learning_rate=1.0, schedule="constant", optimizer=optimizer, gradient="expected")
  keys = jax.random.split(jax.random.PRNGKey(0), 3)
  moved, _ = training.train_batch(model, stage, stacked(params, 3), np.tile(finetune_weights(), (3, 1)),
                                  np.ones(3, dtype=int), keys=keys, learning_rates=learning_rates)
  changes = rates_of_runs(model, moved) - rates_of_runs(model, stacked(params, 1))
  assert_second_order(changes, learning_rates, np.asarray(result.rate_changes_bits))


def test_adam_from_a_carried_state_is_the_textbook_update_and_first_order_exact():
  model = build_model(CONFIGS["transformer"], DEPTH)
  probs, weights = jnp.asarray(datasets()), jnp.asarray(finetune_weights())
  params, state = initial("transformer"), inst.fresh_adam_state(initial("transformer"))
  transform = optax.scale_by_adam()  # the transform toy_models/training.py applies
  for _ in range(4):  # a few real fine-tuning steps: the state now carries moments of several gradients
    step = inst.instantaneous_elasticity(model, params, probs, weights, optimizer="adam", adam_state=state)
    _, state = transform.update(step.loss_gradient, state, params)
    params = jax.tree_util.tree_map(lambda p, u: p - 0.01 * u, params, step.update)
  result = inst.instantaneous_elasticity(model, params, probs, weights, optimizer="adam", adam_state=state)
  # Adam's update written out (Kingma & Ba, Alg. 1) from the state and the new gradient.
  count = int(state.count) + 1
  for g, mu, nu, u in zip(*(jax.tree_util.tree_leaves(tree) for tree in (result.loss_gradient, state.mu, state.nu,
                                                                           result.update)), strict=True):
    m_hat = (0.9 * np.asarray(mu) + 0.1 * np.asarray(g)) / (1 - 0.9**count)
    v_hat = (0.999 * np.asarray(nu) + 0.001 * np.asarray(g) ** 2) / (1 - 0.999**count)
    np.testing.assert_allclose(u, m_hat / (np.sqrt(v_hat) + 1e-8), rtol=1e-12, atol=1e-15)
  learning_rates = 5e-4 / np.array([1.0, 2.0, 4.0])
  moved = jax.tree_util.tree_map(lambda p, u: p[None] - learning_rates.reshape((3,) + (1,) * p.ndim) * u[None],
                                 params, result.update)
  changes = rates_of_runs(model, moved) - rates_of_runs(model, stacked(params, 1))
  assert_second_order(changes, learning_rates, np.asarray(result.rate_changes_bits))


def test_fresh_adam_update_is_sign_like():
  model = build_model(CONFIGS["tabular"], DEPTH)
  result = inst.instantaneous_elasticity(model, initial("tabular"), jnp.asarray(datasets()),
                                         jnp.asarray(finetune_weights()), optimizer="adam")
  gradient, update = np.asarray(result.loss_gradient["logits"]), np.asarray(result.update["logits"])
  large = np.abs(gradient) > 1e-4
  assert large.sum() > 10
  np.testing.assert_allclose(update[large], np.sign(gradient[large]), rtol=1e-4)
  assert np.all(update[gradient == 0] == 0)  # unreached rows and the forced layer do not move


def test_summed_loss_scales_sgd_elasticity_by_the_token_count():
  model = build_model(CONFIGS["ngram"], DEPTH)
  args = (model, initial("ngram"), jnp.asarray(datasets()), jnp.asarray(finetune_weights()))
  mean, summed = (inst.instantaneous_elasticity(*args, reduction=r) for r in ("mean", "sum"))
  tokens = finetune_weights() @ token_tree.response_lengths(DEPTH)  # sum_x w(x) |x|
  np.testing.assert_allclose(summed.rate_changes_bits, tokens * np.asarray(mean.rate_changes_bits), rtol=1e-12)
  np.testing.assert_allclose(mean.loss, summed.loss / tokens, rtol=1e-12)
  np.testing.assert_allclose(mean.ratio, mean.rate_changes_bits[1] / mean.rate_changes_bits[0], rtol=1e-12)


def test_vmap_over_runs_equals_one_run_at_a_time():
  model = build_model(CONFIGS["tabular"], DEPTH)
  params = jax.vmap(model.init)(jax.random.split(jax.random.PRNGKey(3), 2))
  probs, weights = jnp.asarray(datasets()), jnp.asarray(finetune_weights())
  batched = jax.vmap(lambda p: inst.instantaneous_elasticity(model, p, probs, weights, optimizer="adam"))(params)
  for run in range(2):
    one_run = jax.tree_util.tree_map(functools.partial(row, index=run), params)
    one = inst.instantaneous_elasticity(model, one_run, probs, weights, optimizer="adam")
    np.testing.assert_allclose(batched.rate_changes_bits[run], one.rate_changes_bits, rtol=1e-12)


# The tabular closed form (theory.tabular_elasticity).

def test_node_gradient_derivation_holds_symbolically():
  steps = tabular_elasticity.node_gradient_steps()
  assert len(steps) == 6 and all(step.holds for step in steps)


def random_datasets(depth: int, seed: int, supports) -> np.ndarray:
  rng = np.random.default_rng(seed)
  return np.stack([distributions.leaf_distribution(str(rng.choice(["pareto", "zipf", "dirichlet"])), depth,
                                                   seed=seed + i, support=support)
                   for i, support in enumerate(supports)])


SUPPORTS = st.lists(st.sampled_from([(), (0,), (1,), (0, 1), (1, 1, 0)]), min_size=3, max_size=3)


@hypothesis.given(depth=st.integers(2, 6), seed=st.integers(0, 2**20), supports=SUPPORTS)
def test_flows_and_masses_match_brute_force_over_prefixes(depth, seed, supports):
  supports = [s for s in supports if len(s) < depth]
  hypothesis.assume(supports)
  P = random_datasets(depth, seed, supports)
  masses, flows = tabular_elasticity.pass_masses(P, depth), tabular_elasticity.node_flows(P, depth)
  conditionals = tabular_elasticity.next_token_distributions(P, depth)
  for node in range(token_tree.n_leaves(depth)):
    prefix = token_tree.leaf_bits(node, depth)
    np.testing.assert_allclose(masses[:, node], P[:, token_tree.prefix_mask(depth, prefix)].sum(axis=1),
                               rtol=1e-12, atol=1e-15)
    children = [P[:, token_tree.prefix_mask(depth, prefix + (bit,))].sum(axis=1) if len(prefix) < depth - 1
                else np.zeros(len(P)) for bit in (0, 1)]
    np.testing.assert_allclose(flows[:, node], np.stack([*children, P[:, node]], axis=1), rtol=1e-12, atol=1e-15)
    reached = masses[:, node] > 0
    np.testing.assert_allclose(conditionals[reached, node].sum(axis=1), 1.0, rtol=1e-12)
    assert np.all(conditionals[~reached, node] == 0)


def test_conditionals_multiply_to_the_model_leaf_probabilities():
  depth = 5
  model = build_model(CONFIGS["tabular"], depth)
  logits = np.random.default_rng(0).standard_normal((token_tree.n_leaves(depth), 3))
  log_q = jax.jit(likelihood.leaf_log_probs, static_argnums=0)(model, {"logits": jnp.asarray(logits)},
                                                              jnp.asarray(token_tree.leaf_tokens(depth)))
  conditionals = tabular_elasticity.tabular_conditionals(logits, depth)
  for leaf in range(token_tree.n_leaves(depth)):
    bits, node, probability = token_tree.leaf_bits(leaf, depth), 0, 1.0
    for bit in bits:
      probability, node = probability * conditionals[node, bit], 2 * node + 1 + bit
    probability *= conditionals[node, token_tree.EOS]
    assert np.log(probability) == pytest.approx(float(log_q[leaf]), rel=1e-12, abs=1e-13)


@hypothesis.given(depth=st.sampled_from([3, 5]), seed=st.integers(0, 2**20), scale=st.floats(0.1, 5.0),
                  supports=SUPPORTS, reduction=st.sampled_from(inst.LOSS_REDUCTIONS))
def test_tabular_closed_form_matches_autodiff(depth, seed, scale, supports, reduction):
  supports = [s for s in supports if len(s) < depth]
  hypothesis.assume(len(supports) == 3)
  P = random_datasets(depth, seed, supports)
  logits = scale * np.random.default_rng(seed).standard_normal((token_tree.n_leaves(depth), 3))
  model = build_model(CONFIGS["tabular"], depth)
  conditionals = tabular_elasticity.tabular_conditionals(logits, depth)
  autodiff = jacobian_of_cross_entropies(model, jnp.asarray(logits), jnp.asarray(P))
  closed = tabular_elasticity.cross_entropy_gradients_nats(conditionals, P, depth)
  np.testing.assert_allclose(closed, autodiff, rtol=RTOL_CLOSED_FORM, atol=1e-14)
  weights = PERTURB_SIZE * P[conventions.PERTURB]
  sgd = inst.instantaneous_elasticity(model, {"logits": jnp.asarray(logits)}, jnp.asarray(P), jnp.asarray(weights),
                                      reduction=reduction)
  size = PERTURB_SIZE if reduction == "sum" else None
  expected = tabular_elasticity.sgd_elasticities_bits(conditionals, P, depth, reduction=reduction, perturb_size=size)
  np.testing.assert_allclose(sgd.rate_changes_bits, expected, rtol=RTOL_CLOSED_FORM,
                             atol=1e-12 * np.abs(expected).max())


@functools.partial(jax.jit, static_argnums=0)
def jacobian_of_cross_entropies(model, logits, probs):
  """d CE_i / d logits by JAX reverse mode: (n_datasets, n_nodes, 3), nats."""
  return jax.jacrev(lambda z: implicit_elasticity.cross_entropies_nats(model, {"logits": z}, probs))(logits)


def test_closed_form_broadcasts_over_a_batch_of_configurations():
  P = np.stack([datasets(3), datasets(3)[::-1]])
  logits = np.random.default_rng(1).standard_normal((2, token_tree.n_leaves(3), 3))
  conditionals = tabular_elasticity.tabular_conditionals(logits, 3)
  batched = tabular_elasticity.sgd_elasticities_bits(conditionals, P, 3)
  for run in range(2):
    np.testing.assert_allclose(batched[run], tabular_elasticity.sgd_elasticities_bits(conditionals[run], P[run], 3),
                               rtol=1e-14)


# Inputs.

def test_bad_inputs_raise_one_line_value_errors():
  model = build_model(CONFIGS["tabular"], DEPTH)
  params, probs, weights = initial("tabular"), jnp.asarray(datasets()), jnp.asarray(finetune_weights())
  conditionals = tabular_elasticity.tabular_conditionals(np.zeros((token_tree.n_leaves(DEPTH), 3)), DEPTH)
  cases = [
      lambda: inst.instantaneous_elasticity(model, params, probs, weights, reduction="median"),
      lambda: inst.instantaneous_elasticity(model, params, probs, weights, optimizer="lion"),
      lambda: inst.instantaneous_elasticity(model, params, probs, weights, adam_state=inst.fresh_adam_state(params)),
      lambda: inst.instantaneous_elasticity(model, params, probs, weights[:-1]),
      lambda: inst.instantaneous_elasticity(model, params, probs, 0 * weights),
      lambda: inst.instantaneous_elasticity(model, params, probs[:2], weights),
      lambda: inst.instantaneous_elasticity(model, jax.tree_util.tree_map(lambda x: x.astype(jnp.float32), params),
                                            probs, weights),
      lambda: inst.AdamConfig(b1=1.0),
      lambda: tabular_elasticity.sgd_elasticities_bits(conditionals, datasets(), DEPTH, reduction="sum"),
      lambda: tabular_elasticity.sgd_elasticities_bits(conditionals, datasets(), DEPTH, perturb_size=3.0),
      lambda: tabular_elasticity.sgd_elasticities_bits(conditionals, datasets(), DEPTH, reduction="max"),
      lambda: tabular_elasticity.sgd_elasticities_bits(conditionals, datasets(3), DEPTH),
      lambda: tabular_elasticity.sgd_elasticities_bits(conditionals[:-1], datasets(), DEPTH),
      lambda: tabular_elasticity.tabular_conditionals(np.zeros((3, 3)), DEPTH),
  ]
  for case in cases:
    with pytest.raises(ValueError) as error:
      case()
    assert "\n" not in str(error.value)
