"""Exact metrics of trained toy models, by enumerating every response of the tree through the model (float64)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from theory import compression, mixture, token_tree, validation
from toy_models import datasets, likelihood
from toy_models.models import Model

LN2 = np.log(2.0)


@functools.lru_cache(maxsize=64)
def _batched_log_probs(model: Model):
  def one(params, tokens):
    params = jax.tree_util.tree_map(lambda p: p.astype(jnp.float64), params)
    return likelihood.leaf_log_probs(model, params, tokens)

  return jax.jit(jax.vmap(one, in_axes=(0, None)))


def leaf_log2_probs(model: Model, params) -> np.ndarray:
  """log2 q(x) of every response x under each run's model, in bits, float64, shape (runs, 2**depth - 1).

  Parameters stored in float32 are cast to float64 before evaluation, so the metrics are float64 throughout.
  """
  tokens = jnp.asarray(token_tree.leaf_tokens(model.depth))
  return np.asarray(_batched_log_probs(model)(params, tokens), dtype=np.float64) / LN2


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
  q = np.exp2(log2q)
  terms = np.zeros(np.broadcast_shapes(log2q.shape, np.shape(reference_log2q)))
  np.multiply(q, (log2q - np.asarray(reference_log2q)) * LN2, out=terms, where=q > 0)  # 0 log 0 = 0
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
