"""The main job (`elasticity reproduce`): every registered experiment at one scale, its figures, REPORT.md, verdicts.

A user's run writes under runs/ (figures, REPORT.md, verdicts.md, data/<experiment>/ run directories). Runs of the
default scale that were published with the same config (same config hash) are copied from the checkout's
figures/data instead of being recomputed, unless `recompute`. Only `publish` writes the published results: it runs
(or resumes) every experiment in figures/data, draws into figures/ and refreshes the README's generated blocks.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import ctypes
import dataclasses
import gc
import multiprocessing
import os
import pathlib
import queue as queue_module
import shutil
import signal
import sys
import time
from collections.abc import Callable

import jax

from experiments import changes, paths, readme_blocks, records, registry, runner, statistics, verdicts
from experiments.protocol import SCALES, ReportContext
from experiments.run_dir import RunDir
from toy_models import compilation

REPORT = "REPORT.md"
VERDICTS = "verdicts.md"
HEADLINES = "headlines.md"
COPIED = ("config.json", "summary.json", "units")  # what a reused published run brings along (no checkpoints).
PR_SET_PDEATHSIG = 1  # Linux prctl option: the signal a process gets when the thread that started it ends.
_worker_results: list = [None]  # in a worker process: the queue it reports finished experiments on.
MAX_DEFAULT_JOBS = 4  # experiments run at once by default on a CPU (each process holds its own JAX runtime).


@dataclasses.dataclass(frozen=True, kw_only=True)
class ReproduceConfig:
  """What `elasticity reproduce` runs and where it writes."""

  scale: str = "default"  # one of experiments.protocol.SCALES.
  out_dir: pathlib.Path | None = None  # default runs/reproduce-<scale>; with publish, the checkout's figures/.
  publish: bool = False  # write the published results (figures/, figures/data/, README blocks); default scale only.
  recompute: bool = False  # recompute every run instead of copying published runs of the same config.
  only: tuple[str, ...] = ()  # run only these experiments (default: every registered one that reproduce runs).
  jobs: int | None = None  # experiments run at once, each in its own process (None: default_jobs()).
  compile_preset: str = "auto"  # XLA options of training loops: auto (by scale) or compilation.PRESETS.

  def __post_init__(self):
    if self.scale not in SCALES:
      raise ValueError(f"unknown scale {self.scale!r}; allowed: {', '.join(SCALES)}")
    if self.publish and self.scale != "default":
      raise ValueError(f"--publish with --scale {self.scale} is not allowed; allowed: --publish at the default "
                       "scale only (the published results are the pre-registered default runs)")
    if self.publish and self.out_dir is not None and pathlib.Path(self.out_dir).resolve() != self.target.resolve():
      raise ValueError(f"--publish with --out-dir {self.out_dir} is not allowed; allowed: --publish alone (it "
                       f"writes {paths.published_dir()})")
    if self.publish and paths.published_dir() is None:
      raise ValueError("--publish needs a checkout of the repository (pip install -e .); this install has none")
    for name in self.only:
      registry.get(name)
    if self.compile_preset != "auto" and self.compile_preset not in compilation.PRESETS:
      raise ValueError(f"unknown compile preset {self.compile_preset!r}; allowed: auto, "
                       f"{', '.join(compilation.PRESETS)}")
    if self.jobs is not None and (isinstance(self.jobs, bool) or not isinstance(self.jobs, int) or self.jobs < 1):
      raise ValueError(f"jobs={self.jobs!r} is not allowed; allowed: an integer >= 1 (experiments run at once)")

  @property
  def target(self) -> pathlib.Path:
    """The folder the figures and REPORT.md go to."""
    if self.publish:
      return paths.published_dir()
    return pathlib.Path(self.out_dir) if self.out_dir is not None else paths.RUNS / f"reproduce-{self.scale}"

  @property
  def data(self) -> pathlib.Path:
    """The folder of the run directories."""
    return self.target / "data"

  def experiments(self) -> list:
    """The experiments this run covers, in registry order."""
    return [e for e in registry.EXPERIMENTS.values() if (e.name in self.only if self.only else e.in_reproduce)]


def _log(text: str) -> None:
  print(text, file=sys.stderr, flush=True)


def reuse_published(experiment, config, run_dir: pathlib.Path) -> bool:
  """Copies the published run of `experiment` into `run_dir` when it has the same config; returns whether it did."""
  published = paths.published_data()
  source = None if published is None else published / experiment.name
  if source is None or run_dir.exists() or not (source / "config.json").exists():
    return False
  saved = records.read_json(source / "config.json")
  if saved.get("config_hash", records.config_hash(saved.get("config"))) != records.config_hash(config):
    return False
  run_dir.mkdir(parents=True)
  for name in COPIED:
    if (source / name).is_dir():
      shutil.copytree(source / name, run_dir / name)
    elif (source / name).exists():
      shutil.copy2(source / name, run_dir / name)
  return True


@dataclasses.dataclass
class Outcome:
  """One experiment's results within the main job."""

  experiment: object  # the Experiment.
  config: object  # its config.
  summary: dict  # its summary.
  run_dir: pathlib.Path  # its run directory.
  files: tuple[pathlib.Path, ...]  # its figures.
  reused: bool  # whether the run was copied from the published results.
  seconds: float  # wall time of this step.
  section: str = ""  # its REPORT.md section (written once every experiment has run).
  compiled: dict = dataclasses.field(default_factory=dict)  # compilation.CompileStats.as_dict() of this step, with
  # its by_program() rows under 'by_program' (_counts).


