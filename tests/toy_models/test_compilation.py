"""Tests of compiling once: the compile counter, the persistent cache, run buckets and programs shared between calls."""

import json
import os
import pathlib
import subprocess
import sys

import hypothesis
import hypothesis.strategies as st
import jax
import numpy as np
import optax
import pytest

from theory import token_tree
from toy_models import compilation, metrics, training
from toy_models.model_config import ModelConfig
from toy_models.models import build_model
from toy_models.stage_config import StageConfig

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEPTH = 4
MODEL = build_model(ModelConfig(kind="tabular"), DEPTH)
N_LEAVES = token_tree.n_leaves(DEPTH)


def batch(runs: int, seed: int = 0):
  """Initial parameters, leaf weights and keys of `runs` runs (numpy draws: nothing compiled)."""
  rng = np.random.default_rng(seed)
  params = {"logits": jax.device_put(0.3 * rng.standard_normal((runs, N_LEAVES, 3)))}
  keys = np.stack([np.asarray(jax.random.PRNGKey(seed + i)) for i in range(runs)])
  return params, rng.uniform(0.1, 3.0, (runs, N_LEAVES)), keys


# The counter.

def test_counter_sees_each_new_program_once():
  offset = float(np.random.default_rng().integers(1 << 30))  # a constant no earlier test compiled

  @jax.jit
  def shifted(x):
    return x * 2.0 + offset

  three, four, five = (jax.device_put(np.ones(n)) for n in (3, 4, 5))  # device_put compiles nothing
  with compilation.count_compilations() as outer:
    with compilation.count_compilations() as first:
      shifted(three)
    with compilation.count_compilations() as again:
      shifted(three)
      shifted(np.zeros(3))
    with compilation.count_compilations() as other_shape:
      shifted(four)
  assert (first.programs, again.programs, other_shape.programs, outer.programs) == (1, 0, 1, 2)
  assert first.names == ["jit(shifted)"] and first.compile_seconds > 0 and first.cache_hits == 0
  assert [build.loaded for build in outer.log] == [False, False]  # no persistent cache here: both compiled
  assert sum(build.seconds for build in outer.log) == pytest.approx(outer.compile_seconds)
  assert outer.by_program() == [{"name": "jit(shifted)", "programs": 2, "loaded": 0,
                                 "seconds": pytest.approx(outer.compile_seconds),
                                 "max_seconds": max(first.compile_seconds, other_shape.compile_seconds)}]
  assert outer.compile_seconds == pytest.approx(first.compile_seconds + other_shape.compile_seconds)
  assert outer.summary().startswith("2 programs compiled, ")
  summed = compilation.added(first.as_dict(), again.as_dict(), other_shape.as_dict())  # sums of the nested counts
  assert summed == pytest.approx(outer.as_dict())  # equal to what the enclosing count saw
  assert compilation.describe(summed) == outer.summary()
  with compilation.count_compilations() as closed:
    pass
  shifted(five)  # compiled after the context closed: not counted
  assert closed.programs == 0


def test_the_description_of_compile_counts_names_programs_cache_loads_and_seconds():
  counts = {"programs": 7, "cache_hits": 3, "compiled": 4, "compile_seconds": 2.04, "trace_seconds": 0.5,
            "lower_seconds": 0.26}
  assert compilation.describe(counts) == ("7 programs (4 compiled, 3 loaded from the persistent cache), 2.0 s "
                                          "compiling or loading, 0.8 s tracing and lowering")
  assert compilation.describe({**counts, "programs": 4, "cache_hits": 0}) == (
      "4 programs compiled, 2.0 s compiling, 0.8 s tracing and lowering")
  assert compilation.added(counts, counts) == {"programs": 14, "cache_hits": 6, "compiled": 8,
                                               "compile_seconds": 4.08, "trace_seconds": 1.0, "lower_seconds": 0.52}
  assert compilation.added() == dict.fromkeys(counts, 0)



