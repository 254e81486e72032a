"""Mutation score of the theory, exact-metric and statistics modules: runs mutmut, counts its verdicts, publishes.

`python -m tests.mutation_score` mirrors the checkout into runs/mutation/work (symbolic links to the packages, the
tests and pyproject.toml, whose [tool.mutmut] section is the configuration), runs `mutmut run` there, so that its
mutants/ folder stays out of the checkout, and counts per module the mutants killed, survived, timed out and the
equivalent ones listed in tests/mutation_equivalents.toml. The score is killed / (mutants - equivalent); a timeout,
a mutant no test reaches and a survivor all count against it. Results go to runs/mutation.json; `--publish` writes
figures/data/mutation.json and the README's mutation block instead, `--from-results` recounts the last run's
verdicts without running mutmut again, `--resume` keeps mutmut's cache (only new or changed mutants are tested).

A full run tests every mutant (about 6,500; some 4 to 5 hours on 2 CPUs). `--sample N --seed S` tests a seeded random
sample of N mutants instead, stratified by module with proportional allocation, and reports the stratified ratio
estimate of the score with its 95% confidence interval (Cochran 1977, sections 5.3 and 6.11): the estimate is of the
score a full run would give, and its interval says how far off the sample can be.

References:
  DeMillo, Lipton & Sayward, "Hints on test data selection: help for the practicing programmer", IEEE Computer
    11(4), 1978 (mutation analysis); Jia & Harman, "An analysis and survey of the development of mutation
    testing", IEEE TSE 37(5), 2011 (mutation score, equivalent mutants); mutmut 3 (https://mutmut.readthedocs.io);
  Wong & Mathur, "Reducing the cost of mutation testing: an empirical study", JSS 31(3), 1995 (random mutant
    sampling); Cochran, "Sampling Techniques", 3rd ed., Wiley, 1977 (stratified and ratio estimation).
"""

from __future__ import annotations

import argparse
import collections
import datetime
import fnmatch
import importlib.metadata
import json
import math
import os
import pathlib
import shlex
import shutil
import subprocess
import sys
import time
import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[1]
"""The checkout: holds pyproject.toml, the packages and tests/."""
WORK = pathlib.Path("runs") / "mutation" / "work"
"""Where mutmut runs, relative to the checkout (git-ignored): it writes its mutants/ folder there."""
EQUIVALENTS = pathlib.Path("tests") / "mutation_equivalents.toml"
"""Equivalent mutants: mutmut's mutant name -> why no input can tell it from the original."""
RUN_OUTPUT = pathlib.Path("runs") / "mutation.json"
"""The counts of an unpublished run."""
PUBLISHED_OUTPUT = pathlib.Path("figures") / "data" / "mutation.json"
"""The counts `--publish` writes (and the README block is generated from)."""
LAST_RUN = "last_run.json"
"""File in WORK recording how long the last `mutmut run` took and with which command."""
STATUSES = ("killed", "survived", "timeout", "no tests", "not checked", "other")
"""Verdict classes counted per module; 'other' collects mutmut's suspicious, segfault, skipped and interrupted."""


def mutmut_config(root: pathlib.Path = ROOT) -> dict:
  """The [tool.mutmut] section of the checkout's pyproject.toml (the configuration mutmut reads).

  Args:
    root: the checkout.

  Returns:
    The section as a dict (source_paths, only_mutate, the test selection, ...); a one-line ValueError without it.
  """
  with open(root / "pyproject.toml", "rb") as handle:
    config = tomllib.load(handle).get("tool", {}).get("mutmut")
  if not config or not config.get("source_paths"):
    raise ValueError(f"{root / 'pyproject.toml'} has no [tool.mutmut] section with source_paths; allowed: a section "
                     "naming source_paths and only_mutate")
  return config


def mutated_files(config: dict, root: pathlib.Path = ROOT) -> list[str]:
  """The source files mutmut mutates, by mutmut's rules (the .py files of source_paths, only_mutate, do_not_mutate).

  Args:
    config: the [tool.mutmut] section (mutmut_config).
    root: the checkout.

  Returns:
    Sorted paths relative to the checkout, e.g. 'theory/mixture.py'.
  """
  files = []
  for source in config["source_paths"]:
    for directory, _, names in os.walk(root / source):
      for name in names:
        path = (pathlib.Path(directory) / name).relative_to(root).as_posix()
        included = not config.get("only_mutate") or any(fnmatch.fnmatch(path, p) for p in config["only_mutate"])
        excluded = any(fnmatch.fnmatch(path, p) for p in config.get("do_not_mutate", []))
        if path.endswith(".py") and included and not excluded:
          files.append(path)
  return sorted(files)


