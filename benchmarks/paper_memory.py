"""Peak resident memory of every experiment at the paper scale on this machine, with step budgets cut to a few steps.

Memory depends on the sizes (tree depth, widths, layers, run counts, batch sizes), not on how many steps a stage
takes, so each experiment runs every stage and metric at the paper's sizes in minutes instead of hours:
  python benchmarks/paper_memory.py                       # all experiments, one after another (~45 min on 2 cores)
  python benchmarks/paper_memory.py rebound mitigations   # some
Each run is `elasticity simulate NAME --scale paper --out-dir <temporary> --set ...` in its own process; its peak
resident set comes from the operating system (os.wait4's ru_maxrss). Results go to runs/paper_memory.json, one row
per experiment (seconds, exit code, peak bytes, the exact command), with the git commit.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import subprocess
import sys
import tempfile
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


def peak_of(command: list[str], log: pathlib.Path) -> tuple[int, int, float]:
  """(exit code, peak resident bytes, seconds) of `command`, its output written to `log`."""
  start = time.monotonic()
  with log.open("w") as out:
    process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    _, status, usage = os.wait4(process.pid, 0)
  scale = 1 if platform.system() == "Darwin" else 1024  # ru_maxrss: bytes on macOS, kilobytes on Linux
  return os.waitstatus_to_exitcode(status), usage.ru_maxrss * scale, time.monotonic() - start


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("experiments", nargs="*", default=list(SETTINGS), help=f"any of {', '.join(SETTINGS)}")
  parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("runs/paper_memory.json"))
  args = parser.parse_args(argv)
  unknown = [name for name in args.experiments if name not in SETTINGS]
  if unknown:
    parser.error(f"unknown experiment {unknown[0]!r}; allowed: {', '.join(SETTINGS)}")
  commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip() or None
  rows = []
  with tempfile.TemporaryDirectory(prefix="paper-memory-") as folder:
    for name in args.experiments:
      command = [sys.executable, "-m", "elasticity_cli", "simulate", name, "--scale", "paper", "--out-dir",
                 str(pathlib.Path(folder) / name), *EXTRA_FLAGS.get(name, [])]
      for setting in SETTINGS[name]:
        command += ["--set", setting]
      code, peak, seconds = peak_of(command, pathlib.Path(folder) / f"{name}.log")
      rows.append({"experiment": name, "exit_code": code, "peak_resident_bytes": peak, "seconds": round(seconds, 1),
                   "command": " ".join(command[1:])})
      print(f"{name}: peak {peak / 1e9:.2f} GB resident, {seconds:.0f} s, exit code {code}", flush=True)
      if code != 0:
        print((pathlib.Path(folder) / f"{name}.log").read_text()[-2000:], file=sys.stderr)
  args.out.parent.mkdir(parents=True, exist_ok=True)
  args.out.write_text(json.dumps({"git_commit": commit, "machine": platform.platform(), "cpu_count": os.cpu_count(),
                                  "rows": rows}, indent=1) + "\n")
  print(f"results: {args.out}")
  return 0 if all(row["exit_code"] == 0 for row in rows) else 1


if __name__ == "__main__":
  sys.exit(main())
