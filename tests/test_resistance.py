"""End-to-end resistance experiment on a tiny grid: saved files, exact identities, resuming, CLI, config checks."""

import argparse
import dataclasses
import re

import numpy as np
import pytest

from elasticity_cli import figure_resistance, reproduce_resistance, simulate_resistance
from theory import records, token_tree
from toy_models import resistance
from toy_models.resistance_config import PAIRS, ResistanceConfig
from toy_models.run_dir import RunDir
from toy_models.stage_config import StageConfig

DEFAULT = ResistanceConfig()
TINY = ResistanceConfig(depth=4, seeds=2, datasets=("pareto", "zipf"), model_sizes=((8, 1),), pretrain_mass=200.0,
                        align_mass=100.0, pretrain=dataclasses.replace(DEFAULT.pretrain, batch_size=10),
                        sft=dataclasses.replace(DEFAULT.sft, batch_size=10, steps=6),
                        transfer=dataclasses.replace(DEFAULT.transfer, batch_size=10, steps=10))
TOML = "[pretrain]\nbatch_size = 10\n[sft]\nbatch_size = 10\n[transfer]\nbatch_size = 10\n"
FLAGS = ["--depth", "4", "--seeds", "2", "--datasets", "pareto,zipf", "--model-sizes", "8x1", "--pretrain-mass", "200",
         "--align-mass", "100", "--sft-steps", "6", "--transfer-steps", "10", "--outputs", "sampled",
         "--output-samples", "300"]
ATOL = 1e-12  # float64 round-off of sums over 15 responses


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
  """TINY run through run_experiment: its directory and summary."""
  out_dir = tmp_path_factory.mktemp("resistance") / "run"
  return out_dir, simulate_resistance.run_experiment(TINY, out_dir)


def unit_arrays(out_dir, name="zipf_w8L1"):
  return records.read_npz(out_dir / "units" / f"{name}.npz")


def test_saves_units_checkpoint_summary_and_figure(tiny_run, tmp_path):
  out_dir, summary = tiny_run
  names = {path.name for path in (out_dir / "units").iterdir()}
  assert names == {f"{d}_w8L1.{suffix}" for d in ("pareto", "zipf") for suffix in ("json", "npz")}
  assert (out_dir / "checkpoints" / "pretrain_w8L1.npz").exists()
  saved = records.read_json(out_dir / "summary.json")
  assert saved["summary"] == summary and saved["config"]["seeds"] == 2
  assert len(summary["rows"]) == 2 * len(PAIRS) and summary["statistics"]["loss"]["cells"] == 2 * len(PAIRS)
  assert summary["verdicts"][0].startswith("Resistance: inverse alignment loss below forward: ")
  assert summary["verdicts"][1].startswith("Resistance, entropy-free: ")
  for name in ("pareto_w8L1", "zipf_w8L1"):
    arrays = unit_arrays(out_dir, name)
    assert arrays["theta_log2q_bits"].shape == (2, 3, token_tree.n_leaves(4))
    for key in (k for k in arrays if k.startswith(("forward_", "inverse_"))):
      assert arrays[key].shape == (2, len(PAIRS)) and np.all(np.isfinite(arrays[key])), key
  (path,) = figure_resistance.draw(out_dir.parent, tmp_path, out_dir.name)
  assert path == tmp_path / "resistance.png" and path.stat().st_size > 10_000
  assert figure_resistance.draw(out_dir.parent, tmp_path, "no_such_run") == []


def test_exact_outputs_are_the_checkpoints_distributions(tiny_run):
  arrays = unit_arrays(tiny_run[0])
  theta = arrays["theta_log2q_bits"]  # (seeds, 3, n), bits
  np.testing.assert_allclose(np.exp2(theta).sum(axis=-1), 1.0, rtol=0, atol=ATOL)
  for index, (early, late) in enumerate(PAIRS):
    q_early, q_late = np.exp2(theta[:, early]), np.exp2(theta[:, late])
    forward = np.sum(q_late * (theta[:, late] - theta[:, early]), axis=-1) * np.log(2)  # KL(θ_late ‖ θ_early)
    inverse = np.sum(q_early * (theta[:, early] - theta[:, late]), axis=-1) * np.log(2)
    np.testing.assert_allclose(arrays["forward_kl_before_nats"][:, index], forward, rtol=1e-9, atol=ATOL)
    np.testing.assert_allclose(arrays["inverse_kl_before_nats"][:, index], inverse, rtol=1e-9, atol=ATOL)
  np.testing.assert_array_equal(arrays["checkpoint_steps"], [2, 4, 6])
  score = arrays["theta_positive_score"]  # SFT on aligned data moves mass onto the aligned subtree: θ1 < θ3
  assert np.all(score[:, 2] > score[:, 0])


def test_loss_is_target_entropy_plus_kl_per_token(tiny_run):
  """The training loss (JAX, train_batch) minus the entropy equals the KL after training (numpy, from the model's
  leaf probabilities) over the target's mean length: two independent computations of one number."""
  arrays = unit_arrays(tiny_run[0])
  for direction in ("forward", "inverse"):
    loss, entropy = arrays[f"{direction}_loss_nats_per_token"], arrays[f"{direction}_target_entropy_nats_per_token"]
    assert np.all(loss >= entropy - ATOL)
    np.testing.assert_allclose(arrays[f"{direction}_excess_nats_per_token"], loss - entropy, rtol=0, atol=ATOL)
    np.testing.assert_allclose(arrays[f"{direction}_excess_nats_per_token"]
                               * arrays[f"{direction}_target_tokens_per_response"],
                               arrays[f"{direction}_kl_after_nats"], rtol=1e-8, atol=1e-12)


