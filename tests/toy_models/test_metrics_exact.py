"""toy_models.metrics against closed forms: rates per response and per token, KL in nats, scores, memory plan."""

import math

import numpy as np
import pytest

from theory import compression, mixture, token_tree
from toy_models import metrics
from toy_models.model_config import ModelConfig
from toy_models.models import build_model

DEPTH = 4
N_LEAVES = token_tree.n_leaves(DEPTH)


def lengths_by_enumeration(depth: int) -> np.ndarray:
  """|x| in tokens, EOS counted, from each leaf's binary tokens."""
  return np.array([len(token_tree.leaf_bits(i, depth)) + 1 for i in range(token_tree.n_leaves(depth))], float)


def random_distribution(rng, n: int, zeros: int = 0) -> np.ndarray:
  p = rng.dirichlet(np.ones(n))
  p[rng.choice(n, zeros, replace=False)] = 0.0
  return p / p.sum()


def test_rates_are_cross_entropies_in_bits_per_response():
  rng = np.random.default_rng(0)
  q = random_distribution(rng, N_LEAVES)
  P = np.stack([random_distribution(rng, N_LEAVES, zeros=4) for _ in range(3)])
  expected = [sum(-p * math.log2(qx) for p, qx in zip(row, q, strict=True) if p > 0) for row in P]
  np.testing.assert_allclose(metrics.rates_bits(np.log2(q), P), expected, rtol=1e-13)
  # A point mass on leaf x costs -log2 q(x) bits; zero mass where q = 0 costs nothing, mass there costs +inf.
  with np.errstate(divide="ignore"):
    log2q = np.log2(np.r_[0.5, 0.5, 0.0])
  assert metrics.rates_bits(log2q, np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.0, 0.5, 0.5]])).tolist() == [
      1.0, 1.0, np.inf]


def test_rates_broadcast_one_model_per_run_over_its_datasets():
  rng = np.random.default_rng(1)
  q = np.stack([random_distribution(rng, N_LEAVES) for _ in range(2)])  # (runs, leaves)
  P = np.stack([np.stack([random_distribution(rng, N_LEAVES) for _ in range(3)]) for _ in range(2)])
  got = metrics.rates_bits(np.log2(q), P)
  assert got.shape == (2, 3)
  for run in range(2):
    np.testing.assert_allclose(got[run], -(P[run] * np.log2(q[run])).sum(axis=-1), rtol=1e-13)


def test_rate_per_token_divides_each_response_by_its_own_length():
  # Uniform model, data on one response of 3 tokens (0, 1, EOS): -log2(1/15) / 3 bits per token, not / 4 or / 2.
  log2q = np.full(N_LEAVES, -math.log2(N_LEAVES))
  point = np.zeros((1, N_LEAVES))
  point[0, token_tree.leaf_index((0, 1))] = 1.0
  assert metrics.rates_bits_per_token(log2q, point, DEPTH)[0] == pytest.approx(math.log2(N_LEAVES) / 3, rel=1e-14)
  eos_only = np.eye(N_LEAVES)[None, 0]  # the empty response: EOS alone, 1 token
  assert metrics.rates_bits_per_token(log2q, eos_only, DEPTH)[0] == pytest.approx(math.log2(N_LEAVES), rel=1e-14)
  rng = np.random.default_rng(2)
  q, P = random_distribution(rng, N_LEAVES), np.stack([random_distribution(rng, N_LEAVES, 3) for _ in range(3)])
  expected = (np.where(P > 0, -P * np.log2(q), 0.0) / lengths_by_enumeration(DEPTH)).sum(axis=-1)
  np.testing.assert_allclose(metrics.rates_bits_per_token(np.log2(q), P, DEPTH), expected, rtol=1e-13)


def test_kl_is_in_nats_per_response():
  q, r = np.array([0.5, 0.5, 0.0]), np.array([0.25, 0.5, 0.25])
  with np.errstate(divide="ignore"):
    got = metrics.kl_nats(np.log2(q), np.log2(r))
  assert got == pytest.approx(0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.5), rel=1e-14)  # ln 2 / 2
  assert got == pytest.approx(math.log(2.0) / 2, rel=1e-14)  # in bits it would be 1/2
  rng = np.random.default_rng(3)
  q, r = random_distribution(rng, N_LEAVES), random_distribution(rng, N_LEAVES)
  assert metrics.kl_nats(np.log2(q), np.log2(r)) == pytest.approx(float(np.sum(q * np.log(q / r))), rel=1e-13)
  # Mass where the reference has none: +inf; no mass where neither has any: 0, not NaN (-inf - -inf is masked).
  with np.errstate(divide="ignore", invalid="ignore"):
    assert metrics.kl_nats(np.log2([0.5, 0.5, 0.0]), np.log2([1.0, 0.0, 0.0])) == np.inf
    assert metrics.kl_nats(np.log2([1.0, 0.0]), np.log2([1.0, 0.0])) == 0.0


