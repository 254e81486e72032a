#!/usr/bin/env bash
# The device check of the speed issue: `elasticity bench` on an accelerator, the paper-scale workload first.
# Usage (on the device machine, from the repository root): OUT=<folder> bash benchmarks/gpu_bench.sh
set -uo pipefail
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD" ELASTICITY_JAX_CACHE=off
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -c "import jax; print('jax', jax.__version__, jax.devices())" | tee -a "$OUT/gpu.txt"
python3 -m elasticity_cli bench --workloads w64 --runs 1,32,256 --sweep-runs 0 --accuracy false \
  --out "$OUT/bench_w64.json" 2>&1 | tee "$OUT/bench_w64.log"
python3 -m elasticity_cli bench --workloads w16 --runs 1,32,256 --accuracy false --sweep-repeats 1 \
  --out "$OUT/bench_w16.json" 2>&1 | tee "$OUT/bench_w16.log"