def status_of(exit_code: int | None) -> str:
  """One of STATUSES for a mutant's exit code, following mutmut's own table (mutmut.stats.status_by_exit_code)."""
  from mutmut.stats import status_by_exit_code

  status = status_by_exit_code[exit_code]
  return status if status in STATUSES else "other"


def read_verdicts(mutants_dir: pathlib.Path, files: list[str]) -> dict[str, dict[str, str]]:
  """Every mutant's status, from the mutants/<file>.meta files mutmut writes as it goes.

  Args:
    mutants_dir: mutmut's mutants/ folder.
    files: the mutated files (mutated_files).

  Returns:
    file -> {mutant name: one of STATUSES}; a one-line ValueError when a file has no results.
  """
  verdicts = {}
  for path in files:
    meta = mutants_dir / f"{path}.meta"
    if not meta.exists():
      raise ValueError(f"no mutmut results for {path} ({meta} is missing); allowed: run `python -m "
                       "tests.mutation_score` first, or drop --from-results")
    exit_codes = json.loads(meta.read_text())["exit_code_by_key"]
    verdicts[path] = {name: status_of(code) for name, code in sorted(exit_codes.items())}
  return verdicts


def load_equivalents(path: pathlib.Path) -> dict[str, str]:
  """The equivalent mutants, from the [equivalent] table of tests/mutation_equivalents.toml.

  Args:
    path: the TOML file (absent: no equivalents).

  Returns:
    Mutant name -> its one-line reason; a one-line ValueError for a reason that is empty or not one line.
  """
  if not path.exists():
    return {}
  with open(path, "rb") as handle:
    table = tomllib.load(handle).get("equivalent", {})
  for name, reason in table.items():
    if not isinstance(reason, str) or not reason.strip() or "\n" in reason:
      raise ValueError(f"equivalent mutant {name!r} in {path} has reason {reason!r}; allowed: one non-empty line")
  return dict(table)


def _counts(statuses: dict[str, str], equivalents: dict[str, str]) -> dict:
  """Counts of one module (or all): mutants, each status, equivalent (listed and not killed) and the score."""
  equivalent = {name for name, status in statuses.items() if name in equivalents and status != "killed"}
  counts = collections.Counter(status for name, status in statuses.items() if name not in equivalent)
  tested = len(statuses) - len(equivalent)  # equivalent mutants leave the denominator, nothing else does
  return {"mutants": len(statuses), **{status: counts.get(status, 0) for status in STATUSES},
          "equivalent": len(equivalent), "score": counts.get("killed", 0) / tested if tested else float("nan")}


def score(verdicts: dict[str, dict[str, str]], equivalents: dict[str, str]) -> dict:
  """Per-module and overall counts and scores, the surviving mutants, and equivalents that turned out killed.

  Args:
    verdicts: file -> {mutant name: status} (read_verdicts).
    equivalents: mutant name -> reason (load_equivalents).

  Returns:
    {'modules': {file: counts} (files with mutants), 'overall': counts, 'not_killed': [names not killed nor equivalent],
    'equivalent': {name: reason} of the listed mutants present in this run, 'killed_but_listed_equivalent': [...],
    'unknown_equivalents': [listed names that are no mutant of this run]}. Counts hold 'mutants', each of STATUSES
    (equivalent mutants removed from their status), 'equivalent' and 'score' = killed / (mutants - equivalent).

  References:
    Jia & Harman, IEEE TSE 37(5), 2011, section II (mutation score with equivalent mutants excluded).
  """
  everything = {name: status for statuses in verdicts.values() for name, status in statuses.items()}
  return {
      "modules": {path: _counts(statuses, equivalents) for path, statuses in verdicts.items() if statuses},
      "overall": _counts(everything, equivalents),
      "not_killed": sorted(n for n, s in everything.items() if s != "killed" and n not in equivalents),
      "equivalent": {n: equivalents[n] for n in sorted(everything) if n in equivalents},
      "killed_but_listed_equivalent": sorted(n for n, s in everything.items() if s == "killed" and n in equivalents),
      "unknown_equivalents": sorted(set(equivalents) - set(everything)),
  }


