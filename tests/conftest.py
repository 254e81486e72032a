"""Test settings: float64 JAX, strict rank promotion, seeded keys, hypothesis profiles (fast / thorough)."""

import atexit
import os
import shutil
import tempfile

import hypothesis
import jax
import pytest

from toy_models import compilation

# Before JAX starts its backend (importing it does not): every program compiles with the unoptimized preset's XLA
# options (toy_models.compilation.PRESETS, here for every program, not only training loops), as flags that the
# commands the tests start inherit too: the tests compile far more than they run, and the options change results in
# rounding only. The persistent compilation cache is a folder of this session, so the tests never read or write the
# user's cache (in-process CLI calls enable it) and every session starts as cold as CI does; pytest-xdist's workers
# share their controller's folder (2026-11-28, -n auto on 2 cores: 162 s and 289 CPU-s against 169 s and 302).
TEST_PRESET = "unoptimized"  # CI-style suite, one process: 176-211 s, 229-247 CPU-s (fast-compile: 190-210 s)
TEST_XLA_FLAGS = " ".join(f"--{name}={str(value).lower()}" for name, value in compilation.PRESETS[TEST_PRESET])
os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {TEST_XLA_FLAGS}".strip()
SESSION_CACHE_ENV = "ELASTICITY_TEST_SESSION_CACHE"  # the session's folder, for the processes it starts
if os.path.isdir(os.environ.get(SESSION_CACHE_ENV, "")):  # a pytest-xdist worker: its controller's folder, so that
  SESSION_CACHE = os.environ[SESSION_CACHE_ENV]  # a program one worker compiled the other loads
else:
  SESSION_CACHE = tempfile.mkdtemp(prefix="elasticity-test-cache-")
  atexit.register(shutil.rmtree, SESSION_CACHE, ignore_errors=True)
  os.environ[SESSION_CACHE_ENV] = SESSION_CACHE
os.environ["ELASTICITY_JAX_CACHE"] = SESSION_CACHE
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # several test processes may share one accelerator
MAX_AUTO_WORKERS = 4  # `pytest -n auto` (pytest-xdist): one process per core up to this; each starts JAX and compiles

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")
compilation.set_preset(TEST_PRESET)  # the tests compile far more than they train (as the tiny scale does)

hypothesis.settings.register_profile("fast", max_examples=25, deadline=None, derandomize=True,
                                     database=None, print_blob=True)
hypothesis.settings.register_profile("thorough", max_examples=500, deadline=None, database=None,
                                     print_blob=True)
hypothesis.settings.load_profile(os.environ.get("ELASTICITY_HYPOTHESIS_PROFILE", "fast"))


@pytest.fixture
def getkey():
  """Returns a function that yields fresh JAX keys, all derived from seed 0."""
  key = jax.random.PRNGKey(0)

  def _next():
    nonlocal key
    key, sub = jax.random.split(key)
    return sub

  return _next


def pytest_xdist_auto_num_workers(config):
  """pytest-xdist's `-n auto`: one worker per available core, at most MAX_AUTO_WORKERS (every worker compiles its own
  programs and holds its own JAX runtime, so more workers buy less and cost memory)."""
  from experiments import pipeline  # here, not at the top: the XLA flags above are set before anything imports it

  return max(1, min(pipeline.available_cores(), MAX_AUTO_WORKERS))
