"""End-to-end rebound, model-size and pretrain-volume on tiny grids; config checks; summary statistics."""

import json
import re

import numpy as np
import pytest

from elasticity_cli import figure_rebound, reproduce_questions
from elasticity_cli.main import main
from theory import records
from toy_models import config_io, datasets, rebound_summary
from toy_models.rebound_config import ReboundConfig, experiment_config

TINY = ["--depth", "4", "--seeds", "2", "--first-sizes", "20,60", "--second-sizes", "0,10,30",
        "--pretrain-masses", "200", "--model-sizes", "8x1"]
ONE_BATCH_SIZE = """
[pretrain]
batch_size = 10
[first]
batch_size = 10
"""  # every stage at batch 10: one compiled training program per objective and model, so the tests stay fast


@pytest.fixture(scope="module")
def toml(tmp_path_factory):
  path = tmp_path_factory.mktemp("config") / "tiny.toml"
  path.write_text(ONE_BATCH_SIZE)
  return str(path)


@pytest.fixture(scope="module")
def simulate(toml):
  def call(experiment, out_dir, *extra):
    return main(["simulate", experiment, "--config", toml, *TINY, *extra, "--out-dir", str(out_dir)])
  return call


@pytest.fixture(scope="module")
def rebound_run(tmp_path_factory, simulate):
  out = tmp_path_factory.mktemp("rebound")
  assert simulate("rebound", out) == 0
  return out


def test_rebound_end_to_end(rebound_run):
  config = config_io.build(ReboundConfig, records.read_json(rebound_run / "config.json")["config"])
  assert config.methods == ("sft", "dpo") and config.orders == ("positive_first", "negative_first")
  summary = json.loads((rebound_run / "summary.json").read_text())["summary"]
  assert len(summary["cells"]) == 4 and summary["verdicts"]
  for order in config.orders:
    arrays = records.read_npz(rebound_run / "units" / f"pareto_w8L1_p200_{order}.npz")
    score = arrays["score"]
    assert score.shape == (2, 2, 2, 3)  # (methods, seeds, n_first, n_second)
    assert np.all(np.isfinite(score)) and np.all((score >= 0) & (score <= 1))
    np.testing.assert_array_equal(score[0, ..., 0], score[1, ..., 0])  # n2 = 0 is the first-stage model for both
    q = np.exp2(arrays["log2q_bits"])
    np.testing.assert_allclose(q.sum(axis=-1), 1.0, atol=1e-9)
    positive = q[..., datasets.aligned_mask(4)].sum(axis=-1)
    np.testing.assert_allclose(arrays["positive_score"], positive, atol=1e-12)
    np.testing.assert_allclose(score, positive if order == "positive_first" else 1 - positive, atol=1e-12)
    assert np.all(arrays["kl_to_pretrained_nats"] >= -1e-12)
    # Aligning on the first stage's behaviour raises its share above the pre-trained model's in every run.
    assert np.all(score[0, ..., 0] > arrays["pretrained_score"][:, None])


def test_rebound_resumes_and_refuses_another_config(rebound_run, simulate, capsys):
  unit = rebound_run / "units" / "pareto_w8L1_p200_positive_first.json"
  before = unit.stat().st_mtime_ns
  assert simulate("rebound", rebound_run) == 0
  assert unit.stat().st_mtime_ns == before
  capsys.readouterr()
  assert simulate("rebound", rebound_run, "--seeds", "3") == 2
  assert "holds results of another config (differs in seeds)" in capsys.readouterr().err


def test_model_size_and_pretrain_volume_report_trends(tmp_path, simulate):
  assert simulate("model-size", tmp_path / "size", "--model-sizes", "4x1,8x1") == 0
  summary = json.loads((tmp_path / "size" / "summary.json").read_text())["summary"]
  (trend,) = summary["trends"]
  assert trend["factor"] == "parameters" and trend["levels"][0] < trend["levels"][1]
  assert "larger model -> faster early fall" in trend["verdicts"][0]
  assert "larger model -> slower late decline" in trend["verdicts"][1]
  assert simulate("pretrain-volume", tmp_path / "volume", "--pretrain-masses", "50,400") == 0
  summary = json.loads((tmp_path / "volume" / "summary.json").read_text())["summary"]
  (trend,) = summary["trends"]
  assert trend["factor"] == "pretrain_tokens" and trend["levels"][0] < trend["levels"][1]
  files = figure_rebound.draw(tmp_path, tmp_path / "figs", {"model-size": "size", "pretrain-volume": "volume"})
  assert [f.name for f in files] == ["model_size.png", "pretrain_volume.png"] and all(f.stat().st_size for f in files)


