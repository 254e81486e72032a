"""Training throughput of toy transformers: compile time, steps/s and run-steps/s by width, float type and run count.

Every measurement trains `runs` vmapped runs of one transformer on the exact leaf weights of a random dataset with
minibatches (the experiments' stage): a first call compiles and runs `warmup_steps` (its seconds are "compile
included", with the number of XLA programs it built), a second call of `steps` steps reuses the program (budgets and
segment bounds are traced) and is timed until the losses are on the host; with no progress shown, each call trains in
one segment (toy_models.training.segment_bounds). The sweep row times what a researcher runs:
`sweep_runs` runs of `sweep_steps` steps from scratch in one process, compilation included. First calls and sweeps
compile every program as a fresh process on an empty cache would: the persistent cache is off while they run and
JAX's in-memory caches are cleared before each, so that a user's warm cache does not turn compile times into loads.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import os
import pathlib
import platform
import re
import tempfile
import time
from collections.abc import Callable

import jax
import numpy as np

from theory import token_tree
from toy_models import compilation, training
from toy_models.model_config import DTYPES, ModelConfig
from toy_models.models import build_model
from toy_models.stage_config import StageConfig

MAX_STEPS = 1_000_000  # refuse more timed steps than a stage may take (a typo would run for days).


@dataclasses.dataclass(frozen=True, kw_only=True)
class Workload:
  """One transformer and its training stage: what a row of the benchmark trains."""

  name: str  # 'w16' or 'w64': how tables refer to it.
  width: int  # residual width.
  layers: int  # blocks.
  heads: int  # attention heads.
  batch_size: int  # responses per minibatch.
  steps: int  # timed steps per measurement.
  depth: int = 8  # token-tree depth (every response of the tree can be drawn).


WORKLOADS = (Workload(name="w16", width=16, layers=1, heads=2, batch_size=32, steps=100),
             Workload(name="w64", width=64, layers=2, heads=4, batch_size=256, steps=20))
"""The default transformer of the experiments (width 16, 1 layer, minibatch 32) and the paper-scale one (width 64,
2 layers, 4 heads, minibatch 256). A timed call includes what every call pays once (initial parameters, placing the
data, the final exact loss): at width 64 that was most of a 5-step call (38 ms per run-step in float32, 2-core CPU,
2026-11-27, against 18 ms in calls of 20 and 60 steps), so the width-64 rows time 20 steps. Until 2026-11-28 those 20
steps ran as 20 one-step segments, each paying a call's first step again (about twice a later step's time at width 64
in float64): the float64 rows measured 30-35 run-steps/s instead of 63-65 (1 run, AMD EPYC, side by side)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class BenchConfig:
  """What `elasticity bench` measures."""

  workloads: tuple[str, ...] = ("w16", "w64")  # names of WORKLOADS to time.
  dtypes: tuple[str, ...] = DTYPES  # float types to train in (metrics are float64 regardless).
  runs: tuple[int, ...] = (1, 8, 32)  # numbers of vmapped runs (add 256 on an accelerator).
  steps_scale: float = 1.0  # multiplies every workload's timed steps (at least one step).
  warmup_steps: int = 2  # steps of the compiling call.
  sweep_runs: int = 8  # runs of the from-scratch sweep (the w16 workload), or 0 to skip it.
  sweep_steps: int = 800  # steps of each run of the sweep.
  sweep_presets: tuple[str, ...] = ("optimized", "fast-compile")  # compile presets of the sweep (compilation.PRESETS).
  sweep_repeats: int = 3  # times each sweep runs from scratch; the fastest counts, every time is saved.
  accuracy: bool = True  # also run the Hooke acceptance (tabular, joint, default grid) in each float type.
  seed: int = 0  # initial parameters, minibatch keys and the dataset's leaf weights.

  def __post_init__(self):
    names = {w.name for w in WORKLOADS}
    for field, values, allowed in (("workloads", self.workloads, names), ("dtypes", self.dtypes, set(DTYPES))):
      if not values or len(set(values)) != len(values) or any(v not in allowed for v in values):
        raise ValueError(f"{field}={list(values)} is not allowed; allowed: distinct values of "
                         f"{', '.join(sorted(allowed))}")
    if (not self.sweep_presets or len(set(self.sweep_presets)) != len(self.sweep_presets)
            or any(p not in compilation.PRESETS for p in self.sweep_presets)):
      raise ValueError(f"sweep_presets={list(self.sweep_presets)} is not allowed; allowed: distinct values of "
                       f"{', '.join(compilation.PRESETS)}")
    if not self.runs or any(isinstance(r, bool) or not isinstance(r, int) or r < 1 for r in self.runs):
      raise ValueError(f"runs={list(self.runs)} is not allowed; allowed: one or more integers >= 1")
    if len(set(self.runs)) != len(self.runs):
      raise ValueError(f"runs={list(self.runs)} repeats a value; allowed: distinct integers >= 1")
    for name in ("warmup_steps", "sweep_steps", "sweep_runs", "sweep_repeats", "seed"):
      value = getattr(self, name)
      low = 1 if name in ("warmup_steps", "sweep_steps", "sweep_repeats") else 0
      if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= MAX_STEPS:
        raise ValueError(f"{name}={value!r} is not allowed; allowed: an integer {low}..{MAX_STEPS}")
    if not (isinstance(self.steps_scale, int | float) and 0 < self.steps_scale <= 1000):
      raise ValueError(f"steps_scale={self.steps_scale!r} is not allowed; allowed: a number in (0, 1000]")