def test_programs_by_function_merge_across_counts_and_read_as_one_phrase():
  def row(name, programs, loaded, seconds, longest):
    return {"name": name, "programs": programs, "loaded": loaded, "seconds": seconds, "max_seconds": longest}

  steps = ([row("jit(a)", 2, 0, 1.5, 1.0), row("jit(b)", 1, 1, 0.25, 0.25)],  # e.g. two processes of a job
           [row("jit(b)", 3, 2, 4.0, 3.0), row("jit(c)", 1, 0, 0.5, 0.5)],
           [])
  merged = compilation.merged_by_program(*steps)
  assert merged == [row("jit(b)", 4, 3, 4.25, 3.0), row("jit(a)", 2, 0, 1.5, 1.0), row("jit(c)", 1, 0, 0.5, 0.5)]
  assert compilation.describe_by_program(merged, 1) == (
      "jit(b) 4 programs (3 loaded), 4.25 s; 2 other functions 3 programs, 2 s")
  assert compilation.describe_by_program(merged) == (  # five by default: every function here
      "jit(b) 4 programs (3 loaded), 4.25 s; jit(a) 2 programs, 1.5 s; jit(c) 1 program, 0.5 s")
  assert compilation.describe_by_program(merged, 2).endswith("; 1 other function 1 program, 0.5 s")
  assert compilation.merged_by_program() == [] and compilation.describe_by_program([], 5) == ""
  stats = compilation.CompileStats(log=[compilation.ProgramBuild("jit(a)", 0.5, False),
                                        compilation.ProgramBuild("jit(a)", 1.0, True)])
  assert stats.by_program() == [row("jit(a)", 2, 1, 1.5, 1.0)]

# The persistent cache.

def test_cache_folder_comes_from_the_argument_the_variable_or_the_user_cache(monkeypatch, tmp_path):
  monkeypatch.delenv(compilation.CACHE_ENV, raising=False)
  monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
  assert compilation.default_cache_dir() == tmp_path / "xdg" / "lm-elasticity" / "jax"
  monkeypatch.delenv("XDG_CACHE_HOME")
  assert compilation.default_cache_dir() == pathlib.Path.home() / ".cache" / "lm-elasticity" / "jax"
  monkeypatch.setenv(compilation.CACHE_ENV, str(tmp_path / "mine"))
  assert compilation.default_cache_dir() == tmp_path / "mine"
  for off in ("off", "OFF", "0", "false", "no"):
    monkeypatch.setenv(compilation.CACHE_ENV, off)
    assert compilation.default_cache_dir() is None
    assert compilation.enable_persistent_cache() is None  # switched off: nothing changed


def test_bad_cache_settings_give_one_line_errors(tmp_path):
  blocker = tmp_path / "file"
  blocker.write_text("")
  for call, shown in ((lambda: compilation.enable_persistent_cache(blocker / "cache"), "cannot be created"),
                      (lambda: compilation.enable_persistent_cache(tmp_path, min_compile_seconds=-1.0), "-1.0")):
    with pytest.raises(ValueError, match=shown) as error:
      call()
    assert "\n" not in str(error.value)


CACHE_SCRIPT = """
import json, sys
import jax
jax.config.update("jax_enable_x64", True)
from toy_models import compilation
folder = compilation.enable_persistent_cache()
import jax.numpy as jnp
import numpy as np

@jax.jit
def program(x):
  return jnp.cumsum(jnp.sin(x) * 3.0 + 1.0) @ x

@jax.jit
def other(x):
  return jnp.tanh(x).sum() * 5.0

with compilation.count_compilations() as stats:
  program(jnp.arange(7.0)).block_until_ready()
  if sys.argv[1] == "other":
    other(np.arange(3.0)).block_until_ready()  # a program the first process never built
print(json.dumps({"folder": str(folder), "programs": stats.programs, "hits": stats.cache_hits,
                  "files": sum(1 for p in folder.iterdir()), "by_program": stats.by_program()}))
"""


