"""Tests of toy_models: sources, models, exact likelihoods, vmapped training, metrics, checkpoints, configs."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import config_io
from experiments.hooke.config import HookeConfig
from theory import compression, mixture, token_tree
from toy_models import checkpoints, datasets, likelihood, metrics, sources, training
from toy_models.model_config import ModelConfig
from toy_models.models import build_model
from toy_models.stage_config import StageConfig

DEPTH = 4
RTOL_VMAP = 1e-10  # vmapped batch vs one run at a time, float64: same arithmetic up to reassociation.
TABULAR = ModelConfig(kind="tabular")
NGRAM = ModelConfig(kind="ngram", context=2)
TRANSFORMER = ModelConfig(kind="transformer", width=8, layers=1, heads=2)


@functools.lru_cache
def initial(config: ModelConfig) -> dict:
  """Initial parameters of one run of `config` (cached: a transformer's init compiles for seconds)."""
  return jax.jit(build_model(config, DEPTH).init)(jax.random.PRNGKey(0))


def random_params(config: ModelConfig, runs: int, seed: int = 0) -> dict:
  """Parameters of `runs` runs drawn with numpy in the model's structure, without compiling its init."""
  rng = np.random.default_rng(seed)
  shapes = jax.eval_shape(build_model(config, DEPTH).init, jax.random.PRNGKey(0))
  return jax.tree_util.tree_map(lambda s: jnp.asarray(0.1 * rng.standard_normal((runs, *s.shape))), shapes)


def leaf_probs(config: ModelConfig, params: dict) -> np.ndarray:
  """exp(leaf_log_probs) of every leaf for one run's params (jitted)."""
  model = build_model(config, DEPTH)
  log_probs = jax.jit(functools.partial(likelihood.leaf_log_probs, model))(
      params, jnp.asarray(token_tree.leaf_tokens(DEPTH)))
  return np.exp(np.asarray(log_probs))


def source_weights(masses=(1000.0, 100.0, 1.0)) -> tuple[np.ndarray, np.ndarray]:
  """Source distributions (3, n_leaves) of D_p, D_a, D_t and their exact counts at `masses`."""
  probs = datasets.SourceConfig(depth=DEPTH).probabilities()
  return probs, np.asarray(masses)[:, None] * probs


def train(config, weights, steps, *, stage=None, seed=0):
  """Trains one run per row of `weights` from keys split off `seed`; returns (model, params)."""
  model = build_model(config, DEPTH)
  keys = jax.random.split(jax.random.PRNGKey(seed), len(weights))
  stage = stage or StageConfig(steps=1, learning_rate=0.1)
  params, _ = training.train_batch(model, stage, training.init_params(model, keys), weights, np.asarray(steps),
                                   keys=keys)
  return model, params


def assert_trees_close(a, b, rtol):
  for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=rtol)


def row(tree, index):
  return jax.tree_util.tree_map(lambda x: x[index:index + 1], tree)


# Sources.

@pytest.mark.parametrize("order", [0, 1, 3])
def test_markov_source_sums_to_one(order):
  assert sources.markov_leaf_distribution(6, order=order, seed=order).sum() == pytest.approx(1.0, abs=1e-12)


def test_markov_source_is_zero_outside_its_support_prefix():
  probs = sources.markov_leaf_distribution(5, order=2, support=(1, 0))
  inside = token_tree.prefix_mask(5, (1, 0))
  assert np.all(probs[~inside] == 0) and np.all(probs[inside] > 0)
  assert probs.sum() == pytest.approx(1.0, abs=1e-12)


def test_markov_order_0_gives_iid_tokens():
  depth, seed, concentration = 5, 7, 0.5
  token_probs = np.random.default_rng(seed).dirichlet(np.full(3, concentration), size=1)[0]
  probs = sources.markov_leaf_distribution(depth, order=0, concentration=concentration, seed=seed)
  for index in range(token_tree.n_leaves(depth)):
    bits = token_tree.leaf_bits(index, depth)
    eos = 1.0 if len(bits) == depth - 1 else token_probs[token_tree.EOS]  # EOS is forced at the last layer
    assert probs[index] == pytest.approx(np.prod(token_probs[list(bits)]) * eos, rel=1e-12)


@pytest.mark.parametrize("kwargs, shown", [({"order": -1}, "-1"), ({"order": 17}, "17"), ({"order": 2.5}, "2.5"),
                                           ({"concentration": 0.0}, "0.0"), ({"concentration": np.nan}, "nan")])
