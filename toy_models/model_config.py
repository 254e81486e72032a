"""Configuration of a toy language model: which kind, its size, its float type."""

from __future__ import annotations

import dataclasses

MODEL_KINDS = ("tabular", "ngram", "transformer")
"""tabular: a free logit vector per node of the pruned tree (unlimited capacity, the theory's model);
ngram: a next-token table on the last `context` tokens; transformer: a small causal transformer."""
DTYPES = ("float64", "float32")
VOCAB_OUT = 3  # next-token outputs: 0, 1, EOS.
VOCAB_IN = 3  # input symbols: 0, 1, and 2 = begin of response (also fills positions after EOS).


@dataclasses.dataclass(frozen=True, kw_only=True)
class ModelConfig:
  """A model kind and its size; fields not used by the kind are ignored."""

  kind: str = "tabular"  # one of MODEL_KINDS.
  context: int = 3  # ngram: number of previous symbols seen (>= 1); >= depth makes it as free as tabular.
  width: int = 32  # transformer: residual width.
  layers: int = 2  # transformer: number of blocks.
  heads: int = 2  # transformer: attention heads (must divide width).
  mlp_ratio: int = 4  # transformer: MLP hidden width / width.
  init_scale: float = 0.02  # standard deviation of the initial weights (tabular and ngram start at 0 + noise).
  dtype: str = "float64"  # parameter and activation type; metrics are always computed in float64.

  def __post_init__(self):
    if self.kind not in MODEL_KINDS:
      raise ValueError(f"unknown model kind {self.kind!r}; allowed: {', '.join(MODEL_KINDS)}")
    if self.dtype not in DTYPES:
      raise ValueError(f"unknown dtype {self.dtype!r}; allowed: {', '.join(DTYPES)}")
    for name, low, high in (("context", 1, 12), ("width", 1, 4096), ("layers", 1, 64), ("heads", 1, 64),
                            ("mlp_ratio", 1, 16)):
      value = getattr(self, name)
      if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"model {name}={value!r} is not allowed; allowed: an integer {low}..{high}")
    if self.width % self.heads:
      raise ValueError(f"model heads={self.heads} does not divide width={self.width}; allowed: a divisor of width")
    if not 0 <= self.init_scale < 10:
      raise ValueError(f"init_scale={self.init_scale!r} is not allowed; allowed: 0 <= init_scale < 10")

  def label(self) -> str:
    """Short name for tables and legends, e.g. 'transformer(w32,L2)'."""
    if self.kind == "ngram":
      return f"ngram(c{self.context})"
    if self.kind == "transformer":
      return f"transformer(w{self.width},L{self.layers})"
    return "tabular"


def transformer_sizes(sizes, *, heads: int, dtype: str) -> tuple[ModelConfig, ...]:
  """The transformers of (width, layers) pairs; one-line ValueError for an empty, repeated or malformed list."""
  sizes = tuple(tuple(size) if isinstance(size, tuple | list) else size for size in sizes)
  bad = [size for size in sizes if not isinstance(size, tuple) or len(size) != 2]
  if bad:
    raise ValueError(f"model size {bad[0]!r} is not allowed; allowed: a (width, layers) pair")
  if not sizes or len(set(sizes)) != len(sizes):
    raise ValueError(f"model_sizes={[list(s) for s in sizes]} is not allowed; allowed: distinct (width, layers) pairs")
  return tuple(ModelConfig(kind="transformer", width=w, layers=n, heads=heads, dtype=dtype) for w, n in sizes)
