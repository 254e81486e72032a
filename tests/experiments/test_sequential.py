"""The sequential study at its tiny scale: every summary number recomputed from the saved units, closed forms of the
joint optimum and of the tabular model's instantaneous elasticity, replay at rho = 0, the carried Adam state, and
one-line errors for bad configs."""

import dataclasses
import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import registry
from experiments.protocol import ReportContext
from experiments.sequential import report as sequential_report
from experiments.sequential import run as sequential_run
from experiments.sequential import summary as sequential_summary
from experiments.sequential.config import CONDITIONS, KSCALING_CONDITIONS, ModelPlan, SequentialConfig
from theory import elasticity, seeding, tabular_elasticity, token_tree
from theory.conventions import ALIGN, LN2, PERTURB, PRETRAIN, UNALIGNED_PREFIX
from toy_models import likelihood, metrics, training
from toy_models.models import build_model

RTOL_RECOMPUTED = 1e-10  # summary numbers recomputed from the saved arrays by another route (float64 round-off).
IMPLICIT_TOLERANCE = 1e-6  # tabular joint optimum: |-ratio/k - 1| and |slope - 1| (the brief's acceptance).
RTOL_CLOSED_FORM = 1e-8  # E from JAX at the saved state vs the closed form from the saved log2 q (round trip).
RTOL_BATCHED = 1e-10  # the same run trained in two differently composed batches (reassociation only).


@pytest.fixture(scope="module")
def tiny(tiny_runs):
  """(config, summary, read-only RunDir) of the sequential study at its tiny scale (the registry's shared run)."""
  _, config, summary, reader = tiny_runs["sequential"]
  return config, summary, reader


def load(reader, config, model, arm):
  """(k grid, list of arrays per k) of one model and arm."""
  loaded = [reader.load(f"{model}_{arm}_k{k:g}") for k in config.k_grid]
  return np.asarray(config.k_grid), [arrays for _, arrays in loaded], [summary for summary, _ in loaded]


def rates_from_log2q(log2q, probs):
  """gamma_i = -sum_x P_i(x) log2 q(x), bits per response, by explicit summation (log2q (..., seeds, n))."""
  return -np.einsum("...sn,sdn->...sd", log2q, probs)


def polyfit_slopes(k, ratio):
  """Per-seed least-squares slope of log|ratio| on log k by numpy.polyfit (ratio (k, seeds))."""
  return np.array([np.polyfit(np.log(k), np.log(np.abs(ratio[:, s])), 1)[0] for s in range(ratio.shape[1])])


# Summary numbers against the saved units.

def test_sequential_slopes_and_ratios_recomputed_from_saved_log_probabilities(tiny):
  config, summary, reader = tiny
  for model in config.model_names():
    k, arrays, units = load(reader, config, model, "sequential")
    names = units[0]["conditions"]
    for i, a in enumerate(arrays):
      np.testing.assert_allclose(a["rates_aligned_bits"], rates_from_log2q(a["log2q_aligned"], a["probs"]),
                                 rtol=RTOL_RECOMPUTED)
      np.testing.assert_allclose(a["rates_tuned_bits"], rates_from_log2q(a["log2q_tuned"], a["probs"]),
                                 rtol=RTOL_RECOMPUTED)
      assert np.allclose(a["sizes"], [k[i] * config.align_mass, config.align_mass, config.l * config.align_mass])
    for c, name in enumerate(names):
      tuned = np.stack([rates_from_log2q(a["log2q_tuned"], a["probs"])[c] for a in arrays])
      aligned = np.stack([rates_from_log2q(a["log2q_aligned"], a["probs"])[c] for a in arrays])
      delta = tuned - aligned
      ratio = delta[..., ALIGN] / delta[..., PRETRAIN]
      entry = summary["sequential"][model][name]
      np.testing.assert_allclose(entry["slopes"], polyfit_slopes(k, ratio), rtol=1e-8, atol=1e-12)
      np.testing.assert_allclose(entry["slope"]["mean"], np.mean(polyfit_slopes(k, ratio)), rtol=1e-8, atol=1e-12)
      for i, row in enumerate(entry["per_k"]):
        np.testing.assert_allclose(row["ratio"]["mean"], ratio[i].mean(), rtol=RTOL_RECOMPUTED)
        assert row["share_paper_signs"] == np.mean((delta[i, :, PRETRAIN] < 0) & (delta[i, :, ALIGN] > 0))
        steps = arrays[i]["steps"][c]
        assert row["k_in_steps"] == pytest.approx(np.mean(steps[0] / steps[1]))
      predicted = np.stack([a["instantaneous_bits"][c] for a in arrays])
      np.testing.assert_allclose(entry["instantaneous_slopes"],
                                 polyfit_slopes(k, predicted[..., ALIGN] / predicted[..., PRETRAIN]), rtol=1e-8,
                                 atol=1e-12)