def run_experiment(reproduce: ReproduceConfig, experiment, show_progress: bool | str = True) -> Outcome:
  """Runs (or resumes, or reuses) one experiment at the job's scale and draws its figures."""
  start = time.perf_counter()
  config = experiment.config(reproduce.scale)
  run_dir = reproduce.data / experiment.name
  reused = (reproduce.scale == "default" and not reproduce.publish and not reproduce.recompute
            and reuse_published(experiment, config, run_dir))
  with compilation.count_compilations() as compiled:
    summary = runner.run(experiment, config, run_dir, publishing=reproduce.publish, show_progress=show_progress)
    reader = RunDir(run_dir, config, experiment=experiment.name, writable=False)
    files = tuple(experiment.figures(config, summary, reader, reproduce.target))
  return Outcome(experiment, config, summary, run_dir, files, reused, time.perf_counter() - start,
                 compiled=_counts(compiled))


def _counts(stats: compilation.CompileStats) -> dict:
  """What a step compiled, as it travels back from a worker: the counts, and the programs by function name."""
  return {**stats.as_dict(), "by_program": stats.by_program()}


def default_jobs(scale: str | None = None) -> int:
  """Experiments run at once by default: one per CPU core up to MAX_DEFAULT_JOBS on a CPU backend, one otherwise,
  and one at the paper scale.

  On a CPU most of a quick run is XLA compilation, which uses one core per program, and small training steps,
  which use the cores poorly; separate processes keep every core busy. An accelerator is shared by one process.
  At the paper scale one experiment's process holds up to about 3 GB on a CPU (docs/USAGE.md, "Memory"): one at a
  time keeps the command within 4 GB.
  """
  if jax.default_backend() != "cpu" or scale == "paper":
    return 1
  return max(1, min(available_cores(), MAX_DEFAULT_JOBS))


def available_cores() -> int:
  """The CPU cores this process may run on (its affinity mask where the OS has one, else the machine's count)."""
  return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def expected_seconds(reproduce: ReproduceConfig, experiment) -> float:
  """How long `experiment` is expected to take (to start the longest first): the compute seconds of its last run
  in this job's folder, else the seconds its scales.toml records for the scale, else those of its published run
  (default scale), else 0."""
  def compute_seconds(folder: pathlib.Path) -> float | None:
    summary = folder / "summary.json"
    return float(records.read_json(summary).get("compute_seconds") or 0.0) if summary.exists() else None

  last = compute_seconds(reproduce.data / experiment.name)
  if last is not None:
    return last
  hint = experiment.expected_seconds(reproduce.scale)
  if hint is not None:
    return hint
  published = paths.published_data()
  if reproduce.scale == "default" and published is not None:
    return compute_seconds(published / experiment.name) or 0.0
  return 0.0


