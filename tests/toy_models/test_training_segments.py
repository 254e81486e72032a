"""Training in segments (progress between them) or in one call: the same steps, bit for bit, and the calls counted."""

import jax
import numpy as np
import pytest

from theory import token_tree
from toy_models import likelihood, loss_training, training
from toy_models.model_config import ModelConfig
from toy_models.models import build_model
from toy_models.stage_config import StageConfig

DEPTH = 3
TRANSFORMER = build_model(ModelConfig(kind="transformer", width=8, layers=1, heads=2), DEPTH)
STAGE = StageConfig(optimizer="adam", schedule="cosine", gradient="minibatch", batch_size=4)
STEPS = np.array([23, 7, 0])  # uneven budgets: runs stop inside segments, one never starts


@pytest.mark.parametrize("total, progress, expected", [
    (0, None, [0]), (0, print, [0]), (1, print, [0, 1]), (5, None, [0, 5]), (1000, None, [0, 1000]),
    (5, print, [0, 1, 2, 3, 4, 5]), (40, print, list(range(0, 41, 2))), (23, print, None)])
def test_segments_exist_only_for_progress(total, progress, expected):
  bounds = training.segment_bounds(total, progress).tolist()
  if expected is not None:
    assert bounds == expected
  assert bounds[0] == 0 and bounds[-1] == total and bounds == sorted(set(bounds))
  assert len(bounds) - 1 == (min(training.SEGMENTS, total) if progress is not None else min(total, 1))


def _count_calls(monkeypatch, module, name):
  """Counts the calls of the jitted segments that `module.name` (a cached factory) returns."""
  calls = []
  factory = getattr(module, name)

  class Counted:
    def __init__(self, fn):
      self.fn = fn

    def __call__(self, *args):
      calls.append(1)
      return self.fn(*args)

    def __getattr__(self, name):  # lower() etc.: the jitted function's own
      return getattr(self.fn, name)

  def counting(*args, **kwargs):
    return Counted(factory(*args, **kwargs))

  monkeypatch.setattr(module, name, counting)
  return calls


def _weights(runs: int) -> np.ndarray:
  return np.random.default_rng(0).random((runs, token_tree.n_leaves(DEPTH))) + 0.1


def test_train_batch_in_one_call_equals_training_in_segments(monkeypatch):
  keys = jax.random.split(jax.random.PRNGKey(4), STEPS.size)
  start = training.init_params(TRANSFORMER, keys)
  calls = _count_calls(monkeypatch, training, "_batched_segment")
  shown = []
  segmented, segmented_losses = training.train_batch(TRANSFORMER, STAGE, start, _weights(STEPS.size), STEPS,
                                                     keys=keys, progress=lambda *args: shown.append(args))
  assert len(calls) == training.SEGMENTS and shown[-1][:2] == (23, 23)
  calls.clear()
  whole, whole_losses = training.train_batch(TRANSFORMER, STAGE, start, _weights(STEPS.size), STEPS, keys=keys)
  assert len(calls) == 1
  for ours, reference in zip(jax.tree_util.tree_leaves(whole), jax.tree_util.tree_leaves(segmented), strict=True):
    np.testing.assert_array_equal(np.asarray(ours), np.asarray(reference))
  np.testing.assert_array_equal(whole_losses, segmented_losses)
  moved = max(float(np.abs(np.asarray(a) - np.asarray(b)).max())
              for a, b in zip(jax.tree_util.tree_leaves(whole), jax.tree_util.tree_leaves(start), strict=True))
  assert moved > 1e-3  # not a vacuous comparison


def test_train_with_loss_in_one_call_equals_training_in_segments(monkeypatch):
  tokens = jax.numpy.asarray(token_tree.leaf_tokens(DEPTH))

  def loss(params, weights, key):
    picks = jax.random.choice(key, tokens.shape[0], (4,), p=weights / weights.sum())
    return likelihood.weighted_token_nll(TRANSFORMER, params, tokens[picks], jax.numpy.ones(4))

  keys = jax.random.split(jax.random.PRNGKey(5), STEPS.size)
  start = training.init_params(TRANSFORMER, keys)
  calls = _count_calls(monkeypatch, loss_training, "_compiled")
  common = dict(keys=keys, learning_rates=np.full(STEPS.size, 0.01), optimizer="adam", schedule="constant")
  segmented, segmented_losses = loss_training.train_with_loss(TRANSFORMER, loss, start, _weights(STEPS.size), STEPS,
                                                              progress=lambda *args: None, **common)
  assert len(calls) == training.SEGMENTS
  calls.clear()
  whole, whole_losses = loss_training.train_with_loss(TRANSFORMER, loss, start, _weights(STEPS.size), STEPS, **common)
  assert len(calls) == 1
  for ours, reference in zip(jax.tree_util.tree_leaves(whole), jax.tree_util.tree_leaves(segmented), strict=True):
    np.testing.assert_array_equal(np.asarray(ours), np.asarray(reference))
  np.testing.assert_array_equal(whole_losses, segmented_losses)
