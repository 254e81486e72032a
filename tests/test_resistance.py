"""End-to-end `elasticity simulate resistance` on a tiny grid; config checks; the entropy and KL helpers."""

import dataclasses
import json
import re

import numpy as np
import pytest

from elasticity_cli import figure_resistance
from elasticity_cli.main import main
from theory import records, token_tree
from toy_models import resistance
from toy_models.resistance_config import PAIRS, ResistanceConfig

TINY = ["--depth", "4", "--seeds", "2", "--datasets", "pareto,zipf", "--model-sizes", "8x1", "--pretrain-mass", "200",
        "--align-mass", "100", "--sft-steps", "6", "--transfer-steps", "10"]
ONE_BATCH_SIZE = "[pretrain]\nbatch_size = 10\n[sft]\nbatch_size = 10\n[transfer]\nbatch_size = 10\n"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  root = tmp_path_factory.mktemp("resistance")
  (root / "tiny.toml").write_text(ONE_BATCH_SIZE)
  args = ["simulate", "resistance", "--config", str(root / "tiny.toml"), *TINY, "--outputs", "sampled",
          "--out-dir", str(root / "run")]
  assert main(args) == 0
  return root, args


def test_resistance_end_to_end(run):
  root, _ = run
  summary = json.loads((root / "run" / "summary.json").read_text())["summary"]
  assert len(summary["rows"]) == 2 * len(PAIRS) and len(summary["verdicts"]) == 2
  assert summary["verdicts"][0].startswith("Resistance: inverse alignment loss below forward: ")
  arrays = records.read_npz(root / "run" / "units" / "zipf_w8L1.npz")
  np.testing.assert_array_equal(arrays["checkpoint_steps"], [2, 4, 6])
  for direction in ("forward", "inverse"):
    loss = arrays[f"{direction}_loss_nats_per_token"]
    assert loss.shape == (2, 3) and np.all(np.isfinite(loss))
    # No model fits a dataset better than the dataset's own entropy: the excess is a KL, >= 0.
    assert np.all(arrays[f"{direction}_excess_nats_per_token"] >= -1e-12)
    assert np.all(arrays[f"{direction}_kl_after_nats"] >= -1e-12)
  # Sampled outputs: the target is a sample of the checkpoint, so KL(target || checkpoint) > 0 before training.
  assert np.all(arrays["forward_kl_before_nats"] > 0) and np.all(arrays["inverse_kl_before_nats"] > 0)
  (path,) = figure_resistance.draw(root, root / "figures", "run")
  assert path.name == "resistance.png" and path.stat().st_size > 10_000


def test_exact_outputs_kl_before_is_the_kl_between_checkpoints(tmp_path):
  base = ResistanceConfig()
  small = {stage: dataclasses.replace(getattr(base, stage), batch_size=10) for stage in ("pretrain", "sft", "transfer")}
  config = ResistanceConfig(depth=4, seeds=1, datasets=("dirichlet",), model_sizes=((8, 1),), pretrain_mass=200.0,
                            align_mass=100.0, **small)
  _, arrays = resistance.run_unit(config, resistance.Unit("dirichlet", (8, 1)))
  theta = arrays["theta_log2q_bits"][0]  # (3, n) in bits
  for index, (early, late) in enumerate(PAIRS):
    q_early, q_late = np.exp2(theta[early]), np.exp2(theta[late])
    forward = np.sum(q_late * (theta[late] - theta[early])) * np.log(2)  # KL(θ_late ‖ θ_early)
    inverse = np.sum(q_early * (theta[early] - theta[late])) * np.log(2)
    np.testing.assert_allclose(arrays["forward_kl_before_nats"][0, index], forward, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(arrays["inverse_kl_before_nats"][0, index], inverse, rtol=1e-9, atol=1e-12)
  assert np.all(np.diff(arrays["theta_positive_score"][0]) > 0)  # SFT on aligned data: θ1 < θ2 < θ3


def test_resistance_resumes_and_refuses_another_config(run, capsys):
  root, args = run
  unit = root / "run" / "units" / "pareto_w8L1.json"
  before = unit.stat().st_mtime_ns
  assert main(args) == 0
  assert unit.stat().st_mtime_ns == before
  capsys.readouterr()
  assert main([*args, "--seeds", "3"]) == 2
  assert "differs in seeds" in capsys.readouterr().err


@pytest.mark.parametrize("changes, message", [
    ({"datasets": ("pareto", "pareto")}, "datasets=['pareto', 'pareto'] is not allowed"),
    ({"datasets": ("alpaca",)}, "datasets=['alpaca'] is not allowed"),
    ({"outputs": "greedy"}, "outputs='greedy' is not allowed"),
    ({"seeds": 0}, "seeds=0 is not allowed"),
    ({"align_mass": -3.0}, "align_mass=-3.0 is not allowed"),
    ({"model_sizes": ((7, 1),)}, "heads=2 does not divide width=7"),
])
def test_bad_configs_give_one_line_errors(changes, message):
  with pytest.raises(ValueError, match=re.escape(message)) as error:
    ResistanceConfig(**changes)
  assert "\n" not in str(error.value)


def test_sft_must_be_one_constant_run():
  from toy_models.stage_config import StageConfig

  with pytest.raises(ValueError, match="schedule 'constant'"):
    ResistanceConfig(sft=StageConfig(steps=60, schedule="cosine"))


def test_entropy_and_kl_helpers_against_closed_forms():
  depth = 5
  n = token_tree.n_leaves(depth)
  uniform = np.full(n, 1.0 / n)
  lengths = token_tree.response_lengths(depth)
  np.testing.assert_allclose(resistance.token_entropy_nats(uniform, depth), np.log(n) / lengths.mean(), rtol=1e-12)
  rng = np.random.default_rng(0)
  p, q = rng.dirichlet(np.ones(n)), rng.dirichlet(np.ones(n))
  np.testing.assert_allclose(resistance.kl_target_nats(p, np.log2(p)), 0.0, atol=1e-12)
  np.testing.assert_allclose(resistance.kl_target_nats(3 * p, np.log2(q)), np.sum(p * np.log(p / q)), rtol=1e-10)
