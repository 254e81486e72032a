"""Tests of the DPO objective: the exact loss, its gradient, training with it, and SFT left as it was."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.helpers import RTOL_FINITE_DIFFERENCE, RTOL_FLOAT64
from theory import token_tree
from toy_models import likelihood, metrics, training
from toy_models.model_config import ModelConfig
from toy_models.models import build_model
from toy_models.stage_config import StageConfig

DEPTH = 4
N_LEAVES = token_tree.n_leaves(DEPTH)
MODEL = build_model(ModelConfig(kind="tabular"), DEPTH)
TOKENS = jnp.asarray(token_tree.leaf_tokens(DEPTH))
LN2 = np.log(2.0)
ROUNDING = 16 * np.finfo(np.float64).eps  # ln 2 times the rounded sums of normalised weights: a few ulps.
SIGMAS = 5.0  # minibatch mean vs exact gradient: |z| < 5 per coordinate (21 can move: false alarm ~ 21 * 6e-7).


def random_logits(seed: int, runs: int | None = None, scale: float = 0.7) -> jax.Array:
  """Tabular logits (N_LEAVES, 3), or (runs, N_LEAVES, 3), drawn with numpy."""
  shape = (N_LEAVES, 3) if runs is None else (runs, N_LEAVES, 3)
  return jnp.asarray(scale * np.random.default_rng(seed).standard_normal(shape))


def random_weights(seed: int, zeros: int = 3) -> np.ndarray:
  """Leaf weights >= 0 with `zeros` leaves of weight 0."""
  rng = np.random.default_rng(seed)
  weights = rng.uniform(0.1, 5.0, N_LEAVES)
  weights[rng.choice(N_LEAVES, zeros, replace=False)] = 0.0
  return weights


def _tree_paths() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Row of the prefix, token taken, and whether it is a free choice, for each leaf and position t < DEPTH - 1.

  Positions past a response's EOS are not part of it; the tree's last position (t = DEPTH - 1) can only be EOS.
  """
  rows, picks = np.zeros((N_LEAVES, DEPTH - 1), int), np.zeros((N_LEAVES, DEPTH - 1), int)
  free = np.zeros((N_LEAVES, DEPTH - 1), bool)
  for index in range(N_LEAVES):
    bits, value = token_tree.leaf_bits(index, DEPTH), 0
    for t in range(min(len(bits) + 1, DEPTH - 1)):
      rows[index, t], free[index, t] = 2**t - 1 + value, True
      picks[index, t] = bits[t] if t < len(bits) else token_tree.EOS
      value = 2 * value + (bits[t] if t < len(bits) else 0)
  return rows, picks, free


ROWS, PICKS, FREE = _tree_paths()


def hand_leaf_log_probs(logits, xp=np):
  """log q(x) in nats of every leaf of the tabular model, from the tree's definition (numpy or jax.numpy).

  Independent of toy_models.likelihood: the node of prefix b_<t is row 2**t - 1 + value(b_<t); the response
  b_0..b_{m-1} EOS has probability prod_t softmax(row_t)[b_t] times softmax(row_m)[EOS], the last factor 1
  when m = DEPTH - 1.
  """
  log_softmax = logits - xp.log(xp.exp(logits).sum(axis=-1, keepdims=True))
  return xp.where(FREE, log_softmax[ROWS, PICKS], 0.0).sum(axis=-1)


model_leaf_log_probs = jax.jit(functools.partial(likelihood.leaf_log_probs, MODEL))


@jax.jit
def exact_loss(logits, chosen, rejected, reference, beta):
  """likelihood.dpo_loss of the tabular model over every leaf (beta traced: one compilation for all betas)."""
  return likelihood.dpo_loss(MODEL, {"logits": logits}, TOKENS, chosen, rejected, reference, beta)


exact_grad = jax.jit(jax.grad(exact_loss))


# The exact loss.

