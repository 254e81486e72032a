"""Run directories: resuming, refusing another config or experiment, the writer's lock, what --fresh may delete."""

import dataclasses
import os
import subprocess
import sys

import pytest

from experiments import paths, records
from experiments.run_dir import LOCK_NAME, RunDir, saved_experiment


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config:
  """A stand-in config."""

  seeds: int = 2  # repetitions.
  seed: int = 0  # first seed.


def one_line(error) -> str:
  text = str(error.value)
  assert "\n" not in text
  return text


def test_a_new_directory_gets_the_config_with_provenance(tmp_path):
  with RunDir(tmp_path / "run", Config(), experiment="demo") as run_dir:
    assert (run_dir.path / LOCK_NAME).read_text() == str(os.getpid())
    run_dir.save("unit", {"x": 1}, {"a": [1.0, 2.0]})
    assert run_dir.done("unit") and not run_dir.done("other")
  assert not (tmp_path / "run" / LOCK_NAME).exists()
  saved = records.read_json(tmp_path / "run" / "config.json")
  assert saved["experiment"] == "demo" and saved["config"] == {"seeds": 2, "seed": 0}
  assert saved["config_hash"] == records.config_hash(Config()) and len(saved["config_hash"]) == 12
  assert saved_experiment(tmp_path / "run") == ("demo", {"seeds": 2, "seed": 0})


def test_provenance_records_the_environment_that_changes_numbers_only_where_it_is_set(monkeypatch):
  from toy_models import training
  assert records.NUMERIC_ENVIRONMENT == (training.EXACT_GRADIENT_CHUNK_ENV,)  # the variables that change numbers
  monkeypatch.delenv("ELASTICITY_EXACT_GRADIENT_CHUNK", raising=False)
  assert "environment" not in records.provenance(Config())
  monkeypatch.setenv("ELASTICITY_EXACT_GRADIENT_CHUNK", "512")
  monkeypatch.setenv("ELASTICITY_UNRELATED", "1")
  assert records.provenance(Config())["environment"] == {"ELASTICITY_EXACT_GRADIENT_CHUNK": "512"}


def test_another_config_or_experiment_is_refused_before_anything_is_written(tmp_path):
  RunDir(tmp_path, Config(), experiment="demo").close()
  before = (tmp_path / "config.json").read_bytes()
  with pytest.raises(ValueError) as error:
    RunDir(tmp_path, Config(seeds=3), experiment="demo")
  assert "differs in seeds" in one_line(error)
  with pytest.raises(ValueError) as error:
    RunDir(tmp_path, Config(), experiment="other")
  assert "experiment 'demo'" in one_line(error)
  assert (tmp_path / "config.json").read_bytes() == before and not (tmp_path / LOCK_NAME).exists()


def test_a_second_writer_is_refused_and_a_dead_writers_lock_is_taken_over(tmp_path):
  first = RunDir(tmp_path, Config(), experiment="demo")
  other = subprocess.run([sys.executable, "-c", "import sys; from experiments.run_dir import RunDir; "
                          "from tests.experiments.test_run_dir import Config; "
                          f"RunDir({str(tmp_path)!r}, Config(), experiment='demo')"],
                         capture_output=True, text=True, cwd=paths.repository_root())
  assert other.returncode != 0 and f"being written by another elasticity process (pid {os.getpid()})" in other.stderr
  first.close()
  dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
  (tmp_path / LOCK_NAME).write_text(dead.stdout.strip())  # a process that has exited
  with RunDir(tmp_path, Config(), experiment="demo") as again:
    assert (again.path / LOCK_NAME).read_text() == str(os.getpid())


def test_fresh_deletes_only_what_a_run_writes(tmp_path):
  with RunDir(tmp_path, Config(), experiment="demo") as run_dir:
    run_dir.save("unit", {}, {"a": [1.0]})
    run_dir.checkpoint_path("pre").parent.mkdir(parents=True)
    run_dir.checkpoint_path("pre").write_bytes(b"x")
  mine = tmp_path / "notes.txt"
  mine.write_text("keep me")
  (tmp_path / "units" / "notes.md").write_text("keep me too")
  with RunDir(tmp_path, Config(seeds=5), experiment="demo", fresh=True) as run_dir:
    assert not run_dir.done("unit") and not run_dir.checkpoint_path("pre").exists()
  assert mine.read_text() == "keep me" and (tmp_path / "units" / "notes.md").exists()
  assert records.read_json(tmp_path / "config.json")["config"]["seeds"] == 5


def test_output_paths_are_checked_with_one_line_errors(tmp_path):
  (tmp_path / "file").write_text("")
  for path, message in ((tmp_path / "file", "is a file"), (tmp_path / "file" / "run", "lies under the file")):
    with pytest.raises(ValueError) as error:
      RunDir(path, Config(), experiment="demo")
    assert message in one_line(error)
  published = paths.published_data()
  if published is not None:
    with pytest.raises(ValueError) as error:
      RunDir(published / "hooke", Config(), experiment="hooke", fresh=True)
    assert "inside the published results" in one_line(error)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only folders")
def test_a_read_only_folder_is_refused(tmp_path):
  tmp_path.chmod(0o555)
  try:
    with pytest.raises(ValueError) as error:
      RunDir(tmp_path / "run", Config(), experiment="demo")
    assert "read-only" in one_line(error)
  finally:
    tmp_path.chmod(0o755)


def test_git_commit_is_dirty_for_code_changes_not_for_the_published_outputs(tmp_path):
  def git(*args):
    subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

  git("init", "-q")
  for name in ("code.py", "README.md", "figures/REPORT.md"):
    (tmp_path / name).parent.mkdir(exist_ok=True)
    (tmp_path / name).write_text("v1\n")
  git("add", "-A")
  git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
  clean = records.git_commit(tmp_path)
  assert len(clean) == 40 and "+" not in clean
  (tmp_path / "README.md").write_text("v2\n")
  (tmp_path / "figures" / "REPORT.md").write_text("v2\n")
  assert records.git_commit(tmp_path / "figures") == clean  # publishing under way: not a changed input
  (tmp_path / "code.py").write_text("v2\n")
  assert records.git_commit(tmp_path / "figures") == clean + "+dirty"
