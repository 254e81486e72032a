"""The `elasticity` command: flags from config fields, one-line errors, publishing only on request, Ctrl-C."""

import atexit
import dataclasses
import gc
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from elasticity_cli import config_flags
from elasticity_cli.main import build_parser, main
from experiments import paths, records, registry

ROOT = paths.repository_root()


def run_main(capsys, *argv):
  """(exit code, stdout, stderr lines) of `elasticity argv`."""
  code = main(list(argv))
  captured = capsys.readouterr()
  return code, captured.out, captured.err.strip().splitlines()


@pytest.mark.parametrize("argv, message", [
    (["simulate", "hooke", "--k-grid", "-1", "--out-dir", "X"], "k_grid value -1.0 is not allowed"),
    (["simulate", "hooke", "--k-grid", "3", "--out-dir", "X"], "k_grid=[3.0] has one value"),
    (["simulate", "hooke", "--seeds", "0", "--out-dir", "X"], "seeds=0"),
    (["simulate", "hooke", "--models", "gpt", "--out-dir", "X"], "'gpt'"),
    (["simulate", "hooke", "--family", "cauchy", "--out-dir", "X"], "unknown distribution family 'cauchy'"),
    (["simulate", "hooke", "--param", "-2", "--out-dir", "X"], "param=-2.0 of family 'pareto'"),
    (["simulate", "hooke", "--param", "nan", "--out-dir", "X"], "param=nan"),
    (["simulate", "hooke", "--depth", "40", "--out-dir", "X"], "depth=40 is not allowed"),
    (["simulate", "hooke", "--align-mass", "-5", "--out-dir", "X"], "align_mass=-5.0 is not allowed"),
    (["simulate", "hooke", "--set", "nope=1", "--out-dir", "X"], "unknown setting nope"),
    (["simulate", "hooke", "--set", "seeds", "--out-dir", "X"], "--set 'seeds' is not allowed"),
    (["simulate", "hooke", "--set", "tabular_plan.joint.optimizer=lion", "--out-dir", "X"], "unknown optimizer 'lion'"),
    (["simulate", "resistance", "--model-sizes", "8x1,8x1", "--out-dir", "X"], "distinct (width, layers) pairs"),
    (["simulate", "rebound", "--second-sizes", "0,10", "--out-dir", "X"], "second_sizes=[0, 10] is not allowed"),
    (["simulate", "hooke", "--config", "no_such.toml", "--out-dir", "X"], "config file no_such.toml does not exist"),
    (["simulate", "theory", "--scale", "tiny", "--out-dir", "figures/data/theory"], "inside the published results"),
    (["reproduce", "--quick", "--scale", "paper"], "--quick with --scale paper is not allowed"),
    (["reproduce", "--publish", "--scale", "quick"], "--publish with --scale quick is not allowed"),
    (["reproduce", "--only", "nope"], "unknown experiment 'nope'"),
    (["check", "--publish", "--claim", "5"], "--publish with --out-dir or --claim is not allowed"),
    (["check", "--claim", "99", "--out-dir", "X"], "unknown claim '99'"),
    (["figures", "--publish", "--run", "X"], "--publish with --run or --out-dir is not allowed"),
    (["figures", "--run", "no_such_run"], "no_such_run is not a run directory"),
    (["bench", "--runs", "x", "--out", "X/b.json"], "runs='x' is not allowed"),
])
def test_bad_input_is_one_line_naming_the_value(argv, message, capsys, tmp_path, monkeypatch):
  monkeypatch.chdir(ROOT if "figures/data" in " ".join(argv) else tmp_path)
  code, _, err = run_main(capsys, *argv)
  assert code == 2 and len(err) == 1 and err[0].startswith("elasticity: error: ") and message in err[0], err
  assert not (tmp_path / "X").exists()  # validated before anything is written


def test_a_bad_chunk_variable_is_refused_before_anything_is_written(capsys, tmp_path, monkeypatch):
  monkeypatch.setenv("ELASTICITY_EXACT_GRADIENT_CHUNK", "half")
  code, _, err = run_main(capsys, "simulate", "theory", "--scale", "tiny", "--out-dir", str(tmp_path / "X"))
  assert code == 2 and err == ["elasticity: error: ELASTICITY_EXACT_GRADIENT_CHUNK='half'; allowed: an integer >= 1 "
                               "(responses per chunk of the exact gradient), or unset"]
  assert not (tmp_path / "X").exists()