def test_markov_source_rejects_bad_parameters(kwargs, shown):
  with pytest.raises(ValueError, match=shown):
    sources.markov_leaf_distribution(4, **kwargs)


# Models.

@pytest.mark.parametrize("config", [TABULAR, NGRAM, TRANSFORMER], ids=lambda c: c.kind)
def test_leaf_probabilities_sum_to_one(config):
  assert abs(leaf_probs(config, initial(config)).sum() - 1) < 1e-12


@pytest.mark.parametrize("config", [TABULAR, NGRAM, TRANSFORMER], ids=lambda c: c.kind)
def test_parameter_count_matches_init(config):
  sizes = [leaf.size for leaf in jax.tree_util.tree_leaves(initial(config))]
  assert build_model(config, DEPTH).parameter_count() == sum(sizes)


def test_transformer_sizes_span_twenty_fold():
  small = ModelConfig(kind="transformer", width=8, layers=1, heads=2)
  large = ModelConfig(kind="transformer", width=64, layers=2, heads=2)
  assert build_model(large, DEPTH).parameter_count() >= 20 * build_model(small, DEPTH).parameter_count()
  for config in (small, large):
    params = jax.tree_util.tree_map(lambda x: x[0], random_params(config, 1))
    assert abs(leaf_probs(config, params).sum() - 1) < 1e-12


def test_ngram_with_full_context_reaches_the_tabular_optimum():
  _, counts = source_weights()
  weights = counts.sum(axis=0)[None]
  target = datasets.empirical(weights)[0]
  stage = StageConfig(steps=1000, learning_rate=0.1)
  for config in (TABULAR, ModelConfig(kind="ngram", context=DEPTH)):
    model, params = train(config, weights, [1000], stage=stage)
    np.testing.assert_allclose(np.exp2(metrics.leaf_log2_probs(model, params)[0]), target, rtol=1e-8, atol=1e-12)


def test_tabular_joint_training_matches_the_exact_mixture():
  sources_probs, _ = source_weights()
  counts = np.concatenate([datasets.sample_counts(p, [mass], seed=i)
                           for i, (p, mass) in enumerate(zip(sources_probs, (1000, 100, 3), strict=True))])
  model, params = train(TABULAR, counts.sum(axis=0)[None], [2000], stage=StageConfig(steps=2000, learning_rate=0.1))
  probs = datasets.empirical(counts)
  rates = metrics.rates_bits(metrics.leaf_log2_probs(model, params), probs[None])[0]
  np.testing.assert_allclose(rates, mixture.compression_rates(probs, counts.sum(axis=1)), rtol=0, atol=1e-6)


# Training: batching, budgets, seeds.

@pytest.mark.parametrize("gradient", ["expected", "minibatch"])
def test_vmapped_batch_equals_one_run_at_a_time(gradient):
  _, counts = source_weights()
  weights = np.stack([counts.sum(axis=0), counts[0] + counts[1], counts[1] + 10 * counts[2]])
  steps, rates = np.array([30, 50, 10]), np.array([0.05, 0.1, 0.02])
  stage = StageConfig(steps=1, gradient=gradient, batch_size=8)
  model = build_model(TABULAR, DEPTH)
  keys = jax.random.split(jax.random.PRNGKey(3), 3)
  start = training.init_params(model, keys)
  batched, losses = training.train_batch(model, stage, start, weights, steps, keys=keys, learning_rates=rates)
  for i in range(3):
    alone, loss = training.train_batch(model, stage, row(start, i), weights[i:i + 1], steps[i:i + 1],
                                       keys=keys[i:i + 1], learning_rates=rates[i:i + 1])
    assert_trees_close(row(batched, i), alone, RTOL_VMAP)
    np.testing.assert_allclose(losses[i], loss[0], rtol=RTOL_VMAP)


@pytest.mark.parametrize("gradient", ["expected", "minibatch"])
def test_short_runs_stop_at_their_own_budget(gradient):
  _, counts = source_weights()
  weights = np.stack([counts.sum(axis=0)] * 3)
  stage = StageConfig(steps=1, gradient=gradient, batch_size=8)
  model = build_model(TABULAR, DEPTH)
  keys = jax.random.split(jax.random.PRNGKey(4), 3)
  start = training.init_params(model, keys)
  batched, _ = training.train_batch(model, stage, start, weights, np.array([0, 7, 60]), keys=keys)
  assert np.array_equal(batched["logits"][0], start["logits"][0])
  exact, _ = training.train_batch(model, stage, row(start, 1), weights[1:2], np.array([7]), keys=keys[1:2])
  assert_trees_close(row(batched, 1), exact, RTOL_VMAP)
  assert not np.allclose(batched["logits"][1], batched["logits"][2])


