"""Calling a program vmapped over runs within a memory bound: XLA's own accounting decides how many runs fit a call."""

from __future__ import annotations

import collections
from collections.abc import Callable

import jax
import numpy as np

from toy_models import host_memory, metrics

ANALYSED_PROGRAMS = 64  # compiled programs whose memory analysis program_bytes keeps (as many as the loops cached)
_analysed: collections.OrderedDict = collections.OrderedDict()  # id(executable) -> (executable, bytes), LRU order


def _spec(x) -> jax.ShapeDtypeStruct:
  return jax.ShapeDtypeStruct(np.shape(x), jax.numpy.result_type(x))


def program_bytes(fn: Callable, *args) -> int | None:
  """Arguments + outputs + temporaries of jitted `fn` compiled for `args`, by XLA's memory analysis (None where the
  backend gives none). Lowered from shapes alone: nothing is allocated, and on one device the program compiled is
  the one a call with these arguments then runs (no second compile). The analysis of a compiled program is kept (the
  last ANALYSED_PROGRAMS): a loop called again with the same shapes costs no second analysis (about 10 ms each for a
  training loop on a CPU, 83 of the 94 calls of the mitigations experiment's quick run).

  References:
    JAX documentation, "Ahead-of-time lowering and compilation" (jax.stages.Compiled.memory_analysis).
  """
  compiled = fn.lower(*jax.tree_util.tree_map(_spec, args)).compile()  # once per shape: jit's caches serve the rest
  executable = compiled.runtime_executable()
  kept = _analysed.get(id(executable)) if executable is not None else None
  if kept is not None and kept[0] is executable:  # the same compiled program: the same analysis
    _analysed.move_to_end(id(executable))
    return kept[1]
  analysis = compiled.memory_analysis()
  used = None if analysis is None else int(analysis.temp_size_in_bytes + analysis.argument_size_in_bytes
                                           + analysis.output_size_in_bytes)
  if executable is not None:
    _analysed[id(executable)] = (executable, used)  # the executable kept with it: its id is not reused meanwhile
  while len(_analysed) > ANALYSED_PROGRAMS:
    _analysed.popitem(last=False)
  return used


def joined_on_host(parts: list):
  """Pytrees with a leading runs axis joined along it on the host (numpy): no XLA program per leaf shape."""
  return jax.tree_util.tree_map(lambda *leaves: np.concatenate([np.asarray(leaf) for leaf in leaves]), *parts)


def runs_within_bound(used: int, runs: int, limit: int, ceiling: int | None, *, subject: str, bound: str,
                      allowed: str) -> int:
  """The most runs (>= 1) one call holds within `limit` bytes, when the program compiled for `runs` runs holds
  `used` bytes by XLA's accounting (parts shared by the runs counted once per run, so that the bound errs high).

  A one-line ValueError "{subject} needs ... by XLA's accounting, above {bound} ...; allowed: {allowed}" when one
  run needs more than `ceiling` bytes (None: no ceiling).
  """
  per_run = used / runs
  if ceiling is not None and per_run > ceiling:
    raise ValueError(f"{subject} needs {metrics.memory_size(per_run)} by XLA's accounting, above {bound} "
                     f"{metrics.memory_size(ceiling)}; allowed: {allowed}")
  return max(1, int(limit // per_run))


def call_in_run_chunks(fn: Callable, *args, memory_limit_bytes: int | None, ceiling_bytes: int | None = None,
                       label: str = "the program"):
  """fn(*args) for jitted `fn` vmapped over the leading (runs) axis of every argument and output, in calls of at most
  as many runs as fit `memory_limit_bytes` by XLA's accounting (at least one run per call); None: one call.

  Over the bound, the runs are split into ceil(runs / fit) calls of equal size (the last one padded by repeating
  the last run), so that every call runs one more program at most; the outputs are joined in order. A run's
  result does not depend on the call it is computed in (up to the rounding of kernels for another run count).

  Args:
    fn: a jitted function of `args`, each a pytree of arrays with a leading runs axis.
    *args: the arguments.
    memory_limit_bytes: the bound (e.g. toy_models.training.training_memory_limit()), or None.
    ceiling_bytes: a run above this is refused with a one-line error (None: host_memory.memory_ceiling()).
    label: what that error names.

  Returns:
    What fn(*args) returns (leading runs axis), as device arrays.
  """
  runs = int(np.shape(jax.tree_util.tree_leaves(args)[0])[0])
  used = program_bytes(fn, *args) if memory_limit_bytes is not None and runs else None
  if used is None or used <= memory_limit_bytes:
    return fn(*args)
  ceiling = host_memory.memory_ceiling() if ceiling_bytes is None else ceiling_bytes
  calls = -(-runs // runs_within_bound(used, runs, memory_limit_bytes, ceiling, subject=f"one run of {label}",
                                       bound="the memory ceiling",
                                       allowed="a smaller model or depth, or a machine with more memory"))
  size = -(-runs // calls)
  host = jax.tree_util.tree_map(np.asarray, jax.device_get(args))
  parts = [fn(*jax.tree_util.tree_map(lambda x, s=start: x[np.minimum(np.arange(s, s + size), runs - 1)], host))
           for start in range(0, runs, size)]
  joined = jax.tree_util.tree_map(lambda x: x[:runs], joined_on_host(parts))
  return jax.device_put(joined)  # joined on the host: no program per output leaf