def mutant_names(mutants_dir: pathlib.Path, files: list[str]) -> dict[str, list[str]]:
  """Every mutant mutmut generated, per file, from the mutants/<file>.meta files (tested or not).

  Args:
    mutants_dir: mutmut's mutants/ folder.
    files: the mutated files (mutated_files).

  Returns:
    file -> sorted mutant names (files without mutants are left out); a one-line ValueError for a missing file.
  """
  names = {}
  for path in files:
    meta = mutants_dir / f"{path}.meta"
    if not meta.exists():
      raise ValueError(f"no mutants of {path} ({meta} is missing); allowed: generate them first (generate_mutants)")
    keys = sorted(json.loads(meta.read_text())["exit_code_by_key"])
    if keys:
      names[path] = keys
  return names


def draw_sample(names: dict[str, list[str]], size: int, seed: int) -> dict[str, list[str]]:
  """A seeded random sample of `size` mutants, stratified by file with proportional allocation.

  Each file gets round(size * N_file / N) mutants by the largest-remainder rule, at least 2 (so that its variance
  can be estimated) and at most N_file; the draw within a file is without replacement.

  Args:
    names: file -> mutant names (mutant_names).
    size: mutants in all (at least 2 per file; the whole population when size >= N).
    seed: the draw's seed (numpy's default generator).

  Returns:
    file -> the sampled names, sorted; a one-line ValueError for a size below 2 per file.
  """
  import numpy as np

  total = sum(len(v) for v in names.values())
  if size < 2 * len(names):
    raise ValueError(f"sample size {size} is not allowed; allowed: at least 2 per mutated file ({2 * len(names)})")
  if size >= total:
    return {path: list(v) for path, v in names.items()}
  quotas = {path: size * len(v) / total for path, v in names.items()}
  counts = {path: int(q) for path, q in quotas.items()}
  for path in sorted(quotas, key=lambda p: (counts[p] - quotas[p], p))[:size - sum(counts.values())]:
    counts[path] += 1
  counts = {path: min(len(names[path]), max(2, c)) for path, c in counts.items()}
  rng = np.random.default_rng(seed)
  return {path: sorted(rng.choice(names[path], size=counts[path], replace=False).tolist()) for path in names}


def stratified_score(verdicts: dict[str, dict[str, str]], population: dict[str, int],
                     equivalents: dict[str, str]) -> dict:
  """The full run's score estimated from a stratified sample, with a 95% interval.

  With y = 1 for a killed mutant and x = 1 for a non-equivalent one (equivalent mutants that were killed count as
  non-equivalent, as in score), the ratio estimate is R = sum_h N_h ybar_h / sum_h N_h xbar_h; its variance is
  sum_h N_h^2 (1 - n_h / N_h) s_h^2 / n_h / X^2 with s_h^2 the sample variance of y - R x in stratum h and X the
  estimated number of non-equivalent mutants (Cochran 1977, equation 6.50). The interval is R +- 1.96 sd, clipped to
  [0, 1].

  Args:
    verdicts: file -> {sampled mutant: status}.
    population: file -> number of mutants of the file (N_h).
    equivalents: mutant name -> reason.

  Returns:
    {'score', 'low', 'high', 'sampled', 'population'}.
  """
  strata = []
  for path, statuses in verdicts.items():
    if not statuses:
      continue
    y = [float(s == "killed") for s in statuses.values()]
    x = [float(s == "killed" or name not in equivalents) for name, s in statuses.items()]
    strata.append((population[path], y, x))
  killed = sum(n_pop * sum(y) / len(y) for n_pop, y, _ in strata)
  tested = sum(n_pop * sum(x) / len(x) for n_pop, _, x in strata)
  ratio = killed / tested if tested else float("nan")
  variance = 0.0
  for n_pop, y, x in strata:
    z = [a - ratio * b for a, b in zip(y, x, strict=True)]
    mean = sum(z) / len(z)
    spread = sum((v - mean) ** 2 for v in z) / (len(z) - 1) if len(z) > 1 else 0.0
    variance += n_pop**2 * (1 - len(z) / n_pop) * spread / len(z)
  sd = math.sqrt(variance) / tested if tested else float("nan")
  return {"score": ratio, "low": max(0.0, ratio - 1.96 * sd), "high": min(1.0, ratio + 1.96 * sd),
          "sampled": sum(len(y) for _, y, _ in strata), "population": sum(n for n, _, _ in strata)}


def _percent(value: float) -> str:
  return "n/a" if value != value else f"{100 * value:.1f}%"