def _round(value: float, digits: int = 4) -> float:
  """`value` to `digits` significant digits (JSON stays readable)."""
  return float(f"{value:.{digits}g}")


def cpu_model() -> str:
  """The processor's model name as the operating system reports it (Linux: /proc/cpuinfo), else 'unknown CPU'."""
  try:
    for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
      if line.startswith("model name") and ":" in line:
        return line.split(":", 1)[1].strip() or "unknown CPU"
  except OSError:
    pass
  return platform.processor() or "unknown CPU"


def device_info() -> dict:
  """The machine: JAX backend, its devices, the CPU's model and count, and JAX versions."""
  try:
    jaxlib_version = importlib.metadata.version("jaxlib")
  except importlib.metadata.PackageNotFoundError:
    jaxlib_version = "absent"
  return {"platform": jax.default_backend(), "devices": [str(d) for d in jax.devices()],
          "device_kind": jax.devices()[0].device_kind, "device_count": jax.device_count(),
          "cpu_model": cpu_model(), "cpu_count": os.cpu_count(), "load_average_1min": _round(os.getloadavg()[0], 3),
          "jax_version": jax.__version__, "jaxlib_version": jaxlib_version}


def _model(workload: Workload, dtype: str):
  return build_model(ModelConfig(kind="transformer", width=workload.width, layers=workload.layers,
                                 heads=workload.heads, dtype=dtype), workload.depth)


def _stage(workload: Workload) -> StageConfig:
  return StageConfig(steps=1, learning_rate=0.003, schedule="constant", gradient="minibatch",
                     batch_size=workload.batch_size)


def _train(workload: Workload, dtype: str, runs: int, steps: int, seed: int):
  """One call of train_batch from fresh parameters: (seconds, final losses, compile stats)."""
  model = _model(workload, dtype)
  keys = jax.random.split(jax.random.PRNGKey(seed), runs)
  weights = np.tile(np.random.default_rng(seed).random(token_tree.n_leaves(workload.depth)) + 0.01, (runs, 1))
  with compilation.count_compilations() as stats:
    start = time.perf_counter()
    params = training.init_params(model, keys)
    _, losses = training.train_batch(model, _stage(workload), params, weights, np.full(runs, steps), keys=keys)
    seconds = time.perf_counter() - start
  return seconds, losses, stats


