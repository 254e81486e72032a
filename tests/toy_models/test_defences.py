"""Tests of toy_models.defences against brute force on a tiny tree, closed-form gradients and finite differences.

Every objective of a model is evaluated by one jitted function (and differentiated by one more), compiled once per
model kind: compiling each objective apart costs more than the whole file may take.
"""

import functools

import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.helpers import RTOL_FINITE_DIFFERENCE, RTOL_FLOAT64
from theory import token_tree
from theory.conventions import ALIGNED_PREFIX, UNALIGNED_PREFIX
from toy_models import defences, likelihood, tabular, transformer
from toy_models.model_config import ModelConfig
from toy_models.models import build_model

DEPTH = 4
N = token_tree.n_leaves(DEPTH)
TOKENS = jnp.asarray(token_tree.leaf_tokens(DEPTH))
BITS = [token_tree.leaf_bits(i, DEPTH) for i in range(N)]
LENGTHS = token_tree.response_lengths(DEPTH).astype(np.float64)
ALIGNED = token_tree.prefix_mask(DEPTH, ALIGNED_PREFIX)
UNALIGNED = token_tree.prefix_mask(DEPTH, UNALIGNED_PREFIX)
EOS, BEGIN = token_tree.EOS, 2
TABULAR = ModelConfig(kind="tabular")
NGRAM = ModelConfig(kind="ngram", context=2)
WIDTH = 4
TRANSFORMER = ModelConfig(kind="transformer", width=WIDTH, layers=1, heads=2)
STEP = 1e-5  # central finite-difference step (float64): truncation ~ STEP**2, rounding ~ 1e-16 / STEP.
BETA_RESPONSE, BETA_TOKEN, RHO_LISA, RHO_VACCINE, LAM, ALPHA = 0.7, 0.3, 0.4, 0.2, 1.5, 0.4
COEFFICIENTS = {"kl_anchor_response": 0.8, "kl_anchor_token": -0.6, "constrained": 1.3, "lisa": 0.7,
                "vaccine": -0.9, "booster": 1.1}  # a random-looking mix: one gradient check covers every term
TRANSFORMER_MIX = ("kl_anchor_token", "constrained", "vaccine")  # the transformer's mix (compiling all costs seconds)
FAST_COMPILE = {"xla_backend_optimization_level": 0}  # tests run each program a few times: compile it quickly
TRANSFORMER_LOGITS = jax.jit(transformer.logits, static_argnames="heads", compiler_options=FAST_COMPILE)
TABULAR_LOGITS = jax.jit(tabular.logits, compiler_options=FAST_COMPILE)


# Brute force, independent of likelihood.py: walk the tree node by node through the model's logits.

def random_params(config: ModelConfig, seed: int, scale: float = 1.0) -> dict:
  """Parameters of `config` drawn with numpy (every leaf scale * N(0, 1)), without compiling its init."""
  rng = np.random.default_rng(seed)
  shapes = jax.eval_shape(build_model(config, DEPTH).init, jax.random.PRNGKey(0))
  return jax.tree_util.tree_map(lambda s: jnp.asarray(scale * rng.standard_normal(s.shape)), shapes)


def path(leaf: int) -> list[tuple[int, int]]:
  """(node heap index, next token) for every prediction along a leaf's response, EOS included."""
  bits = BITS[leaf]
  return [(token_tree.leaf_index(bits[:j]), token) for j, token in enumerate((*bits, EOS))]


def node_inputs() -> np.ndarray:
  """Input row [begin, prefix, begin, ...] of every node; node i's prefix is BITS[i] (shared heap numbering)."""
  inputs = np.full((N, DEPTH), BEGIN)
  for i, bits in enumerate(BITS):
    inputs[i, 1:1 + len(bits)] = bits
  return inputs


def node_distributions(config: ModelConfig, params: dict) -> np.ndarray:
  """(N nodes, 3) next-token distributions at every node, the last layer forced to EOS."""
  if config.kind == "transformer":
    logits = np.asarray(TRANSFORMER_LOGITS(params, jnp.asarray(node_inputs()), heads=config.heads))
  else:
    logits = np.asarray(TABULAR_LOGITS(params, jnp.asarray(node_inputs())))
  out = np.zeros((N, 3))
  for i, bits in enumerate(BITS):
    if len(bits) == DEPTH - 1:
      out[i, EOS] = 1.0
    else:
      z = np.exp(logits[i, len(bits)] - logits[i, len(bits)].max())
      out[i] = z / z.sum()
  return out