def test_a_second_process_loads_the_program_from_the_persistent_cache(tmp_path):
  env = {**os.environ, compilation.CACHE_ENV: str(tmp_path / "cache"), "JAX_PLATFORMS": "cpu",
         "PYTHONPATH": str(ROOT)}
  outs = []
  for which in ("same", "other"):
    done = subprocess.run([sys.executable, "-c", CACHE_SCRIPT, which], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    outs.append(json.loads(done.stdout.strip().splitlines()[-1]))
  first, second = outs
  assert first["folder"] == second["folder"] == str((tmp_path / "cache").resolve())
  assert first["programs"] >= 1 and first["hits"] == 0 and first["files"] >= 1
  assert second["programs"] == first["programs"] + 1 and second["hits"] == first["programs"]
  # Each program is told apart: the first process's program is loaded, the new one compiled.
  rows = {row["name"]: row for row in second["by_program"]}
  assert (rows["jit(program)"]["programs"], rows["jit(program)"]["loaded"]) == (1, 1)
  assert (rows["jit(other)"]["programs"], rows["jit(other)"]["loaded"]) == (1, 0)
  assert all(row["loaded"] == 0 for row in first["by_program"]) and "jit(other)" not in str(first["by_program"])


SWITCH_SCRIPT = """
import json, sys
import jax
import numpy as np
from toy_models import compilation
order = sys.argv[1]

def build(offset):  # a program no earlier process of this test built
  return jax.jit(lambda x: x * 3.0 + offset)

def hits_of(fn):  # persistent-cache loads while compiling fn afresh
  jax.clear_caches()
  with compilation.count_compilations() as stats:
    fn(np.arange(4.0)).block_until_ready()
  return stats.cache_hits

compilation.enable_persistent_cache(sys.argv[2])
seen = {}
if order == "on, off, on":
  seen["on before"] = hits_of(build(12.0)) + hits_of(build(12.0))  # written, then loaded
with compilation.without_persistent_cache():
  seen["off"] = hits_of(build(12.0))  # the first compile of the process when order is 'off, on'
seen["on after"] = hits_of(build(13.0)) + hits_of(build(13.0))  # written, then loaded
print(json.dumps(seen))
"""


@pytest.mark.parametrize("order", ["on, off, on", "off, on"])
def test_switching_the_persistent_cache_off_and_on_takes_effect_whatever_compiled_before(order, tmp_path):
  # JAX decides once per process, at its first compile, whether the persistent cache is used at all: when that
  # compile falls inside the switch, every program after it (e.g. bench's training rows after its sweep) must still
  # use the cache; and a switch after programs used the cache must still compile inside it.
  env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT)}
  env.pop(compilation.CACHE_ENV, None)
  done = subprocess.run([sys.executable, "-c", SWITCH_SCRIPT, order, str(tmp_path / "cache")], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=120)
  assert done.returncode == 0, done.stderr
  seen = json.loads(done.stdout.strip().splitlines()[-1])
  assert seen == ({"on before": 1, "off": 0, "on after": 1} if order == "on, off, on" else {"off": 0, "on after": 1})


# Buckets.