def markdown(saved: dict) -> str:
  """The README's mutation block: the command, the overall score (estimated, for a sample) and the module range.

  Args:
    saved: the saved mutation JSON (figures/data/mutation.json, which holds the per-module counts).

  Returns:
    Markdown text ending in a newline.
  """
  sample = saved.get("sample")
  overall = saved["overall"]
  scored = {path: row["score"] for path, row in saved["modules"].items() if row["score"] == row["score"]}
  low = min(scored, key=scored.get)
  high = max(scored, key=scored.get)
  minutes = saved.get("run_seconds")
  took = f" (the run took {minutes / 60:.0f} min on {saved.get('cpu_count', '?')} CPUs" if minutes else ""
  retested = saved.get("retested")
  if took and retested:
    took += (f"; its {retested['mutants']} survivors were then tested again against the tests added since, in "
             f"{retested['seconds'] / 60:.0f} min")
  took += ")" if took else ""
  text = (f"`{saved['command']}`: mutmut {saved['mutmut_version']} mutants of theory/, toy_models/metrics.py, "
          "toy_models/likelihood.py and experiments/statistics.py, each run against the tests that reach it; ")
  if sample:
    estimate = saved["estimate"]
    text += (f"a random sample (seed {sample['seed']}) of {estimate['sampled']} of the {estimate['population']} "
             f"mutants, stratified by module: {overall['killed']} of {overall['mutants'] - overall['equivalent']} "
             f"non-equivalent sampled mutants killed{took}. Estimated score of a full run: "
             f"{_percent(estimate['score'])} (95% CI {_percent(estimate['low'])} to {_percent(estimate['high'])}).")
  else:
    text += (f"**{overall['killed']} of {overall['mutants'] - overall['equivalent']} non-equivalent mutants killed, "
             f"score {_percent(overall['score'])}**{took}.")
  text += (f" By module{' in the sample' if sample else ''} from {_percent(scored[low])} (`{low}`) to "
           f"{_percent(scored[high])} (`{high}`); per-module counts in `figures/data/mutation.json`, the "
           f"{overall['equivalent']} equivalent mutants with one reason each in `tests/mutation_equivalents.toml`.")
  return (f"<!-- generated by `{saved['command']}` at commit {str(saved.get('git_commit', '?'))[:12]}; do not edit "
          f"-->\n{text}\n")


def generate_mutants(work: pathlib.Path, max_children: int) -> None:
  """Has mutmut write its mutants (and their .meta files) in `work` without testing any, in a child process.

  mutmut's `run` generates and then tests every mutant (or the named ones); a sample has to be drawn from the names
  first, so this runs the generation steps of mutmut 3's `run` alone. RuntimeError when they fail.
  """
  script = ("import os\n"
            "from mutmut.__main__ import copy_src_dir, copy_also_copy_files, setup_source_paths, "
            "store_lines_covered_by_tests, create_mutants\n"
            "from mutmut.mutation.trampoline import set_mutant_under_test\n"
            "set_mutant_under_test('mutant_generation')\n"
            "os.makedirs('mutants', exist_ok=True)\n"
            "copy_src_dir(); copy_also_copy_files(); setup_source_paths(); store_lines_covered_by_tests()\n"
            f"create_mutants({int(max_children)})\n")
  done = subprocess.run([sys.executable, "-c", script], cwd=work, check=False, capture_output=True, text=True)
  if done.returncode != 0:
    tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
    raise RuntimeError(f"generating mutmut's mutants in {work} failed with exit code {done.returncode}: {tail}")


def prepare_work_dir(config: dict, root: pathlib.Path = ROOT, work: pathlib.Path | None = None,
                     fresh: bool = True) -> pathlib.Path:
  """The folder mutmut runs in: links to the checkout's source paths, tests/ and pyproject.toml.

  Args:
    config: the [tool.mutmut] section.
    root: the checkout.
    work: the folder (default WORK under the checkout).
    fresh: drop the previous mutants/ folder (mutmut's cache), so that every mutant is tested again.

  Returns:
    The folder; a one-line ValueError when a path there is not a link this function made.
  """
  work = root / WORK if work is None else work
  work.mkdir(parents=True, exist_ok=True)
  for name in [*config["source_paths"], "tests", "pyproject.toml", *config.get("also_copy", [])]:
    link = work / name
    if link.is_symlink() or link.is_file():
      link.unlink()
    elif link.exists():
      raise ValueError(f"{link} exists and is not a link into the checkout; allowed: delete {work} and rerun")
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(root / name)
  if fresh and (work / "mutants").exists():
    shutil.rmtree(work / "mutants")
  return work