def test_kl_batches_over_runs():
  rng = np.random.default_rng(4)
  q = np.stack([random_distribution(rng, N_LEAVES) for _ in range(3)])
  r = random_distribution(rng, N_LEAVES)
  got = metrics.kl_nats(np.log2(q), np.log2(r))
  np.testing.assert_allclose(got, [np.sum(row * np.log(row / r)) for row in q], rtol=1e-13)


def test_positive_score_is_the_mass_on_responses_starting_with_token_0():
  rng = np.random.default_rng(5)
  q = np.stack([random_distribution(rng, N_LEAVES) for _ in range(2)])
  aligned = [i for i in range(N_LEAVES) if token_tree.leaf_bits(i, DEPTH)[:1] == (0,)]
  assert len(aligned) == 7  # 1 + 2 + 4 responses below token 0 at depth 4
  np.testing.assert_allclose(metrics.positive_score(np.log2(q), DEPTH), q[:, aligned].sum(axis=1), rtol=1e-14)
  assert metrics.positive_score(np.full(N_LEAVES, -math.log2(N_LEAVES)), DEPTH) == pytest.approx(7 / 15)


def test_huffman_coded_bits_of_a_dyadic_model():
  log2q = np.log2(np.array([[0.5, 0.25, 0.125, 0.125]]))  # Huffman lengths 1, 2, 3, 3
  point = np.array([[0.0, 0.0, 1.0, 0.0]])
  out = metrics.huffman_coded_bits(log2q, point, samples=5, seed=0)
  assert out["sampled_bits_per_response"].tolist() == [3.0] and out["expected_bits_per_response"].tolist() == [3.0]
  probs = np.array([[0.5, 0.5, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
  out = metrics.huffman_coded_bits(np.repeat(log2q, 2, axis=0), probs, samples=20_000, seed=1)
  np.testing.assert_allclose(out["expected_bits_per_response"], [1.5, 3.0], rtol=1e-15)
  # Sampled mean of lengths 1 and 2 with equal odds: 1.5 +- 0.5 / sqrt(20000) (standard error 0.0035).
  assert abs(out["sampled_bits_per_response"][0] - 1.5) < 0.02 and out["sampled_bits_per_response"][1] == 3.0


@pytest.mark.parametrize("samples", [0, -1, 2.0, True])
def test_huffman_coded_bits_refuses_a_bad_sample_count(samples):
  with pytest.raises(ValueError, match=f"^samples={samples!r} is not allowed; allowed: an integer >= 1$"):
    metrics.huffman_coded_bits(np.log2([[0.5, 0.5]]), np.array([[0.5, 0.5]]), samples=samples, seed=0)


def test_exact_metrics_combine_the_metrics_and_the_theory():
  rng = np.random.default_rng(6)
  log2q = np.log2(np.stack([random_distribution(rng, N_LEAVES) for _ in range(3)]))
  probs = np.stack([np.stack([random_distribution(rng, N_LEAVES, 2) for _ in range(3)]) for _ in range(3)])
  sizes = np.array([[30.0, 1.0, 0.5], [0.0, 0.0, 0.0], [1.0, 2.0, 0.0]])
  reference = np.log2(random_distribution(rng, N_LEAVES))
  out = metrics.exact_metrics(log2q, probs, sizes, DEPTH, reference_log2q=reference)
  rates = metrics.rates_bits(log2q, probs)
  np.testing.assert_array_equal(out["rate_bits_per_response"], rates)
  np.testing.assert_array_equal(out["rate_bits_per_token"], metrics.rates_bits_per_token(log2q, probs, DEPTH))
  np.testing.assert_allclose(out["normalized_log_leaves"], rates - math.log2(N_LEAVES), rtol=1e-15)
  entropy = np.array([[compression.entropy_bits(p) for p in run] for run in probs])
  np.testing.assert_allclose(out["normalized_kl"], rates - entropy, rtol=1e-13)
  for run in (0, 2):
    np.testing.assert_allclose(out["theory_rate_bits_per_response"][run],
                               mixture.compression_rates(probs[run], sizes[run]), rtol=1e-15)
  assert np.isnan(out["theory_rate_bits_per_response"][1]).all()  # no data at all: no mixture
  np.testing.assert_array_equal(out["positive_score"], metrics.positive_score(log2q, DEPTH))
  np.testing.assert_array_equal(out["kl_to_reference_nats"], metrics.kl_nats(log2q, reference))
  assert "kl_to_reference_nats" not in metrics.exact_metrics(log2q, probs, sizes, DEPTH)


def test_exact_metrics_without_any_positive_size_leave_the_theory_undefined():
  rng = np.random.default_rng(7)
  log2q = np.log2(random_distribution(rng, N_LEAVES))[None]
  probs = np.stack([random_distribution(rng, N_LEAVES) for _ in range(3)])[None]
  out = metrics.exact_metrics(log2q, probs, np.zeros((1, 3)), DEPTH)
  assert out["theory_rate_bits_per_response"].shape == (1, 3) and np.isnan(out["theory_rate_bits_per_response"]).all()


# The memory plan of leaf_log2_probs.

TABULAR = build_model(ModelConfig(kind="tabular"), 10)
TRANSFORMER = build_model(ModelConfig(kind="transformer", width=16, layers=1, heads=2, mlp_ratio=2), 6)


@pytest.mark.parametrize("model", [TABULAR, TRANSFORMER], ids=["tabular", "transformer"])
def test_evaluation_bytes_add_parameters_tokens_and_activations(model):
  params = model.parameter_count()
  activations = metrics.activation_floats_per_response(model)
  assert metrics.evaluation_bytes(model, 3, 0) == 8 * 2 * 3 * params  # every run's parameters, twice, in float64
  assert metrics.evaluation_bytes(model, 0, 5) == 4 * 5 * model.depth  # int32 tokens
  # Each (run, response) adds its activations and one float64 output.
  assert metrics.evaluation_bytes(model, 3, 5) - metrics.evaluation_bytes(model, 3, 4) == (
      8 * 3 * (activations + 1) + 4 * model.depth)


def test_activation_estimate_grows_as_documented():
  def transformer(**changes):
    config = dict(kind="transformer", width=16, layers=1, heads=2, mlp_ratio=2) | changes
    return metrics.activation_floats_per_response(build_model(ModelConfig(**config), 6))

  tokens, width = 6, 16
  assert transformer(mlp_ratio=3) - transformer(mlp_ratio=2) == 6 * tokens * width  # 6 T width per unit mlp_ratio
  assert transformer(heads=4) - transformer(heads=2) >= 2 * tokens**2  # heads T**2 attention scores, with margin
  assert transformer(layers=4) == transformer(layers=1)  # buffers are reused across blocks
  # At mlp_ratio 4 XLA held up to 25 T width floats plus heads T**2 attention scores: the estimate bounds that.
  assert transformer(mlp_ratio=4, layers=2) >= 25 * tokens * width + 2 * tokens**2
  tabular = metrics.activation_floats_per_response(build_model(ModelConfig(kind="tabular"), 7))
  ngram = metrics.activation_floats_per_response(build_model(ModelConfig(kind="ngram", context=2), 7))
  assert tabular == ngram >= 6 * 7  # XLA held 6 T floats for these models


def test_chunks_start_from_every_response_and_a_power_of_two_of_runs():
  huge = 2**40
  assert metrics.evaluation_chunks(TABULAR, 1, memory_limit_bytes=huge) == (1, 2**10)
  assert metrics.evaluation_chunks(TABULAR, 5, memory_limit_bytes=huge) == (8, 2**10)
  assert metrics.evaluation_chunks(TABULAR, 8, memory_limit_bytes=huge) == (8, 2**10)
  assert metrics.evaluation_chunks(TABULAR, 1000, memory_limit_bytes=huge) == (metrics.MAX_RUNS_PER_CHUNK, 2**10)


def test_chunks_halve_responses_first_then_runs_then_responses():
  model = TABULAR
  full_runs = metrics.MAX_RUNS_PER_CHUNK

  def chunks(limit):
    return metrics.evaluation_chunks(model, 100, memory_limit_bytes=limit)

  # Just below what (32 runs, 1024 responses) needs: responses halve to 512, runs stay.
  assert chunks(metrics.evaluation_bytes(model, full_runs, 1024) - 1) == (full_runs, 512)
  # Just below (32, 256): responses stop at MIN_RESPONSES_PER_CHUNK and runs halve.
  assert chunks(metrics.evaluation_bytes(model, full_runs, 256) - 1) == (full_runs // 2, 256)
  # Just below (1, 256): one run, and responses halve again.
  assert chunks(metrics.evaluation_bytes(model, 1, 256) - 1) == (1, 128)
  # Exactly what a chunk needs is allowed.
  assert chunks(metrics.evaluation_bytes(model, 1, 256)) == (1, 256)
  assert chunks(metrics.evaluation_bytes(model, 1, 1)) == (1, 1)
  with pytest.raises(ValueError, match=r"^evaluating one response of tabular at depth 10 needs an estimated "):
    chunks(metrics.evaluation_bytes(model, 1, 1) - 1)


@pytest.mark.parametrize("n_bytes, text", [(1000, "1000 bytes"), (2048, "2 KiB"), (1536 * 2**20, "1.5 GiB"),
                                           (3 * 2**20, "3 MiB"), (2**30, "1 GiB"), (1023.9, "1023 bytes")])
def test_sizes_are_written_in_binary_units(n_bytes, text):
  assert metrics.memory_size(n_bytes) == text


def test_result_limit_is_inclusive_and_zero_runs_give_an_empty_result():
  model = build_model(ModelConfig(kind="tabular"), 3)
  params = {"logits": np.zeros((2, 7, 3))}
  exact = 2 * 7 * 8
  got = metrics.leaf_log2_probs(model, params, result_limit_bytes=exact)
  np.testing.assert_allclose(got, np.broadcast_to(_uniform_tabular_log2q(3), (2, 7)), rtol=1e-14)
  with pytest.raises(ValueError, match=r"2 x 7 float64 = 112 bytes, above result_limit_bytes=111 bytes"):
    metrics.leaf_log2_probs(model, params, result_limit_bytes=exact - 1)
  empty = metrics.leaf_log2_probs(model, {"logits": np.zeros((0, 7, 3))})
  assert empty.shape == (0, 7) and empty.dtype == np.float64


def _uniform_tabular_log2q(depth: int) -> np.ndarray:
  """log2 q(x) of the tabular model with all logits 0: 1/3 per free choice, the deepest layer forced to EOS."""
  bits = [token_tree.leaf_bits(i, depth) for i in range(token_tree.n_leaves(depth))]
  return np.array([-math.log2(3) * (len(b) + (len(b) < depth - 1)) for b in bits])


@pytest.mark.parametrize("name, value", [("runs_per_chunk", 0), ("runs_per_chunk", True), ("responses_per_chunk", 2.0),
                                         ("responses_per_chunk", -4)])
def test_chunk_overrides_must_be_positive_integers(name, value):
  model = build_model(ModelConfig(kind="tabular"), 3)
  with pytest.raises(ValueError, match=f"^{name}={value!r} is not allowed; allowed: an integer >= 1 or None$"):
    metrics.leaf_log2_probs(model, {"logits": np.zeros((1, 7, 3))}, **{name: value})


def test_chunked_runs_and_responses_keep_every_run_in_place():
  model = build_model(ModelConfig(kind="tabular"), 3)
  logits = np.random.default_rng(8).normal(size=(5, 7, 3))
  whole = metrics.leaf_log2_probs(model, {"logits": logits})
  for runs_per_chunk, responses_per_chunk in [(2, 3), (4, 8), (5, 1)]:
    got = metrics.leaf_log2_probs(model, {"logits": logits}, runs_per_chunk=runs_per_chunk,
                                  responses_per_chunk=responses_per_chunk)
    np.testing.assert_array_equal(got, whole)
  for run in range(5):  # run r's row is run r's model alone
    np.testing.assert_array_equal(metrics.leaf_log2_probs(model, {"logits": logits[run:run + 1]})[0], whole[run])


def test_metrics_of_float32_models_are_computed_in_float64():
  rng = np.random.default_rng(9)
  q = np.stack([random_distribution(rng, N_LEAVES) for _ in range(2)])
  log2q32 = np.log2(q).astype(np.float32)  # a model trained in float32
  counts = np.stack([rng.multinomial(64, np.full(N_LEAVES, 1 / N_LEAVES)) for _ in range(3)])
  P32 = (counts / 64).astype(np.float32)  # multiples of 1/64: exact in float32, rows summing to exactly 1
  exact_log2q, exact_P = log2q32.astype(np.float64), P32.astype(np.float64)
  both32, both = np.stack([P32, P32]), np.stack([exact_P, exact_P])  # (runs, datasets, leaves)
  rates = metrics.rates_bits(log2q32, both32)
  assert rates.dtype == np.float64
  np.testing.assert_array_equal(rates, -(both * exact_log2q[:, None, :]).sum(axis=-1))
  per_token = metrics.rates_bits_per_token(log2q32, both32, DEPTH)
  assert per_token.dtype == np.float64
  np.testing.assert_array_equal(per_token, metrics.rates_bits_per_token(exact_log2q, both, DEPTH))
  kl = metrics.kl_nats(log2q32, log2q32[::-1])
  assert kl.dtype == np.float64
  np.testing.assert_allclose(kl, [np.sum(np.exp2(a) * (a - b)) * math.log(2) for a, b in
                                  zip(exact_log2q, exact_log2q[::-1], strict=True)], rtol=1e-13)
  out = metrics.exact_metrics(log2q32, both32, np.array([[3.0, 1.0, 0.5]] * 2), DEPTH)
  assert all(out[name].dtype == np.float64 for name in ("rate_bits_per_response", "rate_bits_per_token",
                                                        "normalized_log_leaves", "normalized_kl"))
  np.testing.assert_array_equal(out["rate_bits_per_response"], rates)
  entropy = np.array([compression.entropy_bits(p) for p in exact_P])  # in float64: 3/64 log2(3/64) has no float32 form
  np.testing.assert_allclose(out["normalized_kl"], rates - entropy, rtol=1e-14)


def test_kl_of_one_model_against_several_references():
  rng = np.random.default_rng(10)
  q = random_distribution(rng, N_LEAVES)
  references = np.stack([random_distribution(rng, N_LEAVES) for _ in range(4)])
  got = metrics.kl_nats(np.log2(q), np.log2(references))
  assert got.shape == (4,)
  np.testing.assert_allclose(got, [np.sum(q * np.log(q / r)) for r in references], rtol=1e-13)


def test_exact_metrics_theory_needs_only_some_positive_mass():
  rng = np.random.default_rng(11)
  log2q = np.log2(random_distribution(rng, N_LEAVES))[None]
  probs = np.stack([random_distribution(rng, N_LEAVES) for _ in range(3)])[None]
  sizes = np.array([[0.2, 0.3, 0.1]])  # masses below one in total
  out = metrics.exact_metrics(log2q, probs, sizes, DEPTH)
  np.testing.assert_allclose(out["theory_rate_bits_per_response"][0], mixture.compression_rates(probs[0], sizes[0]),
                             rtol=1e-15)


def test_huffman_coded_bits_are_seeded_and_checked():
  log2q = np.log2(np.array([[0.5, 0.25, 0.125, 0.125]]))
  probs = np.array([[0.25, 0.25, 0.25, 0.25]])
  one = metrics.huffman_coded_bits(log2q, probs, samples=1, seed=3)  # a single response is allowed
  assert one["sampled_bits_per_response"][0] in (1.0, 2.0, 3.0)
  a = metrics.huffman_coded_bits(log2q, probs, samples=50, seed=4)["sampled_bits_per_response"]
  b = metrics.huffman_coded_bits(log2q, probs, samples=50, seed=4)["sampled_bits_per_response"]
  others = {float(metrics.huffman_coded_bits(log2q, probs, samples=50, seed=s)["sampled_bits_per_response"][0])
            for s in range(5, 15)}
  assert a.tolist() == b.tolist() and len(others) > 1  # the seed fixes the draws, other seeds draw others
  with pytest.raises(ValueError, match=r"^probs row \(0,\) sums to "):
    metrics.huffman_coded_bits(log2q, probs * 2, samples=5, seed=0)


def test_nearby_run_counts_share_one_compiled_program():
  from toy_models import compilation

  model = build_model(ModelConfig(kind="tabular"), 3)
  logits = np.random.default_rng(12).normal(size=(4, 7, 3))
  four = metrics.leaf_log2_probs(model, {"logits": logits})
  with compilation.count_compilations() as stats:
    three = metrics.leaf_log2_probs(model, {"logits": logits[:3]})  # padded to the 4-run program
  assert stats.programs == 0, stats.names
  np.testing.assert_array_equal(three, four[:3])


def test_leaf_log2_probs_messages_name_what_to_change():
  import jax

  model = build_model(ModelConfig(kind="tabular"), 3)
  with pytest.raises(ValueError) as error:
    metrics.leaf_log2_probs(model, {"logits": np.zeros((3, 7, 3))}, result_limit_bytes=100)
  assert str(error.value) == ("leaf_log2_probs of 3 runs at depth 3 returns 3 x 7 float64 = 168 bytes, above "
                              "result_limit_bytes=100 bytes; allowed: fewer runs per call, a shallower tree, or a "
                              "larger result_limit_bytes")
  with jax.enable_x64(False), pytest.raises(ValueError) as error:
    metrics.leaf_log2_probs(model, {"logits": np.zeros((1, 7, 3))})
  assert str(error.value).startswith("exact metrics (leaf_log2_probs) needs float64 but jax_enable_x64 is off")
