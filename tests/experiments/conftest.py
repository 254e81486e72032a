"""Every registered experiment run once at its tiny scale, shared by the tests of this folder (and, under
pytest-xdist, by every worker: one of them trains, the others read the saved runs)."""

import atexit
import fcntl
import pathlib
import shutil
import tempfile
import threading
import time

import pytest

from experiments import pipeline, records, registry, runner
from experiments.run_dir import RunDir

_started: dict = {}  # the tiny runs of this session: root folder, and futures where this process trains them
WAIT_SECONDS = 900  # the most a worker waits for the tiny runs another worker trains


def tiny_chain(names: tuple[str, ...], root) -> None:
  """Runs experiments `names` one after another at their tiny scale under root (a worker process); the tests read
  their summaries back from the saved runs."""
  for name in names:
    experiment = registry.get(name)
    runner.run(experiment, experiment.config("tiny"), root / name, show_progress=False)


def _shared_root(config) -> pathlib.Path | None:
  """Under pytest-xdist, a folder that every worker of this test run shares (beside the workers' own base temporary
  folders, which pytest removes after a few runs); None without xdist."""
  if not hasattr(config, "workerinput"):
    return None
  return config._tmp_path_factory.getbasetemp().parent / "elasticity-tiny"


def _train(root: pathlib.Path) -> list:
  """Starts the tiny runs under root in worker processes, chained as `elasticity reproduce` chains them."""
  chains = pipeline.chains(list(registry.EXPERIMENTS.values()), lambda e: e.expected_seconds("tiny") or 0.0)
  pool = pipeline.worker_pool(pipeline.default_jobs())
  atexit.register(pool.shutdown, cancel_futures=True)
  return [pool.submit(tiny_chain, tuple(e.name for e in chain), root) for chain in chains]


def _mark_when_done(root: pathlib.Path, futures: list) -> None:
  """Writes root/done (or root/failed with the error) once every future has finished: what other workers wait for."""
  try:
    for future in futures:
      future.result()
  except BaseException as error:  # noqa: BLE001 - reported to the waiting workers, raised here by the fixture
    records.write_text(root / "failed", f"{type(error).__name__}: {error}")
  else:
    records.write_text(root / "done", "")


def start_tiny_runs(config=None) -> None:
  """Starts the tiny runs (once per session; under pytest-xdist once per test run, in the worker that takes the
  shared folder's lock first)."""
  if _started:
    return
  shared = None if config is None else _shared_root(config)
  if shared is None:
    root = pathlib.Path(tempfile.mkdtemp(prefix="elasticity-tiny-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    _started.update(root=root, futures=_train(root))
    return
  shared.mkdir(parents=True, exist_ok=True)
  lock = open(shared / ".lock", "w")  # noqa: SIM115 - held (and the lock with it) until this process ends
  try:
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except BlockingIOError:
    lock.close()
    _started.update(root=shared, futures=None)  # another worker trains them
    return
  futures = _train(shared)
  threading.Thread(target=_mark_when_done, args=(shared, futures), daemon=True).start()
  atexit.register(_mark_when_done, shared, futures)  # runs before the pool's shutdown: a worker whose own tests end
  _started.update(root=shared, futures=futures, lock=lock)  # first still finishes the runs the others wait for


def _wait_for_other_worker(root: pathlib.Path) -> None:
  """Waits until the worker that trains the tiny runs has saved them all; fails with its error if it failed."""
  deadline = time.monotonic() + WAIT_SECONDS
  while not (root / "done").exists():
    if (root / "failed").exists():
      pytest.fail(f"the tiny runs failed in another worker: {(root / 'failed').read_text()}")
    if time.monotonic() > deadline or not _held_by_another_process(root / ".lock"):
      time.sleep(0.5)  # the marker may have been written just before the lock was let go
      if (root / "done").exists():
        break
      pytest.fail(f"the tiny runs under {root} were not done after {WAIT_SECONDS} s, or the worker training them "
                  "ended without finishing")
    time.sleep(0.2)


def _held_by_another_process(path: pathlib.Path) -> bool:
  """Whether another process holds the lock on `path` (the worker training the tiny runs, while it lives)."""
  with open(path, "a") as handle:
    try:
      fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      return True
    fcntl.flock(handle, fcntl.LOCK_UN)
    return False


def pytest_collection_finish(session):
  """When a collected test needs the tiny runs, they start now and train while the tests before it run."""
  if any("tiny_runs" in getattr(item, "fixturenames", ()) for item in session.items):
    start_tiny_runs(session.config)


@pytest.fixture(scope="session")
def tiny_runs(pytestconfig):
  """name -> (experiment, config, summary, read-only RunDir) of a tiny run of every registered experiment.

  The experiments run in worker processes, as `elasticity reproduce` runs them (tests/experiments/test_pipeline.py
  checks that a worker gives the numbers this process gives), started when collection finished. The summaries are
  read back from the saved runs (summary.json), the same way in every test process.
  """
  start_tiny_runs(pytestconfig)
  if _started["futures"] is None:
    _wait_for_other_worker(_started["root"])
  else:
    for future in _started["futures"]:
      future.result()
  runs = {}
  for name in registry.EXPERIMENTS:
    experiment = registry.get(name)
    config = experiment.config("tiny")
    summary = records.read_json(_started["root"] / name / "summary.json")["summary"]
    runs[name] = (experiment, config, summary, RunDir(_started["root"] / name, config, experiment=name,
                                                      writable=False))
  return runs