def skip_the_last_collection_at_exit() -> None:
  """Freezes every object out of the cyclic garbage collector at exit (gc.freeze as an atexit handler: it runs before
  the handlers registered earlier, e.g. JAX's own clean-up, which still run), so that the interpreter's last collection
  does not walk the millions of objects sympy, JAX and matplotlib leave.

  That collection took about 0.5 s of every command and of every worker process of `reproduce` (2-core CPU,
  2026-11-28) and frees nothing that outlives the process: files are closed by their `with` blocks or by reference
  counting, and the memory goes back to the OS either way.

  References:
    Python documentation, gc.freeze and atexit.
  """
  atexit.unregister(gc.freeze)  # once per process, however many commands it runs (the tests call main() often)
  atexit.register(gc.freeze)


def prepare_worker(cache_dir: str | None, preset: str = "optimized", results=None) -> None:
  """What a worker process needs before its first experiment: float64 JAX, the parent's compilation cache and
  compile preset (toy_models.compilation.PRESETS), and the queue its finished experiments are reported on.

  A worker ignores Ctrl-C (the parent stops it: one line, no traceback per worker) and, on Linux, is killed when the
  thread that started it ends, so that no worker outlives an interrupted or killed command.
  """
  signal.signal(signal.SIGINT, signal.SIG_IGN)
  skip_the_last_collection_at_exit()
  if sys.platform == "linux":
    try:
      ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
      pass  # no prctl: the parent still stops its workers on Ctrl-C
  jax.config.update("jax_enable_x64", True)
  compilation.set_preset(preset)
  if cache_dir:
    compilation.enable_persistent_cache(cache_dir)
  _worker_results[:] = [results]


def worker_pool(jobs: int, results=None) -> concurrent.futures.ProcessPoolExecutor:
  """`jobs` spawned worker processes prepared by prepare_worker with this process's compilation cache folder and
  compile preset (and `results`, the queue they report finished experiments on)."""
  return concurrent.futures.ProcessPoolExecutor(
      jobs, mp_context=multiprocessing.get_context("spawn"), initializer=prepare_worker,
      initargs=(jax.config.jax_compilation_cache_dir, compilation.preset(), results))


def _run_in_worker(reproduce: ReproduceConfig, name: str
                   ) -> tuple[dict, tuple[pathlib.Path, ...], bool, float, dict]:
  """run_experiment in a worker process; returns what pickles (summary, figures, reused, seconds, compiled)."""
  outcome = run_experiment(reproduce, registry.get(name), show_progress="lines")
  return outcome.summary, outcome.files, outcome.reused, outcome.seconds, outcome.compiled


def _run_chain_in_worker(reproduce: ReproduceConfig, names: tuple[str, ...]) -> None:
  """Runs experiments one after another in one worker (they share compiled programs), reporting each as it ends."""
  for name in names:
    _worker_results[0].put((name, _run_in_worker(reproduce, name)))


def chains(experiments: list, seconds: Callable[[object], float]) -> list[list]:
  """The experiments grouped into chains that run in one process each, the longest chain first.

  Experiments with the same config class (e.g. rebound, model-size, pretrain-volume and families) train the same
  kinds of model with the same stages, so they share compiled programs: in one process a later one reuses the
  programs of an earlier one, across processes each would compile them again.
  """
  groups: dict[type, list] = {}
  for experiment in experiments:
    groups.setdefault(experiment.config_class, []).append(experiment)
  return sorted(groups.values(), key=lambda chain: -sum(seconds(e) for e in chain))


