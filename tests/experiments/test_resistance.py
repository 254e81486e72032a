"""The resistance experiment: exact identities of a saved tiny run, resuming, the cluster test, config checks."""

import re

import numpy as np
import pytest

from experiments import records, runner, statistics
from experiments.resistance import run as resistance
from experiments.resistance.config import PAIRS, ResistanceConfig
from theory import token_tree
from toy_models.stage_config import StageConfig

ATOL = 1e-12  # float64 round-off of sums over 15 responses


@pytest.fixture(scope="module")
def tiny(tiny_runs):
  """(config, summary, reader) of the tiny resistance run."""
  _, config, summary, reader = tiny_runs["resistance"]
  return config, summary, reader


def unit_arrays(tiny, name="zipf_w4L1"):
  return tiny[2].load(name)[1]


def test_exact_outputs_are_the_checkpoints_distributions(tiny):
  arrays = unit_arrays(tiny)
  theta = arrays["theta_log2q_bits"]  # (seeds, 3, n), bits
  np.testing.assert_allclose(np.exp2(theta).sum(axis=-1), 1.0, rtol=0, atol=ATOL)
  for index, (early, late) in enumerate(PAIRS):
    q_early, q_late = np.exp2(theta[:, early]), np.exp2(theta[:, late])
    forward = np.sum(q_late * (theta[:, late] - theta[:, early]), axis=-1) * np.log(2)  # KL(θ_late ‖ θ_early)
    inverse = np.sum(q_early * (theta[:, early] - theta[:, late]), axis=-1) * np.log(2)
    np.testing.assert_allclose(arrays["forward_kl_before_nats"][:, index], forward, rtol=1e-9, atol=ATOL)
    np.testing.assert_allclose(arrays["inverse_kl_before_nats"][:, index], inverse, rtol=1e-9, atol=ATOL)
  np.testing.assert_array_equal(arrays["checkpoint_steps"], tiny[0].checkpoint_steps())
  score = arrays["theta_positive_score"]  # SFT on aligned data moves mass onto the aligned subtree: θ1 < θ3
  assert np.all(score[:, 2] > score[:, 0])


def test_loss_is_target_entropy_plus_kl_per_token(tiny):
  """The training loss (JAX, train_batch) minus the entropy equals the KL after training (numpy, from the model's
  leaf probabilities) over the target's mean length: two independent computations of one number."""
  arrays = unit_arrays(tiny)
  for direction in ("forward", "inverse"):
    loss, entropy = arrays[f"{direction}_loss_nats_per_token"], arrays[f"{direction}_target_entropy_nats_per_token"]
    assert np.all(loss >= entropy - ATOL)
    np.testing.assert_allclose(arrays[f"{direction}_excess_nats_per_token"], loss - entropy, rtol=0, atol=ATOL)
    np.testing.assert_allclose(arrays[f"{direction}_excess_nats_per_token"]
                               * arrays[f"{direction}_target_tokens_per_response"],
                               arrays[f"{direction}_kl_after_nats"], rtol=1e-8, atol=1e-12)


def test_forward_and_inverse_share_their_budget(tiny):
  arrays = unit_arrays(tiny)
  config = tiny[0]
  for quantity, value in (("steps", config.transfer.steps), ("learning_rate", config.transfer.learning_rate)):
    np.testing.assert_array_equal(arrays[f"forward_{quantity}"], arrays[f"inverse_{quantity}"])
    assert np.all(arrays[f"forward_{quantity}"] == value)


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



def test_resume_reuses_units_and_recomputes_a_lost_one_identically(tiny_runs, tmp_path):
  experiment, config, summary, reader = tiny_runs["resistance"]
  import shutil

  copy = tmp_path / "run"
  shutil.copytree(reader.path, copy)
  (copy / ".lock").unlink(missing_ok=True)
  kept = copy / "units" / "pareto_w4L1.json"
  before, lost = kept.stat().st_mtime_ns, records.read_npz(copy / "units" / "zipf_w4L1.npz")
  (copy / "units" / "zipf_w4L1.json").unlink()  # as if interrupted while saving it
  again = runner.run(experiment, config, copy, show_progress=False)
  assert kept.stat().st_mtime_ns == before
  redone = records.read_npz(copy / "units" / "zipf_w4L1.npz")  # trained again from the saved pre-trained checkpoint
  for key, value in lost.items():
    np.testing.assert_array_equal(redone[key], value, err_msg=key)
  assert records.plain(again) == records.plain(summary)


def test_verdicts_are_the_cluster_test_over_seeds(tiny):
  """The saved verdict equals the exact sign-flip test of the per-seed mean gaps, recomputed from the units."""
  config, summary, reader = tiny
  gaps = []
  for dataset in config.datasets:
    arrays = reader.load(f"{dataset}_w4L1")[1]
    gaps.append(arrays["inverse_excess_nats_per_token"] - arrays["forward_excess_nats_per_token"])  # (seeds, pairs)
  per_seed = np.concatenate(gaps, axis=1).mean(axis=1)
  (saved,) = [v for v in summary["verdicts"] if v["key"] == "excess"]
  np.testing.assert_allclose(saved["per_seed"], per_seed, rtol=1e-12)
  assert saved["effect"]["estimate"] == pytest.approx(per_seed.mean(), rel=1e-12)
  expected = np.mean([np.mean(np.asarray(signs) * per_seed) <= per_seed.mean() + 1e-15
                      for signs in np.array(np.meshgrid(*[[-1, 1]] * per_seed.size)).reshape(per_seed.size, -1).T])
  assert saved["test"]["p_value"] == pytest.approx(expected)
  assert statistics.cluster_mean_difference(np.zeros((2, 3)), np.zeros((2, 3)), alternative="less").test.p_value == 1

