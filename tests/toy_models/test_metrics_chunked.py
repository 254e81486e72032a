"""Exact metrics in bounded memory: chunked evaluation equals one-shot evaluation, in float64, within its estimate."""

import functools

import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from theory import token_tree
from toy_models import compilation, likelihood, metrics
from toy_models.model_config import ModelConfig
from toy_models.models import build_model

DEPTH = 4
N_LEAVES = token_tree.n_leaves(DEPTH)
LN2 = np.log(2.0)
RTOL_CHUNKS = 1e-15  # each response is evaluated on its own: chunking may at most reassociate a last bit.
CONFIGS = {"tabular": ModelConfig(kind="tabular"), "ngram": ModelConfig(kind="ngram", context=2),
           "transformer": ModelConfig(kind="transformer", width=8, layers=1, heads=2)}


def random_params(config: ModelConfig, runs: int, seed: int = 0, dtype=np.float64, depth: int = DEPTH) -> dict:
  """Parameters of `runs` runs drawn with numpy in the model's structure (placed with device_put)."""
  rng = np.random.default_rng(seed)
  shapes = jax.eval_shape(build_model(config, depth).init, jax.random.PRNGKey(0))
  return jax.tree_util.tree_map(lambda s: jax.device_put((0.5 * rng.standard_normal((runs, *s.shape))).astype(dtype)),
                                shapes)


@functools.lru_cache
def one_shot(config: ModelConfig):
  """Every response through the model in one call per run, without metrics' chunking (bits)."""
  model = build_model(config, DEPTH)
  tokens = jnp.asarray(token_tree.leaf_tokens(DEPTH))
  fn = jax.jit(jax.vmap(lambda p: likelihood.leaf_log_probs(model, p, tokens)))
  return lambda params: np.asarray(fn(params)) / LN2


@pytest.mark.parametrize("kind", sorted(CONFIGS))
def test_chunked_evaluation_equals_one_shot_evaluation(kind):
  config = CONFIGS[kind]
  model, params = build_model(config, DEPTH), random_params(config, 3, seed=1)
  expected = one_shot(config)(params)
  chunkings = [(None, None), (1, 1), (2, 5)] if kind != "transformer" else [(None, None), (2, 5)]
  for runs_per_chunk, responses_per_chunk in chunkings:
    got = metrics.leaf_log2_probs(model, params, runs_per_chunk=runs_per_chunk,
                                  responses_per_chunk=responses_per_chunk)
    assert got.shape == (3, N_LEAVES) and got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=RTOL_CHUNKS, atol=0)
  assert abs(np.exp2(expected).sum(axis=1) - 1).max() < 1e-12  # a distribution over every response


def test_under_the_compile_dominated_presets_every_run_count_shares_one_program():
  """The tests' preset shares calls: 3, 6, 9 and 21 runs are evaluated in chunks of runs_per_call() (one program,
  built once), equal to the one-shot evaluation up to a last bit; under 'optimized' they take chunks of 4, 8, 16, 32."""
  config = CONFIGS["transformer"]
  model = build_model(config, DEPTH)
  cap = compilation.runs_per_call()
  assert compilation.preset() in compilation.SHARED_CALL_PRESETS and cap == 4 * len(jax.local_devices())
  params = {runs: random_params(config, runs, seed=runs) for runs in (3, 6, 9, 21)}
  metrics._batched_log_probs.cache_clear()
  with compilation.count_compilations() as stats:
    got = {runs: metrics.leaf_log2_probs(model, p) for runs, p in params.items()}
  assert stats.names.count("jit(one)") == 1
  for runs, p in params.items():
    np.testing.assert_allclose(got[runs], one_shot(config)(p), rtol=RTOL_CHUNKS, atol=0)
  assert [metrics.evaluation_chunks(model, runs)[0] for runs in params] == [4, 8, 16, metrics.MAX_RUNS_PER_CHUNK]
  with compilation.using_preset("optimized"):
    assert compilation.runs_per_call() is None  # leaf_log2_probs then keeps evaluation_chunks' default


def test_float32_parameters_are_evaluated_in_float64():
  config = CONFIGS["tabular"]
  model = build_model(config, DEPTH)
  params32 = random_params(config, 2, seed=2, dtype=np.float32)
  params64 = jax.tree_util.tree_map(lambda p: jax.device_put(np.asarray(p, np.float64)), params32)
  got = metrics.leaf_log2_probs(model, params32)
  assert got.dtype == np.float64
  np.testing.assert_array_equal(got, metrics.leaf_log2_probs(model, params64))
  in_float32 = one_shot(config)(params32)  # the same parameters evaluated in float32 (then divided in float64)
  assert np.abs(got - in_float32).max() > 0
  assert abs(np.exp2(got).sum(axis=1) - 1).max() < 1e-13 < abs(np.exp2(in_float32).sum(axis=1) - 1).max()