def run_experiments(reproduce: ReproduceConfig, experiments: list, log: Callable[[str], None] = _log,
                    first_step: int = 1, steps: int | None = None, alongside: Callable[[], None] | None = None
                    ) -> list[Outcome]:
  """Runs every experiment (reproduce.jobs at once, in worker processes, the longest expected first) and returns
  their outcomes in the given order; `alongside` runs in this process meanwhile (e.g. the claims check).

  Each experiment's results are the same in a worker as here (same config, same seeds, its own process).

  References:
    Python documentation, concurrent.futures.ProcessPoolExecutor and multiprocessing start methods ('spawn': a
    fresh interpreter per worker, as JAX requires).
  """
  steps = len(experiments) if steps is None else steps
  index = {e.name: first_step + i for i, e in enumerate(experiments)}
  jobs = min(reproduce.jobs or default_jobs(reproduce.scale), len(experiments))
  if jobs <= 1:
    if alongside is not None:
      alongside()
    outcomes = []
    for experiment in experiments:
      log(f"[{index[experiment.name]}/{steps}] {experiment.name} ...")
      outcome = run_experiment(reproduce, experiment)
      outcomes.append(outcome)
      log(f"[{index[experiment.name]}/{steps}] {experiment.name}: {_how(outcome.reused)}, done in "
          f"{outcome.seconds:.1f} s ({compilation.describe(outcome.compiled)})")
    return outcomes
  groups = chains(experiments, lambda e: expected_seconds(reproduce, e))
  jobs = min(jobs, len(groups))
  results = {}
  queue = multiprocessing.get_context("spawn").Queue()  # handed to each worker when it starts, not with a task
  with worker_pool(jobs, queue) as pool:
    futures = []
    for chain in groups:
      for experiment in chain:
        log(f"[{index[experiment.name]}/{steps}] {experiment.name} ... (in one of {jobs} worker processes)")
      futures.append(pool.submit(_run_chain_in_worker, reproduce, tuple(e.name for e in chain)))
    if alongside is not None:
      alongside()
    by_name = {e.name: e for e in experiments}
    while len(results) < len(experiments):
      try:
        name, (summary, files, reused, seconds, compiled) = queue.get(timeout=1.0)
      except queue_module.Empty:
        failed = [error for error in (f.exception() for f in futures if f.done()) if error is not None]
        if failed:  # the worker's traceback comes along as the cause (the CLI still prints a ValueError as one line)
          raise failed[0] from failed[0].__cause__
        continue
      experiment = by_name[name]
      results[name] = Outcome(experiment, experiment.config(reproduce.scale), summary, reproduce.data / name, files,
                              reused, seconds, compiled=compiled)
      log(f"[{index[name]}/{steps}] {name}: {_how(reused)}, done in {seconds:.1f} s "
          f"({compilation.describe(compiled)})")
    for future in futures:
      future.result()
  return [results[e.name] for e in experiments]


def _how(reused: bool) -> str:
  return "reused the published run" if reused else "ran"


def report_verdicts(outcomes: list[Outcome]) -> list[dict]:
  """Every verdict of every experiment, in report order, its key qualified by the experiment ('rebound:...'); raw,
  corrected together by verdicts.adjusted."""
  return [{**v, "key": f"{o.experiment.name}:{v['key']}"} for o in outcomes for v in o.summary.get("verdicts", [])]


def write_sections(reproduce: ReproduceConfig, outcomes: list[Outcome]) -> dict[str, str]:
  """Each experiment's REPORT.md section, its verdicts corrected over the whole report (one Holm family); returns
  every verdict's status (qualified key -> status)."""
  saved = report_verdicts(outcomes)
  corrected = verdicts.adjusted(saved, verdicts.REPORT_FAMILY)
  lines = dict(zip((d["key"] for d in saved), verdicts.lines(saved, verdicts.REPORT_FAMILY), strict=True))
  status = {d["key"]: verdicts.display_status(v) for d, v in corrected}
  adjusted = {d["key"]: float("nan") if v.p_adjusted is None else v.p_adjusted for d, v in corrected}
  for outcome in outcomes:
    reader = RunDir(outcome.run_dir, outcome.config, experiment=outcome.experiment.name, writable=False)
    context = ReportContext(experiment=outcome.experiment.name, figures_dir=reproduce.target, run_reader=reader,
                            scale=reproduce.scale, files=outcome.files, verdict_lines=lines, verdict_status=status,
                            verdict_p=adjusted)
    outcome.section = outcome.experiment.report(outcome.config, outcome.summary, context)
  return status