def run_mutmut(work: pathlib.Path, max_children: int, names: list[str] | None = None,
               seed: int | None = None) -> float:
  """Runs `mutmut run` in `work` (every mutant, or the named ones) and records how long it took (WORK/last_run.json).

  Args:
    work: the folder prepared by prepare_work_dir.
    max_children: mutants tested at once.
    names: mutants to test (all when None); named mutants are tested again even when mutmut has a result.
    seed: the seed the names were drawn with (recorded only).

  Returns:
    The wall time in seconds; RuntimeError when mutmut fails.
  """
  executable = pathlib.Path(sys.executable).parent / "mutmut"
  command = [str(executable) if executable.exists() else "mutmut", "run", "--max-children", str(max_children),
             *(names or [])]
  # Every mutant is a fresh process that compiles its JAX programs again: a persistent compilation cache (keyed by
  # the program, so a mutated function compiles its own) lets the unchanged programs load instead.
  env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=str(work.parent / "jax-cache"),
             JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0", JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
  start = time.perf_counter()
  done = subprocess.run(command, cwd=work, env=env, check=False)
  seconds = time.perf_counter() - start
  if done.returncode != 0:
    raise RuntimeError(f"`{' '.join(command)}` in {work} failed with exit code {done.returncode}")
  (work / LAST_RUN).write_text(json.dumps({"run_seconds": seconds, "max_children": max_children, "names": names,
                                           "seed": seed,
                                           "finished_utc": datetime.datetime.now(datetime.UTC).isoformat(
                                               timespec="seconds")}) + "\n")
  return seconds


def retest_survivors(work: pathlib.Path, files: list[str], max_children: int) -> list[str]:
  """Tests again the last run's mutants that were not killed (of its sample, if it was one), e.g. after new tests.

  A mutant killed stays killed when tests are only added, so the counts then equal those of a full new run. The last
  run's record (WORK/last_run.json) keeps its names, seed and time, and gains 'retested' (count, seconds).

  Returns:
    The names tested again.
  """
  last_run = json.loads((work / LAST_RUN).read_text())
  sampled = set(last_run.get("names") or [])
  verdicts = read_verdicts(work / "mutants", files)
  names = sorted(n for statuses in verdicts.values() for n, s in statuses.items()
                 if s != "killed" and (not sampled or n in sampled))
  seconds = run_mutmut(work, max_children, names) if names else 0.0
  (work / LAST_RUN).write_text(json.dumps({**last_run, "retested": {"mutants": len(names), "seconds": seconds}})
                               + "\n")
  return names


def pytest_collection_modifyitems(session, config, items) -> None:
  """pytest hook, active in mutmut's runs (pyproject: -p tests.mutation_score): run the fastest tests first.

  mutmut runs a mutant's tests until the first failure, in no particular order; with the quick ones first a killed
  mutant stops sooner, and one that makes a slow test hang is killed by a quick test before it. Durations come from
  mutmut's own measurement (mutmut-stats.json in the folder it runs pytest in); tests it has not timed go last.
  """
  del session
  stats = pathlib.Path(config.rootpath) / "mutmut-stats.json"
  if not stats.exists():
    return
  durations = json.loads(stats.read_text()).get("duration_by_test", {})
  items.sort(key=lambda item: durations.get(item.nodeid, float("inf")))


