"""Compiling once: JAX's persistent compilation cache, and a counter of the XLA programs compiled and their time.

Entry points (the CLI, scripts) call enable_persistent_cache() once at start-up; importing this module changes
nothing. count_compilations() listens to JAX's own monitoring events, so it sees every program any jit, vmap or
op-by-op call compiles, in this process, while the context is open.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pathlib
import threading
from collections.abc import Iterator

import jax
from jax.experimental.compilation_cache import compilation_cache as jax_compilation_cache

CACHE_ENV = "ELASTICITY_JAX_CACHE"
"""Environment variable naming the cache folder; 'off' (or 0, false, no) disables the persistent cache."""
CACHE_OFF = ("off", "0", "false", "no")
CACHE_SUBDIR = ("lm-elasticity", "jax")  # under $XDG_CACHE_HOME, or ~/.cache when that is not set.
MIN_COMPILE_SECONDS = 0.0  # cache every program: on a 2-core CPU most of ours compile in 0.05-5 s.

# Event names of jax 0.10 (jax/_src/dispatch.py and jax/_src/compiler.py).
BACKEND_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"  # one per XLA program (compiled or loaded).
TRACE_EVENT = "/jax/core/compile/jaxpr_trace_duration"  # tracing a Python function to a jaxpr.
LOWER_EVENT = "/jax/core/compile/jaxpr_to_mlir_module_duration"  # lowering a jaxpr to StableHLO.
CACHE_HIT_EVENT = "/jax/compilation_cache/cache_hits"  # a program read from the persistent cache.
CACHE_MISS_EVENT = "/jax/compilation_cache/cache_misses"  # a program looked up, not found, compiled.

PRESETS = {
    "optimized": (),
    "fast-compile": (("xla_backend_optimization_level", 1), ("xla_cpu_use_fusion_emitters", False)),
    "unoptimized": (("xla_backend_optimization_level", 0), ("xla_cpu_use_fusion_emitters", False)),
}
"""XLA options of the training loops by preset; the numbers differ between presets in rounding only. Measured on a
2-core CPU (2026-11-27, jax 0.10.2): 'fast-compile' compiles the default transformer's training loop in 0.72 s
instead of 1.50 s and runs its steps about 9% slower; 'unoptimized' compiles faster still and trains about 50%
slower (the from-scratch sweep of `elasticity bench`: 7.4 s against 4.8 s). Each is the better choice where its
compiling dominates: `elasticity reproduce --scale tiny` (empty cache) took 40-44 s unoptimized against 53-55 s
fast-compile, while `--quick` took 112 s (empty cache) and 75 s (warm) unoptimized against 93 s and 49 s.
Tried and not adopted (2026-11-28, same CPU, jax 0.10.2): XLA's experimental YNNPACK dots
(xla_cpu_experimental_ynn_fusion_type=LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT) made the width-64 float32 step faster
(14.4 against 16.6 ms, 1 run, batch 256) and the width-16 one slower (0.319 against 0.288 ms per run-step, 8 runs)
and left float64 unchanged; the XNNPACK and oneDNN dot fusions and xla_cpu_use_xnnpack/onednn changed nothing.
Where the width-16 step's time goes (jax.profiler trace of 8 runs x 200 steps, float32, fast-compile, same CPU,
2026-11-28): about 490 XLA thunks per step of ~2.4 ms; the 44 reductions (layer-norm moments, softmax sums, bias
gradients), which XLA hands to YNNPACK by default, take over a third of it, and ~200 thunks are copies (layout
transposes around the attention's batched products, the rolled Threefry loops' state). Also tried then, 800 steps of
the from-scratch sweep (steps alone about 2.0 s): no YNNPACK reductions (xla_cpu_experimental_ynn_fusion_type
without REDUCE) 2.73 s, slower; JAX's unrolled Threefry lowering on the CPU 2.08 s; the loss picking each token's
log-probability by a one-hot select instead of take_along_axis (no scatter in the backward pass) 1.89-2.06 s against
1.92-1.98 s, three runs each (both with the same final losses); xla_llvm_disable_expensive_passes,
xla_cpu_opt_preset=1, the concurrency-optimised scheduler or copy-insertion region analysis off: compile and steps
within noise; xla_cpu_multi_thread_eigen=false 1.79 s but other rounding, and `elasticity reproduce --quick` with it
(warm cache, twice each, alternating) 39.0 and 39.7 s against 41.8 and 39.4 s. The width-64 float32 step: its
gradient alone (batch 256) takes 15.2 ms where PyTorch 2.13's whole step takes 12.6 ms (forward 4.4 against 6.0 ms,
so the gap is XLA's backward); the attention's mixing is 3.7 ms of it, a one-hot embedding or gelu variants change
nothing. Where that step's time goes (jax.profiler, 1 run, batch 256, float32, 2026-11-28): of ~18 ms, the dots
7.3 ms (about 1.2 GFLOP a step, some 170 GFLOP/s on the two cores), ~250 elementwise fusions 5.1 ms and ~50
reductions 4.8 ms (the bias gradients' tree reductions about 1.1 ms of it); with YNNPACK given the dots only
(LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT) the reductions fall to 0.2 ms and the step to 15.3-15.4 against 17.8 ms, the
same losses (PyTorch's whole step: 14.5 ms). Also tried then: the training loop written as a loop of vmapped steps
(jit(fori_loop(vmap(step)))) instead of a vmapped loop, which spares JAX batching the while loop's body: the
mitigations experiment at the quick scale, warm cache, 22.9-23.5 s against 24.4-24.6 s (tracing and lowering
7.1-7.3 against 8.2-8.4 s), with other rounding (up to 4.5e-13 in its tiny run's saved arrays), so every published
result would move in its last bits for 6%: not adopted."""
SCALE_PRESETS = {"tiny": "unoptimized", "quick": "fast-compile", "default": "optimized", "paper": "optimized"}
_preset = ["optimized"]  # the preset in use (set_preset); a list so that the setting is one mutable cell.
CPU_RUNS_PER_CALL: int | None = 4
"""On a CPU under a compile-dominated preset (SHARED_CALL_PRESETS), the runs (per local device) of the calls a larger
batch is split into, so that batches of any size share one training loop (training.share_calls): each distinct run
count is one more loop to compile (~1-3 s for the transformers, most of a quick run's compile time). The exact metrics
evaluate runs in chunks of at most as many (metrics.leaf_log2_probs), for the same reason. None: never split."""
SHARED_CALL_PRESETS = ("fast-compile", "unoptimized")
"""The compile presets (compilation.PRESETS) under which batches train in calls of CPU_RUNS_PER_CALL runs: those chosen
where compiling dominates (the tiny and quick scales, the tests). Under 'optimized' (the default and paper scales) a
batch trains in one call, since steps dominate there: per run-step, calls of 4 runs instead of one call of 10 cost
40% more for the tabular model (17% with the expected gradient), 33% for the n-gram model and 5-7% for the width-8
transformer (depth 6, 1,000 steps, warm; a 2-core Intel Xeon VM, 2026-11-28); 10 runs padded to 12 cost a fifth more.
Measured side by side on that CPU (2026-11-28, alternating arms, smaller batches padded to the cap as
training.train_batch does): `elasticity reproduce --quick` 81.0 and 81.6 s against 106.7 and 96.1 s with an empty
cache (training loops compiled 31 against 59), 46.0 and 49.2 s against 54.7 and 56.6 s with a warm one; earlier that
day, splitting every batch at the default scale as well, a recompute took 753 s and moved 12 of the 49 published
verdict lines in their last digits, no status."""


def set_preset(name: str) -> None:
  """Chooses the XLA options of training loops compiled from now on in this process (PRESETS); CPU only.

  The numbers a preset gives differ from another preset's in rounding only; a program compiled under one preset
  is not reused under another (the options are part of its cache key).
  """
  if name not in PRESETS:
    raise ValueError(f"unknown compile preset {name!r}; allowed: {', '.join(PRESETS)}")
  _preset[0] = name


def preset() -> str:
  """The preset in use."""
  return _preset[0]


def runs_per_call() -> int | None:
  """The run count of the calls training.share_calls splits a batch into (and the largest run chunk of the exact
  metrics): CPU_RUNS_PER_CALL per local device on a CPU under a preset of SHARED_CALL_PRESETS; None (one call) under
  'optimized', on accelerators (where a call of many runs costs about what a call of one does) or where
  CPU_RUNS_PER_CALL is None."""
  if jax.default_backend() != "cpu" or CPU_RUNS_PER_CALL is None or preset() not in SHARED_CALL_PRESETS:
    return None
  return CPU_RUNS_PER_CALL * len(jax.local_devices())


@contextlib.contextmanager
def using_preset(name: str) -> Iterator[None]:
  """set_preset(name) inside the `with` block; the preset in use before comes back after it, whatever happens."""
  before = preset()
  set_preset(name)
  try:
    yield
  finally:
    set_preset(before)


@contextlib.contextmanager
def without_persistent_cache() -> Iterator[None]:
  """Inside the block JAX neither reads nor writes the persistent compilation cache (every program compiles); the
  setting before it comes back after.

  JAX decides once per process, at its first compile, whether it uses the persistent cache at all (jax 0.10:
  jax._src.compilation_cache.is_cache_used): when that first compile falls inside this block, the cache would stay
  unused for the rest of the process, so its decision is reset on the way out.

  References:
    JAX documentation, "Persistent compilation cache" (the jax_enable_compilation_cache option,
    jax.experimental.compilation_cache.compilation_cache.reset_cache).
  """
  before = jax.config.jax_enable_compilation_cache
  jax.config.update("jax_enable_compilation_cache", False)
  try:
    yield
  finally:
    jax.config.update("jax_enable_compilation_cache", before)
    jax_compilation_cache.reset_cache()  # the next compile decides afresh, under the setting restored


def training_options() -> tuple[tuple[str, object], ...]:
  """The XLA options of the current preset as hashable (name, value) pairs; none on accelerators.

  References:
    XLA DebugOptions (xla_backend_optimization_level, xla_cpu_use_fusion_emitters); JAX documentation, jax.jit
    `compiler_options`.
  """
  return PRESETS[_preset[0]] if jax.default_backend() == "cpu" else ()


def initializer_options() -> dict | None:
  """XLA options of the compiled parameter initialisers (training.init_params): the 'fast-compile' preset's on a CPU,
  whatever the preset in use, none on accelerators. An initialiser runs once per call, so its compile time is what
  counts: 0.17-0.20 s instead of 0.32-0.40 s for the transformers and 0.10 instead of 0.32-0.34 s for the n-gram and
  tabular models (2-core CPU, 2026-11-28), with parameters equal bit for bit (tests/toy_models/test_compilation.py;
  the 'unoptimized' preset's options changed them in the 17th digit, so they are not used here).

  References:
    XLA DebugOptions (xla_backend_optimization_level, xla_cpu_use_fusion_emitters).
  """
  if jax.default_backend() != "cpu":
    return None
  return dict(PRESETS["fast-compile"])


def default_cache_dir() -> pathlib.Path | None:
  """The persistent cache folder: $ELASTICITY_JAX_CACHE, else $XDG_CACHE_HOME/lm-elasticity/jax, else ~/.cache/...

  None when ELASTICITY_JAX_CACHE is 'off' (or 0, false, no).

  References:
    XDG Base Directory Specification (freedesktop.org), $XDG_CACHE_HOME.
  """
  chosen = os.environ.get(CACHE_ENV, "").strip()
  if chosen.lower() in CACHE_OFF:
    return None
  if chosen:
    return pathlib.Path(chosen).expanduser()
  base = os.environ.get("XDG_CACHE_HOME", "").strip() or pathlib.Path.home() / ".cache"
  return pathlib.Path(base).joinpath(*CACHE_SUBDIR)


def enable_persistent_cache(path: str | os.PathLike | None = None, *,
                            min_compile_seconds: float = MIN_COMPILE_SECONDS) -> pathlib.Path | None:
  """Turns on JAX's persistent compilation cache, so that a later process loads our programs instead of compiling.

  The folder only holds compiled programs keyed by their code, JAX version, flags and device: it is safe to delete
  at any time (the next run compiles again). A program is written when it took at least `min_compile_seconds` to
  compile; the entry-size threshold is turned off so that small programs are kept too.

  Args:
    path: the cache folder; default default_cache_dir() (the ELASTICITY_JAX_CACHE variable, then the user's cache
      folder). Created if missing.
    min_compile_seconds: programs that compiled faster than this are not written (>= 0).

  Returns:
    The folder in use, or None when the cache is switched off (ELASTICITY_JAX_CACHE=off and no `path`).

  References:
    JAX documentation, "Persistent compilation cache" (jax_compilation_cache_dir and its thresholds).
  """
  if not min_compile_seconds >= 0:
    raise ValueError(f"min_compile_seconds={min_compile_seconds!r} is not allowed; allowed: a number >= 0")
  folder = pathlib.Path(path).expanduser() if path is not None else default_cache_dir()
  if folder is None:
    return None
  try:
    folder.mkdir(parents=True, exist_ok=True)
  except OSError as error:
    raise ValueError(f"compilation cache folder {str(folder)!r} cannot be created ({error.strerror}); allowed: a "
                     f"writable folder, or {CACHE_ENV}=off") from None
  folder = folder.resolve()
  previous = jax.config.jax_compilation_cache_dir
  jax.config.update("jax_compilation_cache_dir", str(folder))
  jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_seconds))
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)  # -1: no size threshold, no override.
  if previous is not None and previous != str(folder):
    jax_compilation_cache.reset_cache()  # JAX opens its cache once: a new folder needs a fresh start.
  return folder


@dataclasses.dataclass(frozen=True)
class ProgramBuild:
  """One XLA program JAX built: its function's name, the seconds it took, and whether the persistent cache had it."""

  name: str  # the jitted function's name as JAX reports it, e.g. 'jit(_segment)'.
  seconds: float  # seconds compiling it, or loading it from the persistent cache.
  loaded: bool  # True: loaded from the persistent cache; False: compiled.


@dataclasses.dataclass
class CompileStats:
  """What JAX compiled while count_compilations() was open (updated live)."""

  programs: int = 0  # XLA programs built: compiled, or loaded from the persistent cache.
  cache_hits: int = 0  # of those, loaded from the persistent cache.
  compile_seconds: float = 0.0  # seconds in XLA compilation (cache loads included).
  trace_seconds: float = 0.0  # seconds tracing Python functions to jaxprs.
  lower_seconds: float = 0.0  # seconds lowering jaxprs to StableHLO.
  log: list[ProgramBuild] = dataclasses.field(default_factory=list)  # every program, in the order built.

  @property
  def names(self) -> list[str]:
    """The function name of each program, in order (e.g. 'jit(_segment)')."""
    return [build.name for build in self.log]

  def by_program(self) -> list[dict]:
    """The programs grouped by function name, the costliest first: for each name, how many programs it built
    (one per distinct shape, dtype or option), how many of them the persistent cache had, and their seconds (total
    and the longest one). Rows: {'name', 'programs', 'loaded', 'seconds', 'max_seconds'}."""
    return merged_by_program([{"name": build.name, "programs": 1, "loaded": int(build.loaded),
                               "seconds": build.seconds, "max_seconds": build.seconds} for build in self.log])

  @property
  def compiled(self) -> int:
    """Programs actually compiled (not loaded from the persistent cache)."""
    return self.programs - self.cache_hits

  def summary(self) -> str:
    """One line, e.g. '14 programs (11 compiled, 3 loaded from the persistent cache), 6.2 s compiling or ...'."""
    return describe(self.as_dict())

  def as_dict(self) -> dict:
    """The counts and seconds (the log left out), for JSON."""
    return {"programs": self.programs, "cache_hits": self.cache_hits, "compiled": self.compiled,
            "compile_seconds": self.compile_seconds, "trace_seconds": self.trace_seconds,
            "lower_seconds": self.lower_seconds}


def describe(counts: dict) -> str:
  """CompileStats.as_dict() `counts` (or their sums over several processes) as one line: programs compiled, how
  many of them were loaded from the persistent cache, seconds compiling (loads included), tracing and lowering."""
  traced = f"{counts['trace_seconds'] + counts['lower_seconds']:.1f} s tracing and lowering"
  if not counts["cache_hits"]:
    return f"{counts['programs']} programs compiled, {counts['compile_seconds']:.1f} s compiling, {traced}"
  return (f"{counts['programs']} programs ({counts['compiled']} compiled, "
          f"{counts['cache_hits']} loaded from the persistent cache), {counts['compile_seconds']:.1f} s compiling or "
          f"loading, {traced}")


def added(*counts: dict) -> dict:
  """The sum of CompileStats.as_dict() counts, field by field (e.g. over the experiments of a job)."""
  return {name: sum(c[name] for c in counts) for name in CompileStats().as_dict()}


def merged_by_program(*groups: list[dict]) -> list[dict]:
  """CompileStats.by_program() rows of several counts (e.g. every step and process of a job) merged by function
  name, the costliest first."""
  rows: dict[str, dict] = {}
  for group in groups:
    for row in group:
      into = rows.setdefault(row["name"], {"name": row["name"], "programs": 0, "loaded": 0, "seconds": 0.0,
                                           "max_seconds": 0.0})
      for field in ("programs", "loaded", "seconds"):
        into[field] += row[field]
      into["max_seconds"] = max(into["max_seconds"], row["max_seconds"])
  return sorted(rows.values(), key=lambda row: (-row["seconds"], row["name"]))


PROGRAMS_SHOWN = 5  # functions describe_by_program names by default (the costliest first); the others are summed.


def describe_by_program(rows: list[dict], shown: int = PROGRAMS_SHOWN) -> str:
  """by_program() rows (costliest first) as one phrase: the first `shown` functions by name, with
  their programs, how many were loaded from the persistent cache (where any were) and seconds; the others
  summed, e.g. 'jit(_segment) 24 programs (20 loaded), 28.3 s; 3 other functions 49 programs, 1.42 s'."""
  def programs(count: int, loaded: int) -> str:
    return f"{count} program{'' if count == 1 else 's'}" + (f" ({loaded} loaded)" if loaded else "")

  parts = [f"{row['name']} {programs(row['programs'], row['loaded'])}, {row['seconds']:.3g} s"
           for row in rows[:shown]]
  rest = rows[shown:]
  if rest:
    parts.append(f"{len(rest)} other function{'' if len(rest) == 1 else 's'} "
                 f"{programs(sum(r['programs'] for r in rest), sum(r['loaded'] for r in rest))}, "
                 f"{sum(r['seconds'] for r in rest):.3g} s")
  return "; ".join(parts)


@contextlib.contextmanager
def count_compilations() -> Iterator[CompileStats]:
  """Counts the XLA programs JAX builds, and the seconds it spends, inside the `with` block.

  Yields a CompileStats that fills in as programs compile; contexts may nest (each counts everything inside it).
  Counts this process only, all threads.

  References:
    JAX source, jax/_src/monitoring.py, jax/_src/dispatch.py and jax/_src/compiler.py (the compile-duration and
    cache-hit events it records).
  """
  stats = CompileStats()
  # JAX records a cache hit inside the compile call and the compile's duration when that call returns, in the same
  # thread: a hit seen in this thread and not yet matched belongs to the next program this thread finishes.
  pending = threading.local()

  def on_duration(event: str, duration: float, **kwargs) -> None:
    if event == BACKEND_COMPILE_EVENT:
      loaded = getattr(pending, "hits", 0) > 0
      pending.hits = getattr(pending, "hits", 0) - loaded
      stats.programs += 1
      stats.compile_seconds += duration
      stats.log.append(ProgramBuild(str(kwargs.get("fun_name", "?")), float(duration), loaded))
    elif event == TRACE_EVENT:
      stats.trace_seconds += duration
    elif event == LOWER_EVENT:
      stats.lower_seconds += duration

  def on_event(event: str, **kwargs) -> None:
    if event == CACHE_HIT_EVENT:
      stats.cache_hits += 1
      pending.hits = getattr(pending, "hits", 0) + 1

  jax.monitoring.register_event_duration_secs_listener(on_duration)
  jax.monitoring.register_event_listener(on_event)
  try:
    yield stats
  finally:
    jax.monitoring.unregister_event_duration_listener(on_duration)
    jax.monitoring.unregister_event_listener(on_event)