def test_verdicts_carry_the_summary_slopes_and_form_the_pre_registered_family(tiny):
  config, summary, _ = tiny
  by_key = {v["key"]: v for v in summary["verdicts"]}
  models = config.model_names()
  expected = {f"sequential/joint/{m}" for m in models} | {f"sequential/replay/{m}" for m in models} | {
      f"sequential/kscaling/{m}/{c}" for m in models for c in KSCALING_CONDITIONS}
  assert set(by_key) == expected and not summary["uncomputable_verdicts"]
  for model in models:
    joint = by_key[f"sequential/joint/{model}"]
    assert joint["consistency_check"] is True
    np.testing.assert_allclose(joint["per_seed"], summary["joint"][model]["slopes"])
    for name in KSCALING_CONDITIONS:
      verdict = by_key[f"sequential/kscaling/{model}/{name}"]
      assert verdict["consistency_check"] is False and verdict["smallest_effect_of_interest"] == 0.5
      np.testing.assert_allclose(verdict["per_seed"], summary["sequential"][model][name]["slopes"])
      assert verdict["effect"]["estimate"] == pytest.approx(np.mean(verdict["per_seed"]))
    replay = summary["replay"][model]["adam_mean_reset_converged"]
    gain = np.asarray(replay[-1]["slopes"]) - np.asarray(replay[0]["slopes"])
    np.testing.assert_allclose(by_key[f"sequential/replay/{model}"]["per_seed"], gain)
  default = registry.get("sequential").config("default")
  confirmatory = len(default.model_names()) * (len(KSCALING_CONDITIONS) + 1)
  assert confirmatory <= 12  # the brief's bound on the confirmatory family


def test_replay_slopes_recomputed_from_paired_runs(tiny):
  config, summary, reader = tiny
  for model in config.model_names():
    k, arrays, units = load(reader, config, model, "sequential")
    for r, name in enumerate(units[0]["replay_conditions"]):
      for f, rho in enumerate(config.replay_fractions):
        with_t = np.stack([rates_from_log2q(a["log2q_replay"][r, f, 0], a["probs"]) for a in arrays])
        without = np.stack([rates_from_log2q(a["log2q_replay"][r, f, 1], a["probs"]) for a in arrays])
        delta = with_t - without
        row = summary["replay"][model][name][f]
        assert row["rho"] == rho
        np.testing.assert_allclose(row["slopes"], polyfit_slopes(k, delta[..., ALIGN] / delta[..., PRETRAIN]),
                                   rtol=1e-8, atol=1e-12)