def time_training(workload: Workload, dtype: str, runs: int, *, steps: int, warmup_steps: int, seed: int) -> dict:
  """Compile-included seconds of a first call and steady steps per second of a second one.

  Returns:
    workload, dtype, runs, steps, parameter_count; compile_seconds_included (the first call of warmup_steps steps,
    compilation included), programs_compiled and compile_seconds (XLA's own count and time for that call);
    seconds, steps_per_second (each run advances this many steps per second) and run_steps_per_second (runs x
    steps / seconds) of the timed call; its mean final training loss in nats per token.
  """
  jax.clear_caches()  # the first call compiles everything it needs, as in a fresh process
  first_seconds, _, stats = _train(workload, dtype, runs, warmup_steps, seed)
  seconds, losses, _ = _train(workload, dtype, runs, steps, seed)
  return {"workload": workload.name, "dtype": dtype, "runs": runs, "steps": steps,
          "parameter_count": _model(workload, dtype).parameter_count(),
          "compile_seconds_included": _round(first_seconds), "programs_compiled": stats.programs,
          "compile_seconds": _round(stats.compile_seconds), "seconds": _round(seconds),
          "steps_per_second": _round(steps / seconds), "run_steps_per_second": _round(runs * steps / seconds),
          "final_loss_nats_per_token": float(np.mean(losses))}


def sweep(config: BenchConfig, dtype: str, preset: str = "optimized") -> dict:
  """sweep_runs runs of sweep_steps steps of the w16 workload, from scratch, compilation included (seconds), with
  the training loop compiled under `preset` (toy_models.compilation.PRESETS): the fastest of sweep_repeats times
  (its compile figures with it), each after clearing JAX's in-memory caches and with the persistent cache off, so
  that every one compiles every program; `seconds_each` keeps them all, `runs_per_call` the runs of the calls the
  preset trains the sweep in (training.share_calls; None: one call)."""
  workload = next(w for w in WORKLOADS if w.name == "w16")
  timed = []
  with compilation.using_preset(preset), compilation.without_persistent_cache():
    for _ in range(config.sweep_repeats):
      jax.clear_caches()  # from scratch: nothing an earlier sweep of this process compiled is reused
      timed.append(_train(workload, dtype, config.sweep_runs, config.sweep_steps, config.seed + 1))
    runs_per_call = compilation.runs_per_call()
  seconds, losses, stats = min(timed, key=lambda item: item[0])
  return {"dtype": dtype, "preset": preset, "runs": config.sweep_runs, "steps": config.sweep_steps,
          "runs_per_call": runs_per_call,
          "seconds": _round(seconds), "seconds_each": [_round(item[0]) for item in timed],
          "ms_per_run_step": _round(1000 * seconds / (config.sweep_runs * config.sweep_steps)),
          "programs_compiled": stats.programs, "compile_seconds": _round(stats.compile_seconds),
          "cache_hits": stats.cache_hits, "final_loss_nats_per_token": float(np.mean(losses))}


def _calls(sweeps: list[dict], preset: str) -> str:
  """', in calls of N runs' when the sweeps of `preset` were split into calls (training.share_calls), else ''."""
  split = {row.get("runs_per_call") for row in sweeps if row.get("preset", "optimized") == preset} - {None}
  return f", in calls of {min(split)} runs" if split else ""


def acceptance(dtype: str) -> dict:
  """What a float type costs in accuracy: the Hooke acceptance (tabular model, joint regime, the default grid)
  trained in `dtype` — its largest rate gap to the exact mixture (bits per response) and its slope."""
  from experiments import hooke, runner

  config = hooke.EXPERIMENT.config("default", {"models": ["tabular"], "regimes": ["joint"], "dtype": dtype})
  with tempfile.TemporaryDirectory(prefix="elasticity-bench-") as directory:
    start = time.perf_counter()
    summary = runner.run(hooke.EXPERIMENT, config, directory, show_progress=False)
    seconds = time.perf_counter() - start
  found = summary["acceptance"]
  return {"dtype": dtype, "max_rate_gap_bits": found["tabular_joint_max_rate_gap_bits"],
          "slope": found["tabular_joint_slope_at_smallest_l"], "passed": found["passed"], "seconds": _round(seconds)}


