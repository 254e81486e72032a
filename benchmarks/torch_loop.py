"""A reference: the same toy transformer trained the way a researcher writes it in PyTorch (one run at a time).

Not part of the package (torch is no dependency). Run it beside `elasticity bench` on the same machine:
  pip install torch==2.13.0 && python benchmarks/torch_loop.py --out runs/torch_loop.json
It trains the experiments' default transformer (width 16, 1 block, 2 heads, depth-8 tree, minibatches of 32, Adam)
for `runs` runs of `steps` steps, one run after another, and the paper-scale one (width 64, 2 blocks, 4 heads,
minibatches of 256), in float32 and float64, and writes seconds and milliseconds per run-step as JSON: the fastest
of --repeats times (3), every time kept, as `elasticity bench` does with its sweep.
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib
import time

import numpy as np
import torch

EOS, PAD, BEGIN = 2, 3, 2


def leaf_tokens(depth: int) -> np.ndarray:
  """Every response of the pruned tree: bits, then EOS, then PAD (heap order), shape (2**depth - 1, depth)."""
  rows = []
  for length in range(depth):
    for value in range(2**length):
      bits = [(value >> (length - 1 - i)) & 1 for i in range(length)]
      rows.append(bits + [EOS] + [PAD] * (depth - length - 1))
  return np.array(rows)


class Block(torch.nn.Module):
  def __init__(self, width: int, heads: int):
    super().__init__()
    self.heads = heads
    self.norm1, self.norm2 = torch.nn.LayerNorm(width, eps=1e-6), torch.nn.LayerNorm(width, eps=1e-6)
    self.qkv, self.out = torch.nn.Linear(width, 3 * width), torch.nn.Linear(width, width)
    self.mlp_in, self.mlp_out = torch.nn.Linear(width, 4 * width), torch.nn.Linear(4 * width, width)

  def forward(self, x):
    batch, steps, width = x.shape
    q, k, v = self.qkv(self.norm1(x)).split(width, dim=-1)
    shape = (batch, steps, self.heads, width // self.heads)
    q, k, v = (t.reshape(shape).transpose(1, 2) for t in (q, k, v))
    mixed = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    x = x + self.out(mixed.transpose(1, 2).reshape(batch, steps, width))
    return x + self.mlp_out(torch.nn.functional.gelu(self.mlp_in(self.norm2(x))))


class Transformer(torch.nn.Module):
  def __init__(self, width: int, layers: int, heads: int, depth: int):
    super().__init__()
    self.embed, self.position = torch.nn.Embedding(3, width), torch.nn.Parameter(0.02 * torch.randn(depth, width))
    self.blocks = torch.nn.ModuleList(Block(width, heads) for _ in range(layers))
    self.norm, self.unembed = torch.nn.LayerNorm(width, eps=1e-6), torch.nn.Linear(width, 3)

  def forward(self, inputs):
    x = self.embed(inputs) + self.position[: inputs.shape[1]]
    for block in self.blocks:
      x = block(x)
    return self.unembed(self.norm(x))


def train(width, layers, heads, batch, steps, runs, dtype, depth=8, seed=0):
  """Seconds to train `runs` runs one after another (model built, minibatches drawn, Adam steps)."""
  torch.manual_seed(seed)
  tokens = torch.tensor(leaf_tokens(depth))
  inputs = torch.cat([torch.full((tokens.shape[0], 1), BEGIN), tokens[:, :-1]], dim=1)
  inputs = torch.where(inputs < 2, inputs, torch.full_like(inputs, BEGIN))
  targets = torch.minimum(tokens, torch.tensor(EOS))
  mask = (tokens != PAD).to(dtype)
  weights = torch.tensor(np.random.default_rng(seed).random(tokens.shape[0]) + 0.01, dtype=dtype)
  start = time.perf_counter()
  for _ in range(runs):
    model = Transformer(width, layers, heads, depth).to(dtype)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.003)
    for _ in range(steps):
      picks = torch.multinomial(weights, batch, replacement=True)
      logits = model(inputs[picks])
      loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 3), targets[picks].reshape(-1), reduction="none")
      loss = (loss * mask[picks].reshape(-1)).sum() / mask[picks].sum()
      optimizer.zero_grad()
      loss.backward()
      optimizer.step()
  return time.perf_counter() - start


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("runs/torch_loop.json"))
  parser.add_argument("--repeats", type=int, default=3, help="times each row is measured; the fastest counts (as "
                      "`elasticity bench`'s sweep), every time is saved")
  args = parser.parse_args()
  if args.repeats < 1:
    parser.error(f"--repeats {args.repeats}: allowed: an integer >= 1")
  torch.set_num_threads(max(1, torch.get_num_threads()))
  rows = []
  for name, width, layers, heads, batch, steps, runs in (("w16", 16, 1, 2, 32, 800, 8), ("w64", 64, 2, 4, 256, 100, 4)):
    for dtype in (torch.float32, torch.float64):
      each = [train(width, layers, heads, batch, steps, runs, dtype) for _ in range(args.repeats)]
      seconds = min(each)
      rows.append({"workload": name, "dtype": str(dtype).removeprefix("torch."), "runs": runs, "steps": steps,
                   "seconds": round(seconds, 3), "seconds_each": [round(s, 3) for s in each],
                   "ms_per_run_step": round(1000 * seconds / (runs * steps), 4)})
      print(json.dumps(rows[-1]), flush=True)
  args.out.parent.mkdir(parents=True, exist_ok=True)
  args.out.write_text(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "rows": rows},
                                 indent=2) + "\n")
  assert all(math.isfinite(r["seconds"]) for r in rows)


if __name__ == "__main__":
  main()