def test_theory_correlation_and_variance_shares_recomputed(tiny):
  config, summary, reader = tiny
  for model in config.model_names():
    k, arrays, _ = load(reader, config, model, "sequential")
    measured, predicted, log_k, state = [], [], [], []
    mask = token_tree.prefix_mask(config.depth, UNALIGNED_PREFIX)
    for i, a in enumerate(arrays):
      delta = a["rates_tuned_bits"] - a["rates_aligned_bits"]
      measured.append(delta[..., ALIGN] / delta[..., PRETRAIN])
      predicted.append(a["instantaneous_bits"][..., ALIGN] / a["instantaneous_bits"][..., PRETRAIN])
      log_k.append(np.full(measured[-1].shape, math.log(k[i])))
      state.append(np.log(np.exp2(a["log2q_aligned"])[..., mask].sum(axis=-1)))
    y, x = np.log(np.abs(np.stack(measured))).ravel(), np.log(np.abs(np.stack(predicted))).ravel()
    log_k, state = np.stack(log_k).ravel(), np.stack(state).ravel()
    entry = summary["theory"][model]
    assert entry["runs"] == y.size and entry["dropped"] == 0
    np.testing.assert_allclose(entry["correlation"], np.corrcoef(x, y)[0, 1], rtol=1e-9)
    low, high = entry["correlation_ci95"]
    assert low < entry["correlation"] < high
    # The interval resamples whole seeds (every run of a drawn seed together), with the registered seed stream.
    seed_of = np.broadcast_to(np.arange(config.seeds), np.stack(measured).shape).ravel()
    rng = np.random.default_rng(seeding.derive(config.seed, "sequential", "bootstrap", model))
    draws = []
    for _ in range(config.bootstrap_resamples):
      rows = np.concatenate([np.flatnonzero(seed_of == s) for s in rng.choice(config.seeds, config.seeds)])
      draws.append(np.corrcoef(x[rows], y[rows])[0, 1])
    np.testing.assert_allclose([low, high], np.percentile(draws, [2.5, 97.5]), rtol=1e-9)
    for key, column in (("r2_log_k", log_k), ("r2_state", state), ("r2_prediction", x)):
      np.testing.assert_allclose(entry[key], np.corrcoef(column, y)[0, 1] ** 2, rtol=1e-9)  # one regressor: r^2
    assert entry["r2_log_k_and_state"] >= max(entry["r2_log_k"], entry["r2_state"]) - 1e-12
    error = np.abs(np.stack(measured) / np.stack(predicted))  # (K, C, seeds): |measured / predicted|
    for c, row in enumerate(entry["by_condition"].values()):
      np.testing.assert_allclose(row["median_abs_log10_error"], np.median(np.abs(np.log10(error[:, c]))), rtol=1e-9)
      assert row["same_sign_share"] == np.mean(np.stack(measured)[:, c] * np.stack(predicted)[:, c] > 0)


def test_report_section_answers_the_question_with_the_summary_numbers(tiny, tmp_path):
  config, summary, reader = tiny
  experiment = registry.get("sequential")
  files = experiment.figures(config, summary, reader, tmp_path)
  context = ReportContext(experiment="sequential", figures_dir=tmp_path, run_reader=reader, scale="tiny",
                          files=tuple(files))
  section = experiment.report(config, summary, context)
  assert f"### {sequential_report.SUBSECTION}" in section
  assert "\n".join(sequential_report.regime_table(summary)) in section
  for rows in summary["replay"].values():
    slope = rows["adam_mean_reset_converged"][-1]["slope"]
    assert f"{slope['mean']:.2f} ± {slope['ci95']:.2f}" in section
  for entry in summary["theory"].values():
    assert f"r = {entry['correlation']:.3f}" in section
  assert all(f"]({path.name})" in section for path in files)


def test_r_squared_and_slopes_on_known_data():
  x = np.linspace(0.0, 1.0, 11)
  assert sequential_summary.r_squared(3 * x + 1, x) == pytest.approx(1.0)
  assert sequential_summary.r_squared(np.cos(7 * x), np.ones_like(x)) == pytest.approx(0.0, abs=1e-12)
  k = np.array([10.0, 100.0, 1000.0])
  ratio = np.stack([-3.0 * k, 2.0 * k**0.5, np.array([1.0, 0.0, 2.0])], axis=1)
  slopes = sequential_summary.slopes(k, ratio)
  np.testing.assert_allclose(slopes[:2], [1.0, 0.5], atol=1e-12)
  assert np.isnan(slopes[2])  # a zero ratio has no log: the seed's slope is undefined, not -inf


# The joint arm: closed forms at the optimum.