def run_benchmark(config: BenchConfig, log: Callable[[str], None] | None = None) -> dict:
  """Every measurement of `config`, with the machine described.

  Args:
    config: what to measure.
    log: optional callable(line) told about each measurement as it finishes.

  Returns:
    {'device': device_info(), 'runs_per_call': compilation.runs_per_call() (the runs of the calls the table's
    batches are split into, training.share_calls; None: one call),
    'sweep': [sweep rows, one per dtype], 'training': [time_training rows],
    'compilation': totals over the sweeps and training measurements, 'compilation_by_program': the same programs
    grouped by function name (CompileStats.by_program), 'accuracy': [acceptance rows, one per dtype]}.
  """
  say = log or (lambda line: None)
  result = {"device": device_info(), "runs_per_call": compilation.runs_per_call(), "sweep": [], "training": [],
            "accuracy": []}
  with compilation.count_compilations() as total, compilation.without_persistent_cache():
    for preset in config.sweep_presets if config.sweep_runs else ():
      for dtype in config.dtypes:
        row = sweep(config, dtype, preset)
        say(f"bench: sweep of {row['runs']} runs x {row['steps']} steps, {dtype} {preset}: {row['seconds']:g} s "
            f"with compilation ({row['programs_compiled']} programs, {row['compile_seconds']:g} s compiling)")
        result["sweep"].append(row)
    for workload in (w for w in WORKLOADS if w.name in config.workloads):
      steps = max(1, round(workload.steps * config.steps_scale))
      for dtype in config.dtypes:
        for runs in config.runs:
          row = time_training(workload, dtype, runs, steps=steps, warmup_steps=config.warmup_steps, seed=config.seed)
          say(f"bench: {workload.name} {dtype} {runs} runs: {row['run_steps_per_second']:g} run-steps/s, "
              f"{row['compile_seconds_included']:g} s for the first call ({row['programs_compiled']} programs)")
          result["training"].append(row)
  result["compilation"] = total.as_dict()
  result["compilation_by_program"] = total.by_program()
  if config.accuracy:
    for dtype in config.dtypes:
      row = acceptance(dtype)
      say(f"bench: Hooke acceptance in {dtype}: rate gap {row['max_rate_gap_bits']:.3g} bits, "
          f"slope {row['slope']:.4f}")
      result["accuracy"].append(row)
  return result


def _rate(value: float) -> str:
  return f"{value:.0f}" if value >= 1000 else f"{value:.4g}"


def _by_dtype_table(rows: list[dict]) -> list[str]:
  """Training rows as a table with one line per (model, runs) and the float types side by side."""
  dtypes = list(dict.fromkeys(r["dtype"] for r in rows))
  cells = {(r["workload"], r["runs"], r["dtype"]): r for r in rows}
  keys = list(dict.fromkeys((r["workload"], r["runs"]) for r in rows))
  lines = ["| model | runs | " + " | ".join(f"{d}: first call s, run-steps/s" for d in dtypes) + " |",
           "|---|---|" + "---|" * len(dtypes)]
  for workload, runs in keys:
    found = [cells.get((workload, runs, d)) for d in dtypes]
    lines.append(f"| {workload} | {runs} | " + " | ".join(
        f"{r['compile_seconds_included']:.3g}, {_rate(r['run_steps_per_second'])}" if r else "—" for r in found) + " |")
  return lines


def _machine(device: dict) -> str:
  """The machine's name in the speed block: the CPU's model on a CPU (JAX names that device only 'cpu'), else the
  accelerator's kind; runs saved before cpu_model was recorded keep JAX's name."""
  if device["platform"] == "cpu":
    return device.get("cpu_model", device["device_kind"])
  return device["device_kind"]


