#!/usr/bin/env bash
# The device check of the paper scale: every experiment at the paper's sizes on the accelerator, twice at once.
#  1. step budgets cut (benchmarks/paper_memory.py): does every stage and metric run there, and in how long;
#  2. the paper scale's own budgets, each experiment stopped after FULL_SECONDS (Ctrl-C: finished units are saved).
# Usage (on the device machine, from the repository root): OUT=<folder> bash benchmarks/gpu_paper.sh
# EXPERIMENTS="hooke sequential" runs some; CUT_SECONDS=0 skips the cut budgets; WORK=<folder> holding full/NAME from
# an earlier call resumes those runs (their finished units are reused). First, alone on the GPU (about a minute;
# EXACT_GRADIENT=0 skips it), benchmarks/exact_gradient.py writes $OUT/exact_gradient.json (float64) and
# exact_gradient_float32.json; CHUNK=best then trains in the fastest float64 chunk it measured, CHUNK=<n> in chunks of n
# ($ELASTICITY_EXACT_GRADIENT_CHUNK; unset: the default, toy_models.training.EXACT_GRADIENT_CHUNK).
# Writes to $OUT: gpu.txt, gpu_samples.csv, paper_cut.json, paper_full.json and paper_runs.tar.gz: each run's log and
# folder without its checkpoints, with its units only where a full-budgets run stopped early (none where that is over
# 60 MB), in 15 MB parts where larger. A later call resumes those runs: unpack the full/ folder into
# figures/data/gpu_paper/resume/ and commit it (a session's git-ignored folders do not outlive it: 15 finished units of
# the sequential study were lost that way after calls 2-4), then run with RESUME=figures/data/gpu_paper/resume, which
# copies that folder into WORK first (runs may not write inside figures/, the published results). The sequential
# study's 12 tabular and n-gram units ran faster on a 2-core CPU than on the H200 (107 s for all 12 there, alone;
# 202 s in call 3 and more than 270 s in call 2, sharing the GPU with two experiments): run them on the CPU first,
# `timeout -s INT 240 elasticity simulate sequential --scale paper --out-dir runs/gpu_seq/full/sequential`, then here
# with WORK=runs/gpu_seq (the device tool's carry) and only its 12 transformer units left.
set -uo pipefail
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD" XLA_PYTHON_CLIENT_PREALLOCATE=false  # several JAX processes share a GPU
CUT_SECONDS=${CUT_SECONDS:-420} FULL_SECONDS=${FULL_SECONDS:-420} WORK=${WORK:-/tmp/gpu_paper} EXPERIMENTS=${EXPERIMENTS:-}
mkdir -p "$OUT" "$WORK" && WORK=$(cd "$WORK" && pwd)  # absolute: the steps below run from other folders too
if [ -n "${RESUME:-}" ]; then cp -r "$RESUME"/. "$WORK"/ && echo "resuming the runs of $RESUME"; fi
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import jax; print('jax', jax.__version__, jax.devices())"
  git rev-parse HEAD; git status --porcelain --untracked-files=no | head -5; nproc; } 2>&1 | tee "$OUT/gpu.txt"
if [ "${EXACT_GRADIENT:-1}" != 0 ]; then  # first, alone on the GPU: the exact gradient per method and chunk size, for
  # the 25 vmapped runs of a paper-scale Hooke joint unit, in the paper scale's float64 and in float32
  timeout 150 python3 benchmarks/exact_gradient.py --runs 25 --chunks 256,512,1024 --repeats 5 \
    --out "$OUT/exact_gradient.json" 2>&1 | tail -n 8
  timeout 90 python3 benchmarks/exact_gradient.py --runs 25 --chunks 512,1024 --repeats 5 --dtype float32 \
    --out "$OUT/exact_gradient_float32.json" 2>&1 | tail -n 6
fi
if [ "${CHUNK:-}" = best ] && [ -f "$OUT/exact_gradient.json" ]; then  # train in the fastest float64 chunk measured
  CHUNK=$(python3 -c "import json, sys; rows = json.load(open(sys.argv[1]))['rows']
print(min((r for r in rows if r['method'] == 'rows'), key=lambda r: r['ms_per_gradient'])['chunk'])" "$OUT/exact_gradient.json")
fi
if [ -n "${CHUNK:-}" ] && [ "$CHUNK" != best ]; then
  export ELASTICITY_EXACT_GRADIENT_CHUNK=$CHUNK && echo "training's exact gradient in chunks of $CHUNK" | tee -a "$OUT/gpu.txt"
fi
nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -l 10 > "$OUT/gpu_samples.csv" 2>&1 &
sampler=$!
cut=
if [ "$CUT_SECONDS" != 0 ]; then
  python3 benchmarks/paper_memory.py $EXPERIMENTS --jobs 8 --timeout "$CUT_SECONDS" --logs "$WORK/cut" \
    --out "$OUT/paper_cut.json" > "$WORK/paper_cut.log" 2>&1 &
  cut=$!
fi
python3 benchmarks/paper_memory.py $EXPERIMENTS --full-budgets --jobs 8 --timeout "$FULL_SECONDS" --logs "$WORK/full" \
  --out "$OUT/paper_full.json" > "$WORK/paper_full.log" 2>&1
[ -n "$cut" ] && wait "$cut"
kill "$sampler" 2>/dev/null
parts=$(cd "$WORK" && ls -d paper_cut.log paper_full.log cut full 2>/dev/null)
cat "$WORK"/paper_*.log
keep=(--exclude=checkpoints --exclude='cut/*/units')  # a full-budgets run stopped early keeps its units (to resume)
for run in "$WORK"/full/*/; do [ -f "$run/summary.json" ] && keep+=("--exclude=full/$(basename "$run")/units"); done
tar czf "$WORK/paper_runs.tar.gz" -C "$WORK" "${keep[@]}" $parts
if [ "$(stat -c %s "$WORK/paper_runs.tar.gz")" -gt 60000000 ]; then
  tar czf "$WORK/paper_runs.tar.gz" -C "$WORK" --exclude=checkpoints --exclude=units $parts
fi
if [ "$(stat -c %s "$WORK/paper_runs.tar.gz")" -gt 15000000 ]; then
  split -b 15000000 -d "$WORK/paper_runs.tar.gz" "$OUT/paper_runs.tar.gz.part"
else
  cp "$WORK/paper_runs.tar.gz" "$OUT/"
fi
ls -la "$OUT"