def test_tabular_joint_optimum_gives_minus_k_at_every_k_and_the_exact_mixture_derivatives(tiny):
  config, summary, reader = tiny
  k, arrays, _ = load(reader, config, "tabular", "joint")
  for kv, a in zip(k, arrays, strict=True):
    ratio = a["ratio"][:, -1]
    assert np.all(np.abs(-ratio / kv - 1) <= IMPLICIT_TOLERANCE)
    assert np.all(a["newton_converged"])
    # At the optimum the tabular model is the size-weighted mixture: its implicit derivative is claim 3's closed form.
    assert np.all(a["sizes"][:, PERTURB] == 0)  # the joint arm differentiates at l = 0
    exact = elasticity.rate_derivatives(a["probs"], a["sizes"])
    np.testing.assert_allclose(a["rate_derivatives_bits"][:, -1], exact, rtol=1e-6, atol=1e-9)
    # The weighted identity's residual is grad J . dtheta/dl / ln 2 computed two ways (a consistency of the code).
    np.testing.assert_allclose(a["weighted_residual_bits"], a["stationarity_term_bits"],
                               atol=1e-9 * np.max(a["weighted_scale_bits"]))
  assert abs(summary["joint"]["tabular"]["slope"]["mean"] - 1) <= IMPLICIT_TOLERANCE
  gradient = np.stack([a["objective_gradient_norm_nats"][:, -1] / a["sizes"].sum(axis=-1) for a in arrays])
  assert summary["joint"]["tabular"]["stationary_seeds"] == np.all(gradient <= 1e-6, axis=0).sum() == config.seeds
  np.testing.assert_allclose(summary["joint"]["tabular"]["slopes"],
                             polyfit_slopes(k, np.stack([a["ratio"][:, -1] for a in arrays])), rtol=1e-8)


def test_joint_stops_continue_one_uninterrupted_adam_run(tiny):
  """The joint arm carries Adam's state between its stops: the last stop equals one run of that many steps."""
  config, _, reader = tiny
  k, arrays, _ = load(reader, config, "tabular", "joint")
  plan = config.plan("tabular")
  data = sequential_run.unit_data(config, float(k[0]))
  model = build_model(config.model_config("tabular"), config.depth)
  keys = sequential_run.keys(config, "init")
  params, _ = training.train_batch(model, plan.stage("adam", "expected", 1), training.init_params(model, keys),
                                   data["counts"][:, PRETRAIN] + data["counts"][:, ALIGN],
                                   np.full(config.seeds, plan.joint_stops[-1]), keys=keys,
                                   learning_rates=np.full(config.seeds, plan.joint_learning_rate))
  np.testing.assert_allclose(metrics.leaf_log2_probs(model, params), arrays[0]["log2q"][:, -2], rtol=RTOL_BATCHED,
                             atol=1e-12)


# The sequential arm: closed forms of the instantaneous elasticity, budgets, replay, carried state.

def test_tabular_instantaneous_elasticity_matches_the_closed_form_at_the_saved_post_alignment_state(tiny):
  config, _, reader = tiny
  k, arrays, units = load(reader, config, "tabular", "sequential")
  names = units[0]["conditions"]
  lengths = token_tree.response_lengths(config.depth)
  for a in arrays:
    conditionals = tabular_elasticity.next_token_distributions(np.exp2(a["log2q_aligned"]), config.depth)
    for c, name in enumerate(names):
      condition = CONDITIONS[name]
      saved = a["instantaneous_bits"][c]
      if condition.optimizer == "sgd":
        size = a["sizes"][:, PERTURB] if condition.loss == "sum" else None
        closed = tabular_elasticity.sgd_elasticities_bits(conditionals[c], a["probs"], config.depth,
                                                          reduction=condition.loss, perturb_size=size)
      elif condition.state == "reset":
        # Adam's first step from a fresh state is g / (|g| + eps), g = grad L_t = grad CE_t / E_{P_t}|x|.
        gradients = tabular_elasticity.cross_entropy_gradients_nats(conditionals[c], a["probs"], config.depth)
        g = gradients[:, PERTURB] / (a["probs"][:, PERTURB] @ lengths)[:, None, None]
        update = g / (np.abs(g) + 1e-8)
        closed = -(gradients * update[:, None]).sum(axis=(-2, -1)) / LN2
      else:
        continue  # carried Adam: the state is not a closed form (tested against training below)
      np.testing.assert_allclose(saved, closed, rtol=RTOL_CLOSED_FORM, atol=1e-12)


