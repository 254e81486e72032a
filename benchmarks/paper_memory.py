"""Peak resident memory of every experiment at the paper scale on this machine, with step budgets cut to a few steps.

Memory depends on the sizes (tree depth, widths, layers, run counts, batch sizes), not on how many steps a stage
takes, so each experiment runs every stage and metric at the paper's sizes in minutes instead of hours:
  python benchmarks/paper_memory.py                       # all experiments, one after another (~45 min on 2 cores)
  python benchmarks/paper_memory.py rebound mitigations   # some
Each run is `elasticity simulate NAME --scale paper --out-dir <temporary> --set ...` in its own process; its peak
resident set comes from the operating system (os.wait4's ru_maxrss). Results go to runs/paper_memory.json, one row
per experiment (seconds, exit code, peak bytes, the exact command), with the git commit.

On an accelerator (benchmarks/gpu_paper.sh, the device check of the paper scale) the same runs double as a check
that every stage and metric works at the paper's sizes there, several at once (`--jobs`), each stopped after
`--timeout` seconds (Ctrl-C first: its finished units are saved); `--full-budgets` runs the paper scale's own step
budgets instead (hours on a CPU), `--logs` keeps each run's output and folder.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import pathlib
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time

STAGES = ["pretrain.epochs=0.002", "first.epochs=0.02", "second.epochs=0.02"]
REBOUND = STAGES
TRANSFORMER_PLAN = ["transformer_plan.joint.steps=3", "transformer_plan.pretrain.epochs=0.002",
                    "transformer_plan.align.epochs=0.02", "transformer_plan.finetune.epochs=0.02"]
SEQUENTIAL_PLAN = ["transformer_plan.pretrain_epochs=0.002", "transformer_plan.align_epochs_converged=0.02",
                   "transformer_plan.align_epochs_short=0.02", "transformer_plan.finetune_epochs=0.02",
                   "transformer_plan.sum_pretrain_steps=2", "transformer_plan.sum_align_steps_converged=2",
                   "transformer_plan.sum_align_steps_short=1", "transformer_plan.sum_finetune_steps=2",
                   "transformer_plan.replay_max_steps=2", "transformer_plan.joint_stops=[2,4]",
                   "transformer_plan.newton_steps=1", "transformer_plan.cg_iterations=3",
                   "transformer_plan.solver_iterations=3", "transformer_plan.degradation_iterations=3"]
SETTINGS = {
    "rebound": REBOUND, "model-size": REBOUND, "pretrain-volume": REBOUND, "families": REBOUND,
    "mitigations": ["pretrain.epochs=0.002", "align.epochs=0.02", "attack.epochs=0.02", "corrector_stage.epochs=0.02",
                    "corrector_attack.epochs=0.02", "breaking_epochs=0.02"],
    "resistance": ["pretrain.epochs=0.002", "sft.steps=3", "transfer.steps=3"],
    "hooke": TRANSFORMER_PLAN,
    "sequential": SEQUENTIAL_PLAN,
}
"""Per experiment: the --set overrides that cut its step budgets (its sizes stay the paper scale's)."""
EXTRA_FLAGS = {"hooke": ["--models", "transformer"], "sequential": ["--models", "transformer"]}
"""The transformers only where the tabular and n-gram models train for thousands of exact-gradient steps (their
memory is small: 2**depth parameters)."""


def peak_of(command: list[str], log: pathlib.Path, timeout: float | None = None) -> tuple[int, int, float, bool]:
  """(exit code, peak resident bytes, seconds, timed out) of `command`, its output written to `log`; after `timeout`
  seconds it gets SIGINT (the CLI saves finished units and exits), and SIGKILL 30 s later."""
  start = time.monotonic()
  timed_out, timers = threading.Event(), []

  def later(seconds: float, action, *args) -> None:
    timers.append(threading.Timer(seconds, action, args))
    timers[-1].daemon = True
    timers[-1].start()

  def stop(process: subprocess.Popen) -> None:
    timed_out.set()
    process.send_signal(signal.SIGINT)
    later(30.0, process.kill)

  with log.open("w") as out:
    process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    if timeout:
      later(timeout, stop, process)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait for it again
    for timer in timers:
      timer.cancel()
  scale = 1 if platform.system() == "Darwin" else 1024  # ru_maxrss: bytes on macOS, kilobytes on Linux
  return process.returncode, usage.ru_maxrss * scale, time.monotonic() - start, timed_out.is_set()


def command_of(name: str, out_dir: pathlib.Path, full_budgets: bool) -> list[str]:
  """The `elasticity simulate` command of experiment `name` at the paper scale, its step budgets cut unless
  `full_budgets`."""
  command = [sys.executable, "-m", "elasticity_cli", "simulate", name, "--scale", "paper", "--out-dir", str(out_dir)]
  if full_budgets:
    return command
  command += EXTRA_FLAGS.get(name, [])
  for setting in SETTINGS[name]:
    command += ["--set", setting]
  return command


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("experiments", nargs="*", default=list(SETTINGS), help=f"any of {', '.join(SETTINGS)}")
  parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("runs/paper_memory.json"))
  parser.add_argument("--jobs", type=int, default=1, help="runs at once (default 1: peaks measured alone)")
  parser.add_argument("--timeout", type=float, default=None, help="seconds before a run is stopped (default none)")
  parser.add_argument("--logs", type=pathlib.Path, default=None,
                      help="folder that keeps each run's log and run folder (default: a temporary one)")
  parser.add_argument("--full-budgets", action="store_true", help="the paper scale's own step budgets (hours)")
  args = parser.parse_args(argv)
  unknown = [name for name in args.experiments if name not in SETTINGS]
  if unknown:
    parser.error(f"unknown experiment {unknown[0]!r}; allowed: {', '.join(SETTINGS)}")
  if args.jobs < 1 or (args.timeout is not None and not args.timeout > 0):
    parser.error(f"--jobs {args.jobs} / --timeout {args.timeout}: allowed: jobs >= 1, timeout > 0 seconds")
  commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip() or None
  with tempfile.TemporaryDirectory(prefix="paper-memory-") as temporary:
    folder = args.logs or pathlib.Path(temporary)
    folder.mkdir(parents=True, exist_ok=True)

    def measure(name: str) -> dict:
      command = command_of(name, folder / name, args.full_budgets)
      code, peak, seconds, timed_out = peak_of(command, folder / f"{name}.log", args.timeout)
      print(f"{name}: peak {peak / 1e9:.2f} GB resident, {seconds:.0f} s, exit code {code}"
            + (" (stopped at the timeout)" if timed_out else ""), flush=True)
      if code != 0 and not timed_out:
        print((folder / f"{name}.log").read_text()[-2000:], file=sys.stderr)
      return {"experiment": name, "exit_code": code, "timed_out": timed_out, "peak_resident_bytes": peak,
              "seconds": round(seconds, 1), "command": " ".join(command[1:])}

    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
      rows = list(pool.map(measure, args.experiments))
  args.out.parent.mkdir(parents=True, exist_ok=True)
  args.out.write_text(json.dumps({"git_commit": commit, "machine": platform.platform(), "cpu_count": os.cpu_count(),
                                  "jobs": args.jobs, "timeout_seconds": args.timeout,
                                  "full_budgets": args.full_budgets, "rows": rows}, indent=1) + "\n")
  print(f"results: {args.out}")
  return 0 if all(row["exit_code"] == 0 for row in rows) else 1


if __name__ == "__main__":
  sys.exit(main())