def test_same_seed_is_bitwise_reproducible_and_another_seed_differs():
  _, counts = source_weights()
  weights = np.stack([counts.sum(axis=0)] * 2)
  stage = StageConfig(steps=1, gradient="minibatch", batch_size=8)
  first = train(TABULAR, weights, [20, 20], stage=stage, seed=5)[1]["logits"]
  again = train(TABULAR, weights, [20, 20], stage=stage, seed=5)[1]["logits"]
  other = train(TABULAR, weights, [20, 20], stage=stage, seed=6)[1]["logits"]
  assert np.array_equal(first, again)
  assert not np.allclose(first, other)


def test_carried_optimizer_state_continues_one_uninterrupted_run():
  """Two calls with Adam's state carried take the same steps as one call (constant schedule, expected gradient):
  same parameters and moments bit for bit, the step count added up; a fresh second state gives other parameters."""
  _, counts = source_weights()
  weights = np.stack([counts.sum(axis=0), counts[0] + counts[1], counts[1] + 10 * counts[2]])
  first, second = np.array([5, 12, 0]), np.array([7, 3, 9])
  stage = StageConfig(steps=1, learning_rate=0.05, schedule="constant", optimizer="adam")
  model = build_model(TABULAR, DEPTH)
  keys = jax.random.split(jax.random.PRNGKey(11), 3)
  start = training.init_params(model, keys)
  whole, whole_losses, whole_state = training.train_batch(model, stage, start, weights, first + second, keys=keys,
                                                          return_state=True)
  middle, _, middle_state = training.train_batch(model, stage, start, weights, first, keys=keys, return_state=True)
  carried, carried_losses, carried_state = training.train_batch(model, stage, middle, weights, second, keys=keys,
                                                                opt_state=middle_state, return_state=True)
  for a, b in zip(jax.tree_util.tree_leaves((whole, whole_state)), jax.tree_util.tree_leaves((carried, carried_state)),
                  strict=True):
    assert np.array_equal(np.asarray(a), np.asarray(b))
  assert np.array_equal(whole_losses, carried_losses)
  assert np.asarray(whole_state.count).tolist() == (first + second).tolist()
  reset, _ = training.train_batch(model, stage, middle, weights, second, keys=keys)
  assert not np.allclose(reset["logits"][0], whole["logits"][0])
  assert np.array_equal(reset["logits"][2], whole["logits"][2])  # 0 steps first: carrying a zero state changes nothing


def test_sgd_state_round_trips_and_a_wrong_state_is_a_one_line_error():
  _, counts = source_weights()
  weights = np.stack([counts.sum(axis=0)] * 2)
  model = build_model(TABULAR, DEPTH)
  keys = jax.random.split(jax.random.PRNGKey(12), 2)
  start = training.init_params(model, keys)
  sgd = StageConfig(steps=1, learning_rate=0.5, schedule="constant", optimizer="sgd")
  params, _, state = training.train_batch(model, sgd, start, weights, [4, 4], keys=keys, return_state=True)
  again, _ = training.train_batch(model, sgd, params, weights, [4, 4], keys=keys, opt_state=state)
  whole, _ = training.train_batch(model, sgd, start, weights, [8, 8], keys=keys)
  np.testing.assert_array_equal(again["logits"], whole["logits"])
  adam = dataclasses.replace(sgd, optimizer="adam")
  _, _, adam_state = training.train_batch(model, adam, start, weights, [1, 1], keys=keys, return_state=True)
  for bad, shown in ((state, "opt_state has structure"),
                     (jax.tree_util.tree_map(lambda x: x[:1], adam_state), r"opt_state has a leaf of shape \(1")):
    with pytest.raises(ValueError, match=shown) as error:
      training.train_batch(model, adam, start, weights, [1, 1], keys=keys, opt_state=bad)
    assert "\n" not in str(error.value)


# Training: float types.

RTOL_FLOAT32_LOSS = 1e-6  # float32 training against float64 after 40 Adam steps: about 10 float32 ulps of the loss.