def test_budgets_follow_the_pre_registered_rules(tiny):
  config, _, reader = tiny
  for model in config.model_names():
    plan = config.plan(model)
    k, arrays, units = load(reader, config, model, "sequential")
    for kv, a in zip(k, arrays, strict=True):
      n_p, n_a, n_t = kv * config.align_mass, config.align_mass, config.l * config.align_mass
      tokens = (a["probs"] * a["sizes"][..., None]) @ token_tree.response_lengths(config.depth)
      for c, name in enumerate(units[0]["conditions"]):
        condition = CONDITIONS[name]
        steps, rates = a["steps"][c], a["learning_rates"][c]  # (stages, seeds)
        seeds = config.seeds
        if condition.loss == "mean":
          align_epochs = plan.align_epochs_converged if condition.alignment == "converged" else plan.align_epochs_short
          assert steps[0].tolist() == [math.ceil(plan.pretrain_epochs * n_p / plan.pretrain_batch_size)] * seeds
          assert steps[1].tolist() == [math.ceil(align_epochs * n_a / plan.align_batch_size)] * seeds
          assert steps[2].tolist() == [max(math.ceil(plan.finetune_epochs * n_t / plan.finetune_batch_size), 1)] * seeds
        else:
          eta = plan.sum_pretrain_rate / tokens[:, PRETRAIN]
          np.testing.assert_allclose(rates, eta[None] * tokens.T, rtol=1e-12)  # eta T_s: one eta for every stage
          align = plan.sum_align_steps_converged if condition.alignment == "converged" else plan.sum_align_steps_short
          assert steps.tolist() == [[plan.sum_pretrain_steps] * seeds, [align] * seeds,
                                    [plan.sum_finetune_steps] * seeds]
      for r in range(len(units[0]["replay_conditions"])):
        for f, rho in enumerate(config.replay_fractions):
          wanted = math.ceil(plan.finetune_epochs * (n_t + rho * (n_p + n_a)) / plan.finetune_batch_size - 1e-9)
          assert a["replay_steps"][r, f].tolist() == [min(max(wanted, 1), plan.replay_max_steps)] * config.seeds
          assert a["replay_capped"][r, f].tolist() == [wanted > plan.replay_max_steps] * config.seeds


def test_replay_at_rho_zero_is_the_plain_sequential_run(tiny):
  config, _, reader = tiny
  for model in config.model_names():
    _, arrays, units = load(reader, config, model, "sequential")
    names = units[0]["conditions"]
    zero = list(config.replay_fractions).index(0.0)
    for a in arrays:
      for r, name in enumerate(units[0]["replay_conditions"]):
        c = names.index(name)
        np.testing.assert_allclose(a["log2q_replay"][r, zero, 0], a["log2q_tuned"][c], rtol=RTOL_BATCHED, atol=1e-12)
        # No data, no step: the same parameters (evaluated in another batch of runs: an ulp of reassociation).
        np.testing.assert_allclose(a["log2q_replay"][r, zero, 1], a["log2q_aligned"][c], rtol=1e-14, atol=0)
        assert a["replay_steps"][r, zero].tolist() == a["steps"][c, 2].tolist()


def test_replay_runs_retrain_from_the_saved_post_alignment_state(tiny):
  """The tabular model's q fixes its logits up to a shift per node, which SGD's updates do not see: rebuilt from the
  saved post-alignment log2 q, the replay runs with and without D_t (largest rho, SGD) retrain to the saved ones."""
  config, _, reader = tiny
  k, arrays, units = load(reader, config, "tabular", "sequential")
  name, rho = "sgd_mean_converged", max(config.replay_fractions)
  c, r = units[0]["conditions"].index(name), units[0]["replay_conditions"].index(name)
  f = list(config.replay_fractions).index(rho)
  plan = config.plan("tabular")
  model = build_model(config.model_config("tabular"), config.depth)
  for kv, a in zip(k, arrays, strict=True):
    conditionals = tabular_elasticity.next_token_distributions(np.exp2(a["log2q_aligned"][c]), config.depth)
    params = {"logits": np.log(np.where(conditionals > 0, conditionals, 1.0))}  # the forced layer is masked anyway
    counts = sequential_run.unit_data(config, float(kv))["counts"]
    replayed = rho * (counts[:, PRETRAIN] + counts[:, ALIGN])
    for index, weights in ((0, counts[:, PERTURB] + replayed), (1, replayed)):
      trained, _ = training.train_batch(model, plan.stage("sgd", plan.finetune_gradient, plan.finetune_batch_size),
                                        params, weights, a["replay_steps"][r, f],
                                        keys=sequential_run.keys(config, "finetune"),
                                        learning_rates=np.full(config.seeds, plan.sgd_learning_rate))
      np.testing.assert_allclose(metrics.leaf_log2_probs(model, trained), a["log2q_replay"][r, f, index], rtol=1e-9)