def test_version_and_every_experiment_is_a_subcommand(capsys):
  with pytest.raises(SystemExit):
    build_parser().parse_args(["--version"])
  assert capsys.readouterr().out.startswith("elasticity ")
  parser = build_parser()
  for name, experiment in registry.EXPERIMENTS.items():
    args = parser.parse_args(["simulate", name])
    flags = {f"field_{field.name}" for field in config_flags.scalar_fields(experiment.config_class)}
    assert flags <= set(vars(args)) and args.scale == "default"


def test_flags_file_and_set_give_one_config(tmp_path):
  experiment = registry.get("hooke")
  (tmp_path / "c.toml").write_text("seeds = 4\n[tabular_plan.joint]\nsteps = 77\n")
  args = build_parser().parse_args(["simulate", "hooke", "--scale", "tiny", "--k-grid", "3,30", "--l-grid", "0.5",
                                    "--models", "tabular", "--set", "ngram_plan.align.learning_rate=0.2"])
  from_flags = experiment.config("tiny", config_flags.overrides(args, experiment.config_class), tmp_path / "c.toml")
  assert from_flags.k_grid == (3.0, 30.0) and from_flags.l_grid == (0.5,) and from_flags.models == ("tabular",)
  assert from_flags.seeds == 4 and from_flags.tabular_plan.joint.steps == 77
  assert from_flags.ngram_plan.align.learning_rate == 0.2 and from_flags.depth == 4  # the tiny scale's
  assert config_flags.parse_value("8x1,16x2") == [[8, 1], [16, 2]] and config_flags.parse_value("pareto") == "pareto"
  assert config_flags.parse_value("1,2") == [1, 2] and config_flags.parse_value("[1.5]") == [1.5]


def test_interrupt_inside_a_unit_keeps_finished_units_and_resumes(tmp_path, capsys, monkeypatch):
  experiment = registry.get("theory")
  calls = []

  def interrupting(*args):
    calls.append(args[1].name)
    raise KeyboardInterrupt

  def compiling(*args):  # the unit as it is, after building one program of its own
    jax.jit(lambda x: x * 5.0 + 3.0)(np.arange(6.0)).block_until_ready()
    return experiment.run_unit(*args)

  monkeypatch.setitem(registry.EXPERIMENTS, "theory", dataclasses.replace(experiment, run_unit=interrupting))
  code, _, err = run_main(capsys, "simulate", "theory", "--scale", "tiny", "--out-dir", str(tmp_path / "run"))
  assert code == 130 and "interrupted; units finished before now are saved in" in err[-1]
  assert calls == ["curves"] and not (tmp_path / "run" / "summary.json").exists()
  monkeypatch.setitem(registry.EXPERIMENTS, "theory", experiment)
  code, out, _ = run_main(capsys, "simulate", "theory", "--scale", "tiny", "--out-dir", str(tmp_path / "run"))
  assert code == 0 and (tmp_path / "run" / "summary.json").exists()
  assert re.search(r"^compilation: \d+ programs", out, re.MULTILINE)  # what the command compiled (or loaded)
  monkeypatch.setitem(registry.EXPERIMENTS, "theory", dataclasses.replace(experiment, run_unit=compiling))
  code, out, _ = run_main(capsys, "simulate", "theory", "--scale", "tiny", "--out-dir", str(tmp_path / "other"))
  assert code == 0 and re.search(r"^compile time by function: jit\(<lambda>\) 1 program(?: \(1 loaded\))?, ", out,
                                  re.MULTILINE)


