"""The counterexamples behind refuted and conditional claims are real: recomputed here by other means."""

import math

import hypothesis
import numpy as np
import pytest
from hypothesis import given

import proofs_check
from proofs_check import coding_checks, derivatives, elasticity_checks, pareto_study, strategies
from proofs_check.configs import ALIGN, LAYOUTS, PERTURB, PRETRAIN, CodeConfig, ElasticityConfig
from theory import compression, conventions, elasticity, mixture, token_tree


def _fd(config: ElasticityConfig) -> np.ndarray:
  fd, _ = derivatives.finite_differences(config)
  return fd


def test_paper_formula_counterexample_by_hand():
  # Huffman code {0, 10, 11} for (1/2, 1/4, 1/4): 1/2 * 1 + 2 * 1/4 * 2 = 1.5 bits = H; ceil(H) = 2.
  probs = np.array([0.5, 0.25, 0.25])
  assert compression.huffman_code_lengths(probs).tolist() == [1, 2, 2]
  assert float(compression.entropy_bits(probs)) == 1.5
  assert float(compression.paper_ideal_code_length(probs, 1, 2)) == 2.0
  example = coding_checks.paper_formula_counterexample()
  assert example["reproduced"] and example["paper_bits"] == 2.0 and example["huffman_bits"] == 1.5


def test_refuted_claims_shrunk_counterexamples_fail_the_statement():
  for claim_id in ("1b", "7b", "8b"):
    result = proofs_check.run_claim(claim_id, examples=60, seed=0)
    shrunk = result.shrunk_counterexample
    assert shrunk is not None, claim_id
    claim = proofs_check.BY_ID[claim_id]
    config_type = CodeConfig if claim_id == "1b" else ElasticityConfig
    config = config_type.from_dict(shrunk["config"])
    assert not claim.evaluate(config).holds
    if claim_id != "1b":  # recompute the signs from finite differences of the rates
      d = elasticity.rate_derivatives(config.probabilities(), config.sizes())
      fd = _fd(config)
      assert np.sign(fd[PRETRAIN]) == np.sign(d[PRETRAIN]) and np.sign(fd[ALIGN]) == np.sign(d[ALIGN])
      assert not (fd[PRETRAIN] < 0 < fd[ALIGN])


def test_disjoint_perturbation_gives_ratio_plus_one_at_every_l():
  example = elasticity_checks.disjoint_counterexample()
  assert example["reproduced"]
  config = ElasticityConfig.from_dict(example["config"])
  assert not derivatives.covered_at_zero(config)
  for l in (0.0, 1e-3, 1.0):
    at_l = config.with_l(l)
    fd = _fd(at_l)  # finite differences of compression_rates, not theory's derivative
    n_a_over_n = 1.0 / (at_l.k + 1 + l)
    assert fd[PRETRAIN] == pytest.approx(n_a_over_n / math.log(2), rel=1e-6)
    assert fd[ALIGN] == pytest.approx(fd[PRETRAIN], rel=1e-6)
    assert fd[ALIGN] / fd[PRETRAIN] == pytest.approx(1.0, rel=1e-6)  # not -k = -100


def test_uncovered_perturbation_breaks_the_sign_equivalence():
  example = elasticity_checks.uncovered_sign_counterexample()
  assert example["reproduced"]
  fd = _fd(ElasticityConfig.from_dict(example["config"]))
  assert fd[PRETRAIN] > 0 and fd[ALIGN] > 0  # E_{P_t}[P_a/q] = 0 < 1, yet both rates rise


def test_alignment_like_perturbation_flips_signs_and_keeps_ratio():
  example = elasticity_checks.alignment_like_counterexample()
  assert example["reproduced"]
  config = ElasticityConfig.from_dict(example["config"])
  P, sizes = config.probabilities(), config.sizes()
  q = mixture.size_weighted_mixture(P, sizes)
  assert (P[ALIGN] ** 2 / q).sum() > 1  # E_{P_a}[P_a/q] > 1 (Cauchy-Schwarz, P_a != q)
  fd = _fd(config)
  assert fd[ALIGN] < 0 < fd[PRETRAIN]
  assert fd[ALIGN] / fd[PRETRAIN] == pytest.approx(-config.k, rel=1e-5)


