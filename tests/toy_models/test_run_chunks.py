"""A vmapped program called on many runs within a memory bound, against the same program called once."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from toy_models import compilation, run_chunks


@jax.jit
@jax.vmap
def _program(x, y):
  """Per run: a (64, 64) product and a dict output, so that memory grows with the runs."""
  outer = jnp.outer(x, y)
  return {"sum": (outer @ outer).sum(), "row": outer[0]}


def test_calls_within_the_bound_equal_one_call_and_share_one_program():
  rng = np.random.default_rng(0)
  x, y = rng.normal(size=(11, 64)), rng.normal(size=(11, 64))
  whole = _program(x, y)
  used = run_chunks.program_bytes(_program, x, y)
  doubled = run_chunks.program_bytes(_program, np.concatenate([x, x]), np.concatenate([y, y]))
  assert used > 11 * 2 * 64 * 8 and doubled > 1.9 * used  # the arguments at least; nearly linear in the runs
  for limit, one_call in ((None, True), (used, True), (used // 2, False), (used // 4, False), (used // 11 + 1, False)):
    with compilation.count_compilations() as stats:
      parts = run_chunks.call_in_run_chunks(_program, x, y, memory_limit_bytes=limit)
    for ours, reference in zip(jax.tree_util.tree_leaves(parts), jax.tree_util.tree_leaves(whole), strict=True):
      assert ours.shape == reference.shape
      np.testing.assert_allclose(ours, reference, rtol=1e-12)
    assert stats.programs <= (0 if one_call else 2), (limit, stats.names)  # the whole (analysed), the chunks' size


def test_a_run_above_the_bound_runs_alone_and_a_run_above_the_ceiling_is_a_one_line_error():
  x = np.ones((3, 64))
  alone = run_chunks.call_in_run_chunks(_program, x, x, memory_limit_bytes=100)  # one run per call: still computed
  np.testing.assert_allclose(alone["sum"], _program(x, x)["sum"], rtol=1e-12)
  with pytest.raises(ValueError, match=r"^one run of the test program needs .* above the memory ceiling [^\n]*$"):
    run_chunks.call_in_run_chunks(_program, x, x, memory_limit_bytes=100, ceiling_bytes=100, label="the test program")


def test_the_memory_analysis_of_a_compiled_program_is_computed_once_and_bounded(monkeypatch):
  calls = []
  analyse = jax.stages.Compiled.memory_analysis

  def counted(self):
    calls.append(1)
    return analyse(self)

  monkeypatch.setattr(jax.stages.Compiled, "memory_analysis", counted)
  monkeypatch.setattr(run_chunks, "_analysed", type(run_chunks._analysed)())
  x = np.ones((5, 64))
  first = run_chunks.program_bytes(_program, x, x)
  assert calls == [1] and first == run_chunks.program_bytes(_program, 2 * x, x)  # same shapes: kept, not analysed
  assert calls == [1]
  other = run_chunks.program_bytes(_program, np.ones((7, 64)), np.ones((7, 64)))  # another program: analysed
  assert calls == [1, 1] and other > first
  monkeypatch.setattr(run_chunks, "ANALYSED_PROGRAMS", 1)
  run_chunks.program_bytes(_program, np.ones((9, 64)), np.ones((9, 64)))  # keeps only this one now
  assert len(run_chunks._analysed) == 1 and run_chunks.program_bytes(_program, x, x) == first and len(calls) == 4