def test_rebound_figure_is_drawn_from_the_saved_run(rebound_run, tmp_path):
  paths = figure_rebound.draw(rebound_run.parent, tmp_path, {"rebound": rebound_run.name})
  assert [p.name for p in paths] == ["rebound.png", "rebound_rates.png"]
  assert all(p.stat().st_size > 10_000 for p in paths)


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


def test_unknown_experiment_and_bad_flag():
  with pytest.raises(ValueError, match="unknown rebound experiment 'size'"):
    experiment_config("size")
  with pytest.raises(SystemExit) as exit_:
    main(["simulate", "model-size", "--model-sizes", "8y1"])
  assert exit_.value.code == 2


def test_conditional_behaviours_are_pretraining_restricted_to_each_subtree():
  config = ReboundConfig(depth=6)
  probs = config.sources("zipf", 1)
  mask = datasets.aligned_mask(6)
  np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-12)
  np.testing.assert_allclose(probs[1], np.where(mask, probs[0], 0) / probs[0][mask].sum(), rtol=1e-12)
  np.testing.assert_allclose(probs[2], np.where(~mask, probs[0], 0) / probs[0][~mask].sum(), rtol=1e-12)
  independent = ReboundConfig(depth=6, behaviours="independent").sources("zipf", 1)
  assert not np.allclose(independent[1], probs[1])


def test_mixture_examples_to_revert_matches_the_mixture_share():
  rng = np.random.default_rng(3)
  share, n_pretrain, first = rng.uniform(0.1, 0.9, 5), 1e5, np.array([1000.0, 10000.0])
  needed = reproduce_questions.mixture_examples_to_revert(first, share)
  mixed = (n_pretrain * share[:, None] + first) / (n_pretrain + first + needed)
  np.testing.assert_allclose(mixed, np.broadcast_to(share[:, None], mixed.shape), rtol=1e-12)


def test_sequential_slope_answer_on_known_slopes():
  def entry(mean, half):
    return {"by_l": {"0.003": {"slope_mean": mean, "slope_ci95": half, "theory_slope": 1.0,
                               "share_paper_signs": 1.0}}}

  summary = {"exact": entry(1.0, 0.001), "flat": entry(0.02, 0.1), "wide": entry(-0.3, 1.5),
             "between": entry(0.5, 0.1), "none": entry(float("nan"), float("nan")), "acceptance": {}}
  lines = dict(zip(["exact", "flat", "wide", "between", "none"],
                   reproduce_questions.sequential_slope_answer(summary, 0.003), strict=True))
  assert "matches the exact mixture" in lines["exact"]
  assert "consistent with 0" in lines["flat"]
  assert "inconclusive" in lines["wide"] and "matches" not in lines["wide"]
  assert "neither 0 nor 1" in lines["between"]
  assert "no slope" in lines["none"]


def test_early_drop_undone_share_and_tension_on_known_curves():
  x = np.array([0.0, 100.0, 1000.0])
  score = np.array([[[0.9, 0.5, 0.4], [0.8, 0.6, 0.5]]])  # (seeds=1, n_first=2, n_second=3)
  np.testing.assert_allclose(rebound_summary.early_drop(score, x), [[0.004, 0.002]])
  np.testing.assert_allclose(rebound_summary.undone_share(score, np.array([0.4]), x), [[0.8, 0.5]])
  rising = np.array([[100.0, 200.0, 300.0], [150.0, 250.0, 400.0]])
  assert rebound_summary.tension([1, 2, 3], rising)["rho"] > 0.9  # ties in the pooled levels keep it below 1
  assert rebound_summary.tension([1, 2, 3], rising[:, ::-1])["rho"] < -0.9
  assert rebound_summary.tension([1, 2, 3], np.full((2, 3), np.inf))["rho"] is None


def test_default_grids_span_what_the_paper_experiments_need():
  """model-size: >= 3 sizes over >= 20x in parameters; pretrain-volume: >= 4 budgets over >= 30x in tokens."""
  from toy_models.models import build_model

  sizes = experiment_config("model-size")
  counts = [build_model(sizes.model_config(size), sizes.depth).parameter_count() for size in sizes.model_sizes]
  assert len(counts) >= 3 and max(counts) / min(counts) >= 20
  volume = experiment_config("pretrain-volume")
  masses = np.asarray(volume.pretrain_masses)
  # Every budget samples the same D_p, so tokens follow responses up to sampling noise: keep a 5% margin.
  assert masses.size >= 4 and masses.max() / masses.min() >= 30 / 0.95