def test_forward_and_inverse_share_their_budget(tiny_run):
  arrays = unit_arrays(tiny_run[0])
  for quantity, value in (("steps", TINY.transfer.steps), ("learning_rate", TINY.transfer.learning_rate)):
    np.testing.assert_array_equal(arrays[f"forward_{quantity}"], arrays[f"inverse_{quantity}"])
    assert np.all(arrays[f"forward_{quantity}"] == value)


def test_resume_reuses_units_and_recomputes_a_lost_one_identically(tiny_run):
  out_dir, summary = tiny_run
  kept = out_dir / "units" / "pareto_w8L1.json"
  before, lost = kept.stat().st_mtime_ns, unit_arrays(out_dir)
  (out_dir / "units" / "zipf_w8L1.json").unlink()  # as if interrupted while saving it
  again = simulate_resistance.run_experiment(TINY, out_dir)
  assert kept.stat().st_mtime_ns == before
  redone = unit_arrays(out_dir)  # trained again from the saved pre-trained checkpoint
  for key, value in lost.items():
    np.testing.assert_array_equal(redone[key], value, err_msg=key)
  assert again == summary
  with pytest.raises(ValueError, match="differs in seeds") as error:
    RunDir(out_dir, dataclasses.replace(TINY, seeds=3))
  assert "\n" not in str(error.value)


def test_cli_with_toml_and_sampled_outputs(tmp_path, capsys):
  (tmp_path / "tiny.toml").write_text(TOML)
  parser = argparse.ArgumentParser()
  simulate_resistance.add_arguments(parser)
  args = parser.parse_args(["--config", str(tmp_path / "tiny.toml"), *FLAGS, "--out-dir", str(tmp_path / "run")])
  config = simulate_resistance.config_from_args(args)
  assert config == dataclasses.replace(TINY, outputs="sampled", output_samples=300)
  assert simulate_resistance.run(args) == 0
  assert "Resistance, entropy-free" in capsys.readouterr().out
  arrays = unit_arrays(tmp_path / "run")
  # A sample of a checkpoint is not the checkpoint: KL(sample ‖ checkpoint) > 0 before training.
  assert np.all(arrays["forward_kl_before_nats"] > 0) and np.all(arrays["inverse_kl_before_nats"] > 0)
  assert np.all(arrays["forward_excess_nats_per_token"] >= -ATOL)


@pytest.mark.parametrize("changes, message", [
    ({"datasets": ("pareto", "pareto")}, "datasets=['pareto', 'pareto'] is not allowed"),
    ({"datasets": ("alpaca",)}, "datasets=['alpaca'] is not allowed"),
    ({"outputs": "greedy"}, "outputs='greedy' is not allowed; allowed: exact, sampled"),
    ({"seeds": 0}, "seeds=0 is not allowed"),
    ({"output_samples": 0}, "output_samples=0 is not allowed"),
    ({"align_mass": -3.0}, "align_mass=-3.0 is not allowed"),
    ({"pretrain_mass": float("nan")}, "pretrain_mass=nan is not allowed"),
    ({"model_sizes": ((7, 1),)}, "heads=2 does not divide width=7"),
    ({"model_sizes": ((8,),)}, "model size (8,) is not allowed; allowed: a (width, layers) pair"),
    ({"model_sizes": ((8, 1), (8, 1))}, "model_sizes=[[8, 1], [8, 1]] is not allowed"),
    ({"depth": 1}, "depth=1 is not allowed"),
    ({"sft": StageConfig(steps=60, schedule="cosine")}, "schedule 'constant'"),
    ({"sft": StageConfig(steps=2)}, "steps=2"),
    ({"transfer": StageConfig(epochs=1.0)}, "transfer (epochs=1.0, steps=1000) is not allowed"),
])
def test_bad_configs_give_one_line_errors(changes, message):
  with pytest.raises(ValueError, match=re.escape(message)) as error:
    ResistanceConfig(**changes)
  assert "\n" not in str(error.value)


def test_scales_are_valid_configs():
  quick, name = reproduce_resistance.scale_config("quick", 3)
  assert name == "resistance_quick" and quick.seed == 3 and quick.seeds >= 2
  assert reproduce_resistance.scale_config("default", 0) == (ResistanceConfig(), "resistance")
  paper, _ = reproduce_resistance.scale_config("paper", 0)
  assert len(paper.datasets) * len(paper.model_sizes) * len(PAIRS) == 27 and paper.seeds >= 5
  with pytest.raises(ValueError, match="scale='huge' is not allowed"):
    reproduce_resistance.scale_config("huge", 0)


def test_entropy_and_kl_helpers_against_closed_forms():
  depth = 5
  n = token_tree.n_leaves(depth)
  uniform = np.full(n, 1.0 / n)
  lengths = token_tree.response_lengths(depth)
  np.testing.assert_allclose(resistance.token_entropy_nats(uniform, depth), np.log(n) / lengths.mean(), rtol=1e-12)
  np.testing.assert_allclose(resistance.tokens_per_response(7 * uniform, depth), lengths.mean(), rtol=1e-12)
  rng = np.random.default_rng(0)
  p, q = rng.dirichlet(np.ones(n)), rng.dirichlet(np.ones(n))
  np.testing.assert_allclose(resistance.kl_target_nats(p, np.log2(p)), 0.0, atol=1e-12)
  np.testing.assert_allclose(resistance.kl_target_nats(3 * p, np.log2(q)), np.sum(p * np.log(p / q)), rtol=1e-10)