def changes_section(outcomes: list[Outcome], status: dict[str, str]) -> list[str]:
  """'What changed from the previous verdicts, and why', when the previous verdicts are kept with the published
  data (figures/data/previous/verdicts.md) and this job ran every experiment they came from."""
  published = paths.published_data()
  if published is None or not (published / changes.PREVIOUS).exists():
    return []
  rows = changes.section((published / changes.PREVIOUS).read_text(), status)
  return ["## What changed from the previous verdicts, and why\n\nThe previous verdicts (kept verbatim in "
          f"`figures/data/{changes.PREVIOUS.as_posix()}`) against the verdicts of this run, Holm-corrected over the "
          "report. Statuses changed because the statistics changed (each row says how); the runs also changed: 10 "
          "seeds instead of 3 to 5, a finer grid of negatives, and every default grid registered before its runs.\n\n"
          + "\n".join(rows) + "\n"]


def verdicts_block(reproduce: ReproduceConfig, outcomes: list[Outcome]) -> str:
  """The headline verdicts: one table row per confirmatory verdict of the report, Holm-corrected together."""
  saved = report_verdicts(outcomes)
  tested = sum(not v["consistency_check"] for v in saved)
  lines = [f"<!-- generated by `elasticity reproduce{' --publish' if reproduce.publish else ''} --scale "
           f"{reproduce.scale}`; do not edit -->",
           f"{tested} pre-registered tests of the paper's effects, Holm-corrected together (family-wise α = "
           f"{statistics.ALPHA:g}); consistency checks hold by construction and are not evidence. Effects are means "
           "over seeds with 95% t-intervals; every test is exact over the seeds (the unit of replication).", ""]
  return "\n".join(lines + verdicts.table(saved, verdicts.REPORT_FAMILY)) + "\n"


def headlines(saved: list[dict]) -> str:
  """The README's verdicts block: per experiment how many pre-registered tests were shown, absent or inconclusive
  (Holm-corrected over the report), then the shown ones; every line, with its claim, test and power, is in
  verdicts.md and REPORT.md."""
  corrected = verdicts.adjusted(saved, verdicts.REPORT_FAMILY)
  tested = sum(not v["consistency_check"] for v in saved)
  counts: dict[str, dict[str, int]] = {}
  for data, verdict in corrected:
    row = counts.setdefault(data["key"].split(":", 1)[0],
                            dict.fromkeys(("tests", "shown", "absent", "open", "checks"), 0))
    if verdict.consistency_check:
      row["checks"] += 1
      continue
    row["tests"] += 1
    row[{statistics.SHOWN: "shown", statistics.ABSENT: "absent"}.get(verdict.status, "open")] += 1
  lines = ["<!-- generated by `elasticity reproduce --publish`; every line in figures/verdicts.md; do not edit -->",
           f"{tested} pre-registered tests, Holm-corrected together (α = {statistics.ALPHA:g}), exact over seeds; "
           "consistency checks hold by construction and are not evidence.", "",
           "| experiment | tests | shown | evidence of absence | inconclusive | consistency checks |",
           "|---|---|---|---|---|---|"]
  lines += [f"| {name} | {c['tests']} | {c['shown']} | {c['absent']} | {c['open']} | {c['checks']} |"
            for name, c in counts.items()]
  lines += ["", "Shown (effect: mean over seeds [95% CI]):", "", "| verdict | effect [95% CI] | Holm p |",
            "|---|---|---|"]
  for data, verdict in corrected:
    if not verdict.consistency_check and verdict.status == statistics.SHOWN:
      effect = verdict.effect
      small = " (below the smallest effect of interest)" if verdict.below_interest else ""
      lines.append(f"| {data['key']}{small} | {effect.estimate:+.3g} [{effect.ci_low:+.3g}, {effect.ci_high:+.3g}] "
                   f"| {verdict.p_adjusted:.2g} |")
  return "\n".join(lines) + "\n"