def test_pareto_sign_counterexample_is_pareto_and_real():
  example = pareto_study.pareto_sign_counterexample()
  config = ElasticityConfig.from_dict(example["config"])
  assert {config.pretrain.family, config.align.family, config.perturb.family} == {"pareto"}
  assert config.l <= 1e-2 and example["reproduced"]
  fd = _fd(config)
  assert fd[ALIGN] < 0 < fd[PRETRAIN]


@given(strategies.small_alphabets())
def test_huffman_matches_brute_force_on_small_alphabets(config):
  probs = config.probabilities()
  assert float(compression.expected_code_length(probs, probs)) == pytest.approx(
      coding_checks.brute_force_optimal_length(probs), abs=1e-12)


def test_brute_force_is_not_fooled_by_a_suboptimal_code():
  probs = np.array([0.4, 0.3, 0.2, 0.1])
  assert coding_checks.brute_force_optimal_length(probs) == pytest.approx(1.9)  # lengths 1, 2, 3, 3
  with pytest.raises(ValueError, match="7 symbols"):
    coding_checks.brute_force_optimal_length(np.full(7, 1 / 7))


@given(strategies.elasticity_configs())
def test_strategy_configs_are_valid_and_layouts_mean_what_they_say(config):
  P, sizes = config.probabilities(), config.sizes()
  assert P.shape == (3, 2**config.depth - 1)
  np.testing.assert_allclose(P.sum(axis=1), 1.0, atol=1e-12)
  assert 1.0 <= config.k <= 1e6 and 0.0 <= config.l <= 10.0
  assert sizes[PERTURB] == pytest.approx(config.l * sizes[ALIGN])
  if config.layout == "disjoint" and config.perturb not in (config.pretrain, config.align):
    assert not derivatives.covered_at_zero(config)
  elif config.layout != "disjoint":
    assert derivatives.covered_at_zero(config)
  aligned = token_tree.prefix_mask(config.depth, conventions.ALIGNED_PREFIX)
  if config.layout != "shared":  # D_a lives on the aligned subtree of theory.conventions
    assert np.all(P[ALIGN][~aligned] == 0)
  if config.layout in ("unaligned", "disjoint") and config.perturb not in (config.pretrain, config.align):
    assert np.all(P[PERTURB][~token_tree.prefix_mask(config.depth, conventions.UNALIGNED_PREFIX)] == 0)
    assert P[PERTURB][aligned].sum() == 0


def test_layouts_use_the_shared_conventions():
  assert LAYOUTS["unaligned"] == ((), conventions.ALIGNED_PREFIX, conventions.UNALIGNED_PREFIX)
  assert LAYOUTS["disjoint"] == (conventions.ALIGNED_PREFIX, conventions.ALIGNED_PREFIX, conventions.UNALIGNED_PREFIX)
  for layout, (support_p, support_a, support_t) in LAYOUTS.items():
    if layout != "shared":
      assert support_a == conventions.ALIGNED_PREFIX
    if layout == "nested":  # D_t inside D_a inside D_p
      assert support_t[:len(support_a)] == support_a and support_p == ()
  assert (PRETRAIN, ALIGN, PERTURB) == (conventions.PRETRAIN, conventions.ALIGN, conventions.PERTURB)


@hypothesis.settings(max_examples=10)
@given(strategies.pareto_configs())
def test_pareto_strategy_draws_distinct_pareto_datasets(config):
  specs = (config.pretrain, config.align, config.perturb)
  assert {s.family for s in specs} == {"pareto"}
  assert len({s.seed for s in specs}) == 3
  assert 1e-4 <= config.l <= 1e-2