def test_ctrl_c_stops_a_long_run_within_seconds(tmp_path):
  """A real SIGINT to a run busy in a long training segment: the process ends in seconds with an honest message."""
  env = {**os.environ, "PYTHONPATH": str(ROOT), "ELASTICITY_JAX_CACHE": str(tmp_path / "cache")}
  process = subprocess.Popen(
      [sys.executable, "-m", "elasticity_cli", "simulate", "hooke", "--scale", "tiny", "--models", "tabular",
       "--regimes", "joint", "--set", "tabular_plan.joint.steps=1000000", "--out-dir", str(tmp_path / "run")],
      cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
  for line in process.stderr:
    if "started" in line:
      break
  time.sleep(3.0)  # inside the first unit's training (a million steps)
  start = time.monotonic()
  process.send_signal(signal.SIGINT)
  rest = process.stderr.read()
  process.stderr.close()
  code = process.wait(timeout=30)
  assert code == 130 and time.monotonic() - start < 5.0
  assert "interrupted; units finished before now are saved in" in rest
  assert not list((tmp_path / "run" / "units").glob("*.json")) if (tmp_path / "run" / "units").exists() else True


def test_ctrl_c_during_reproduce_stops_its_worker_processes_too(tmp_path):
  """Ctrl-C (SIGINT to the whole process group, as a terminal sends it) while two workers train: the command ends in
  seconds with one line, and no worker process outlives it (the pipe stays open until the last one exits)."""
  env = {**os.environ, "PYTHONPATH": str(ROOT), "ELASTICITY_JAX_CACHE": str(tmp_path / "cache")}
  process = subprocess.Popen(
      [sys.executable, "-m", "elasticity_cli", "reproduce", "--scale", "tiny", "--jobs", "2", "--only",
       "hooke,sequential", "--out-dir", str(tmp_path / "job")],
      cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True, start_new_session=True)
  for line in process.stderr:
    if "unit 1/" in line and "started" in line:
      break
  time.sleep(1.0)
  start = time.monotonic()
  os.killpg(process.pid, signal.SIGINT)
  rest = process.stderr.read()  # returns once every process holding the pipe (the workers too) has exited
  process.stderr.close()
  code = process.wait(timeout=30)
  assert code == 130 and time.monotonic() - start < 10.0
  assert "interrupted; units finished before now are saved under" in rest and "Traceback" not in rest


def test_a_failed_acceptance_exits_non_zero(capsys, tmp_path):
  """A planted config where the tabular joint model cannot match the mixture (2 steps of training)."""
  code, out, _ = run_main(capsys, "simulate", "hooke", "--scale", "tiny", "--models", "tabular", "--regimes", "joint",
                          "--set", "tabular_plan.joint.steps=2", "--out-dir", str(tmp_path))
  assert code == 1 and "acceptance FAILED" in out


def test_progress_in_a_log_is_a_line_per_unit_not_per_step(capsys, tmp_path):
  code, _, err = run_main(capsys, "simulate", "hooke", "--scale", "tiny", "--out-dir", str(tmp_path))
  units = len(registry.get("hooke").units(registry.get("hooke").config("tiny")))
  assert code == 0 and units * 2 <= len(err) <= units * 2 + 20


def snapshot(root: pathlib.Path) -> str:
  return subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=root, capture_output=True,
                        text=True, check=True).stdout


@pytest.fixture(scope="module")
def checkout(tmp_path_factory):
  """A git checkout of the working tree as it is (tracked and untracked, not ignored), committed."""
  if ROOT is None:
    pytest.skip("not a checkout")
  files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout.split()
  clone = tmp_path_factory.mktemp("checkout")
  for name in files:
    if (ROOT / name).is_file():
      (clone / name).parent.mkdir(parents=True, exist_ok=True)
      shutil.copy2(ROOT / name, clone / name)
  for command in (["init", "-q"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"]):
    subprocess.run(["git", *command], cwd=clone, check=True, capture_output=True)
  return clone


def test_default_paths_never_touch_the_published_results(checkout, tmp_path):
  """simulate, figures, check and reproduce with default paths, in a checkout: git status stays clean."""
  env = {**os.environ, "PYTHONPATH": str(checkout), "ELASTICITY_JAX_CACHE": str(tmp_path / "cache")}
  before = snapshot(checkout)
  commands = (["simulate", "theory", "--scale", "tiny"], ["figures"], ["check", "--claim", "1a", "--examples", "3"],
              ["reproduce", "--scale", "tiny", "--only", "theory"], ["reproduce", "--only", "theory"])
  started = [subprocess.Popen([sys.executable, "-m", "elasticity_cli", *argv], cwd=checkout, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for argv in commands]
  for argv, process in zip(commands, started, strict=True):  # independent commands, run at once
    _, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, (argv, stderr[-2000:])
  assert snapshot(checkout) == before
  assert (checkout / "runs" / "theory-tiny" / "summary.json").exists()
  assert (checkout / "runs" / "reproduce-tiny" / "REPORT.md").exists()
  reused = records.read_json(checkout / "runs" / "reproduce-default" / "data" / "theory" / "summary.json")
  published = records.read_json(checkout / "figures" / "data" / "theory" / "summary.json")
  assert reused["summary"] == published["summary"] and reused["config_hash"] == published["config_hash"]


def test_every_command_skips_the_last_garbage_collection_at_exit(monkeypatch, capsys):
  """main() registers gc.freeze at exit first (pipeline.skip_the_last_collection_at_exit: ~0.5 s per process)."""
  registered = []
  monkeypatch.setattr(atexit, "register", registered.append)
  with pytest.raises(SystemExit):
    main(["--version"])
  assert registered == [gc.freeze]
  assert capsys.readouterr().out.startswith("elasticity ")