def report_text(reproduce: ReproduceConfig, outcomes: list[Outcome], preface: list[str]) -> str:
  """REPORT.md: provenance, the table of runs (config hash, reused or computed), every section, all verdicts."""
  provenance = records.provenance({"scale": reproduce.scale})
  versions = ", ".join(f"{name} {version}" for name, version in provenance["package_versions"].items())
  lines = ["# lm-elasticity report", "",
           f"Generated by `elasticity reproduce{' --publish' if reproduce.publish else ''} --scale {reproduce.scale}` "
           f"at {provenance['created_utc']} from commit `{provenance['git_commit']}`.", f"Packages: {versions}.", "",
           "| experiment | run directory | config hash | registered default | units | compute s |",
           "|---|---|---|---|---|---|"]
  for outcome in outcomes:
    saved = records.read_json(outcome.run_dir / "summary.json")
    registered = outcome.experiment.registered_hash()
    state = ("not the default scale" if reproduce.scale != "default" else "none" if registered is None
             else "yes" if registered == saved["config_hash"] else "NO: changed since registration")
    lines.append(f"| {outcome.experiment.name} | `{_shown(outcome.run_dir)}` | `{saved['config_hash']}` | "
                 f"{state} | {len(outcome.experiment.units(outcome.config))} | {saved.get('compute_seconds', '-')} |")
  lines.append("")
  sections = list(preface) + [f"## {o.experiment.title}\n\n{o.section}" for o in outcomes]
  sections.append("## All verdicts\n\n" + verdicts_block(reproduce, outcomes).split("\n", 1)[1])
  return "\n".join(lines) + "\n" + "\n".join(sections)


def _shown(path: pathlib.Path) -> str:
  root = paths.repository_root()
  resolved = path.resolve()
  return str(resolved.relative_to(root)) if root is not None and root in resolved.parents else str(path)


def reproduce(reproduce: ReproduceConfig, preface: Callable[[pathlib.Path], list[str]] | None = None,
              log: Callable[[str], None] = _log) -> pathlib.Path:
  """Runs the main job; returns the path of REPORT.md.

  Args:
    reproduce: what to run and where.
    preface: optional function(target folder) -> report sections that come first (the CLI passes the claims check).
    log: where progress lines go (stderr by default).
  """
  target = paths.check_output_dir(reproduce.target, flag="--out-dir", publishing=reproduce.publish)
  runner.use_compile_preset(reproduce.scale, reproduce.compile_preset)
  experiments = reproduce.experiments()
  steps = len(experiments) + (preface is not None)
  sections = []

  claims_compiled = []

  def claims() -> None:
    log(f"[1/{steps}] claims check ...")
    start = time.perf_counter()
    with compilation.count_compilations() as compiled:  # this process only: the workers count their own
      sections.extend(preface(target))
    claims_compiled.append(_counts(compiled))
    log(f"[1/{steps}] claims check: done in {time.perf_counter() - start:.1f} s ({compiled.summary()})")

  outcomes = run_experiments(reproduce, experiments, log, first_step=1 + (preface is not None), steps=steps,
                             alongside=None if preface is None else claims)
  steps_compiled = [*claims_compiled, *(outcome.compiled for outcome in outcomes)]
  log(f"compilation, every step and process together: {compilation.describe(compilation.added(*steps_compiled))}")
  by_program = compilation.merged_by_program(*(counts["by_program"] for counts in steps_compiled))
  if by_program:
    log(f"compile time by function, every step and process together: "
        f"{compilation.describe_by_program(by_program)}")
  status = write_sections(reproduce, outcomes)
  if not reproduce.only:
    sections += changes_section(outcomes, status)
  block = verdicts_block(reproduce, outcomes)
  records.write_text(target / VERDICTS, block)
  records.write_text(target / HEADLINES, headlines(report_verdicts(outcomes)))
  report = target / REPORT
  records.write_text(report, report_text(reproduce, outcomes, sections))
  if reproduce.publish:
    readme_blocks.embed("verdicts", headlines(report_verdicts(outcomes)))
  return report
