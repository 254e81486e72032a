"""Training sharded over 4 host devices (in a subprocess) gives the same parameters as unsharded training."""

import json
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = """
import json
import jax
import numpy as np
jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")
from toy_models import datasets, devices, training
from toy_models.model_config import ModelConfig
from toy_models.models import build_model
from toy_models.stage_config import StageConfig

model = build_model(ModelConfig(kind="tabular"), 4)
probs = datasets.SourceConfig(depth=4).probabilities()
weights = np.stack([10.0 ** (i % 4) * probs[0] + probs[1] + i * probs[2] for i in range(8)])
steps = 10 + 5 * np.arange(8)
keys = jax.random.split(jax.random.PRNGKey(0), 8)
out = {"devices": jax.device_count()}
for gradient in ("expected", "minibatch"):
  stage = StageConfig(steps=1, gradient=gradient, batch_size=8, learning_rate=0.05)
  sharded = training.train_batch(model, stage, training.init_params(model, keys), weights, steps, keys=keys)[0]
  original, devices.run_sharding = devices.run_sharding, lambda n_runs: None
  try:
    plain = training.train_batch(model, stage, training.init_params(model, keys), weights, steps, keys=keys)[0]
  finally:
    devices.run_sharding = original
  out[gradient] = {"max_abs_diff": float(np.abs(np.asarray(sharded["logits"]) - np.asarray(plain["logits"])).max()),
                   "sharded_devices": len(sharded["logits"].sharding.device_set),
                   "plain_devices": len(plain["logits"].sharding.device_set)}
print(json.dumps(out))
"""


def test_sharded_training_equals_unsharded():
  env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4", "JAX_PLATFORMS": "cpu",
         "PYTHONPATH": str(ROOT)}
  done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
                        timeout=300)
  assert done.returncode == 0, done.stderr
  out = json.loads(done.stdout.strip().splitlines()[-1])
  assert out["devices"] == 4
  for gradient in ("expected", "minibatch"):
    assert out[gradient]["max_abs_diff"] < 1e-12
    assert out[gradient]["sharded_devices"] == 4
    assert out[gradient]["plain_devices"] == 1