@hypothesis.given(runs=st.integers(0, 5000), steps=st.integers(0, 10_000), budget=st.integers(0, 100_000))
def test_run_bucket_is_a_coarse_size_within_the_padding_budget(runs, steps, budget):
  bucket = training.run_bucket(runs, steps, padding_run_steps=budget)
  assert bucket >= runs and (bucket - runs) * max(steps, 1) <= budget
  power, multiple = 1 << max(runs - 1, 0).bit_length(), -(-runs // 8) * 8
  assert bucket in {power, multiple, runs} | ({1} if runs <= 1 else set())
  if runs > 1 and (max(power, multiple) - runs) * max(steps, 1) <= budget:
    assert bucket == max(power, multiple)  # the coarsest one within the budget


def test_padded_runs_change_no_result():
  params, weights, keys = batch(5)
  steps = np.array([0, 4, 9, 2, 7])
  stage = StageConfig(steps=1, gradient="minibatch", batch_size=4, learning_rate=0.05)
  padded = training.train_batch(MODEL, stage, params, weights, steps, keys=keys)  # 5 runs -> bucket 8
  exact = training.train_batch(MODEL, stage, params, weights, steps, keys=keys, padding_run_steps=0)
  assert training.run_bucket(5, 9) == 8 and training.run_bucket(5, 9, padding_run_steps=0) == 5
  assert padded[0]["logits"].shape == exact[0]["logits"].shape == (5, N_LEAVES, 3)
  np.testing.assert_array_equal(np.asarray(padded[0]["logits"]), np.asarray(exact[0]["logits"]))
  np.testing.assert_array_equal(padded[1], exact[1])
  assert not np.array_equal(np.asarray(padded[0]["logits"][1]), np.asarray(params["logits"][1]))  # it trained


def _partition_cost(steps, groups, budget):
  """Run-steps computed by calling each group once (its bucket times its largest budget), plus budget per extra call."""
  return (sum(training.run_bucket(len(g), int(steps[g].max()), padding_run_steps=budget) * int(steps[g].max())
              for g in groups) + budget * (len(groups) - 1))


def _contiguous_partitions(budgets):
  """Every split of the decreasing budgets into contiguous groups (brute force, 2**(m-1) of them)."""
  for mask in range(1 << (len(budgets) - 1)):
    cuts = [0] + [i + 1 for i in range(len(budgets) - 1) if mask >> i & 1] + [len(budgets)]
    yield [budgets[a:b] for a, b in zip(cuts[:-1], cuts[1:], strict=True)]


@hypothesis.given(steps=st.lists(st.integers(0, 300), min_size=1, max_size=40), budget=st.integers(0, 3000))
def test_budget_groups_partition_the_runs_at_the_least_cost_of_any_contiguous_split(steps, budget):
  steps = np.asarray(steps)
  groups = training.budget_groups(steps, padding_run_steps=budget)
  assert sorted(np.concatenate(groups).tolist()) == list(range(steps.size))  # every run once
  maxima = [int(steps[g].max()) for g in groups]
  assert maxima == sorted(maxima, reverse=True)
  for g, h in zip(groups[:-1], groups[1:], strict=True):  # contiguous in budget: no overlap of budget ranges
    assert steps[g].min() > steps[h].max()
  budgets = sorted(set(steps.tolist()), reverse=True)
  if len(budgets) <= 10:
    brute = min(_partition_cost(steps, [np.flatnonzero(np.isin(steps, part)) for part in split], budget)
                for split in _contiguous_partitions(budgets))
    assert _partition_cost(steps, groups, budget) == brute


def test_budget_groups_split_long_and_short_runs_only_where_it_pays():
  steps = np.array([1000] * 6 + [10] * 6)  # one call: 16 lanes x 1000 steps; two calls: 8 x 1000 + 8 x 10
  assert [g.tolist() for g in training.budget_groups(steps, padding_run_steps=2048)] == [list(range(6)),
                                                                                          list(range(6, 12))]
  assert len(training.budget_groups(steps, padding_run_steps=10_000)) == 1  # a call priced above the saving
  assert len(training.budget_groups(np.array([5, 4, 5, 4]), padding_run_steps=0)) == 2
  assert len(training.budget_groups(np.array([7, 7, 7]), padding_run_steps=0)) == 1


def test_runs_trained_in_budget_groups_equal_runs_trained_in_one_call():
  params, weights, keys = batch(6)
  steps = np.array([40, 1, 40, 2, 0, 40])
  stage = StageConfig(steps=1, gradient="minibatch", batch_size=4, learning_rate=0.05)
  assert len(training.budget_groups(steps, padding_run_steps=0)) > 1
  seen = []
  grouped = training.train_batch(MODEL, stage, params, weights, steps, keys=keys, padding_run_steps=0,
                                 return_state=True, progress=lambda done, total, _: seen.append((done, total)))
  one = [training.train_batch(MODEL, stage, jax.tree_util.tree_map(lambda x, i=i: x[i:i + 1], params),
                              weights[i:i + 1], steps[i:i + 1], keys=keys[i:i + 1], return_state=True)
         for i in range(6)]
  for i in range(6):
    np.testing.assert_allclose(np.asarray(grouped[0]["logits"][i]), np.asarray(one[i][0]["logits"][0]),
                               rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(grouped[1][i], one[i][1][0], rtol=1e-12)
    for a, b in zip(jax.tree_util.tree_leaves(grouped[2]), jax.tree_util.tree_leaves(one[i][2]), strict=True):
      np.testing.assert_allclose(np.asarray(a)[i], np.asarray(b)[0], rtol=1e-12, atol=1e-14)
  np.testing.assert_array_equal(np.asarray(grouped[0]["logits"][4]), np.asarray(params["logits"][4]))  # 0 steps
  calls = training.budget_groups(steps, padding_run_steps=0)
  assert seen[-1][0] == seen[-1][1] == sum(int(steps[g].max()) for g in calls)  # the calls' steps one after another
  assert all(a[0] <= b[0] for a, b in zip(seen[:-1], seen[1:], strict=True))


def test_optimizer_state_built_on_the_host_equals_optax_init():
  params, _, _ = batch(3)
  for optimizer in ("adam", "sgd"):
    built = training.optimizer_state(optimizer, params)
    transform = optax.scale_by_adam() if optimizer == "adam" else optax.identity()
    expected = jax.vmap(transform.init)(params)
    assert jax.tree_util.tree_structure(built) == jax.tree_util.tree_structure(expected)
    for a, b in zip(jax.tree_util.tree_leaves(built), jax.tree_util.tree_leaves(expected), strict=True):
      assert a.dtype == b.dtype and np.array_equal(a, b)
  # the shapes are cached per optimiser and parameter shapes: other types, other run counts and fresh arrays each call
  for other in (jax.tree_util.tree_map(lambda x: np.asarray(x, np.float32), params),
                jax.tree_util.tree_map(lambda x: np.asarray(x)[:2], params)):
    moments = training.optimizer_state("adam", other).mu
    for leaf, like in zip(jax.tree_util.tree_leaves(moments), jax.tree_util.tree_leaves(other), strict=True):
      assert leaf.dtype == like.dtype and leaf.shape == like.shape
  first = training.optimizer_state("adam", params)
  jax.tree_util.tree_leaves(first)[1][...] = 7.0
  assert all(not np.any(leaf) for leaf in jax.tree_util.tree_leaves(training.optimizer_state("adam", params)))


def test_calls_differing_in_arrays_and_nearby_run_counts_compile_nothing_new():
  stage = StageConfig(steps=1, gradient="minibatch", batch_size=4, schedule="warmup_cosine")
  params, weights, keys = batch(6)
  training.train_batch(MODEL, stage, params, weights, np.full(6, 3), keys=keys)  # compiles for bucket 8
  metrics.leaf_log2_probs(MODEL, params)
  with compilation.count_compilations() as stats:
    for runs, steps, seed in ((5, 40, 1), (7, 3, 2), (8, 25, 3)):  # other counts, budgets, segments, data
      params, weights, keys = batch(runs, seed)
      trained, _ = training.train_batch(MODEL, stage, params, weights, np.arange(steps, steps + runs), keys=keys,
                                        learning_rates=np.linspace(0.01, 0.1, runs))
      metrics.leaf_log2_probs(MODEL, trained)
  assert stats.programs == 0, stats.names


# Compile presets.

def test_compile_presets_change_rounding_only_and_unknown_ones_are_refused():
  from toy_models.model_config import transformer_sizes  # noqa: PLC0415

  model = build_model(transformer_sizes(((8, 1),), heads=2, dtype="float64")[0], DEPTH)
  keys = np.stack([np.asarray(jax.random.PRNGKey(i)) for i in range(2)])
  weights = np.random.default_rng(0).uniform(0.1, 3.0, (2, N_LEAVES))
  stage = StageConfig(steps=1, gradient="minibatch", batch_size=4, learning_rate=0.01)
  results = {}
  before = compilation.preset()
  for name in compilation.PRESETS:
    with compilation.using_preset(name):
      assert compilation.training_options() == compilation.PRESETS[name]  # the tests run on a CPU
      params, losses = training.train_batch(model, stage, training.init_params(model, keys), weights,
                                            np.array([30, 30]), keys=keys)
      results[name] = (metrics.leaf_log2_probs(model, params), losses)
    assert compilation.preset() == before  # restored after the block
  assert compilation.PRESETS["optimized"] == () and compilation.PRESETS["fast-compile"] and len(results) == 3
  for name in ("fast-compile", "unoptimized"):
    np.testing.assert_allclose(results[name][0], results["optimized"][0], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(results[name][1], results["optimized"][1], rtol=1e-9)
  allowed = "allowed: optimized, fast-compile, unoptimized"
  with pytest.raises(ValueError, match=f"unknown compile preset 'fastest'; {allowed}"):
    compilation.set_preset("fastest")



INIT_SCRIPT = """
import json
import jax
import numpy as np
jax.config.update("jax_enable_x64", True)
from toy_models import compilation, training
from toy_models.model_config import ModelConfig
from toy_models.models import build_model

equal = []
for kind, width, layers, dtype in [("transformer", 16, 1, "float32"), ("transformer", 32, 2, "float64"),
                                   ("ngram", 16, 1, "float64"), ("tabular", 16, 1, "float64")]:
  model = build_model(ModelConfig(kind=kind, width=width, layers=layers, heads=2, dtype=dtype), 6)
  keys = jax.random.split(jax.random.PRNGKey(11), 8)
  ours = training.init_params(model, keys)
  reference = jax.jit(jax.vmap(model.init))(keys)  # XLA's default options
  equal.append(all(a.dtype == b.dtype and np.array_equal(np.asarray(a), np.asarray(b)) for a, b in
                   zip(jax.tree_util.tree_leaves(ours), jax.tree_util.tree_leaves(reference), strict=True)))
print(json.dumps({"options": compilation.initializer_options(), "equal": equal}))
"""


def test_the_initialiser_compiled_to_compile_fast_gives_the_same_parameters_bit_for_bit():
  """In a process without the tests' global XLA flags: the initialisers, compiled with initializer_options, give the
  parameters that XLA's default options give, for every model kind and both float types."""
  env = {key: value for key, value in os.environ.items() if key != "XLA_FLAGS"}
  env.update({compilation.CACHE_ENV: "off", "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT)})
  done = subprocess.run([sys.executable, "-c", INIT_SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
                        timeout=300)
  assert done.returncode == 0, done.stderr
  out = json.loads(done.stdout.strip().splitlines()[-1])
  assert out["options"] == {name: value for name, value in compilation.PRESETS["fast-compile"]}
  assert out["equal"] == [True] * 4