def test_loss_is_ln2_where_the_model_equals_the_reference():
  logits = random_logits(0)
  reference = hand_leaf_log_probs(np.asarray(logits))
  chosen, rejected = random_weights(1), random_weights(2)
  shifted = logits + jnp.asarray(np.random.default_rng(3).normal(size=(N_LEAVES, 1)))  # same softmax per node
  own = np.asarray(model_leaf_log_probs({"logits": logits}, TOKENS))
  for model_logits, ref in ((logits, own), (shifted, reference)):
    for beta in (0.1, 3.0):
      loss = float(exact_loss(model_logits, chosen, rejected, ref, beta))
      np.testing.assert_allclose(loss, LN2, rtol=ROUNDING, atol=0)
  # With weights whose normalisation and pair sums are exact in binary, nothing is left to round: exactly ln 2.
  one_chosen, two_rejected = np.eye(N_LEAVES)[4], np.eye(N_LEAVES)[2] + np.eye(N_LEAVES)[9]
  assert float(exact_loss(logits, one_chosen, two_rejected, own, 0.1)) == LN2


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_loss_equals_a_double_loop_over_pairs(seed):
  logits, reference_logits = random_logits(seed), random_logits(seed + 100)
  chosen, rejected = random_weights(seed + 200), random_weights(seed + 300, zeros=5)
  beta = 0.1 + seed
  log_q, log_ref = hand_leaf_log_probs(np.asarray(logits)), hand_leaf_log_probs(np.asarray(reference_logits))
  p_c, p_r = chosen / chosen.sum(), rejected / rejected.sum()
  expected = 0.0
  for w in range(N_LEAVES):
    for loser in range(N_LEAVES):
      margin = (log_q[w] - log_ref[w]) - (log_q[loser] - log_ref[loser])
      expected += p_c[w] * p_r[loser] * np.log1p(np.exp(-beta * margin))
  got = float(exact_loss(logits, chosen, rejected, log_ref, beta))
  np.testing.assert_allclose(got, expected, rtol=RTOL_FLOAT64)
  np.testing.assert_allclose(np.asarray(model_leaf_log_probs({"logits": logits}, TOKENS)), log_q,
                             rtol=RTOL_FLOAT64)


def test_gradient_matches_central_finite_differences():
  logits, reference = random_logits(4), hand_leaf_log_probs(np.asarray(random_logits(5)))
  chosen, rejected, beta = random_weights(6), random_weights(7), 0.8
  grad = np.asarray(exact_grad(logits, chosen, rejected, reference, beta))
  step = 1e-5  # central differences in float64: truncation ~ step**2, rounding ~ 1e-16 / step, both << 1e-5.
  numeric = np.zeros(grad.shape)
  for index in np.ndindex(*grad.shape):
    bump = jnp.zeros(grad.shape).at[index].set(step)
    numeric[index] = (float(exact_loss(logits + bump, chosen, rejected, reference, beta))
                      - float(exact_loss(logits - bump, chosen, rejected, reference, beta))) / (2 * step)
  assert np.abs(grad).max() > 1e-3  # a non-trivial gradient
  np.testing.assert_allclose(grad, numeric, rtol=RTOL_FINITE_DIFFERENCE, atol=RTOL_FINITE_DIFFERENCE * 1e-2)


def test_pair_loss_of_drawn_pairs_matches_the_pair_formula():
  logits, reference = random_logits(8), hand_leaf_log_probs(np.asarray(random_logits(9)))
  winners, losers = np.array([0, 3, 3, 14, 7]), np.array([1, 1, 12, 2, 7])
  got = jax.jit(functools.partial(likelihood.dpo_pair_loss, MODEL, beta=0.5))(
      {"logits": logits}, TOKENS[winners], TOKENS[losers], jnp.asarray(reference[winners]),
      jnp.asarray(reference[losers]))
  margins = hand_leaf_log_probs(np.asarray(logits)) - reference
  expected = np.log1p(np.exp(-0.5 * (margins[winners] - margins[losers]))).mean()
  np.testing.assert_allclose(float(got), expected, rtol=RTOL_FLOAT64)


# Training with DPO.

def dpo_stage(**kwargs) -> StageConfig:
  """A DPO stage at beta 0.5 with plain SGD at a constant rate 1 (the tests below share its compiled program)."""
  defaults = {"steps": 1, "objective": "dpo", "dpo_beta": 0.5, "optimizer": "sgd", "schedule": "constant",
              "learning_rate": 1.0}
  return StageConfig(**{**defaults, **kwargs})


def test_training_moves_mass_from_rejected_to_chosen_and_lowers_the_loss():
  runs = 3
  keys = jax.random.split(jax.random.PRNGKey(0), runs)
  start = {"logits": jnp.broadcast_to(random_logits(10), (runs, N_LEAVES, 3))}
  reference = metrics.leaf_log2_probs(MODEL, start) * LN2
  aligned = token_tree.leaf_tokens(DEPTH)[:, 0] == 0  # responses starting with token 0
  chosen = np.where(aligned, random_weights(11, zeros=0), 0.0)
  rejected = np.where(aligned, 0.0, random_weights(12, zeros=0))
  params, losses = training.train_batch(MODEL, dpo_stage(), start, np.stack([chosen] * runs),
                                        np.array([0, 30, 300]), keys=keys, rejected_weights=np.stack([rejected] * runs),
                                        reference_log_probs=reference)
  np.testing.assert_allclose(losses[0], LN2, rtol=ROUNDING)
  assert losses[0] > losses[1] > losses[2]
  margins = metrics.leaf_log2_probs(MODEL, params) * LN2 - reference
  assert np.all(margins[1:, chosen > 0] > 0) and np.all(margins[1:, rejected > 0] < 0)  # each response, each run
  mass = np.exp(metrics.leaf_log2_probs(MODEL, params) * LN2) @ aligned
  assert mass[0] < mass[1] < mass[2]
  for run in range(runs):
    expected = exact_loss(params["logits"][run], chosen, rejected, reference[run], 0.5)
    np.testing.assert_allclose(losses[run], float(expected), rtol=RTOL_FLOAT64)