def markdown(saved: dict) -> str:
  """The README's speed block, from a saved bench JSON: the machine, the sweep, accuracy and the throughput table."""
  device = saved["device"]
  lines = [f"<!-- generated by `elasticity bench --publish` at commit {saved.get('git_commit', '?')[:12]}; "
           "do not edit -->",
           f"Measured on {_machine(device)} ({device['platform']}, {device['cpu_count']} CPUs, load average "
           f"{device.get('load_average_1min', '?')} at the start), jax {device['jax_version']}; float64 is the default "
           "of every experiment (metrics are always float64). First calls include compiling (or loading from the "
           "persistent cache: "
           f"{saved['compilation']['cache_hits']} of {saved['compilation']['programs']} programs here)"
           + (f"; the table's batches train in calls of {saved['runs_per_call']} runs (share_calls)."
              if saved.get("runs_per_call") else ".")]
  sweeps = saved["sweep"]
  if sweeps:
    presets = list(dict.fromkeys(row.get("preset", "optimized") for row in sweeps))
    repeats = len(sweeps[0].get("seconds_each", [0]))
    best = f" (fastest of {repeats})" if repeats > 1 else ""
    lines.append(f"- Sweep of {sweeps[0]['runs']} runs × {sweeps[0]['steps']} steps from scratch, with compilation"
                 f"{best}: "
                 + "; ".join(", ".join(f"{row['seconds']:g} s in {row['dtype']}" for row in sweeps
                                       if row.get("preset", "optimized") == preset) + f" ({preset} XLA options"
                             + _calls(sweeps, preset) + ")" for preset in presets)
                 + " (`--compile`; fast-compile is the quick scale's).")
  accuracy = saved.get("accuracy", [])
  if accuracy:
    lines.append("- Hooke acceptance (tabular, joint, default grid), largest rate gap to the exact mixture in bits "
                 "per response and slope: " + "; ".join(
                     f"trained in {row['dtype']} {row['max_rate_gap_bits']:.2g}, {row['slope']:.4f} "
                     f"({'passed' if row['passed'] else 'FAILED'})" for row in accuracy) + ".")
  lines += ["", *_by_dtype_table(saved["training"])]
  if saved.get("torch_reference"):
    lines += ["", *torch_comparison_lines(saved)]
  return "\n".join(lines) + "\n"


def read_torch_reference(path) -> dict:
  """The JSON benchmarks/torch_loop.py wrote (torch version, threads, one row per workload and float type).

  Args:
    path: the file.

  Returns:
    The JSON as a dict; a one-line ValueError when it is missing or not torch_loop's output.
  """
  path = pathlib.Path(path)
  try:
    saved = json.loads(path.read_text())
  except (OSError, ValueError) as error:
    raise ValueError(f"--torch-reference {path} cannot be read ({error}); allowed: the JSON of "
                     "benchmarks/torch_loop.py") from None
  if not isinstance(saved, dict) or not {"torch", "threads", "rows"} <= set(saved) or not all(
      {"workload", "dtype", "runs", "steps", "seconds", "ms_per_run_step"} <= set(r) for r in saved["rows"]):
    raise ValueError(f"--torch-reference {path} is not the JSON of benchmarks/torch_loop.py; allowed: its output")
  return saved