def tabular_nodes(table) -> np.ndarray:
  """Node distributions of a tabular logit table, with numpy only."""
  z = np.asarray(table, dtype=np.float64)
  out = np.exp(z - z.max(axis=1, keepdims=True))
  out /= out.sum(axis=1, keepdims=True)
  out[2 ** (DEPTH - 1) - 1:] = np.eye(3)[EOS]
  return out


def leaf_probs(nodes: np.ndarray) -> np.ndarray:
  return np.array([np.prod([nodes[n, t] for n, t in path(i)]) for i in range(N)])


def kl_rows(p: np.ndarray, r: np.ndarray) -> np.ndarray:
  safe_p = np.where(p > 0, p, 1.0)
  return np.where(p > 0, p * np.log(safe_p / np.where(p > 0, r, 1.0)), 0.0).sum(axis=-1)


def nll_bruteforce(nodes: np.ndarray, weights: np.ndarray) -> float:
  return -(weights * np.log(leaf_probs(nodes))).sum() / (weights * LENGTHS).sum()


def free_nodes() -> np.ndarray:
  """Mask of the nodes whose next token is a choice (every layer but the last, forced to EOS)."""
  return np.arange(N) < 2 ** (DEPTH - 1) - 1


def nll_gradient_tabular(table, weights: np.ndarray) -> np.ndarray:
  """Closed form d NLL_tok / d logits of a tabular model: -(counts_n - total_n pi_n) / token mass at free nodes."""
  nodes = tabular_nodes(table)
  counts = np.zeros((N, 3))
  for i in range(N):
    for n, t in path(i):
      counts[n, t] += weights[i]
  grad = -(counts - counts.sum(axis=1, keepdims=True) * nodes) / (weights * LENGTHS).sum()
  return np.where(free_nodes()[:, None], grad, 0.0)


def data_weights(seed: int, mask=None) -> np.ndarray:
  """Random counts 0..4 on the leaves of `mask` (all by default), at least one response."""
  mask = np.ones(N, bool) if mask is None else mask
  counts = np.random.default_rng(seed).integers(0, 5, N).astype(np.float64) * mask
  counts[np.flatnonzero(mask)[0]] += 1
  return counts


def tree_sum(a, b, scale=1.0):
  """a + scale * b leaf by leaf (numpy outside jit: no op-by-op compilation; jnp inside)."""
  add = (lambda x, y: x + scale * y) if isinstance(jax.tree_util.tree_leaves(a)[0], jax.core.Tracer) else (
      lambda x, y: np.asarray(x) + scale * np.asarray(y))
  return jax.tree_util.tree_map(add, a, b)


def tree_dot(a, b) -> float:
  return sum(float(np.vdot(np.asarray(x), np.asarray(y)))
             for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True))


# Every objective of one model, jitted once per model.

def objectives(model, aligned, weights, align_weights, harmful_weights, betas, fixed_perturbation):
  """name -> (params -> scalar) for every objective, references computed from `aligned`."""
  leaf_reference = likelihood.leaf_log_probs(model, aligned, TOKENS)
  token_reference = likelihood.token_log_probs(model, aligned, TOKENS)
  next_reference = defences.next_token_log_probs(model, aligned, TOKENS)
  out = {
      "nll": lambda p: likelihood.weighted_token_nll(model, p, TOKENS, weights),
      "response_kl": lambda p: defences.response_kl_nats(model, p, leaf_reference),
      "kl_anchor_response": lambda p: defences.kl_anchor_response_loss(model, p, TOKENS, weights, leaf_reference,
                                                                       BETA_RESPONSE),
      "token_kl": lambda p: defences.token_kl_nats(model, p, TOKENS, weights, next_reference),
      "kl_anchor_token": lambda p: defences.kl_anchor_token_loss(model, p, TOKENS, weights, next_reference,
                                                                 BETA_TOKEN),
      "constrained": lambda p: defences.constrained_sft_loss(model, p, TOKENS, weights, token_reference, betas),
      "lisa": lambda p: defences.lisa_loss(model, p, aligned, TOKENS, weights, RHO_LISA),
      "vaccine": lambda p: defences.vaccine_loss(model, p, TOKENS, align_weights, RHO_VACCINE),
  }
  if model.config.kind == "transformer":
    shifted = defences._shifted_model(model, fixed_perturbation)
    out["vaccine_fixed"] = lambda p: likelihood.weighted_token_nll(shifted, p, TOKENS, align_weights)
  else:
    out["vaccine_fixed"] = lambda p: likelihood.weighted_token_nll(model, tree_sum(p, fixed_perturbation), TOKENS,
                                                                   align_weights)
    out["booster"] = lambda p: defences.booster_loss(model, p, TOKENS, align_weights, harmful_weights, lam=LAM,
                                                     alpha=ALPHA)
  return out