def one_sgd_step_gradients(stage: StageConfig, logits, chosen, rejected, reference, runs: int, seed: int = 0):
  """Each run's gradient of one step of `stage` (SGD at rate 1) from `logits`: logits - trained, (runs, N_LEAVES, 3)."""
  params = {"logits": jnp.broadcast_to(logits, (runs, N_LEAVES, 3))}
  tile = functools.partial(np.broadcast_to, shape=(runs, N_LEAVES))
  trained, _ = training.train_batch(MODEL, stage, params, tile(chosen), np.ones(runs, int),
                                    keys=jax.random.split(jax.random.PRNGKey(seed), runs),
                                    rejected_weights=tile(rejected), reference_log_probs=tile(reference))
  return np.asarray(params["logits"] - trained["logits"])


def test_minibatch_gradient_averages_to_the_expected_gradient():
  logits, reference = random_logits(13), hand_leaf_log_probs(np.asarray(random_logits(14)))
  chosen, rejected = random_weights(15), random_weights(16)
  expected = one_sgd_step_gradients(dpo_stage(), logits, chosen, rejected, reference, 3)  # 3 runs, as above
  exact = np.asarray(exact_grad(logits, chosen, rejected, reference, 0.5))
  np.testing.assert_allclose(expected, np.broadcast_to(exact, expected.shape), rtol=RTOL_FLOAT64, atol=1e-15)
  samples = one_sgd_step_gradients(dpo_stage(gradient="minibatch", batch_size=4), logits, chosen, rejected,
                                   reference, 4000, seed=1)
  # Each run's gradient is an independent unbiased estimate (4 pairs, chosen and rejected drawn apart), so the
  # mean of 4000 is normal to good approximation with the standard error estimated from the runs themselves.
  mean, error = samples.mean(axis=0), samples.std(axis=0, ddof=1) / np.sqrt(len(samples))
  assert np.all(np.abs(mean - exact) <= SIGMAS * error + 1e-12)
  # The check has power: the gradient at another beta, or with chosen and rejected swapped, lies outside.
  for other in (exact_grad(logits, chosen, rejected, reference, 0.7),
                exact_grad(logits, rejected, chosen, reference, 0.5)):
    assert np.any(np.abs(mean - np.asarray(other)) > SIGMAS * error + 1e-12)


# Bad inputs.

def _train(stage, **kwargs):
  keys = jax.random.split(jax.random.PRNGKey(0), 2)
  ones = np.ones((2, N_LEAVES))
  training.train_batch(MODEL, stage, training.init_params(MODEL, keys), ones, [1, 1], keys=keys, **kwargs)


GOOD = {"rejected_weights": np.ones((2, N_LEAVES)), "reference_log_probs": np.full((2, N_LEAVES), -np.log(15))}