def test_float32_training_tracks_float64_training_and_returns_float32():
  _, counts = source_weights()
  weights = np.stack([counts.sum(axis=0), counts[1] + 10 * counts[2]])
  model = build_model(TABULAR, DEPTH)
  keys = jax.random.split(jax.random.PRNGKey(8), 2)
  start = training.init_params(model, keys)  # float64 (the model's type)
  stage = StageConfig(steps=1, learning_rate=0.05)
  trained64, losses64 = training.train_batch(model, stage, start, weights, [40, 40], keys=keys)
  trained32, losses32 = training.train_batch(model, stage, start, weights, [40, 40], keys=keys, dtype="float32")
  assert {x.dtype for x in jax.tree_util.tree_leaves(trained32)} == {np.dtype(np.float32)}
  assert {x.dtype for x in jax.tree_util.tree_leaves(trained64)} == {np.dtype(np.float64)}
  assert losses32.dtype == np.float64 and not np.array_equal(losses32, losses64)  # really trained in float32
  np.testing.assert_allclose(losses32, losses64, rtol=RTOL_FLOAT32_LOSS)
  log2q = metrics.leaf_log2_probs(model, trained32)  # measured in float64
  assert log2q.dtype == np.float64 and abs(np.exp2(log2q).sum(axis=1) - 1).max() < 1e-13
  again, _ = training.train_batch(model, stage, trained32, weights, [0, 0], keys=keys, dtype="float64")
  assert {x.dtype for x in jax.tree_util.tree_leaves(again)} == {np.dtype(np.float64)}


def test_training_works_without_x64_in_float32_and_refuses_float64():
  _, counts = source_weights()
  weights = np.stack([counts.sum(axis=0), counts[0] + counts[1]])
  keys = np.stack([np.asarray(jax.random.PRNGKey(i)) for i in range(2)])
  stage = StageConfig(steps=1, gradient="minibatch", batch_size=8, learning_rate=0.05)
  model32 = build_model(ModelConfig(kind="tabular", dtype="float32"), DEPTH)
  with jax.enable_x64(False):
    trained, losses = training.train_batch(model32, stage, training.init_params(model32, keys), weights, [30, 30],
                                           keys=keys)
    for call in (lambda: training.init_params(build_model(TABULAR, DEPTH), keys),
                 lambda: training.train_batch(model32, stage, trained, weights, [1, 1], keys=keys, dtype="float64")):
      with pytest.raises(ValueError, match="needs float64 but jax_enable_x64 is off") as error:
        call()
      assert "\n" not in str(error.value)
  assert trained["logits"].dtype == np.float32 and np.all(np.isfinite(losses)) and np.all(losses < np.log(3))


# Bad inputs.

def _train_with_weights(shape):
  model = build_model(TABULAR, DEPTH)
  keys = jax.random.split(jax.random.PRNGKey(0), 2)
  training.train_batch(model, StageConfig(steps=1), training.init_params(model, keys), np.ones(shape), [1, 1],
                       keys=keys)


UNIFORM = np.full(token_tree.n_leaves(DEPTH), 1 / token_tree.n_leaves(DEPTH))


@pytest.mark.parametrize("make, shown", [
    (lambda: StageConfig(optimizer="foo"), "'foo'"),
    (lambda: StageConfig(steps=-3), "steps=-3"),
    (lambda: ModelConfig(kind="gpt"), "'gpt'"),
    (lambda: ModelConfig(kind="transformer", width=10, heads=3), "heads=3 does not divide width=10"),
    (lambda: datasets.SourceConfig(depth=40), "depth=40"),
    (lambda: datasets.sample_counts(UNIFORM, [10.0, -2.0], seed=0), "-2.0"),
    (lambda: datasets.sample_counts(UNIFORM, [np.nan], seed=0), "nan"),
    (lambda: _train_with_weights((2, 7)), r"\(2, 7\)"),
    (lambda: training.train_batch(build_model(TABULAR, DEPTH), StageConfig(steps=1), random_params(TABULAR, 1),
                                  np.ones((1, 15)), [1], keys=np.zeros((1, 2), np.uint32), dtype="float16"),
     "dtype 'float16' is not allowed"),
    (lambda: HookeConfig(k_grid=(-1.0,)), "-1.0"),
    (lambda: HookeConfig(l_grid=(0.0,)), "l_grid value 0.0"),
    (lambda: HookeConfig(models=("gpt",)), "'gpt'"),
], ids=["optimizer", "steps", "kind", "heads", "depth", "negative_mass", "nan_mass", "weights_shape", "dtype", "k_grid",
        "l_grid", "models"])
