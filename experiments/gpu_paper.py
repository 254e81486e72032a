"""The paper scale on an accelerator: docs/USAGE.md's block from the saved output of benchmarks/gpu_paper.sh."""

from __future__ import annotations

import pathlib
import re

from experiments import readme_blocks, records, verdicts

FOLDER = pathlib.Path(__file__).resolve().parents[1] / "figures" / "data" / "gpu_paper"
"""Where the device check's output is kept: gpu.txt, {cut,full}_callN.json, logs/, finished/NAME/summary.json."""
FAMILY = "the paper scale on an accelerator (finished experiments)"
"""The Holm family of the verdicts of the experiments that finished there (fewer than the full report's)."""
_UNIT_DONE = re.compile(r"unit (\d+)/(\d+) \S+ done and saved")
_CALL = re.compile(r"(cut|full)_call(\d+)\.json")


def units_done(log_text: str) -> tuple[int, int | None]:
  """(units finished, units in the run) from a run's progress lines; (0, None) before any unit finished."""
  done = {(int(m[1]), int(m[2])) for m in _UNIT_DONE.finditer(log_text)}
  return len(done), (max(total for _, total in done) if done else None)


def _outcome(row: dict, log: pathlib.Path) -> str:
  """One table cell: how a run of benchmarks/paper_memory.py ended."""
  peak = f"{row['peak_resident_bytes'] / 1e9:.1f} GB host"
  if not row["timed_out"]:
    return f"{'finished' if row['exit_code'] == 0 else 'FAILED (exit ' + str(row['exit_code']) + ')'} in " \
           f"{row['seconds']:.0f} s, {peak}"
  done, total = units_done(log.read_text()) if log.exists() else (0, None)
  return f"stopped at {row['seconds']:.0f} s, {done}/{total or '?'} units done, {peak}"


def calls(folder: pathlib.Path) -> list[tuple[str, int, dict]]:
  """(budgets 'cut' or 'full', call number, saved results) of every saved run set, by call then budgets."""
  found = [(m[1], int(m[2]), records.read_json(path)) for path in folder.glob("*_call*.json")
           if (m := _CALL.fullmatch(path.name))]
  return sorted(found, key=lambda item: (item[1], item[0]))


def markdown(folder: pathlib.Path = FOLDER) -> str:
  """docs/USAGE.md's block: the device, one row per experiment and column per call of the device check (finished,
  failed, or stopped with its units done), and the verdicts of the experiments that finished at the full budgets,
  Holm-corrected together as FAMILY."""
  device = (folder / "gpu.txt").read_text().splitlines()
  provenance = records.read_json(folder / "provenance.json")
  sets = calls(folder)
  names = list(dict.fromkeys(row["experiment"] for _, _, saved in sets for row in saved["rows"]))
  lines = ["<!-- generated from figures/data/gpu_paper/ (benchmarks/gpu_paper.sh on the device); do not edit -->",
           f"Measured on {device[0].split(',')[0]} ({device[1]}), {sets[0][2]['cpu_count']} CPU cores, "
           f"{provenance['date_utc']}, code of {provenance['code']}.", ""]
  for budgets, call, saved in sets:
    together = [b for b, c, _ in sets if c == call]
    label = "step budgets cut" if budgets == "cut" else "the paper scale's own budgets"
    lines.append(f"- Call {call}, {label}: "
                 f"{len(saved['rows'])} experiments, {min(saved['jobs'], len(saved['rows']))} processes at once "
                 "sharing the GPU"
                 + (" (beside the other budgets' runs)" if len(together) > 1 else "")
                 + f", each stopped after {saved['timeout_seconds']:g} s.")
  header = [f"call {call}, {budgets} budgets" for budgets, call, _ in sets]
  lines += ["", f"| experiment | {' | '.join(header)} |", "|---|" + "---|" * len(sets)]
  for name in names:
    cells = []
    for budgets, call, saved in sets:
      row = next((r for r in saved["rows"] if r["experiment"] == name), None)
      cells.append("—" if row is None else _outcome(row, folder / "logs" / f"{budgets}_call{call}_{name}.log"))
    lines.append(f"| {name} | {' | '.join(cells)} |")
  finished = sorted(path.parent.name for path in (folder / "finished").glob("*/summary.json"))
  saved_verdicts = [{**v, "key": f"{name}:{v['key']}"} for name in finished
                    for v in records.read_json(folder / "finished" / name / "summary.json")["summary"]["verdicts"]]
  lines += ["", f"Verdicts of the {len(finished)} experiments finished at the paper scale's own budgets "
            f"({', '.join(finished)}), Holm-corrected together ({len(saved_verdicts)} tests; the full report corrects "
            "over every experiment):", "", *verdicts.table(saved_verdicts, FAMILY)]
  return "\n".join(lines) + "\n"


def publish(path: pathlib.Path | None = None) -> bool:
  """Writes markdown() into docs/USAGE.md's `gpu-paper` block (the publishing step); False without the block."""
  root = pathlib.Path(__file__).resolve().parents[1]
  return readme_blocks.embed("gpu-paper", markdown(), path or root / "docs" / "USAGE.md")


if __name__ == "__main__":
  import sys
  if sys.argv[1:] == ["--publish"]:
    sys.exit(0 if publish() else 1)
  print(markdown(), end="")
