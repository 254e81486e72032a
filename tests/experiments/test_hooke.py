"""Hooke's law: the acceptance passes where the theory must hold and fails on a planted config; slopes, verdicts."""

import re

import numpy as np
import pytest

from experiments import registry, runner
from experiments.hooke import summary as hooke_summary
from experiments.hooke.config import HookeConfig
from theory import elasticity, mixture
from theory.conventions import ALIGN, PRETRAIN


def test_tabular_joint_matches_the_exact_mixture_and_passes(tiny_runs):
  _, config, summary, reader = tiny_runs["hooke"]
  acceptance = summary["acceptance"]
  assert acceptance["passed"] is True
  assert acceptance["tabular_joint_max_rate_gap_bits"] <= hooke_summary.RATE_TOLERANCE_BITS
  assert abs(acceptance["tabular_joint_slope_at_smallest_l"] - 1) <= hooke_summary.SLOPE_TOLERANCE
  _, arrays = reader.load("tabular_joint_k100")
  # The theory's ratio at l = 0 on the same data is -k exactly (claim 5b): the model's finite-l ratio is near it.
  np.testing.assert_allclose(arrays["theory_ratio_at_0"], -100.0, rtol=1e-9)
  rates = arrays["rate_bits_per_response"]
  np.testing.assert_allclose(rates, arrays["theory_mixture_rate_bits"], atol=hooke_summary.RATE_TOLERANCE_BITS)


def test_a_planted_config_fails_the_acceptance(tmp_path):
  """Two training steps cannot reach the mixture: the acceptance must say FAILED."""
  experiment = registry.get("hooke")
  config = experiment.config("tiny", {"models": ["tabular"], "regimes": ["joint"],
                                      "tabular_plan": {"joint": {"steps": 2}}})
  summary = runner.run(experiment, config, tmp_path, show_progress=False)
  assert summary["acceptance"]["passed"] is False
  assert summary["acceptance"]["tabular_joint_max_rate_gap_bits"] > hooke_summary.RATE_TOLERANCE_BITS
  assert "FAILED" in hooke_summary.format_summary(summary, config)


def test_slope_per_seed_recovers_known_power_laws():
  k = np.array([10.0, 100.0, 1000.0])
  ratio = np.stack([-3.0 * k, 2.0 * k**0.5, -np.full(3, 7.0)], axis=1)  # (k, seeds): slopes 1, 0.5, 0
  np.testing.assert_allclose(hooke_summary.slope_per_seed(k, ratio), [1.0, 0.5, 0.0], atol=1e-12)


def test_verdicts_joint_is_a_consistency_check_sequential_is_a_test(tiny_runs):
  _, config, summary, _ = tiny_runs["hooke"]
  smallest = f"{min(config.l_grid):g}"
  by_key = {v["key"]: v for v in summary["verdicts"]}
  for key, entry in summary["models"].items():
    verdict = by_key[key]
    assert verdict["consistency_check"] == (entry["regime"] == "joint")
    np.testing.assert_allclose(verdict["per_seed"], entry["by_l"][smallest]["slopes"])
    assert verdict["effect"]["estimate"] == pytest.approx(np.mean(entry["by_l"][smallest]["slopes"]))


def test_theory_columns_are_the_exact_mixture_of_the_same_data(tiny_runs):
  _, config, _, reader = tiny_runs["hooke"]
  _, arrays = reader.load("ngram_sequential_k10")
  from experiments.hooke.run import unit_data

  data = unit_data(config, 10.0)
  flat = mixture.compression_rates(data["probs"].reshape(-1, 3, data["probs"].shape[-1]), data["sizes"].reshape(-1, 3))
  np.testing.assert_allclose(arrays["theory_mixture_rate_bits"].reshape(-1, 3), flat, rtol=1e-12)
  ratio = elasticity.derivative_ratio(data["probs"][:, 0], data["sizes"][:, 0])
  np.testing.assert_allclose(arrays["theory_ratio_at_0"], ratio, rtol=1e-12)
  delta = arrays["rate_bits_per_response"] - arrays["rate_bits_per_response"][:, :1]
  assert np.all(delta[:, 1:, PRETRAIN] < 0) and np.all(delta[:, 1:, ALIGN] > 0)  # sequential: the paper's signs


@pytest.mark.parametrize("changes, message", [
    ({"k_grid": (-1.0, 10.0)}, "k_grid value -1.0"),
    ({"k_grid": (10.0,)}, "k_grid=[10.0] has one value"),
    ({"l_grid": (0.0,)}, "l_grid value 0.0"),
    ({"models": ("gpt",)}, "'gpt'"),
    ({"sampling": "sampled", "l_grid": (0.001,)}, "less than one sampled response"),
])
def test_bad_configs_give_one_line_errors(changes, message):
  with pytest.raises(ValueError, match=re.escape(message)) as error:
    HookeConfig(**changes)
  assert "\n" not in str(error.value)