@functools.partial(jax.jit, static_argnums=0, compiler_options=FAST_COMPILE)
def evaluate(model, params, aligned, weights, align_weights, harmful_weights, betas, fixed_perturbation):
  """Every objective's value, the perturbations and the model's next-token / token / leaf log-probabilities."""
  fns = objectives(model, aligned, weights, align_weights, harmful_weights, betas, fixed_perturbation)
  out = {name: fn(params) for name, fn in fns.items()}
  out["vaccine_perturbation"] = defences.vaccine_perturbation(model, params, TOKENS, align_weights, RHO_VACCINE)
  out["next_token_log_probs"] = defences.next_token_log_probs(model, params, TOKENS)
  out["token_log_probs"] = likelihood.token_log_probs(model, params, TOKENS)
  out["leaf_log_probs"] = likelihood.leaf_log_probs(model, params, TOKENS)
  if model.config.kind != "transformer":
    harm = functools.partial(likelihood.weighted_token_nll, model, tokens=TOKENS, weights=harmful_weights)
    out["booster_penalty"] = defences.booster_penalty(harm, params, ALPHA)
  return out


@functools.partial(jax.jit, static_argnums=0, compiler_options=FAST_COMPILE)
def gradients(model, params, aligned, weights, align_weights, harmful_weights, betas, fixed_perturbation):
  """Table models: each objective's gradient; transformer: the gradient of the TRANSFORMER_MIX of COEFFICIENTS."""
  fns = objectives(model, aligned, weights, align_weights, harmful_weights, betas, fixed_perturbation)
  if model.config.kind == "transformer":
    return {"mix": jax.grad(lambda p: sum(COEFFICIENTS[name] * fns[name](p) for name in TRANSFORMER_MIX))(params)}
  out = {name: jax.grad(fns[name])(params) for name in (*COEFFICIENTS, "token_kl")}
  out["booster_first_order"] = jax.grad(lambda p: defences.booster_loss(
      model, p, TOKENS, align_weights, harmful_weights, lam=LAM, alpha=ALPHA, first_order=True))(params)
  return out


@functools.lru_cache
def case(config: ModelConfig, seed: int) -> dict:
  """Inputs and outputs of one model: params, aligned params, data, every value and gradient (numpy)."""
  scale = 0.5 if config.kind == "transformer" else 1.0
  model = build_model(config, DEPTH)
  inputs = {"params": random_params(config, seed, scale), "aligned": random_params(config, seed + 1, scale),
            "weights": jnp.asarray(data_weights(seed + 2)),
            "align_weights": jnp.asarray(data_weights(seed + 3, ALIGNED)),
            "harmful_weights": jnp.asarray(data_weights(seed + 4, UNALIGNED)),
            "betas": jnp.asarray(defences.TokenwiseBetas().betas(DEPTH))}
  args = tuple(inputs.values())
  zero = (jnp.zeros((N, DEPTH, WIDTH)) if config.kind == "transformer"
          else jax.tree_util.tree_map(jnp.zeros_like, inputs["params"]))
  values = evaluate(model, *args, zero)
  perturbation = values["vaccine_perturbation"]
  values = evaluate(model, *args, perturbation)  # the vaccine_fixed value at the perturbation of these params
  return {"model": model, **inputs, "values": values, "perturbation": perturbation,
          "gradients": gradients(model, *args, perturbation)}


def value(config, seed, name, **changes):
  """One value of `evaluate` for case(config, seed) with some inputs changed."""
  c = case(config, seed)
  names = ("params", "aligned", "weights", "align_weights", "harmful_weights", "betas")
  args = [jnp.asarray(changes[n]) if n in changes and not isinstance(changes[n], dict) else changes.get(n, c[n])
          for n in names]
  return evaluate(c["model"], *args, c["perturbation"])[name]


# The model's next-token distributions.

@pytest.mark.parametrize("config", [TABULAR, TRANSFORMER], ids=["tabular", "transformer"])
def test_next_token_log_probs_are_the_node_distributions(config):
  c = case(config, 0)
  log_probs, picked = np.asarray(c["values"]["next_token_log_probs"]), np.asarray(c["values"]["token_log_probs"])
  nodes = node_distributions(config, c["params"])
  for i in range(N):
    for j, (n, t) in enumerate(path(i)):
      np.testing.assert_allclose(np.exp(log_probs[i, j]), nodes[n], rtol=RTOL_FLOAT64, atol=1e-15)
      assert log_probs[i, j, t] == pytest.approx(picked[i, j], rel=RTOL_FLOAT64)