def test_metrics_refuse_to_run_without_float64():
  model = build_model(CONFIGS["tabular"], DEPTH)
  params = random_params(CONFIGS["tabular"], 1)
  with jax.enable_x64(False), pytest.raises(ValueError, match="jax_enable_x64 is off") as error:
    metrics.leaf_log2_probs(model, params)
  assert "\n" not in str(error.value)


# Memory.

MEMORY_CASES = [(ModelConfig(kind="tabular"), 6), (ModelConfig(kind="ngram", context=3), 6),
                (ModelConfig(kind="transformer", width=16, layers=1, heads=2), 6),
                (ModelConfig(kind="transformer", width=32, layers=2, heads=4, mlp_ratio=2), 7)]


@pytest.mark.parametrize("config, depth", MEMORY_CASES, ids=lambda c: getattr(c, "kind", c))
def test_memory_estimate_bounds_what_xla_allocates(config, depth):
  model = build_model(config, depth)
  runs, responses = 4, 64
  shapes = jax.eval_shape(jax.vmap(model.init), jax.ShapeDtypeStruct((runs, 2), jnp.uint32))
  tokens = jax.ShapeDtypeStruct((responses, depth), jnp.int32)
  compiled = metrics._batched_log_probs(model).lower(shapes, tokens).compile()
  analysis = compiled.memory_analysis()
  used = analysis.temp_size_in_bytes + analysis.output_size_in_bytes + analysis.argument_size_in_bytes
  estimate = metrics.evaluation_bytes(model, runs, responses)
  assert used <= estimate <= 6 * used


@hypothesis.given(depth=st.integers(1, 22), width_heads=st.sampled_from([(4, 1), (16, 2), (64, 4), (256, 8)]),
                  layers=st.integers(1, 4), runs=st.integers(1, 5000),
                  limit=st.sampled_from([2**20, 64 * 2**20, 512 * 2**20, 8 * 2**30]), kind=st.sampled_from(
                      ["tabular", "transformer"]))
def test_chunks_stay_within_the_memory_limit(depth, width_heads, layers, runs, limit, kind):
  hypothesis.assume(kind == "transformer" or depth <= 16)  # tabular parameters grow as 2**depth
  width, heads = width_heads
  model = build_model(ModelConfig(kind=kind, width=width, heads=heads, layers=layers), depth)
  try:
    run_chunk, response_chunk = metrics.evaluation_chunks(model, runs, memory_limit_bytes=limit)
  except ValueError as error:
    assert metrics.evaluation_bytes(model, 1, 1) > limit and "memory_limit_bytes" in str(error)
    return
  assert metrics.evaluation_bytes(model, run_chunk, response_chunk) <= limit
  for size in (run_chunk, response_chunk):
    assert size & (size - 1) == 0  # powers of two: nearby run counts share programs
  assert run_chunk <= min(metrics.MAX_RUNS_PER_CHUNK, 1 << (runs - 1).bit_length()) and response_chunk <= 2**depth


def test_an_evaluation_that_would_not_fit_is_refused_before_allocating():
  model = build_model(ModelConfig(kind="transformer", width=64, layers=2, heads=4), 20)
  shapes = jax.eval_shape(jax.vmap(model.init), jax.ShapeDtypeStruct((256, 2), jnp.uint32))  # nothing allocated
  with pytest.raises(ValueError, match=r"256 x 1048575 float64 = 2 GiB, above result_limit_bytes=1 GiB") as error:
    metrics.leaf_log2_probs(model, shapes)
  assert "\n" not in str(error.value)
  tabular = build_model(CONFIGS["tabular"], DEPTH)
  one = metrics.memory_size(metrics.evaluation_bytes(tabular, 1, 1))  # the need of one run and one response
  with pytest.raises(ValueError, match=rf"needs an estimated {one}, above memory_limit_bytes=1000 bytes") as error:
    metrics.leaf_log2_probs(tabular, random_params(CONFIGS["tabular"], 1), memory_limit_bytes=1000)
  assert "\n" not in str(error.value)
  with pytest.raises(ValueError, match="runs_per_chunk=0 is not allowed") as error:
    metrics.leaf_log2_probs(build_model(CONFIGS["tabular"], DEPTH), random_params(CONFIGS["tabular"], 1),
                            runs_per_chunk=0)
  assert "\n" not in str(error.value)


def test_kl_ignores_responses_neither_model_produces():
  """0 log 0 = 0 even where both models give probability 0 (log2 q = log2 r = -inf): no warning, no NaN."""
  log2q = np.array([[-1.0, -1.0, -np.inf]])
  reference = np.array([[-2.0, -0.415037499278844, -np.inf]])
  q, r = np.exp2(log2q[0, :2]), np.exp2(reference[0, :2])
  np.testing.assert_allclose(metrics.kl_nats(log2q, reference), [np.sum(q * np.log(q / r))], rtol=1e-12)


def test_power_of_two_at_least():
  assert [metrics.power_of_two_at_least(v) for v in (-3, 0, 1, 2, 3, 4, 5, 8, 9, 1023, 1025)] == [
      1, 1, 1, 2, 4, 4, 8, 8, 16, 1024, 2048]
