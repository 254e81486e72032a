"""The generic trainer: reproduces train_batch with the SFT loss, and closed forms of SGD, Adam and the anchor."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from theory import token_tree
from toy_models import compilation, likelihood, loss_training, training
from toy_models.model_config import ModelConfig
from toy_models.models import build_model
from toy_models.stage_config import StageConfig

DEPTH = 3
TOKENS = jnp.asarray(token_tree.leaf_tokens(DEPTH))
TABULAR = build_model(ModelConfig(kind="tabular"), DEPTH)
BATCH = 4


def sft_minibatch_loss(params, weights, key):
  """The SFT minibatch loss as training.py forms it: BATCH responses drawn from the weights with the step's key."""
  picks = jax.random.choice(key, TOKENS.shape[0], (BATCH,), p=weights / weights.sum())
  return likelihood.weighted_token_nll(TABULAR, params, TOKENS[picks], jnp.ones(BATCH, weights.dtype))


def quadratic_loss(params, data, key):
  """0.5 ||w - c||**2 per run (c = data): SGD from w0 gives c + (1 - eta)**t (w0 - c)."""
  del key
  return 0.5 * jnp.sum((params["w"] - data) ** 2)


def linear_loss(params, data, key):
  """<g, w> per run (g = data): a constant gradient."""
  del key
  return jnp.sum(params["w"] * data)


def keyed_loss(params, data, key):
  """<U(key), w>: the gradient is the step key's uniform draw, so SGD sums the draws of the keys it received."""
  return jnp.sum(params["w"] * jax.random.uniform(key, data.shape, data.dtype))


def proximal_loss(params, data, key, anchor, step):
  """<b, w> + rho/2 ||w - anchor||**2 with rho = 0.5."""
  del key, step
  return jnp.sum(params["w"] * data) + 0.25 * jnp.sum((params["w"] - anchor["w"]) ** 2)


def every_step(step):
  return step >= 0


def never_again(step):
  return step < 0


def every_third(step):
  return step % 3 == 0


def keys(count: int, seed: int = 0):
  return jnp.stack([jax.random.PRNGKey(seed * 100 + i) for i in range(count)])


@pytest.mark.parametrize("optimizer, schedule", [("adam", "constant"), ("sgd", "cosine")])
def test_sft_loss_reproduces_train_batch(optimizer, schedule):
  """Same minibatches (drawn from fold_in(key, step)), same optimiser, same schedule: the same parameters."""
  rng = np.random.default_rng(1)
  runs = 3
  weights = rng.integers(0, 5, size=(runs, TOKENS.shape[0])).astype(np.float64) + 0.5
  steps = np.array([7, 0, 12])
  rates = np.array([0.05, 0.1, 0.02])
  start = training.init_params(TABULAR, keys(runs, seed=3))
  stage = StageConfig(optimizer=optimizer, schedule=schedule, gradient="minibatch", batch_size=BATCH)
  expected, _ = training.train_batch(TABULAR, stage, start, weights, steps, keys=keys(runs), learning_rates=rates)
  got, losses = loss_training.train_with_loss(TABULAR, sft_minibatch_loss, start, weights, steps, keys=keys(runs),
                                              learning_rates=rates, optimizer=optimizer, schedule=schedule)
  np.testing.assert_allclose(np.asarray(got["logits"]), np.asarray(expected["logits"]), rtol=1e-12, atol=1e-14)
  np.testing.assert_array_equal(np.asarray(got["logits"][1]), np.asarray(start["logits"][1]))  # 0 steps
  assert np.isnan(losses[1]) and np.all(np.isfinite(losses[[0, 2]]))
  moved = np.abs(np.asarray(got["logits"]) - np.asarray(start["logits"])).max(axis=(1, 2))
  assert moved[0] > 1e-3 and moved[2] > 1e-3  # not a vacuous comparison


def test_sgd_on_a_quadratic_matches_its_closed_form():
  runs = 4
  rng = np.random.default_rng(2)
  start = {"w": rng.standard_normal((runs, 3))}
  target = rng.standard_normal((runs, 3))
  steps, rates = np.array([0, 1, 5, 17]), np.array([0.3, 0.1, 0.25, 0.05])
  got, losses = loss_training.train_with_loss(TABULAR, quadratic_loss, start, target, steps, keys=keys(runs),
                                              learning_rates=rates, optimizer="sgd")
  factor = (1 - rates) ** steps
  np.testing.assert_allclose(got["w"], target + factor[:, None] * (start["w"] - target), rtol=1e-12)
  before_last = target + ((1 - rates) ** (steps - 1))[:, None] * (start["w"] - target)
  np.testing.assert_allclose(losses[1:], 0.5 * ((before_last - target) ** 2).sum(axis=1)[1:], rtol=1e-12)