# 1. KL anchors.

@pytest.mark.parametrize("config", [TABULAR, TRANSFORMER], ids=["tabular", "transformer"])
def test_response_kl_matches_brute_force(config):
  c = case(config, 0)
  q, r = leaf_probs(node_distributions(config, c["params"])), leaf_probs(node_distributions(config, c["aligned"]))
  kl = float((q * np.log(q / r)).sum())
  assert float(c["values"]["response_kl"]) == pytest.approx(kl, rel=RTOL_FLOAT64)
  nll = nll_bruteforce(node_distributions(config, c["params"]), np.asarray(c["weights"]))
  assert float(c["values"]["kl_anchor_response"]) == pytest.approx(nll + BETA_RESPONSE * kl, rel=RTOL_FLOAT64)
  assert float(value(config, 0, "response_kl", aligned=c["params"])) == pytest.approx(0.0, abs=1e-14)


def kl_gradient_tabular(table, reference_table) -> np.ndarray:
  """Closed form d KL(q || r) / d logits of a tabular model by a backward recursion over the tree.

  V(n) = sum_a pi_n(a) (ln pi_n(a) / rho_n(a) + V(child)) is the KL of the subtree below n; the gradient at node n
  is reach(n) pi_n(b) (Q_b - sum_a pi_n(a) Q_a), Q_a = ln pi_n(a) / rho_n(a) + V(child a), children of EOS = 0.
  """
  pi, rho = tabular_nodes(table), tabular_nodes(reference_table)
  values, grad, reach = np.zeros(N), np.zeros((N, 3)), np.zeros(N)
  for n in reversed(range(N)):
    bits = BITS[n]
    q_values = np.zeros(3)
    for a in range(3):
      if pi[n, a] > 0:
        below = values[token_tree.leaf_index((*bits, a))] if a < 2 else 0.0
        q_values[a] = np.log(pi[n, a] / rho[n, a]) + below
    values[n] = (pi[n] * q_values).sum()
    grad[n] = pi[n] * (q_values - values[n])
    reach[n] = np.prod([pi[token_tree.leaf_index(bits[:j]), bits[j]] for j in range(len(bits))])
  return np.where(free_nodes()[:, None], reach[:, None] * grad, 0.0)


def test_kl_anchor_response_gradient_matches_closed_form_on_tabular():
  c = case(TABULAR, 0)
  expected = (nll_gradient_tabular(c["params"]["logits"], np.asarray(c["weights"]))
              + BETA_RESPONSE * kl_gradient_tabular(c["params"]["logits"], c["aligned"]["logits"]))
  np.testing.assert_allclose(np.asarray(c["gradients"]["kl_anchor_response"]["logits"]), expected,
                             rtol=RTOL_FLOAT64, atol=1e-14)


@pytest.mark.parametrize("config", [TABULAR, TRANSFORMER], ids=["tabular", "transformer"])
def test_token_kl_matches_brute_force(config):
  c = case(config, 0)
  weights = np.asarray(c["weights"])
  p, r = node_distributions(config, c["params"]), node_distributions(config, c["aligned"])
  per_node = kl_rows(p, r)
  expected = sum(weights[i] * sum(per_node[n] for n, _ in path(i)) for i in range(N)) / (weights * LENGTHS).sum()
  assert float(c["values"]["token_kl"]) == pytest.approx(expected, rel=RTOL_FLOAT64)
  anchored = nll_bruteforce(p, weights) + BETA_TOKEN * expected
  assert float(c["values"]["kl_anchor_token"]) == pytest.approx(anchored, rel=RTOL_FLOAT64)


@pytest.mark.parametrize("config", [TABULAR, TRANSFORMER], ids=["tabular", "transformer"])
def test_token_kl_along_the_models_own_distribution_is_the_response_kl(config):
  """Chain rule of KL: with w = q_theta the summed per-position KL equals KL(q_theta || q_aligned)."""
  c = case(config, 0)
  q = np.exp(np.asarray(c["values"]["leaf_log_probs"]))
  token_kl = float(value(config, 0, "token_kl", weights=q))
  assert token_kl * (q * LENGTHS).sum() == pytest.approx(float(c["values"]["response_kl"]), rel=RTOL_FLOAT64)


