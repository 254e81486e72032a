"""Exact metrics of trained toy models, by enumerating every response of the tree through the model (float64).

The enumeration runs in chunks of runs and responses sized from an estimate of their working set, so memory stays
bounded at any depth and run count; a result that would not fit is refused with a one-line ValueError before
anything is allocated.
"""

from __future__ import annotations

import functools
import math

import jax
import numpy as np

from theory import compression, mixture, token_tree, validation
from toy_models import compilation, datasets, devices, likelihood, models
from toy_models.models import Model

LN2 = np.log(2.0)
MEMORY_LIMIT_BYTES = 512 * 2**20  # default working set of one evaluation chunk (activations, params, output).
RESULT_LIMIT_BYTES = 2**30  # default size of the returned (runs, n_leaves) float64 array.
MAX_RUNS_PER_CHUNK = 32  # runs evaluated at once: run counts up to here share one compiled program per power of 2.
MIN_RESPONSES_PER_CHUNK = 256  # responses are split down to this before runs are (larger calls, fewer of them).
FLOAT64_BYTES = 8


def activation_floats_per_response(model: Model) -> int:
  """Estimated float64 activations alive at once when one run evaluates one response (an upper bound).

  Fitted to XLA's own accounting (compiled.memory_analysis().temp_size_in_bytes on a CPU, jax 0.10): per response
  of T = depth tokens, a transformer held 7 (one layer) to 25 (more layers: buffers are reused across blocks)
  times T * width floats at mlp_ratio 4, growing by 6 T * width per unit of mlp_ratio, plus heads * T**2 attention
  scores; the tabular and n-gram models held 6 T. The bound adds a margin to each.

  References:
    XLA's compiled-program memory analysis (jax.stages.Compiled.memory_analysis); Vaswani et al., "Attention is
    all you need", NeurIPS 2017 (the transformer's activations).
  """
  tokens = model.depth
  config = model.config
  if config.kind == "transformer":
    return tokens * (config.width * (6 * config.mlp_ratio + 6) + 3 * config.heads * tokens + 16)
  return 8 * tokens + 8


def evaluation_bytes(model: Model, runs: int, responses: int) -> int:
  """Estimated bytes of one evaluation call: `runs` runs x `responses` responses at once, in float64.

  Activations (activation_floats_per_response each), every run's parameters twice (as given and cast to float64),
  the responses' tokens and the (runs, responses) output.

  Args:
    model: the model.
    runs: runs evaluated at once.
    responses: responses evaluated at once.

  Returns:
    The estimate in bytes (an upper bound of XLA's own accounting for our models, within a factor of about 5).

  References:
    XLA's compiled-program memory analysis (jax.stages.Compiled.memory_analysis).
  """
  parameters = model.parameter_count()
  floats = runs * responses * (activation_floats_per_response(model) + 1) + 2 * runs * parameters
  return FLOAT64_BYTES * floats + 4 * responses * model.depth


def power_of_two_at_least(value: int) -> int:
  """The smallest power of two >= `value` (1 for values <= 1): the chunk and bucket sizes that share programs."""
  return 1 << max(int(value) - 1, 0).bit_length()


def evaluation_chunks(model: Model, runs: int, *, memory_limit_bytes: int = MEMORY_LIMIT_BYTES,
                      max_runs_per_chunk: int = MAX_RUNS_PER_CHUNK) -> tuple[int, int]:
  """(runs_per_chunk, responses_per_chunk) of leaf_log2_probs: the largest powers of two within the memory limit.

  Runs start at min(next power of two of `runs`, max_runs_per_chunk) and responses at 2**depth (every response,
  one of them padding); responses are halved first, down to MIN_RESPONSES_PER_CHUNK, then runs, then responses.

  Args:
    model: the model.
    runs: runs to evaluate (>= 1).
    memory_limit_bytes: the working-set bound of one chunk (evaluation_bytes).
    max_runs_per_chunk: the largest run chunk (a power of two).

  Returns:
    The chunk sizes; a one-line ValueError when a single run and response would not fit.

  References:
    XLA's compiled-program memory analysis (jax.stages.Compiled.memory_analysis), which evaluation_bytes bounds.
  """
  run_chunk = min(power_of_two_at_least(runs), max_runs_per_chunk)
  response_chunk = 2**model.depth
  while evaluation_bytes(model, run_chunk, response_chunk) > memory_limit_bytes:
    if response_chunk > MIN_RESPONSES_PER_CHUNK or (run_chunk == 1 and response_chunk > 1):
      response_chunk //= 2
    elif run_chunk > 1:
      run_chunk //= 2
    else:
      need = evaluation_bytes(model, 1, 1)
      raise ValueError(f"evaluating one response of {model.config.label()} at depth {model.depth} needs an estimated "
                       f"{memory_size(need)}, above memory_limit_bytes={memory_size(memory_limit_bytes)}; allowed: a "
                       "larger memory_limit_bytes")
  return run_chunk, response_chunk