def torch_comparison_lines(saved: dict) -> list[str]:
  """PyTorch (runs one after another, eager) against this toolkit, measured side by side on one machine.

  w16: torch_loop's 8 runs x 800 steps against the from-scratch sweep of the same size (compilation included on
  our side, none to pay on PyTorch's); w64: milliseconds per run-step against our single-run and best vmapped rows
  (compilation excluded on both sides; the best row names its run count). A ratio above 1 means this toolkit is
  faster.
  """
  reference = saved["torch_reference"]
  sweeps = {(r["dtype"], r["runs"], r["steps"], r.get("preset", "optimized")): r for r in saved.get("sweep", [])}
  presets = list(dict.fromkeys(key[3] for key in sweeps))
  cells: dict[str, dict[str, tuple[float, float, str]]] = {}  # row label -> dtype -> (PyTorch, ours, note)
  for row in reference["rows"]:
    dtype = row["dtype"]
    for preset in presets if row["workload"] == "w16" else ():
      key = (dtype, row["runs"], row["steps"], preset)
      if key in sweeps:
        paid = ("compiling included" if not sweeps[key].get("cache_hits") else
                "programs loaded from the persistent cache")
        label = f"w16, {row['runs']} runs × {row['steps']} steps (s; ours {paid}, {preset})"
        cells.setdefault(label, {})[dtype] = (row["seconds"], sweeps[key]["seconds"], "")
    ours = [r for r in saved["training"] if r["workload"] == row["workload"] and r["dtype"] == dtype]
    if row["workload"] != "w16" and ours:
      for name, pick in (("1 run", [r for r in ours if r["runs"] == 1]),
                         ("best vmapped", [max(ours, key=lambda r: r["run_steps_per_second"])])):
        if pick:  # the best row's run count is shown: where vmapping does not pay, it is the 1-run row again
          label = f"{row['workload']}, {name} (ms per run-step)"
          note = f" ({pick[0]['runs']} run{'s' * (pick[0]['runs'] != 1)})" if name == "best vmapped" else ""
          cells.setdefault(label, {})[dtype] = (row["ms_per_run_step"], 1000 / pick[0]["run_steps_per_second"], note)
  dtypes = list(dict.fromkeys(r["dtype"] for r in reference["rows"]))
  repeats = len(reference["rows"][0].get("seconds_each", [0])) if reference["rows"] else 1
  best = f", fastest of {repeats}" if repeats > 1 else ""
  lines = [f"Beside PyTorch {reference['torch']} ({reference['threads']} threads, `benchmarks/torch_loop.py`, one "
           f"run after another{best}, run on this machine just before); PyTorch / ours / ratio, above 1: ours is "
           "faster:", "",
           "| workload | " + " | ".join(dtypes) + " |", "|---|" + "---|" * len(dtypes)]
  for label, by_dtype in cells.items():
    lines.append(f"| {label} | " + " | ".join(
        f"{by_dtype[d][0]:.3g} / {by_dtype[d][1]:.3g} / {by_dtype[d][0] / by_dtype[d][1]:.2f}{by_dtype[d][2]}"
        if d in by_dtype
        else "—" for d in dtypes) + " |")
  return lines


_ROW = re.compile(r"bench: (\w+) (float\d+) (\d+) runs: ([\d.e+]+) run-steps/s, ([\d.e+]+) s for the first call "
                  r"\((\d+) programs\)")
_SWEEP = re.compile(r"bench: sweep of (\d+) runs x (\d+) steps, (float\d+)(?: ([\w-]+))?: ([\d.e+]+) s with "
                    r"compilation \((\d+) programs, ([\d.e+]+) s compiling\)")


def rows_from_log(text: str) -> tuple[list[dict], list[dict]]:
  """(training rows, sweep rows) from the lines `elasticity bench` logs as it measures (what a run cut short by a
  time limit leaves behind)."""
  training = [{"workload": m[1], "dtype": m[2], "runs": int(m[3]), "run_steps_per_second": float(m[4]),
               "compile_seconds_included": float(m[5]), "programs_compiled": int(m[6])}
              for m in _ROW.finditer(text)]
  sweeps = [{"runs": int(m[1]), "steps": int(m[2]), "dtype": m[3], "preset": m[4] or "optimized",
             "seconds": float(m[5]), "programs_compiled": int(m[6]), "compile_seconds": float(m[7])}
            for m in _SWEEP.finditer(text)]
  return training, sweeps


def accelerator_markdown(folder) -> str:
  """The README's accelerator block from the logs of benchmarks/gpu_bench.sh saved in `folder`."""
  folder = pathlib.Path(folder)
  device = (folder / "gpu.txt").read_text().splitlines()
  training, sweeps = [], []
  for log in sorted(folder.glob("*.log")):
    rows, found = rows_from_log(log.read_text())
    training += rows
    sweeps += found
  lines = ["<!-- generated from figures/data/gpu/ (benchmarks/gpu_bench.sh on the device); do not edit -->",
           f"Measured on {device[0].split(',')[0]} ({device[1]}), persistent cache off (every program compiled)."]
  lines += [f"- Sweep of {s['runs']} runs × {s['steps']} steps from scratch, {s['dtype']}: {s['seconds']:g} s "
            f"({s['compile_seconds']:g} s of it compiling {s['programs_compiled']} programs)." for s in sweeps]
  lines += ["", *_by_dtype_table(training)]
  return "\n".join(lines) + "\n"