def test_token_kl_gradient_matches_closed_form_on_tabular():
  """d/dz_n = (W_n / token mass) pi_n (ln(pi_n / rho_n) - KL_n), W_n the data weight predicting at node n."""
  c = case(TABULAR, 0)
  weights = np.asarray(c["weights"])
  pi, rho = tabular_nodes(c["params"]["logits"]), tabular_nodes(c["aligned"]["logits"])
  visits = np.zeros(N)
  for i in range(N):
    for n, _ in path(i):
      visits[n] += weights[i]
  with np.errstate(divide="ignore", invalid="ignore"):
    per_node = np.where(pi > 0, pi * (np.log(pi / rho) - kl_rows(pi, rho)[:, None]), 0.0)
  expected = np.where(free_nodes()[:, None], visits[:, None] * per_node, 0.0) / (weights * LENGTHS).sum()
  np.testing.assert_allclose(np.asarray(c["gradients"]["token_kl"]["logits"]), expected, rtol=RTOL_FLOAT64,
                             atol=1e-14)


# 2. Token-wise constrained fine-tuning.

def test_default_betas_are_the_papers_setting():
  np.testing.assert_array_equal(defences.TokenwiseBetas().betas(7), [0.5, 2.0, 2.0, 2.0, 2.0, 0.1, 0.1])
  np.testing.assert_array_equal(defences.TokenwiseBetas(early_last=1, late=0.3).betas(3), [0.5, 0.3, 0.3])


@pytest.mark.parametrize("config", [TABULAR, TRANSFORMER], ids=["tabular", "transformer"])
def test_constrained_sft_matches_brute_force(config):
  c = case(config, 0)
  weights, betas = np.asarray(c["weights"]), np.asarray(c["betas"])
  p, r = node_distributions(config, c["params"]), node_distributions(config, c["aligned"])
  total = 0.0
  for i in range(N):
    for j, (n, t) in enumerate(path(i)):
      delta = np.log(p[n, t]) - np.log(r[n, t])
      total += weights[i] * ((2 / betas[j]) * (np.logaddexp(0.0, -betas[j] * delta) - np.log(2.0)) - np.log(r[n, t]))
  assert float(c["values"]["constrained"]) == pytest.approx(total / (weights * LENGTHS).sum(), rel=RTOL_FLOAT64)


def test_constrained_sft_reduces_to_the_token_nll_as_beta_goes_to_zero():
  """(2/b)(softplus(-b D) - ln 2) - ln r = -ln p + b D**2 / 4 + O(b**3): exact NLL at b = 0, slope E[D**2]/4."""
  c = case(TABULAR, 0)
  weights = np.asarray(c["weights"])
  nll = float(c["values"]["nll"])
  assert float(value(TABULAR, 0, "constrained", betas=np.zeros(DEPTH))) == pytest.approx(nll, rel=RTOL_FLOAT64)
  p, r = tabular_nodes(c["params"]["logits"]), tabular_nodes(c["aligned"]["logits"])
  squares = sum(weights[i] * np.log(p[n, t] / r[n, t]) ** 2 for i in range(N) for n, t in path(i))
  slope = squares / 4 / (weights * LENGTHS).sum()
  for beta in (1e-3, 1e-5, 1e-7):
    loss = float(value(TABULAR, 0, "constrained", betas=np.full(DEPTH, beta)))
    assert (loss - nll) / beta == pytest.approx(slope, rel=1e-5)


@hypothesis.given(seed=st.integers(0, 2**20), log_beta=st.floats(-4, 2))
def test_constrained_sft_is_the_nll_plus_a_nonnegative_penalty(seed, log_beta):
  params, aligned = random_params(TABULAR, seed), random_params(TABULAR, seed + 1)
  betas = 10.0 ** (log_beta + np.random.default_rng(seed).uniform(-1, 1, DEPTH))
  loss = float(value(TABULAR, 0, "constrained", params=params, aligned=aligned, betas=betas))
  nll = float(value(TABULAR, 0, "nll", params=params))
  assert loss >= nll - 1e-12
  assert float(value(TABULAR, 0, "constrained", params=params, aligned=params, betas=betas)) == pytest.approx(
      nll, rel=RTOL_FLOAT64)


# 3. Proximal term and Lisa.

