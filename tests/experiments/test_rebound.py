"""The rebound family: exact identities of the saved runs, normalised curves, tests, config checks, grids."""

import re

import numpy as np
import pytest

from experiments import records, registry, runner, statistics
from experiments.hooke.report import slope_reading
from experiments.rebound import summary as rebound_summary
from experiments.rebound.config import ReboundConfig
from experiments.rebound.report import mixture_examples_to_revert
from toy_models import datasets
from toy_models.models import build_model


def test_saved_rebound_runs_satisfy_their_identities(tiny_runs):
  _, config, summary, reader = tiny_runs["rebound"]
  assert config.methods == ("sft", "dpo") and config.orders == ("positive_first", "negative_first")
  assert len(summary["cells"]) == 4
  for order in config.orders:
    _, arrays = reader.load(f"pareto_w4L1_p400_{order}")
    score = arrays["score"]
    assert score.shape == (2, config.seeds, 2, 3)  # (methods, seeds, n_first, n_second)
    assert np.all((score >= 0) & (score <= 1))
    np.testing.assert_array_equal(score[0, ..., 0], score[1, ..., 0])  # n2 = 0 is the first-stage model for both
    q = np.exp2(arrays["log2q_bits"])
    np.testing.assert_allclose(q.sum(axis=-1), 1.0, atol=1e-9)
    positive = q[..., datasets.aligned_mask(config.depth)].sum(axis=-1)
    np.testing.assert_allclose(arrays["positive_score"], positive, atol=1e-12)
    np.testing.assert_allclose(score, positive if order == "positive_first" else 1 - positive, atol=1e-12)
    assert np.all(arrays["kl_to_pretrained_nats"] >= -1e-12)


def test_summary_curves_are_the_saved_scores_normalised(tiny_runs):
  """The summary's share undone equals (s(0) - s(n)) / (s(0) - s_pre) recomputed from the unit's arrays."""
  _, config, summary, reader = tiny_runs["rebound"]
  _, arrays = reader.load("pareto_w4L1_p400_positive_first")
  score, pretrained = arrays["score"][1], arrays["pretrained_score"]  # DPO
  gain = score[..., :1] - pretrained[:, None, None]
  expected = (score[..., :1] - score) / gain
  cell = summary["cells"]["pareto_w4L1_p400_positive_first dpo"]
  np.testing.assert_allclose(cell["undone_share"]["mean"], expected.mean(axis=0), rtol=1e-12)
  assert {v["key"] for v in summary["verdicts"]} >= {"pareto_w4L1_p400_positive_first dpo/decay",
                                                     "pareto_w4L1_p400_positive_first dpo/first-stage trend"}


def test_each_family_member_tests_only_its_pre_registered_claims(tiny_runs):
  keys = {name: [v["key"].rsplit("/", 1)[1] for v in tiny_runs[name][2]["verdicts"]]
          for name in ("rebound", "families", "model-size", "pretrain-volume")}
  assert set(keys["rebound"]) == {"decay", "first-stage trend"} and len(keys["rebound"]) == 8
  assert keys["families"] == ["decay", "decay"]
  late = tiny_runs["model-size"][1].second_sizes[-2] >= rebound_summary.LATE_FROM  # the late decline needs its points
  assert keys["model-size"] == ["size_trend"] + (["size_late_trend"] if late else [])
  assert keys["pretrain-volume"] == ["volume_trend"]
  (trend,) = tiny_runs["model-size"][2]["trends"]
  assert trend["factor"] == "parameter_count" and trend["levels"][0] < trend["levels"][1]


def test_resume_reuses_units_and_another_config_is_refused(tiny_runs):
  experiment, config, summary, reader = tiny_runs["rebound"]
  unit = reader.unit_path("pareto_w4L1_p400_positive_first")
  before = unit.stat().st_mtime_ns
  assert records.plain(runner.run(experiment, config, reader.path, show_progress=False)) == records.plain(summary)
  assert unit.stat().st_mtime_ns == before
  with pytest.raises(ValueError, match=r"holds results of another config \(differs in seeds\)"):
    runner.run(experiment, experiment.config("tiny", {"seeds": 3}), reader.path, show_progress=False)


def test_undone_share_half_life_and_late_slope_on_known_curves():
  n = np.array([0.0, 10.0, 100.0, 1000.0])
  score = np.array([[[0.9, 0.7, 0.5, 0.45], [0.8, 0.8, 0.6, 0.5]]])  # (seeds=1, n_first=2, n_second=4)
  u = rebound_summary.undone_share(score, np.array([0.5]))
  np.testing.assert_allclose(u, [[[0.0, 0.5, 1.0, 1.125], [0.0, 0.0, 2 / 3, 1.0]]])
  np.testing.assert_allclose(rebound_summary.censored_half_life(n, u), [[10.0, 10 + 0.5 / (2 / 3) * 90]])
  never = rebound_summary.censored_half_life(n, np.zeros((1, 4)))
  assert never[0] == rebound_summary.CENSOR * 1000.0
  flat_start = rebound_summary.undone_share(np.full((1, 1, 4), 0.5), np.array([0.5]))  # no gain: undefined
  assert np.all(np.isnan(flat_start))
  grid = np.array([0.0, 100.0, 500.0, 2000.0])
  np.testing.assert_allclose(rebound_summary.late_slope(grid, np.array([0.0, 0.9, 1.0, 1.3])), 0.3 / 1500)