@pytest.mark.parametrize("make, shown", [
    (lambda: StageConfig(objective="ppo"), "'ppo'"),
    (lambda: StageConfig(dpo_beta=0.0), "dpo_beta=0.0"),
    (lambda: StageConfig(dpo_beta=-1.0), "dpo_beta=-1.0"),
    (lambda: StageConfig(dpo_beta=float("nan")), "dpo_beta=nan"),
    (lambda: StageConfig(dpo_beta=float("inf")), "dpo_beta=inf"),
    (lambda: StageConfig(dpo_beta=True), "dpo_beta=True"),
    (lambda: StageConfig(dpo_beta="0.1"), "dpo_beta='0.1'"),
    (lambda: _train(dpo_stage(), reference_log_probs=GOOD["reference_log_probs"]), "rejected_weights is missing"),
    (lambda: _train(dpo_stage(), rejected_weights=GOOD["rejected_weights"]), "reference_log_probs is missing"),
    (lambda: _train(StageConfig(steps=1), rejected_weights=GOOD["rejected_weights"]),
     "rejected_weights given for objective='sft'"),
    (lambda: _train(StageConfig(steps=1), reference_log_probs=GOOD["reference_log_probs"]),
     "reference_log_probs given for objective='sft'"),
    (lambda: _train(dpo_stage(), **{**GOOD, "rejected_weights": np.ones((3, N_LEAVES))}), r"\(3, 15\)"),
    (lambda: _train(dpo_stage(), **{**GOOD, "rejected_weights": np.ones((2, 7))}), r"\(2, 7\)"),
    (lambda: _train(dpo_stage(), **{**GOOD, "reference_log_probs": np.zeros(N_LEAVES)}), r"\(15,\)"),
    (lambda: _train(dpo_stage(), **{**GOOD, "rejected_weights": -GOOD["rejected_weights"]}), "-1.0"),
    (lambda: _train(dpo_stage(), **{**GOOD, "reference_log_probs": np.full((2, N_LEAVES), -np.inf)}), "-inf"),
    (lambda: _train(dpo_stage(), **{**GOOD, "rejected_weights": np.zeros((2, N_LEAVES))}),
     "run 0 has no rejected responses"),
], ids=["objective", "beta_zero", "beta_negative", "beta_nan", "beta_inf", "beta_bool", "beta_string",
        "missing_rejected", "missing_reference", "rejected_for_sft", "reference_for_sft", "rejected_runs",
        "rejected_leaves", "reference_shape", "rejected_negative", "reference_infinite", "rejected_empty"])
def test_bad_inputs_give_one_line_errors_naming_the_value(make, shown):
  with pytest.raises(ValueError, match=shown) as error:
    make()
  assert "\n" not in str(error.value)


# SFT unchanged.

def hand_adam(grad_fn, logits, rate: float, steps: int, b1=0.9, b2=0.999, eps=1e-8):
  """Adam (Kingma & Ba, Algorithm 1) at a constant rate, written out, from `logits`."""
  m = v = jnp.zeros_like(logits)
  for t in range(1, steps + 1):
    g = grad_fn(logits, t - 1)
    m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g**2
    logits = logits - rate * (m / (1 - b1**t)) / (jnp.sqrt(v / (1 - b2**t)) + eps)
  return logits


def hand_sft_loss(logits, weights):
  """Token-level NLL in nats per token: sum_x w(x) (-log q(x)) / sum_x w(x) |x|, from the tree's definition."""
  lengths = jnp.asarray(token_tree.response_lengths(DEPTH), jnp.float64)
  return -(weights * hand_leaf_log_probs(logits, jnp)).sum() / (weights * lengths).sum()


hand_sft_grad = jax.jit(jax.grad(hand_sft_loss))
hand_sft_loss_jit = jax.jit(hand_sft_loss)


@pytest.mark.parametrize("gradient", ["expected", "minibatch"])
def test_sft_training_is_adam_on_the_token_nll(gradient):
  runs, steps, rate, batch = 2, 3, 0.05, 8
  start = random_logits(17, runs)
  weights = np.stack([random_weights(18), random_weights(19)])
  keys = jax.random.split(jax.random.PRNGKey(2), runs)
  stage = StageConfig(steps=1, gradient=gradient, batch_size=batch, schedule="constant", learning_rate=rate)
  trained, losses = training.train_batch(MODEL, stage, {"logits": start}, weights, np.full(runs, steps), keys=keys)
  for run in range(runs):
    def grad_fn(logits, step, run=run):
      if gradient == "expected":
        return hand_sft_grad(logits, jnp.asarray(weights[run]))
      # SFT minibatches: batch_size responses drawn from the normalised weights with key fold_in(key, step).
      picks = jax.random.choice(jax.random.fold_in(keys[run], step), N_LEAVES, (batch,),
                                p=jnp.asarray(weights[run] / weights[run].sum()))
      return hand_sft_grad(logits, jnp.zeros(N_LEAVES).at[picks].add(1.0))

    expected = hand_adam(grad_fn, start[run], rate, steps)
    np.testing.assert_allclose(np.asarray(trained["logits"][run]), np.asarray(expected), rtol=RTOL_FLOAT64,
                               atol=RTOL_FLOAT64 * 1e-3)
    np.testing.assert_allclose(losses[run], float(hand_sft_loss_jit(expected, jnp.asarray(weights[run]))),
                               rtol=RTOL_FLOAT64)


def test_sft_stages_differing_only_in_dpo_beta_share_a_compiled_program():
  sft, dpo = StageConfig(), StageConfig(objective="dpo")
  assert training._static_fields(sft) == training._static_fields(dataclasses.replace(sft, dpo_beta=2.0))
  assert training._static_fields(dpo) != training._static_fields(dataclasses.replace(dpo, dpo_beta=2.0))
  assert training._static_fields(sft) != training._static_fields(dataclasses.replace(dpo, dpo_beta=sft.dpo_beta))