def test_carried_adam_state_counts_every_earlier_step_and_changes_the_outcome(tiny):
  config, _, reader = tiny
  _, arrays, units = load(reader, config, "tabular", "sequential")
  names = units[0]["conditions"]
  carried, reset = names.index("adam_mean_carried_converged"), names.index("adam_mean_reset_converged")
  for a in arrays:
    np.testing.assert_array_equal(a["adam_count_before_finetune"][carried], a["steps"][carried, 0] +
                                  a["steps"][carried, 1])
    assert np.all(a["adam_count_before_finetune"][reset] == 0)
    np.testing.assert_array_equal(a["log2q_pretrained"][carried], a["log2q_pretrained"][reset])  # shared pre-training
    assert not np.allclose(a["log2q_aligned"][carried], a["log2q_aligned"][reset])


def test_summed_loss_is_the_mean_loss_at_the_rate_times_the_stage_tokens():
  """One SGD step of train_batch at eta * T_s on the token-mean loss = one step of eta on sum_x w(x) (-ln q(x))."""
  config = registry.get("sequential").config("tiny")
  data = sequential_run.unit_data(config, 10.0)
  model = build_model(config.model_config("tabular"), config.depth)
  keys = sequential_run.keys(config, "init")
  start = training.init_params(model, keys)
  plan = config.plan("tabular")
  _, rates = sequential_run._stage_budget(plan, CONDITIONS["sgd_sum_converged"], "align", data)
  stepped, _ = training.train_batch(model, plan.stage("sgd", "expected", 1), start, data["counts"][:, ALIGN],
                                    np.ones(config.seeds, int), keys=keys, learning_rates=rates)
  tokens = jnp.asarray(token_tree.leaf_tokens(config.depth))
  eta = plan.sum_pretrain_rate / data["tokens"][:, PRETRAIN]
  for s in range(config.seeds):
    params = jax.tree_util.tree_map(lambda x, s=s: x[s], start)
    summed = jax.grad(lambda p, s=s: -(data["counts"][s, ALIGN] * likelihood.leaf_log_probs(model, p, tokens)).sum())
    expected = params["logits"] - eta[s] * summed(params)["logits"]
    np.testing.assert_allclose(stepped["logits"][s], expected, rtol=1e-12, atol=1e-14)


# Configs.

@pytest.mark.parametrize("changes, message", [
    ({"k_grid": (10.0,)}, "k_grid=[10.0] has one value"),
    ({"k_grid": (0.5, 10.0)}, "k_grid value 0.5"),
    ({"l": 0.0}, "l=0.0 is not allowed"),
    ({"conditions": ("adam_mean_reset_converged", "nope")}, "conditions=['adam_mean_reset_converged', 'nope']"),
    ({"conditions": ("sgd_mean_converged",)}, "replay_conditions=['adam_mean_reset_converged', 'sgd_mean_converged']"),
    ({"replay_fractions": (0.1, 1.0)}, "lacks 0"),
    ({"replay_fractions": (0.0, -0.1)}, "replay_fractions value -0.1"),
    ({"seeds": 1}, "seeds=1"),
    ({"models": ("gpt",)}, "models=['gpt']"),
    ({"transformer_widths": (8, 8)}, "transformer_widths=[8, 8]"),
    ({"transformer_widths": (9,)}, "heads=2 does not divide width=9"),
])
def test_bad_configs_give_one_line_errors(changes, message):
  with pytest.raises(ValueError, match=re.escape(message)) as error:
    SequentialConfig(**changes)
  assert "\n" not in str(error.value)


@pytest.mark.parametrize("field, value, message", [
    ("sgd_learning_rate", -1.0, "sgd_learning_rate=-1.0"), ("replay_max_steps", 0, "replay_max_steps=0"),
    ("gradient", "full", "gradient='full'"), ("align_epochs_short", math.nan, "align_epochs_short=nan"),
    ("joint_stops", (30, 10), "joint_stops=[30, 10]"),
])
def test_bad_plans_give_one_line_errors(field, value, message):
  with pytest.raises(ValueError, match=re.escape(message)) as error:
    dataclasses.replace(ModelPlan(), **{field: value})
  assert "\n" not in str(error.value)