def test_adam_under_a_constant_gradient_steps_by_g_over_abs_g():
  """From a fresh state with gradient g at every step, Adam's bias-corrected moments are g and g**2: each step
  moves by eta g / (|g| + eps), eps = 1e-8 (optax's default)."""
  runs = 2
  rng = np.random.default_rng(4)
  start = {"w": rng.standard_normal((runs, 5))}
  gradient = rng.standard_normal((runs, 5)) * np.array([1e-3, 1.0, 10.0, 1e-6, 3.0])
  steps, rates = np.array([3, 11]), np.array([0.01, 0.2])
  got, _ = loss_training.train_with_loss(TABULAR, linear_loss, start, gradient, steps, keys=keys(runs),
                                         learning_rates=rates, optimizer="adam")
  expected = start["w"] - (steps * rates)[:, None] * gradient / (np.abs(gradient) + 1e-8)
  np.testing.assert_allclose(got["w"], expected, rtol=1e-10)


def test_each_step_gets_fold_in_of_the_run_key_and_the_step():
  runs, size = 2, 4
  start = {"w": np.zeros((runs, size))}
  steps, rates = np.array([6, 3]), np.array([1.0, 0.5])
  run_keys = keys(runs, seed=7)
  got, _ = loss_training.train_with_loss(TABULAR, keyed_loss, start, np.zeros((runs, size)), steps, keys=run_keys,
                                         learning_rates=rates, optimizer="sgd")
  for run in range(runs):
    draws = sum(np.asarray(jax.random.uniform(jax.random.fold_in(run_keys[run], t), (size,), jnp.float64))
                for t in range(steps[run]))
    np.testing.assert_allclose(got["w"][run], -rates[run] * draws, rtol=1e-12)


@pytest.mark.parametrize("rule", [every_step, never_again, every_third])
def test_the_anchor_is_the_parameters_at_the_last_reanchoring_step(rule):
  """SGD on <b, w> + rho/2 ||w - anchor||**2 against a plain Python loop that stores the anchor by the same rule."""
  runs, rho = 2, 0.5
  rng = np.random.default_rng(5)
  start = {"w": rng.standard_normal((runs, 3))}
  slope = rng.standard_normal((runs, 3))
  steps, rates = np.array([10, 4]), np.array([0.3, 0.7])
  got, _ = loss_training.train_with_loss(TABULAR, proximal_loss, start, slope, steps, keys=keys(runs),
                                         learning_rates=rates, optimizer="sgd", reanchor=rule)
  for run in range(runs):
    w = start["w"][run].copy()
    anchor = w.copy()
    for t in range(steps[run]):
      if bool(rule(t)):
        anchor = w.copy()
      w = w - rates[run] * (slope[run] + rho * (w - anchor))
    np.testing.assert_allclose(got["w"][run], w, rtol=1e-12)
  if rule is every_step:  # the proximal gradient vanishes at every step: plain SGD on <b, w>
    np.testing.assert_allclose(got["w"], start["w"] - (steps * rates)[:, None] * slope, rtol=1e-12)


@pytest.mark.parametrize("changes, message", [
    ({"steps": np.array([1, -1])}, "steps=[1, -1] is not allowed"),
    ({"steps": np.array([[1, 2]])}, "steps=[[1, 2]] is not allowed"),
    ({"learning_rates": np.array([0.1, 0.0])}, "learning_rates=[0.1, 0.0] is not allowed"),
    ({"optimizer": "lion"}, "unknown optimizer 'lion'"),
    ({"schedule": "step"}, "unknown schedule 'step'"),
    ({"batch_data": np.zeros((3, 2))}, "batch_data have leading axes [(3,)]"),
    ({"keys": keys(3)}, "keys have shape (3, 2)"),
    ({"loss_fn": "nll"}, "loss_fn='nll' is not allowed"),
])
def test_bad_inputs_give_one_line_errors(changes, message):
  arguments = {"loss_fn": quadratic_loss, "batch_data": np.zeros((2, 2)), "steps": np.array([1, 2]),
               "keys": keys(2), "learning_rates": np.array([0.1, 0.1]), "optimizer": "sgd", "schedule": "constant"}
  arguments.update(changes)
  loss_fn = arguments.pop("loss_fn")
  with pytest.raises(ValueError, match=re.escape(message)) as error:
    loss_training.train_with_loss(TABULAR, loss_fn, {"w": np.zeros((2, 2))}, arguments.pop("batch_data"),
                                  arguments.pop("steps"), **arguments)
  assert "\n" not in str(error.value)


