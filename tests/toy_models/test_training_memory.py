"""Training within a memory bound: the working-set estimate against XLA's own accounting, and a batch of runs trained
in several calls against the same batch in one."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from theory import token_tree
from toy_models import compilation, training
from toy_models.model_config import ModelConfig
from toy_models.models import build_model
from toy_models.stage_config import StageConfig

TABULAR, NGRAM = ModelConfig(kind="tabular"), ModelConfig(kind="ngram", context=3)
ONE_LAYER = ModelConfig(kind="transformer", width=16, layers=1, heads=2)
TWO_LAYERS = ModelConfig(kind="transformer", width=32, layers=2, heads=4, mlp_ratio=2)
FOUR_LAYERS = ModelConfig(kind="transformer", width=16, layers=4, heads=2)
SFT_MINIBATCH = StageConfig(steps=1, gradient="minibatch", batch_size=10)
DPO_MINIBATCH = StageConfig(steps=1, gradient="minibatch", batch_size=50, objective="dpo")
SFT_EXPECTED = StageConfig(steps=1, gradient="expected")
DPO_EXPECTED = StageConfig(steps=1, gradient="expected", objective="dpo")
CASES = [(TABULAR, 6, SFT_MINIBATCH, "float32"), (NGRAM, 6, DPO_MINIBATCH, "float64"),
         (NGRAM, 6, DPO_EXPECTED, "float64"), (ONE_LAYER, 6, DPO_MINIBATCH, "float32"),
         (TWO_LAYERS, 7, SFT_EXPECTED, "float64"), (FOUR_LAYERS, 6, SFT_MINIBATCH, "float64")]
"""Every model kind, stage kind and float type at least once, with the tightest margin of the whole cross product
(two layers, expected SFT gradient: 1.14; the cross product of 40 programs ranged 1.14-2.3 and took 90 s to
compile)."""


def _xla_bytes(model, stage: StageConfig, runs: int, dtype: str) -> int:
  """Arguments + outputs + temporaries of the compiled training segment, as XLA accounts them."""
  n = token_tree.n_leaves(model.depth)
  keys = np.stack([np.asarray(jax.random.PRNGKey(i)) for i in range(runs)])
  initial = training._host_tree(training.init_params(model, keys))
  params = jax.tree_util.tree_map(lambda x: np.asarray(x, dtype), initial)
  state = training.optimizer_state("adam", params)
  weights = np.ones((runs, n), dtype)
  data = weights if stage.objective == "sft" else (weights, weights, np.zeros((runs, n), dtype))
  segment = training._batched_segment(model, training._static_fields(stage), compilation.training_options())
  analysis = segment.lower(training._device_tokens(model.depth), params, state, data, np.full(runs, 0.01, dtype),
                           np.full(runs, 5, np.int32), keys, 0, 5).compile().memory_analysis()
  return analysis.temp_size_in_bytes + analysis.argument_size_in_bytes + analysis.output_size_in_bytes


@pytest.mark.parametrize("config, depth, stage, dtype", CASES,
                         ids=lambda v: getattr(v, "kind", None) or getattr(v, "objective", None) or str(v))
def test_training_estimate_bounds_what_xla_allocates(config, depth, stage, dtype):
  model = build_model(config, depth)
  used = _xla_bytes(model, stage, 4, dtype)
  estimate = training.training_bytes(model, stage, 4, np.dtype(dtype))
  assert used <= estimate <= 3 * used


def test_the_estimate_is_linear_in_runs_and_halves_in_float32():
  model = build_model(ModelConfig(kind="transformer", width=16, layers=2, heads=2), 6)
  stage = StageConfig(steps=1, gradient="minibatch", batch_size=8)
  tokens = training.training_bytes(model, stage, 0)
  assert tokens == 4 * token_tree.n_leaves(6) * 6  # int32 tokens, shared by every run
  one = training.training_bytes(model, stage, 1) - tokens
  assert training.training_bytes(model, stage, 7) - tokens == 7 * one
  assert 2 * (training.training_bytes(model, stage, 7, np.float32) - tokens) == 7 * one
  expected = 8 * (8 * training.training_floats_per_response(model) + training.PARAMETER_COPIES
                  * model.parameter_count() + token_tree.n_leaves(6))
  assert one == expected


def test_run_chunk_is_the_most_runs_within_the_limit_and_one_run_too_many_is_one_line():
  model = build_model(ModelConfig(kind="transformer", width=16, layers=2, heads=2), 6)
  stage = StageConfig(steps=1, gradient="minibatch", batch_size=8)
  for limit in (10**6, 3 * 10**6, 10**8):
    chunk = training.training_run_chunk(model, stage, np.float64, limit)
    assert training.training_bytes(model, stage, chunk) <= limit < training.training_bytes(model, stage, chunk + 1)
  one = training.training_bytes(model, stage, 1)
  with pytest.raises(ValueError) as error:
    training.training_run_chunk(model, stage, np.float64, one - 1)
  message = str(error.value)
  assert len(message.splitlines()) == 1 and "training memory limit" in message and "transformer(w16,L2)" in message
  assert training.training_run_chunk(model, stage, np.float64, None) == training.training_run_chunk(
      model, stage, np.float64, training.TRAINING_MEMORY_LIMIT_BYTES)  # the CPU's default bound


def test_the_default_bound_is_soft_a_run_above_it_trains_alone_and_only_the_machine_refuses(monkeypatch):
  model = build_model(ModelConfig(kind="transformer", width=16, layers=2, heads=2), 6)
  stage = StageConfig(steps=1, gradient="minibatch", batch_size=8)
  one = training.training_bytes(model, stage, 1)
  monkeypatch.setattr(training, "TRAINING_MEMORY_LIMIT_BYTES", one // 2)
  assert training.training_run_chunk(model, stage) == 1  # above the soft bound: one run per call
  monkeypatch.setattr(training.host_memory, "memory_ceiling", lambda: one - 1)
  with pytest.raises(ValueError, match=r"^training one run of .* above this machine's memory [^\n]*$"):
    training.training_run_chunk(model, stage)


def test_memory_groups_split_each_group_into_near_equal_calls_in_order():
  groups = [np.arange(0, 10), np.arange(10, 13)]
  assert training.memory_groups(groups, None) == groups
  split = training.memory_groups(groups, 4)
  assert [part.tolist() for part in split] == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9], [10, 11, 12]]
  assert [part.tolist() for part in training.memory_groups(groups, 13)] == [g.tolist() for g in groups]
  assert [part.tolist() for part in training.memory_groups([np.arange(0)], 4)] == [[]]  # no runs: one empty call


def test_runs_per_call_is_the_cpu_cap_per_device_under_the_compile_dominated_presets_only(monkeypatch):
  assert jax.default_backend() == "cpu"
  shared = {}
  for name in compilation.PRESETS:
    with compilation.using_preset(name):
      shared[name] = compilation.runs_per_call()
  cap = compilation.CPU_RUNS_PER_CALL * len(jax.local_devices())
  assert shared == {"optimized": None, "fast-compile": cap, "unoptimized": cap}  # the default scale trains whole
  assert set(compilation.SHARED_CALL_PRESETS) < set(compilation.PRESETS)
  monkeypatch.setattr(compilation, "CPU_RUNS_PER_CALL", None)
  with compilation.using_preset("unoptimized"):
    assert compilation.runs_per_call() is None
  monkeypatch.setattr(training.jax, "default_backend", lambda: "gpu")
  monkeypatch.setattr(compilation, "CPU_RUNS_PER_CALL", 4)
  with compilation.using_preset("unoptimized"):
    assert compilation.runs_per_call() is None  # accelerators: one call (idle lanes are free)
  assert [training.capped_runs(a, b) for a, b in [(None, None), (5, None), (None, 3), (5, 3), (2, 3)]] == [
      None, 5, 3, 3, 2]


def test_share_calls_splits_a_batch_into_nearly_equal_calls_of_at_most_the_cap_in_order():
  group = np.arange(3, 13)  # 10 runs

  def sizes(budget, cap):
    parts = training.share_calls(group, budget, cap)
    assert np.array_equal(np.concatenate(parts), group)  # every run once, in order
    return [part.size for part in parts]

  assert sizes(100, 4) == [4, 3, 3] and sizes(1, 3) == [3, 3, 2, 2] and sizes(7, 9) == [5, 5]
  assert sizes(100, None) == sizes(100, 10) == sizes(100, 11) == sizes(0, 4) == [10]  # no cap, within it, no steps


def test_a_batch_within_the_cap_is_padded_to_the_cap_and_shares_the_loop_of_the_split_calls(monkeypatch):
  """Calls of 4 runs (the tests' preset splits): 6 runs train as 3 + 3 padded to 4; then 2 runs of few steps, which
  run_bucket alone would pad to 8, are padded to 4 and reuse that loop; under 'optimized' they are padded to 8."""
  monkeypatch.setattr(compilation, "CPU_RUNS_PER_CALL", 4)
  model = build_model(ModelConfig(kind="transformer", width=4, layers=1, heads=1), 3)
  stage = StageConfig(steps=1, gradient="minibatch", batch_size=2, learning_rate=0.01)
  keys = np.stack([np.asarray(jax.random.PRNGKey(i)) for i in range(6)])
  weights = np.random.default_rng(0).uniform(0.1, 1.0, (6, token_tree.n_leaves(3)))
  params = training.init_params(model, keys)
  padded = []
  pad_rows = training._pad_rows
  monkeypatch.setattr(training, "_pad_rows", lambda x, size: padded.append(size) or pad_rows(x, size=size))
  assert training.run_bucket(2, 3) == 8 and compilation.runs_per_call() == 4 * len(jax.local_devices())
  with compilation.count_compilations() as split:
    training.train_batch(model, stage, params, weights, np.full(6, 3), keys=keys)
  two = jax.tree_util.tree_map(lambda x: x[:2], params)
  with compilation.count_compilations() as within:
    training.train_batch(model, stage, two, weights[:2], np.full(2, 3), keys=keys[:2])
  assert split.names.count("jit(_segment)") == 1 and "jit(_segment)" not in within.names
  assert set(padded) == {4 * len(jax.local_devices())}
  padded.clear()
  with compilation.using_preset("optimized"):
    training.train_batch(model, stage, two, weights[:2], np.full(2, 3), keys=keys[:2])
  assert set(padded) == {8}


@pytest.mark.parametrize("bound", ["memory", "runs per call"])
@pytest.mark.parametrize("objective", ["dpo"])  # DPO's data is a tuple of arrays: the harder split (SFT: 2.3 s more)
def test_runs_trained_in_several_calls_equal_the_runs_trained_in_one(objective, bound, monkeypatch):
  """11 runs under a bound that holds 4 (a memory limit, or the CPU's runs per call): three calls of 4, 4 and 3 runs
  (one program: the last call is padded to 4, not to run_bucket's 8), each run as in one call of all 11 (padded to
  16, with no cap on the runs per call)."""
  monkeypatch.setattr(compilation, "CPU_RUNS_PER_CALL", None)
  model = build_model(ModelConfig(kind="transformer", width=8, layers=1, heads=2), 5)
  stage = StageConfig(steps=1, gradient="minibatch", batch_size=4, learning_rate=0.01, objective=objective)
  runs, n = 11, token_tree.n_leaves(5)
  keys = np.stack([np.asarray(jax.random.PRNGKey(i)) for i in range(runs)])
  rng = np.random.default_rng(4)
  weights = rng.uniform(0.1, 2.0, (runs, n))
  extra = ({"rejected_weights": rng.uniform(0.1, 2.0, (runs, n)), "reference_log_probs": -rng.uniform(1, 5, (runs, n))}
           if objective == "dpo" else {})
  steps = np.array([9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 4])
  limit = training.training_bytes(model, stage, 4)
  params = training.init_params(model, keys)
  whole, whole_losses = training.train_batch(model, stage, params, weights, steps, keys=keys,
                                             memory_limit_bytes=10**12, **extra)
  seen = []
  if bound == "runs per call":
    monkeypatch.setattr(compilation, "CPU_RUNS_PER_CALL", 4)
  jax.clear_caches()  # the other bound's case may have built the program for 4 runs in this process
  with compilation.count_compilations() as stats:
    parts, part_losses = training.train_batch(model, stage, params, weights, steps, keys=keys,
                                              memory_limit_bytes=limit if bound == "memory" else 10**12,
                                              progress=lambda done, total, label: seen.append(total), **extra)
  for ours, reference in zip(jax.tree_util.tree_leaves(parts), jax.tree_util.tree_leaves(whole), strict=True):
    assert ours.shape == reference.shape  # equal up to the rounding of kernels chosen for another run count:
    np.testing.assert_allclose(ours, reference, rtol=1e-12, atol=1e-12)  # parameters ~1e-2, differences <= 3e-14
  np.testing.assert_allclose(part_losses, whole_losses, rtol=1e-12)
  assert seen[-1] == 9 + 9 + 9  # three calls, each of budget 9
  assert stats.names.count("jit(_segment)") == 1  # the three calls share one program (4 runs, the last padded)