def test_proximal_penalty_value_and_gradient():
  c = case(TRANSFORMER, 0)
  params, anchor = c["params"], c["aligned"]
  squares = sum(((np.asarray(p) - np.asarray(a)) ** 2).sum() for p, a in
                zip(jax.tree_util.tree_leaves(params), jax.tree_util.tree_leaves(anchor), strict=True))
  penalty, grads = jax.jit(jax.value_and_grad(defences.proximal_penalty), compiler_options=FAST_COMPILE)(
      params, anchor, 0.3)
  assert float(penalty) == pytest.approx(0.15 * squares, rel=RTOL_FLOAT64)
  for g, p, a in zip(*(jax.tree_util.tree_leaves(t) for t in (grads, params, anchor)), strict=True):
    np.testing.assert_allclose(np.asarray(g), 0.3 * (np.asarray(p) - np.asarray(a)), rtol=RTOL_FLOAT64)
  expected = nll_bruteforce(node_distributions(TRANSFORMER, params), np.asarray(c["weights"]))
  assert float(c["values"]["lisa"]) == pytest.approx(expected + RHO_LISA / 2 * squares, rel=RTOL_FLOAT64)
  with pytest.raises(ValueError, match="structure"):
    defences.proximal_penalty(params, {"embed": params["embed"]}, 1.0)


@hypothesis.given(k1=st.integers(0, 7), k2=st.integers(0, 7), total=st.integers(0, 40))
def test_lisa_phases_alternate_and_anchor_at_the_last_switch(k1, k2, total):
  hypothesis.assume(k1 + k2 > 0)
  schedule = defences.LisaSchedule(alignment_steps=k1, finetune_steps=k2)
  phases = schedule.phases(total)
  assert sum(phase.steps for phase in phases) == total
  start = 0
  for index, phase in enumerate(phases):
    assert phase.start == start == phase.anchor_step and phase.steps > 0
    assert (phase.state, phase.data) in (("alignment", "alignment"), ("finetune", "user"))
    if index and 0 not in (k1, k2):
      assert phase.state != phases[index - 1].state
    assert phase.steps == (k1 if phase.state == "alignment" else k2) or index == len(phases) - 1
    start += phase.steps
  by_step = [phase.state == "alignment" for phase in phases for _ in range(phase.steps)]
  assert by_step == [bool(schedule.is_alignment_step(step)) for step in range(total)]
  if phases:
    assert phases[0].state == ("alignment" if k1 else "finetune")


def test_lisa_step_rule_works_on_traced_steps():
  schedule = defences.LisaSchedule(alignment_steps=2, finetune_steps=3)
  np.testing.assert_array_equal(np.asarray(jax.jit(schedule.is_alignment_step)(jnp.arange(7))),
                                [True, True, False, False, False, True, True])


# 4. Booster.

def test_booster_penalty_is_the_exact_one_step_decrease():
  c = case(TABULAR, 0)
  table, align, harmful = c["params"]["logits"], np.asarray(c["align_weights"]), np.asarray(c["harmful_weights"])
  g = nll_gradient_tabular(table, harmful)
  stepped = np.asarray(table) - ALPHA * g / np.linalg.norm(g)
  decrease = nll_bruteforce(tabular_nodes(table), harmful) - nll_bruteforce(tabular_nodes(stepped), harmful)
  assert decrease > 0
  assert float(c["values"]["booster_penalty"]) == pytest.approx(decrease, rel=RTOL_FLOAT64)
  expected = nll_bruteforce(tabular_nodes(table), align) + LAM * decrease
  assert float(c["values"]["booster"]) == pytest.approx(expected, rel=RTOL_FLOAT64)


def test_booster_first_order_gradient_is_the_papers_update():
  """grad L_a + lam (grad L_h(theta) - grad L_h(theta')), theta' = theta - alpha g / ||g||, all in closed form."""
  c = case(TABULAR, 0)
  table, align, harmful = c["params"]["logits"], np.asarray(c["align_weights"]), np.asarray(c["harmful_weights"])
  g = nll_gradient_tabular(table, harmful)
  stepped = np.asarray(table) - ALPHA * g / np.linalg.norm(g)
  expected = nll_gradient_tabular(table, align) + LAM * (g - nll_gradient_tabular(stepped, harmful))
  first = np.asarray(c["gradients"]["booster_first_order"]["logits"])
  np.testing.assert_allclose(first, expected, rtol=RTOL_FLOAT64, atol=1e-14)
  full = np.asarray(c["gradients"]["booster"]["logits"])
  assert np.abs(full - first).max() > 1e-3 * np.abs(first).max()  # the second-order term through the step