def test_mixture_examples_to_revert_matches_the_mixture_share():
  rng = np.random.default_rng(3)
  share, n_pretrain, first = rng.uniform(0.1, 0.9, 5), 1e5, np.array([1000.0, 10000.0])
  needed = mixture_examples_to_revert(first, share)
  mixed = (n_pretrain * share[:, None] + first) / (n_pretrain + first + needed)
  np.testing.assert_allclose(mixed, np.broadcast_to(share[:, None], mixed.shape), rtol=1e-12)


def test_slope_reading_on_known_slopes():
  def row(mean, half):
    return {"slope_mean": mean, "slope_ci95": half, "theory_slope": 1.0}

  assert "matches the exact mixture" in slope_reading(row(1.0, 0.001))
  assert "consistent with 0" in slope_reading(row(0.02, 0.1))
  assert "inconclusive" in slope_reading(row(-0.3, 1.5))
  assert "neither 0 nor" in slope_reading(row(0.5, 0.1))
  assert "no slope" in slope_reading(row(float("nan"), float("nan")))


@pytest.mark.parametrize("changes, message", [
    ({"first_sizes": (100, 50)}, "increasing order"),
    ({"first_sizes": (-5,)}, "first_sizes=[-5]"),
    ({"second_sizes": (10, 20, 30)}, "0 first"),
    ({"methods": ("ppo",)}, "methods=['ppo']"),
    ({"model_sizes": ((7, 1),)}, "heads=2 does not divide width=7"),
    ({"pretrain_masses": (float("nan"),)}, "pretrain_mass=nan"),
    ({"epsilon_nats": 0.0}, "epsilon_nats=0.0"),
    ({"behaviours": "mixed"}, "unknown behaviours 'mixed'"),
    ({"depth": 40}, "depth=40"),
])
def test_bad_configs_give_one_line_errors(changes, message):
  with pytest.raises(ValueError, match=re.escape(message)) as error:
    ReboundConfig(**changes)
  assert "\n" not in str(error.value)


def test_conditional_behaviours_are_pretraining_restricted_to_each_subtree():
  config = ReboundConfig(depth=6)
  probs = config.sources("zipf", 1)
  mask = datasets.aligned_mask(6)
  np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-12)
  np.testing.assert_allclose(probs[1], np.where(mask, probs[0], 0) / probs[0][mask].sum(), rtol=1e-12)
  np.testing.assert_allclose(probs[2], np.where(~mask, probs[0], 0) / probs[0][~mask].sum(), rtol=1e-12)
  independent = ReboundConfig(depth=6, behaviours="independent").sources("zipf", 1)
  assert not np.allclose(independent[1], probs[1])


def test_default_grids_span_what_the_paper_experiments_need():
  """model-size: >= 3 sizes over >= 20x in parameters; pretrain-volume: >= 4 budgets over >= 30x in tokens; every
  rebound grid reaches below 100 negatives (where the decay test looks) and every default has >= 10 seeds."""
  sizes = registry.get("model-size").config("default")
  counts = [build_model(sizes.model_config(size), sizes.depth).parameter_count() for size in sizes.model_sizes]
  assert len(counts) >= 3 and max(counts) / min(counts) >= 20
  volume = registry.get("pretrain-volume").config("default")
  masses = np.asarray(volume.pretrain_masses)
  assert masses.size >= 4 and masses.max() / masses.min() >= 30 / 0.95  # tokens follow responses up to sampling
  for name in ("rebound", "model-size", "pretrain-volume", "families"):
    config = registry.get(name).config("default")
    assert config.seeds >= 10 and sum(0 < n < 100 for n in config.second_sizes) >= 3


def test_decay_test_cannot_pass_a_curve_that_only_flattens_at_its_floor():
  """The statistic the verdicts use, on the default grid: linear until back at the pre-trained level, then flat."""
  n = np.asarray(registry.get("rebound").config("default").second_sizes, dtype=np.float64)
  rng = np.random.default_rng(0)
  linear = np.minimum(1.0, n[None, :] / rng.uniform(150, 400, size=(10, 1)))
  assert statistics.decay_against_linear(n, linear).test.p_value > 0.05
  decaying = 1.0 - np.exp(-n[None, :] / rng.uniform(20, 40, size=(10, 1)))
  assert statistics.decay_against_linear(n, decaying).test.p_value < 0.01