def test_bad_inputs_give_one_line_errors_naming_the_value(make, shown):
  with pytest.raises(ValueError, match=shown) as error:
    make()
  assert "\n" not in str(error.value)


# Checkpoints.

def test_checkpoint_round_trip(tmp_path):
  params = random_params(TRANSFORMER, 2)
  checkpoints.save_params(tmp_path / "params.npz", params)
  loaded = checkpoints.load_params(tmp_path / "params.npz", jax.tree_util.tree_map(jnp.zeros_like, params))
  assert jax.tree_util.tree_structure(loaded) == jax.tree_util.tree_structure(params)
  for a, b in zip(jax.tree_util.tree_leaves(loaded), jax.tree_util.tree_leaves(params), strict=True):
    assert a.dtype == b.dtype and np.array_equal(a, b)


def test_checkpoint_of_another_model_is_refused(tmp_path):
  path = tmp_path / "tabular.npz"
  checkpoints.save_params(path, random_params(TABULAR, 1))
  with pytest.raises(ValueError, match="saved for another model"):
    checkpoints.load_params(path, random_params(TRANSFORMER, 1))
  with pytest.raises(ValueError, match=r"shape \(1, 15, 3\), the model needs \(1, 9, 3\)"):
    checkpoints.load_params(path, random_params(NGRAM, 1))


# Metrics.

def random_log2q(getkey, runs=2):
  model = build_model(TABULAR, DEPTH)
  params = {"logits": jax.random.normal(getkey(), (runs, token_tree.n_leaves(DEPTH), 3))}
  return metrics.leaf_log2_probs(model, params)


def test_kl_of_a_model_to_itself_is_zero(getkey):
  log2q = random_log2q(getkey)
  assert np.all(metrics.kl_nats(log2q, log2q) == 0)
  assert np.all(metrics.kl_nats(log2q, log2q[::-1]) > 0)


def test_positive_score_of_the_aligned_subtree_is_one():
  probs = sources.source_distribution("pareto", DEPTH, support=(0,))
  with np.errstate(divide="ignore"):
    log2q = np.log2(probs)
  assert metrics.positive_score(log2q, DEPTH) == pytest.approx(1.0, abs=1e-12)
  assert metrics.positive_score(np.full(15, -np.log2(15)), DEPTH) == pytest.approx(7 / 15)


def test_huffman_coded_bits_lie_between_entropy_and_entropy_plus_one(getkey):
  log2q = random_log2q(getkey)
  other = np.stack([sources.source_distribution("zipf", DEPTH, seed=s) for s in range(2)])
  for probs in (np.exp2(log2q), other):
    coded = metrics.huffman_coded_bits(log2q, probs, samples=20_000, seed=0)
    expected = coded["expected_bits_per_response"]
    assert np.all(expected >= compression.entropy_bits(probs))
    np.testing.assert_allclose(coded["sampled_bits_per_response"], expected, rtol=0.05)
  # Huffman's bound E[L] < H + 1 holds for data drawn from the code's own distribution.
  own = metrics.huffman_coded_bits(log2q, np.exp2(log2q), samples=1, seed=0)["expected_bits_per_response"]
  cross_entropy = metrics.rates_bits(log2q, np.exp2(log2q)[:, None])[:, 0]
  assert np.all(own < cross_entropy + 1)


# Config files.

def test_toml_config_rejects_an_unknown_key(tmp_path):
  path = tmp_path / "hooke.toml"
  path.write_text("seeds = 2\n[tabular_plan.joint]\nstepz = 5\n")
  with pytest.raises(ValueError, match="unknown setting tabular_plan.joint.stepz"):
    config_io.build(HookeConfig, config_io.read_toml(path))
  path.write_text("seedz = 2\n")
  with pytest.raises(ValueError, match="unknown setting seedz"):
    config_io.build(HookeConfig, config_io.read_toml(path))


def test_nested_table_keeps_the_other_defaults(tmp_path):
  path = tmp_path / "hooke.toml"
  path.write_text("depth = 5\n[transformer_plan.joint]\nsteps = 5\n")
  config = config_io.with_overrides(HookeConfig(), config_io.merge(config_io.read_toml(path), {"seeds": 2}))
  assert (config.depth, config.seeds, config.transformer_plan.joint.steps) == (5, 2, 5)
  assert config.transformer_plan.joint.gradient == "minibatch"
  assert config.transformer_plan.joint.learning_rate == HookeConfig().transformer_plan.joint.learning_rate
  assert config.transformer_plan.align == HookeConfig().transformer_plan.align