def test_booster_without_harmful_gradient_adds_nothing():
  params = case(TABULAR, 0)["params"]
  constant = lambda p: jnp.asarray(1.0)  # noqa: E731 -- a harmful loss with zero gradient
  penalty, grads = jax.jit(jax.value_and_grad(lambda p: defences.booster_penalty(constant, p, 0.3)),
                           compiler_options=FAST_COMPILE)(params)
  assert float(penalty) == 0.0 and np.all(np.asarray(grads["logits"]) == 0.0)
  align = lambda p: jnp.asarray(2.5)  # noqa: E731
  assert float(defences.booster_objective(align, constant, params, lam=3.0, alpha=0.3)) == 2.5


# 5. Vaccine.

@functools.partial(jax.jit, compiler_options=FAST_COMPILE)
def embedding_variants(params, inputs, shift):
  """Transformer logits without a shift, with zero, shared (T, width) and per-response shifts, and with `shift`
  added to the position embeddings instead."""
  per_response = jnp.broadcast_to(shift[None], (*inputs.shape, shift.shape[-1]))
  moved = dict(params, position=params["position"].at[:inputs.shape[1]].add(shift))
  return {"plain": transformer.logits(params, inputs, 2),
          "zero": transformer.logits(params, inputs, 2, embedding_shift=jnp.zeros_like(shift)),
          "shared": transformer.logits(params, inputs, 2, embedding_shift=shift),
          "per_response": transformer.logits(params, inputs, 2, embedding_shift=per_response),
          "moved": transformer.logits(moved, inputs, 2)}


def test_embedding_shift_enters_the_transformer_as_an_embedding():
  """A shared shift is a shift of the position embeddings; (T, width) equals its broadcast; zero changes nothing."""
  params = case(TRANSFORMER, 0)["params"]
  inputs = likelihood.model_inputs(TOKENS)
  shift = jnp.asarray(np.random.default_rng(35).standard_normal((DEPTH, WIDTH)))
  out = {name: np.asarray(logits) for name, logits in embedding_variants(params, inputs, shift).items()}
  np.testing.assert_array_equal(out["zero"], out["plain"])
  np.testing.assert_array_equal(out["shared"], out["per_response"])
  np.testing.assert_allclose(out["shared"], out["moved"], rtol=1e-12, atol=1e-13)
  assert np.abs(out["shared"] - out["plain"]).max() > 1e-3
  with pytest.raises(ValueError, match="embedding_shift"):
    transformer.logits(params, inputs, 2, embedding_shift=jnp.zeros((DEPTH, WIDTH - 1)))


def shifted_nll(params, shift, weights):
  """Token NLL of the transformer with a per-response embedding shift, picking each leaf's free tokens directly."""
  rows, positions, tokens = np.array([(i, j, t) for i, bits in enumerate(BITS)
                                      for j, t in enumerate((*bits, EOS)) if j < DEPTH - 1]).T
  logits = transformer.logits(params, jnp.asarray(node_inputs()), 2, embedding_shift=shift)
  picked = jax.nn.log_softmax(logits, axis=-1)[rows, positions, tokens]
  log_q = jnp.zeros(N).at[rows].add(picked)
  return -(weights * log_q).sum() / (weights * LENGTHS).sum()


def test_vaccine_perturbation_is_the_normalised_gradient_on_a_transformer():
  c = case(TRANSFORMER, 0)
  shift = np.asarray(c["perturbation"])
  assert shift.shape == (N, DEPTH, WIDTH) and np.linalg.norm(shift) == pytest.approx(RHO_VACCINE, rel=RTOL_FLOAT64)
  weights = np.asarray(c["align_weights"])
  loss_at = jax.jit(lambda s: shifted_nll(c["params"], s, weights), compiler_options=FAST_COMPILE)
  # Steepest ascent: the slope along any direction u is ||g|| <u, shift / rho>, ||g|| the slope along the shift.
  slope = lambda u: (float(loss_at(STEP * u)) - float(loss_at(-STEP * u))) / (2 * STEP)  # noqa: E731
  steepest = slope(shift / RHO_VACCINE)
  assert steepest > 0
  for u in np.random.default_rng(51).standard_normal((6, *shift.shape)):
    assert slope(u) == pytest.approx(steepest * np.vdot(u, shift / RHO_VACCINE), rel=RTOL_FINITE_DIFFERENCE)
  assert float(c["values"]["vaccine"]) == pytest.approx(float(loss_at(jnp.asarray(shift))), rel=RTOL_FLOAT64)
  assert float(c["values"]["vaccine"]) > float(loss_at(jnp.zeros_like(shift)))