def main(argv: list[str] | None = None) -> int:
  """Command line: run mutmut (or read its last results), count, write runs/mutation.json or publish."""
  parser = argparse.ArgumentParser(prog="python -m tests.mutation_score", description=__doc__.splitlines()[0])
  parser.add_argument("--publish", action="store_true",
                      help="write figures/data/mutation.json and the README block (refused below --min-score)")
  parser.add_argument("--from-results", action="store_true", help="count the last run's verdicts, run nothing")
  parser.add_argument("--resume", action="store_true", help="keep mutmut's cache: test only new or changed mutants")
  parser.add_argument("--max-children", type=int, default=os.cpu_count() or 1, help="mutants tested in parallel")
  parser.add_argument("--min-score", type=float, default=0.9, help="lowest overall score --publish accepts "
                      "(for a sample: the estimated score)")
  parser.add_argument("--sample", type=int, default=0, help="test a random sample of this many mutants, stratified "
                      "by module (0: every mutant)")
  parser.add_argument("--seed", type=int, default=0, help="seed of the sample's draw")
  parser.add_argument("--retest-survivors", action="store_true", help="test again only the last run's mutants "
                      "that were not killed (after adding tests; the source must be unchanged) and count that run")
  args = parser.parse_args(argv)
  if args.max_children < 1:
    parser.error(f"--max-children {args.max_children} is not allowed; allowed: integers >= 1")
  if args.sample < 0 or args.seed < 0:
    parser.error(f"--sample {args.sample} --seed {args.seed} is not allowed; allowed: integers >= 0")
  config = mutmut_config()
  files = mutated_files(config)
  work = ROOT / WORK
  if args.from_results or args.retest_survivors:
    if not (work / "mutants").exists():
      parser.error(f"{work / 'mutants'} does not exist; allowed: --from-results or --retest-survivors after a run")
  if args.retest_survivors:
    retest_survivors(work, files, args.max_children)
  elif not args.from_results:
    prepare_work_dir(config, fresh=not args.resume)
    if args.sample:
      generate_mutants(work, args.max_children)
      try:
        sample = draw_sample(mutant_names(work / "mutants", files), args.sample, args.seed)
      except ValueError as error:
        parser.error(str(error))
      run_mutmut(work, args.max_children, [name for names in sample.values() for name in names], args.seed)
    else:
      run_mutmut(work, args.max_children)
  last_run = json.loads((work / LAST_RUN).read_text()) if (work / LAST_RUN).exists() else {}
  verdicts = read_verdicts(work / "mutants", files)
  population = {path: len(statuses) for path, statuses in verdicts.items() if statuses}
  sampled = set(last_run.get("names") or [])
  if sampled:
    verdicts = {path: {n: s for n, s in statuses.items() if n in sampled} for path, statuses in verdicts.items()}
  equivalents = load_equivalents(ROOT / EQUIVALENTS)
  summary = score(verdicts, equivalents)
  extra = {}
  if sampled:
    extra = {"sample": {"size": len(sampled), "seed": last_run.get("seed", args.seed), "names": sorted(sampled)},
             "population": population, "estimate": stratified_score(verdicts, population, equivalents)}
  command = ("python -m tests.mutation_score" + (f" --sample {len(sampled)} --seed {extra['sample']['seed']}"
                                                  if sampled else "")
             + (" && python -m tests.mutation_score --retest-survivors" if last_run.get("retested") else "")
             + (" --publish" if args.publish else ""))
  from experiments import readme_blocks, records  # imports jax: only once the counting is done

  saved = records.provenance(config, None, command=command,
                             mutmut_version=importlib.metadata.version("mutmut"),
                             run_seconds=last_run.get("run_seconds"), max_children=last_run.get("max_children"),
                             retested=last_run.get("retested"),
                             cpu_count=os.cpu_count(), **summary, **extra)
  overall = summary["overall"]
  for path, row in summary["modules"].items():
    print(f"{path:<32} {row['mutants']:>5} mutants {row['killed']:>5} killed {row['survived']:>4} survived "
          f"{row['timeout']:>3} timeout {row['no tests']:>3} untested {row['equivalent']:>4} equivalent  "
          f"{_percent(row['score'])}")
  print(f"{'all':<32} {overall['mutants']:>5} mutants {overall['killed']:>5} killed, "
        f"score {_percent(overall['score'])}")
  if sampled:
    estimate = extra["estimate"]
    print(f"a sample of {estimate['sampled']} of {estimate['population']} mutants (seed {extra['sample']['seed']}): "
          f"estimated score of a full run {_percent(estimate['score'])} (95% CI {_percent(estimate['low'])} to "
          f"{_percent(estimate['high'])})")
  headline = extra["estimate"]["score"] if sampled else overall["score"]
  for key in ("killed_but_listed_equivalent", "unknown_equivalents"):
    if summary[key]:
      print(f"warning: {key.replace('_', ' ')}: {', '.join(summary[key])}")
  if args.publish:
    if not headline >= args.min_score:
      print(f"not published: overall score {_percent(headline)} is below --min-score "
            f"{_percent(args.min_score)}; {len(summary['not_killed'])} mutants not killed (runs/mutation.json)")
      records.write_json(ROOT / RUN_OUTPUT, saved)
      return 1
    records.write_json(ROOT / PUBLISHED_OUTPUT, saved)
    readme_blocks.embed("mutation", markdown(saved))
    print(f"published {PUBLISHED_OUTPUT} and the README block: {shlex.quote(command)}")
  else:
    records.write_json(ROOT / RUN_OUTPUT, saved)
    print(f"wrote {RUN_OUTPUT}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
