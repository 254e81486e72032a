"""Milliseconds per exact (expected) SFT gradient of the paper-scale Hooke transformer, per chunk size and method.

`toy_models.training.exact_sft_gradient` sums the gradient over every response of the tree in chunks (a lax.scan):
of the responses themselves ('responses'), or, as training does, of the tree's longest responses, which score every
response (toy_models.shared_prefixes, 'rows': half the model evaluations). On a 2-core CPU chunks of 256 responses
were faster than the whole depth-10 tree at once and held a third of the memory. On a GPU each chunk is a further
pass of small kernels, and the paper scale's Hooke and sequential transformers spent most of their time here (about
37 ms per training step on an H200, in chunks of responses), so the best chunk may differ by backend. This measures
both methods side by side in one process:
  python benchmarks/exact_gradient.py                      # depth 10, width 64, 2 layers, 4 heads, 5 runs vmapped
  python benchmarks/exact_gradient.py --chunks 256,1024 --dtype float32
Each (method, chunk) is compiled once (compile seconds reported apart), then timed over --repeats calls; every
gradient is checked against the first row's (the unchunked gradient when that chunk covers every response).
Results go to runs/exact_gradient.json with the device and commit.
"""

from __future__ import annotations

import argparse
import functools
import json
import pathlib
import subprocess
import sys
import time

import jax
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from theory import token_tree  # noqa: E402
from toy_models import training  # noqa: E402
from toy_models.model_config import ModelConfig  # noqa: E402
from toy_models.models import build_model  # noqa: E402


def measure(depth: int, width: int, layers: int, heads: int, runs: int, dtype: str, chunks: list[int],
            repeats: int, seed: int = 0) -> list[dict]:
  """One row per method ('responses', 'rows') and chunk size, largest chunk first: compile seconds, milliseconds per
  gradient of `runs` vmapped runs, and the largest difference from the first row's gradient relative to its largest
  entry."""
  model = build_model(ModelConfig(kind="transformer", width=width, layers=layers, heads=heads, dtype=dtype), depth)
  params = training.init_params(model, jax.random.split(jax.random.PRNGKey(seed), runs))
  tokens = jax.device_put(np.asarray(token_tree.leaf_tokens(depth), np.int32))
  weights = jax.device_put(np.random.default_rng(seed).random((runs, tokens.shape[0])).astype(dtype) + 0.01)
  results, reference = [], None
  for chunk in sorted(chunks, reverse=True):
    for method in ("responses", "rows"):
      gradient = jax.jit(jax.vmap(functools.partial(training.exact_sft_gradient, model, chunk=chunk,
                                                    whole_tree=method == "rows"), in_axes=(0, None, 0)))
      start = time.perf_counter()
      out = jax.block_until_ready(gradient(params, tokens, weights))
      compile_seconds = time.perf_counter() - start
      start = time.perf_counter()
      for _ in range(repeats):
        out = gradient(params, tokens, weights)
      jax.block_until_ready(out)
      milliseconds = 1000 * (time.perf_counter() - start) / repeats
      flat = np.concatenate([np.ravel(np.asarray(leaf, np.float64)) for leaf in jax.tree_util.tree_leaves(out)])
      reference = flat if reference is None else reference
      difference = float(np.max(np.abs(flat - reference)) / np.max(np.abs(reference)))
      sequences = tokens.shape[0] if method == "responses" else 2 ** (depth - 1)
      results.append({"method": method, "chunk": chunk, "chunks": -(-sequences // chunk),
                      "compile_seconds": round(compile_seconds, 3), "ms_per_gradient": round(milliseconds, 3),
                      "max_relative_difference": difference})
      print(json.dumps(results[-1]), flush=True)
  return results


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--depth", type=int, default=10)
  parser.add_argument("--width", type=int, default=64)
  parser.add_argument("--layers", type=int, default=2)
  parser.add_argument("--heads", type=int, default=4)
  parser.add_argument("--runs", type=int, default=5, help="vmapped runs (the paper-scale Hooke experiment's seeds)")
  parser.add_argument("--dtype", choices=("float32", "float64"), default="float64")
  parser.add_argument("--chunks", default="128,256,512,1024", help="comma-separated chunk sizes (responses)")
  parser.add_argument("--repeats", type=int, default=20)
  parser.add_argument("--out", type=pathlib.Path, default=ROOT / "runs" / "exact_gradient.json")
  args = parser.parse_args(argv)
  try:
    chunks = [int(c) for c in args.chunks.split(",")]
  except ValueError:
    parser.error(f"--chunks {args.chunks!r}: allowed: comma-separated integers >= 1")
  if min(chunks) < 1 or args.repeats < 1:
    parser.error(f"--chunks {args.chunks!r} / --repeats {args.repeats}: allowed: integers >= 1")
  jax.config.update("jax_enable_x64", True)
  rows = measure(args.depth, args.width, args.layers, args.heads, args.runs, args.dtype, chunks, args.repeats)
  commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
  args.out.parent.mkdir(parents=True, exist_ok=True)
  args.out.write_text(json.dumps({"device": str(jax.devices()[0]), "device_kind": jax.devices()[0].device_kind,
                                  "jax": jax.__version__, "git_commit": commit or None, "settings": vars(args) | {
                                      "out": str(args.out)}, "rows": rows}, indent=1) + "\n")
  print(f"results: {args.out}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