def test_vaccine_on_a_tabular_model_is_sharpness_aware_on_the_table():
  c = case(TABULAR, 0)
  table, weights = c["params"]["logits"], np.asarray(c["align_weights"])
  g = nll_gradient_tabular(table, weights)
  perturbed = np.asarray(table) + RHO_VACCINE * g / np.linalg.norm(g)
  assert float(c["values"]["vaccine"]) == pytest.approx(nll_bruteforce(tabular_nodes(perturbed), weights),
                                                        rel=RTOL_FLOAT64)
  np.testing.assert_allclose(np.asarray(c["perturbation"]["logits"]), RHO_VACCINE * g / np.linalg.norm(g),
                             rtol=RTOL_FLOAT64, atol=1e-14)
  # The table's gradient is taken at the perturbed table, the perturbation held constant.
  np.testing.assert_allclose(np.asarray(c["gradients"]["vaccine"]["logits"]), nll_gradient_tabular(perturbed, weights),
                             rtol=RTOL_FLOAT64, atol=1e-14)


def test_vaccine_with_zero_radius_is_the_alignment_loss_on_an_ngram_model():
  params = random_params(NGRAM, 41)
  model = build_model(NGRAM, DEPTH)
  weights = jnp.asarray(data_weights(42))
  run = jax.jit(lambda p: (likelihood.weighted_token_nll(model, p, TOKENS, weights),
                           defences.vaccine_loss(model, p, TOKENS, weights, 0.0),
                           defences.vaccine_loss(model, p, TOKENS, weights, 0.3)), compiler_options=FAST_COMPILE)
  plain, at_zero, at_radius = (float(x) for x in run(params))
  assert at_zero == pytest.approx(plain, rel=RTOL_FLOAT64) and at_radius > plain


# Every gradient against central finite differences (booster through its inner step; vaccine at a fixed shift).

@pytest.mark.parametrize("config", [TABULAR, TRANSFORMER], ids=["tabular", "transformer"])
def test_gradients_match_finite_differences(config):
  c = case(config, 0)
  direction = random_params(config, 50)

  def mix(params):
    values = evaluate(c["model"], params, c["aligned"], c["weights"], c["align_weights"], c["harmful_weights"],
                      c["betas"], c["perturbation"])
    names = [name for name in COEFFICIENTS if config.kind != "transformer" or name in TRANSFORMER_MIX]
    return sum(COEFFICIENTS[name] * float(values["vaccine_fixed" if name == "vaccine" else name]) for name in names)

  fd = (mix(tree_sum(c["params"], direction, STEP)) - mix(tree_sum(c["params"], direction, -STEP))) / (2 * STEP)
  if config.kind == "transformer":
    ad = tree_dot(c["gradients"]["mix"], direction)
  else:
    ad = sum(COEFFICIENTS[name] * tree_dot(c["gradients"][name], direction) for name in COEFFICIENTS)
  assert ad == pytest.approx(fd, rel=RTOL_FINITE_DIFFERENCE)


# Bad input.

def test_bad_input_raises_one_line_value_errors():
  c = case(TABULAR, 0)
  model, params, weights = c["model"], c["params"], np.asarray(c["weights"])
  reference = c["values"]["token_log_probs"]
  cases = [
      lambda: defences.kl_anchor_response_loss(model, params, TOKENS, weights, jnp.zeros(N), -1.0),
      lambda: defences.response_kl_nats(model, params, jnp.zeros(N - 1)),
      lambda: defences.token_kl_nats(model, params, TOKENS, weights[:-1], jnp.zeros((N, DEPTH, 3))),
      lambda: defences.constrained_sft_loss(model, params, TOKENS, weights, reference, np.full(DEPTH, -0.1)),
      lambda: defences.constrained_sft_loss(model, params, TOKENS, weights, reference, np.ones(DEPTH + 1)),
      lambda: defences.TokenwiseBetas(first=float("nan")),
      lambda: defences.TokenwiseBetas(early_last=0),
      lambda: defences.TokenwiseBetas().betas(0),
      lambda: defences.LisaSchedule(alignment_steps=0, finetune_steps=0),
      lambda: defences.LisaSchedule(rho=-1.0),
      lambda: defences.LisaSchedule().phases(-1),
      lambda: defences.booster_loss(model, params, TOKENS, weights, weights, lam=1.0, alpha=-0.1),
      lambda: defences.booster_loss(model, params, TOKENS, weights, weights, lam=float("inf"), alpha=0.1),
      lambda: defences.vaccine_loss(model, params, TOKENS, weights, True),
  ]
  for bad in cases:
    with pytest.raises(ValueError) as error:
      bad()
    assert "\n" not in str(error.value)