def memory_size(n_bytes: float) -> str:
  """`n_bytes` for a message, in the largest binary unit it reaches (e.g. '1.5 GiB', '512 MiB', '12 bytes')."""
  for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
    if n_bytes >= scale:
      return f"{n_bytes / scale:.3g} {unit}"
  return f"{int(n_bytes)} bytes"


@functools.lru_cache(maxsize=64)
def _batched_log_probs(model: Model):
  def one(params, tokens):
    params = jax.tree_util.tree_map(lambda p: p.astype(np.float64), params)
    return likelihood.leaf_log_probs(model, params, tokens)

  return jax.jit(jax.vmap(one, in_axes=(0, None)))


@functools.lru_cache(maxsize=4)
def _token_chunks(depth: int, responses_per_chunk: int) -> tuple[jax.Array, ...]:
  """Every response of the tree (int32 tokens), padded with copies of the first, in chunks, on the default device.

  The whole tree's tokens (2**depth x depth int32: 84 MB at depth 20) are kept for the last few chunkings used.
  """
  tokens = np.asarray(token_tree.leaf_tokens(depth), np.int32)
  padded = -(-tokens.shape[0] // responses_per_chunk) * responses_per_chunk
  tokens = np.concatenate([tokens, np.repeat(tokens[:1], padded - tokens.shape[0], axis=0)])
  return tuple(jax.device_put(tokens[start:start + responses_per_chunk])
               for start in range(0, padded, responses_per_chunk))


def leaf_log2_probs(model: Model, params, *, memory_limit_bytes: int = MEMORY_LIMIT_BYTES,
                    result_limit_bytes: int = RESULT_LIMIT_BYTES, runs_per_chunk: int | None = None,
                    responses_per_chunk: int | None = None) -> np.ndarray:
  """log2 q(x) of every response x under each run's model, in bits, float64, shape (runs, 2**depth - 1).

  Parameters stored in float32 are cast to float64 before evaluation, so the metrics are float64 throughout.
  Runs and responses are evaluated in chunks (evaluation_chunks) whose estimated working set stays within
  memory_limit_bytes; each response's log-probability is computed on its own, so chunking changes numbers in their
  last bits only (XLA:CPU vectorises some elementwise functions by the chunk's size: 4 runs against 32 moved them by
  up to 3.6e-15 bits, 8 against 4 by nothing). Chunks have power-of-two sizes (padded with copies that are dropped):
  nearby run counts share one compiled program; under the compile-dominated presets the run chunk is at most
  compilation.runs_per_call(), so that every run count shares one program.

  Args:
    model: the model.
    params: parameters with a leading run axis (any float type).
    memory_limit_bytes: working-set bound of one chunk (evaluation_bytes estimates it).
    result_limit_bytes: bound on the returned array (runs x (2**depth - 1) x 8 bytes).
    runs_per_chunk: runs per chunk (default: from evaluation_chunks).
    responses_per_chunk: responses per chunk (default: from evaluation_chunks).

  Returns:
    (runs, 2**depth - 1) float64 log2-probabilities in bits.

  References:
    Ji et al., "Language Models Resist Alignment", ACL 2025, Def. 3.3 (compression rate over every response).
  """
  models.float_dtype(np.float64, "exact metrics (leaf_log2_probs)")
  leaves = jax.tree_util.tree_leaves(params)
  runs, n_leaves = int(np.shape(leaves[0])[0]), token_tree.n_leaves(model.depth)
  result_bytes = runs * n_leaves * FLOAT64_BYTES
  if result_bytes > result_limit_bytes:
    raise ValueError(f"leaf_log2_probs of {runs} runs at depth {model.depth} returns {runs} x {n_leaves} float64 = "
                     f"{memory_size(result_bytes)}, above result_limit_bytes={memory_size(result_limit_bytes)}; "
                     "allowed: fewer runs per call, a shallower tree, or a larger result_limit_bytes")
  if runs == 0:
    return np.zeros((0, n_leaves))
  chosen_runs, chosen_responses = evaluation_chunks(
      model, runs, memory_limit_bytes=memory_limit_bytes,
      max_runs_per_chunk=min(compilation.runs_per_call() or MAX_RUNS_PER_CHUNK, MAX_RUNS_PER_CHUNK))
  for name, value in (("runs_per_chunk", runs_per_chunk), ("responses_per_chunk", responses_per_chunk)):
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
      raise ValueError(f"{name}={value!r} is not allowed; allowed: an integer >= 1 or None")
  run_chunk = runs_per_chunk or chosen_runs
  response_chunk = responses_per_chunk or chosen_responses
  token_chunks = _token_chunks(model.depth, response_chunk)
  fn = _batched_log_probs(model)
  padded_runs = math.ceil(runs / run_chunk) * run_chunk
  if padded_runs == run_chunk == runs:
    chunks = [params]
  else:
    host = jax.tree_util.tree_map(np.asarray, jax.device_get(params))
    host = jax.tree_util.tree_map(lambda x: np.concatenate([x, np.repeat(x[:1], padded_runs - runs, axis=0)]), host)
    chunks = [jax.tree_util.tree_map(lambda x, start=start: x[start:start + run_chunk], host)
              for start in range(0, padded_runs, run_chunk)]
  rows = []
  for chunk in chunks:
    placed = devices.place_runs(chunk)
    # One chunk in flight at a time (np.asarray waits for it): the working set stays that of one chunk.
    rows.append(np.concatenate([np.asarray(fn(placed, tokens), dtype=np.float64) for tokens in token_chunks], axis=1))
  return np.concatenate(rows, axis=0)[:runs, :n_leaves] / LN2


def rates_bits(log2q: np.ndarray, probs: np.ndarray) -> np.ndarray:
  """Compression rate (cross-entropy) of each dataset under each model, in bits per response.

  log2q: (..., n_leaves) model log2-probabilities; probs: (..., n_datasets, n_leaves) dataset distributions.
  Returns (..., n_datasets); +inf where a dataset has mass on a response the model gives probability 0.
  """
  log2q = np.broadcast_to(np.asarray(log2q, dtype=np.float64)[..., None, :], np.shape(probs))
  probs = np.asarray(probs, dtype=np.float64)
  terms = np.zeros(np.broadcast_shapes(probs.shape, log2q.shape))
  np.multiply(-probs, log2q, out=terms, where=probs > 0)  # 0 * log 0 counts as 0; mass where q = 0 gives +inf
  return terms.sum(axis=-1)


def rates_bits_per_token(log2q: np.ndarray, probs: np.ndarray, depth: int) -> np.ndarray:
  """Compression rate in bits per token: E_{x~P_i}[-log2 q(x) / |x|], |x| counting EOS."""
  lengths = token_tree.response_lengths(depth).astype(np.float64)
  probs = np.asarray(probs, dtype=np.float64)
  return rates_bits(log2q, probs / lengths)


def kl_nats(log2q: np.ndarray, reference_log2q: np.ndarray) -> np.ndarray:
  """KL(model || reference) = sum_x q(x) ln(q(x) / r(x)) in nats (per response), shape (...,)."""
  log2q = np.asarray(log2q, dtype=np.float64)
  shape = np.broadcast_shapes(log2q.shape, np.shape(reference_log2q))
  log2q, reference = np.broadcast_to(log2q, shape), np.broadcast_to(np.asarray(reference_log2q, np.float64), shape)
  q = np.exp2(log2q)
  present = q > 0  # 0 log 0 = 0: responses the model never produces contribute nothing (even where r = 0 too)
  difference = np.subtract(log2q, reference, out=np.zeros(shape), where=present)
  terms = np.multiply(q, difference * LN2, out=np.zeros(shape), where=present)
  return terms.sum(axis=-1)


def positive_score(log2q: np.ndarray, depth: int) -> np.ndarray:
  """The model's probability mass on the aligned behaviour (responses starting with token 0), shape (...,)."""
  return (np.exp2(log2q) * datasets.aligned_mask(depth)).sum(axis=-1)


def huffman_coded_bits(log2q: np.ndarray, probs: np.ndarray, *, samples: int, seed: int) -> dict[str, np.ndarray]:
  """Actual Huffman-coded bits of responses drawn from `probs`, coded with a Huffman code built on the model.

  Args:
    log2q: (runs, n_leaves) model log2-probabilities.
    probs: (runs, n_leaves) distribution the responses are drawn from.
    samples: responses drawn per run (>= 1).
    seed: seed of the draws.

  Returns:
    'sampled_bits_per_response' (runs,): mean code length of the drawn responses; 'expected_bits_per_response'
    (runs,): the exact expectation under probs; both in bits. The model's cross-entropy is a lower bound of
    the expectation up to the Huffman code's < 1 bit of redundancy.

  References:
    Huffman, "A method for the construction of minimum-redundancy codes", Proc. IRE 1952.
  """
  if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
    raise ValueError(f"samples={samples!r} is not allowed; allowed: an integer >= 1")
  probs = validation.check_probabilities("probs", probs)
  lengths = compression.huffman_code_lengths(np.exp2(log2q))
  rng = np.random.default_rng(seed)
  sampled = np.array([lengths[run][rng.choice(probs.shape[-1], size=samples, p=probs[run])].mean()
                      for run in range(probs.shape[0])])
  return {"sampled_bits_per_response": sampled, "expected_bits_per_response": (probs * lengths).sum(axis=-1)}


def exact_metrics(log2q: np.ndarray, probs: np.ndarray, sizes: np.ndarray, depth: int,
                  reference_log2q: np.ndarray | None = None) -> dict[str, np.ndarray]:
  """Every exact metric of a batch of trained models against their datasets.

  Args:
    log2q: (runs, n_leaves) model log2-probabilities (leaf_log2_probs).
    probs: (runs, n_datasets, n_leaves) empirical leaf distributions of the datasets the runs saw.
    sizes: (runs, n_datasets) their masses (responses); the theory's mixture at these masses is the optimum.
    depth: tree depth.
    reference_log2q: optional (runs, n_leaves) reference model (e.g. the pre-trained checkpoint).

  Returns:
    dict of float64 arrays: rate_bits_per_response and rate_bits_per_token (runs, n_datasets); both normalized
    rates (bits per response): normalized_log_leaves (rate - log2 M) and normalized_kl (rate - H(P_i));
    theory_rate_bits_per_response (runs, n_datasets), the exact size-weighted mixture's rates;
    positive_score (runs,); kl_to_reference_nats (runs,) when a reference is given.

  References:
    Ji et al., "Language Models Resist Alignment", ACL 2025, Def. 3.3 (compression rate) and Section 3.
  """
  probs = np.asarray(probs, dtype=np.float64)
  rates = rates_bits(log2q, probs)
  own = np.where(probs > 0, -probs * np.log2(np.where(probs > 0, probs, 1.0)), 0.0).sum(axis=-1)
  theory = np.full(rates.shape, np.nan)
  positive = np.asarray(sizes).sum(axis=-1) > 0
  if positive.any():
    theory[positive] = mixture.compression_rates(probs[positive], np.asarray(sizes, np.float64)[positive])
  out = {"rate_bits_per_response": rates, "rate_bits_per_token": rates_bits_per_token(log2q, probs, depth),
         "normalized_log_leaves": rates - np.log2(probs.shape[-1]), "normalized_kl": rates - own,
         "theory_rate_bits_per_response": theory, "positive_score": positive_score(log2q, depth)}
  if reference_log2q is not None:
    out["kl_to_reference_nats"] = kl_nats(log2q, reference_log2q)
  return out
