"""The paper scale on an accelerator: docs/USAGE.md's block from the saved output of benchmarks/gpu_paper.sh."""

from __future__ import annotations

import pathlib
import re

from experiments import readme_blocks, records, verdicts

FOLDER = pathlib.Path(__file__).resolve().parents[1] / "figures" / "data" / "gpu_paper"
"""Where the device check's output is kept: gpu.txt (gpu_callN.txt from a later session), {cut,full}_callN.json,
exact_gradient[_float32]_callN.json, logs/, finished/NAME/summary.json, provenance.json (one entry per session)."""
FAMILY = "the paper scale on an accelerator (finished experiments)"
"""The Holm family of the verdicts of the experiments that finished there (fewer than the full report's)."""
_UNIT_DONE = re.compile(r"unit (\d+)/(\d+) \S+ done and saved")
_CALL = re.compile(r"(cut|full)_call(\d+)\.json")
_GRADIENT = re.compile(r"exact_gradient(?:_float32)?_call(\d+)\.json")
_CHUNK = re.compile(r"training's exact gradient in chunks of (\d+)")


def units_done(log_text: str) -> tuple[int, int | None]:
  """(units finished, units in the run) from a run's progress lines; (0, None) before any unit finished."""
  done = {(int(m[1]), int(m[2])) for m in _UNIT_DONE.finditer(log_text)}
  return len(done), (max(total for _, total in done) if done else None)


def _outcome(row: dict, log: pathlib.Path) -> str:
  """One table cell: how a run of benchmarks/paper_memory.py ended (units counted from this call's log)."""
  peak = f"{row['peak_resident_bytes'] / 1e9:.1f} GB host"
  done, total = units_done(log.read_text()) if log.exists() else (0, None)
  if not row["timed_out"]:
    resumed = f" ({done} of {total} units here, the others resumed)" if row["exit_code"] == 0 and total and \
        done < total else ""
    return f"{'finished' if row['exit_code'] == 0 else 'FAILED (exit ' + str(row['exit_code']) + ')'} in " \
           f"{row['seconds']:.0f} s{resumed}, {peak}"
  return f"stopped at {row['seconds']:.0f} s, {done}/{total or '?'} units done here, {peak}"


def _calls_label(calls: list[int]) -> str:
  return f"call {calls[0]}" if len(calls) == 1 else f"calls {calls[0]}-{calls[-1]}"


def _device_lines(folder: pathlib.Path) -> dict[int, list[str]]:
  """The lines of gpu.txt (call 1 on) and of each later session's gpu_callN.txt, by the first call they cover."""
  found = {1: (folder / "gpu.txt").read_text().splitlines()}
  for path in folder.glob("gpu_call*.txt"):
    found[int(path.stem.removeprefix("gpu_call"))] = path.read_text().splitlines()
  return found


def _gradient_table(folder: pathlib.Path) -> list[str]:
  """One row per (call, dtype, method, chunk) of benchmarks/exact_gradient.py's saved results, fastest first."""
  lines = []
  for path in sorted(folder.glob("exact_gradient*_call*.json")):
    if not (match := _GRADIENT.fullmatch(path.name)):
      continue
    saved = records.read_json(path)
    settings = saved["settings"]
    for row in sorted(saved["rows"], key=lambda r: r["ms_per_gradient"]):
      lines.append(f"| {match[1]} | {settings['dtype']} | {settings['runs']} | {row['method']} | {row['chunk']} | "
                   f"{row['chunks']} | {row['ms_per_gradient']:.1f} | {row['compile_seconds']:.1f} | "
                   f"{row['max_relative_difference']:.1e} |")
  if not lines:
    return []
  return ["Exact gradient of the paper-scale Hooke transformer (depth 10, width 64, 2 layers, 4 heads) per method and "
          "chunk, alone on the GPU (`benchmarks/exact_gradient.py`; 'rows': chunks of the tree's 512 longest "
          "responses, which score all 1,023; a chunk of 1,024 is every response at once by either method):", "",
          "| call | dtype | runs vmapped | method | chunk | chunks | ms per gradient | compile s | "
          "max relative difference |", "|---|---|---|---|---|---|---|---|---|", *lines, ""]


def calls(folder: pathlib.Path) -> list[tuple[str, int, dict]]:
  """(budgets 'cut' or 'full', call number, saved results) of every saved run set, by call then budgets."""
  found = [(m[1], int(m[2]), records.read_json(path)) for path in folder.glob("*_call*.json")
           if (m := _CALL.fullmatch(path.name))]
  return sorted(found, key=lambda item: (item[1], item[0]))


def markdown(folder: pathlib.Path = FOLDER) -> str:
  """docs/USAGE.md's block: the device, one row per experiment and column per call of the device check (finished,
  failed, or stopped with its units done), and the verdicts of the experiments that finished at the full budgets,
  Holm-corrected together as FAMILY."""
  devices = _device_lines(folder)
  sessions = records.read_json(folder / "provenance.json")["sessions"]
  sets = calls(folder)
  names = list(dict.fromkeys(row["experiment"] for _, _, saved in sets for row in saved["rows"]))
  lines = ["<!-- generated from figures/data/gpu_paper/ (benchmarks/gpu_paper.sh on the device); do not edit -->"]
  for session in sessions:
    device = devices[max(c for c in devices if c <= session["calls"][0])]
    chunk = next((m[1] for line in device if (m := _CHUNK.fullmatch(line))), None)
    cpus = next(saved["cpu_count"] for _, call, saved in sets if call in session["calls"])
    lines.append(f"- {_calls_label(session['calls']).capitalize()}: {device[0].split(',')[0]} ({device[1]}), {cpus} "
                 f"CPU cores, {session['date_utc']}, code of {session['code']}; "
                 + (f"training's exact gradient in chunks of {chunk}." if chunk else
                    "training's exact gradient in the chunks of its default then."))
  lines.append("")
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
  summaries = {name: records.read_json(folder / "finished" / name / "summary.json") for name in finished}
  saved_verdicts = [{**v, "key": f"{name}:{v['key']}"} for name in finished
                    for v in summaries[name]["summary"]["verdicts"]]
  compute = [f"{name} {summaries[name]['compute_seconds']:.0f} s" for name in finished
             if "compute_seconds" in summaries[name]]
  lines += [""] + _gradient_table(folder)
  if compute:
    lines += [f"Seconds of training and measurement of each finished run, its units summed over the calls that ran "
              f"them: {', '.join(compute)}.", ""]
  lines += [f"Verdicts of the {len(finished)} experiments finished at the paper scale's own budgets "
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