@pytest.mark.parametrize("reanchor", [None, every_third])
def test_runs_beyond_the_memory_bound_train_in_calls_of_one_program_and_equal_one_call(reanchor, monkeypatch):
  """11 runs whose loop (padded to 16) XLA accounts at 16 x b bytes, under a bound of 4 b: calls of 4, 4 and 3 runs,
  all padded to 4, each run as in one call (no cap on the runs per call); a bound below one run is a one-line
  error."""
  monkeypatch.setattr(compilation, "CPU_RUNS_PER_CALL", None)
  loss = proximal_loss if reanchor is not None else keyed_loss
  runs = 11
  params = {"w": np.random.default_rng(1).normal(size=(runs, 5))}
  data = np.random.default_rng(2).normal(size=(runs, 5))
  keys = np.stack([np.asarray(jax.random.PRNGKey(i)) for i in range(runs)])
  steps, rates = np.array([7] * 10 + [3]), np.full(runs, 0.1)
  common = dict(keys=keys, learning_rates=rates, optimizer="adam", reanchor=reanchor)
  with loss_training.compilation.count_compilations() as analysed:
    whole, whole_losses = loss_training.train_with_loss(TABULAR, loss, params, data, steps,
                                                        memory_limit_bytes=10**12, **common)
  assert analysed.names.count("jit(_segment)") == 1  # the program analysed (from shapes) is the one that ran
  fn = loss_training._compiled(loss, "adam", "constant", 0.05, reanchor, loss_training.compilation.training_options())
  per_run = loss_training._program_bytes(fn, np.dtype(np.float64), "adam", reanchor, params, data, keys, 16) / 16
  seen = []
  with loss_training.compilation.count_compilations() as stats:
    parts, part_losses = loss_training.train_with_loss(
        TABULAR, loss, params, data, steps, memory_limit_bytes=int(4.5 * per_run),
        progress=lambda done, total, label: seen.append((done, total)), **common)
  np.testing.assert_allclose(np.asarray(parts["w"]), np.asarray(whole["w"]), rtol=1e-12, atol=1e-14)
  np.testing.assert_allclose(part_losses, whole_losses, rtol=1e-12)
  assert seen[-1] == (21, 21) and [done for done, _ in seen] == sorted(done for done, _ in seen)  # 3 calls of 7
  assert stats.names.count("jit(_segment)") == 1  # the calls of 4, 4 and 3 runs share the program for 4
  with pytest.raises(ValueError, match=r"^training one run of .* above the training memory limit [^\n]*$"):
    loss_training.train_with_loss(TABULAR, loss, params, data, steps, memory_limit_bytes=int(per_run / 2), **common)


def test_the_cpu_cap_trains_in_calls_of_the_cap_sharing_one_program_with_the_callers_padding(monkeypatch):
  """CPU_RUNS_PER_CALL = 4 (the tests' preset is a compile-dominated one): 11 runs padded_runs=16 train in calls of 4,
  4 and 3 runs, all padded to 4, each run as in one unsplit call; 6 runs with padded_runs=16 then reuse that program
  (calls of 3 and 3, padded to 4), and so do 2 runs (padded to the cap, not to padded_runs). Under the 'optimized'
  preset 5 runs train in one call padded to padded_runs."""
  runs = 11
  params = {"w": np.random.default_rng(1).normal(size=(runs, 5))}
  data = np.random.default_rng(2).normal(size=(runs, 5))
  keys = np.stack([np.asarray(jax.random.PRNGKey(i)) for i in range(runs)])
  steps, rates = np.array([7] * 10 + [3]), np.full(runs, 0.1)
  common = dict(optimizer="adam", padded_runs=16)
  monkeypatch.setattr(compilation, "CPU_RUNS_PER_CALL", None)
  whole, whole_losses = loss_training.train_with_loss(TABULAR, keyed_loss, params, data, steps, keys=keys,
                                                      learning_rates=rates, **common)
  monkeypatch.setattr(compilation, "CPU_RUNS_PER_CALL", 4)
  padded_calls = []
  call = loss_training._train_call

  def recording(*args, **kwargs):
    padded_calls.append((args[-1] if len(args) > 10 else kwargs["padded"], len(args[9])))
    return call(*args, **kwargs)

  monkeypatch.setattr(loss_training, "_train_call", recording)
  parts, part_losses = loss_training.train_with_loss(TABULAR, keyed_loss, params, data, steps, keys=keys,
                                                     learning_rates=rates, **common)
  np.testing.assert_allclose(np.asarray(parts["w"]), np.asarray(whole["w"]), rtol=1e-12, atol=1e-14)
  np.testing.assert_allclose(part_losses, whole_losses, rtol=1e-12)
  assert padded_calls == [(4, 4), (4, 4), (4, 3)]
  padded_calls.clear()
  with loss_training.compilation.count_compilations() as stats:
    loss_training.train_with_loss(TABULAR, keyed_loss, {"w": params["w"][:6]}, data[:6], steps[:6], keys=keys[:6],
                                  learning_rates=rates[:6], **common)
  assert padded_calls == [(4, 3), (4, 3)] and "jit(_segment)" not in stats.names
  padded_calls.clear()
  with loss_training.compilation.count_compilations() as stats:  # within the cap: padded to it, not to 16
    loss_training.train_with_loss(TABULAR, keyed_loss, {"w": params["w"][:2]}, data[:2], steps[:2], keys=keys[:2],
                                  learning_rates=rates[:2], **common)
  assert padded_calls == [(4, 2)] and "jit(_segment)" not in stats.names
  padded_calls.clear()
  with loss_training.compilation.using_preset("optimized"):
    loss_training.train_with_loss(TABULAR, keyed_loss, {"w": params["w"][:5]}, data[:5], steps[:5], keys=keys[:5],
                                  learning_rates=rates[:5], optimizer="adam", padded_runs=5)
  assert padded_calls == [(5, 5)]
