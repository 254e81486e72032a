"""A sweep shared by two processes (jax.distributed on localhost, CPU backend) equals the same sweep in one process."""

import functools
import os
import pathlib
import socket
import subprocess
import sys

import numpy as np
import pytest

from toy_models import distributed, metrics, training

ROOT = pathlib.Path(__file__).resolve().parents[2]
RTOL_VMAP = 1e-10  # another batch size of vmapped runs: the same arithmetic up to reassociation.
SWEEP = """
import jax
import numpy as np
from toy_models import datasets, metrics, training
from toy_models.model_config import ModelConfig
from toy_models.models import build_model
from toy_models.stage_config import StageConfig

RUNS = 5  # shared 3 + 2 between two processes
model = build_model(ModelConfig(kind="tabular"), 4)
probs = datasets.SourceConfig(depth=4).probabilities()
weights = np.stack([10.0 ** (i % 3) * probs[0] + probs[1] + i * probs[2] for i in range(RUNS)])
steps = 10 + 7 * np.arange(RUNS)
keys = jax.random.split(jax.random.PRNGKey(0), RUNS)
stage = StageConfig(steps=1, gradient="minibatch", batch_size=8, learning_rate=0.05)
rates = np.linspace(0.02, 0.1, RUNS)
"""
WORKER = """
import sys
import jax
jax.config.update("jax_enable_x64", True)
port, process_id, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
jax.distributed.initialize(f"127.0.0.1:{port}", num_processes=2, process_id=process_id)
from toy_models import distributed
""" + SWEEP + """
params = training.init_params(model, keys)
trained, losses = distributed.train_batch(model, stage, params, weights, steps, keys=keys, learning_rates=rates)
log2q = distributed.map_runs(lambda p: metrics.leaf_log2_probs(model, p), trained)
block = distributed.process_block(RUNS)
np.savez(out, logits=trained["logits"], losses=losses, log2q=log2q, block=[block.start, block.stop],
         processes=jax.process_count(), local_devices=len(jax.local_devices()))
jax.distributed.shutdown()
"""


@functools.lru_cache
def one_process() -> dict:
  """The sweep run here, in one process: its inputs and trained logits, losses and log2-probabilities."""
  sweep = {}
  exec(SWEEP, sweep)
  model, keys = sweep["model"], sweep["keys"]
  trained, losses = training.train_batch(model, sweep["stage"], training.init_params(model, keys), sweep["weights"],
                                         sweep["steps"], keys=keys, learning_rates=sweep["rates"])
  return {**sweep, "logits": np.asarray(trained["logits"]), "losses": losses,
          "log2q": metrics.leaf_log2_probs(model, trained)}


def free_port() -> int:
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
    sock.bind(("127.0.0.1", 0))
    return sock.getsockname()[1]


def test_two_processes_give_the_single_process_results(tmp_path):
  env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": "--xla_force_host_platform_device_count=1",
         "PYTHONPATH": str(ROOT)}
  port = free_port()
  workers = [subprocess.Popen([sys.executable, "-c", WORKER, str(port), str(i), str(tmp_path / f"{i}.npz")],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
  try:
    expected = one_process()  # while the workers run
    outputs = [worker.communicate(timeout=120) for worker in workers]
  finally:
    for worker in workers:
      worker.kill()
  for worker, (_, stderr) in zip(workers, outputs, strict=True):
    assert worker.returncode == 0, stderr
  for index in range(2):
    got = np.load(tmp_path / f"{index}.npz")
    assert (int(got["processes"]), int(got["local_devices"])) == (2, 1)
    assert got["block"].tolist() == [[0, 3], [3, 5]][index]
    np.testing.assert_allclose(got["logits"], expected["logits"], rtol=RTOL_VMAP, atol=1e-14)
    np.testing.assert_allclose(got["losses"], expected["losses"], rtol=RTOL_VMAP)
    np.testing.assert_allclose(got["log2q"], expected["log2q"], rtol=RTOL_VMAP)
  assert len(np.unique(expected["losses"])) == 5  # every run differs: a wrong order of the gathered runs would show


@pytest.mark.parametrize("runs, count, blocks", [(5, 2, [(0, 3), (3, 5)]), (4, 4, [(0, 1), (1, 2), (2, 3), (3, 4)]),
                                                 (5, 4, [(0, 2), (2, 4), (4, 5), (5, 5)]), (1, 3, [(0, 1), (1, 1),
                                                                                                    (1, 1)])])
def test_process_blocks_cover_the_runs_once_in_order(runs, count, blocks):
  got = [distributed.process_block(runs, index, count) for index in range(count)]
  assert [(b.start, b.stop) for b in got] == blocks
  with pytest.raises(ValueError, match=f"process_index={count}") as error:
    distributed.process_block(runs, count, count)
  assert "\n" not in str(error.value)


def test_one_process_calls_the_plain_functions():
  sweep = one_process()
  model, keys = sweep["model"], sweep["keys"]
  trained, losses = distributed.train_batch(model, sweep["stage"], training.init_params(model, keys), sweep["weights"],
                                            sweep["steps"], keys=keys, learning_rates=sweep["rates"])
  np.testing.assert_array_equal(np.asarray(trained["logits"]), sweep["logits"])
  np.testing.assert_array_equal(losses, sweep["losses"])
  assert distributed.map_runs(lambda x: x + 1, np.arange(3)).tolist() == [1, 2, 3]
