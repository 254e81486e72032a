"""Hypothesis strategies for random configurations: families, depths, sizes, perturbation sizes, supports.

Shared by `elasticity check` (run at runtime) and the tests, so both draw from the same distributions.
"""

from __future__ import annotations

import functools

from hypothesis import strategies as st

from proofs_check.configs import LAYOUTS, MODELS, CodeConfig, ElasticityConfig, StationaryConfig, layout_supports
from theory import token_tree
from theory.conventions import ALIGNED_PREFIX, UNALIGNED_PREFIX
from theory.distributions import DatasetSpec

FAMILY_PARAMS = {
    "pareto": (1.05, 4.0),  # Pareto shape (paper Assumption A.7): heavier tail for smaller shape.
    "zipf": (0.3, 2.5),  # Zipf exponent.
    "dirichlet": (0.1, 5.0),  # symmetric Dirichlet concentration.
    "uniform": None,  # no parameter.
}
"""Family -> range of its parameter drawn by the strategies."""

MIN_DEPTH, MAX_DEPTH = 2, 10  # token-tree depths drawn (3 to 1,023 leaves).
LOG10_K = (0.0, 6.0)  # k = n_p / n_a is drawn log-uniformly in 10**[0, 6].
LOG10_N_A = (0.0, 3.0)  # n_a is drawn log-uniformly in 10**[0, 3].
LOG10_SMALL_L = (-6.0, -2.0)  # small perturbations l << 1.
LOG10_LARGE_L = (-2.0, 1.0)  # l up to 10.
SEEDS = st.integers(min_value=0, max_value=2**32 - 1)  # seeds of the leaf-distribution draws.


@functools.cache
def log_uniform(low_exponent: float, high_exponent: float) -> st.SearchStrategy[float]:
  """10**u with u uniform in [low_exponent, high_exponent] (both ends reachable); one strategy object per range."""
  return st.floats(min_value=low_exponent, max_value=high_exponent).map(lambda u: float(10.0**u))


@functools.cache
def _sampled(choices: tuple) -> st.SearchStrategy:
  """st.sampled_from(choices), built once per tuple: strategies drawn inside a composite are otherwise built (and
  validated) again at every draw."""
  return st.sampled_from(choices)


@functools.cache
def _integers(low: int, high: int) -> st.SearchStrategy[int]:
  """st.integers(low, high), built once per range."""
  return st.integers(min_value=low, max_value=high)


@functools.cache
def _family_param(family: str) -> st.SearchStrategy[float]:
  """The parameter of `family` (FAMILY_PARAMS), built once per family."""
  low, high = FAMILY_PARAMS[family]
  return st.floats(min_value=low, max_value=high)


@st.composite
def dataset_specs(draw, support: tuple[int, ...] = (), families=tuple(FAMILY_PARAMS),
                  seed_slot: tuple[int, int] | None = None) -> DatasetSpec:
  """A DatasetSpec of a random family (among `families`), parameter and seed, on the given support prefix.

  With seed_slot (i, n) the seed is drawn as s * n + i, so datasets drawn with different slots i never share
  a seed (and are independent draws even when hypothesis shrinks every seed to 0). A composite at module level:
  hypothesis reads a composite function's source when it is decorated, which cost a third of `elasticity check`
  when this one was decorated anew at every draw.
  """
  family = draw(_sampled(tuple(families)))
  param = None if FAMILY_PARAMS[family] is None else draw(_family_param(family))
  seed = draw(SEEDS)
  if seed_slot is not None:
    seed = seed * seed_slot[1] + seed_slot[0]
  return DatasetSpec(family=family, param=param, support=support, seed=seed)


@functools.lru_cache(maxsize=4096)
def _dataset_specs(support: tuple[int, ...], families: tuple[str, ...], seed_slot) -> st.SearchStrategy[DatasetSpec]:
  """dataset_specs(support, families, seed_slot), built once per arguments (a strategy is validated when built)."""
  return dataset_specs(support, families, seed_slot)


@functools.cache
def perturbation_sizes(include_zero: bool = True) -> st.SearchStrategy[float]:
  """l = n_t / n_a: 0 (when included), small (1e-6..1e-2) or up to 10."""
  choices = [log_uniform(*LOG10_SMALL_L), log_uniform(*LOG10_LARGE_L)]
  return st.one_of(([st.just(0.0)] if include_zero else []) + choices)


@st.composite
def elasticity_configs(draw, *, layouts=tuple(LAYOUTS), families=tuple(FAMILY_PARAMS), l_values=None,
                       k_values=None, copy_probability: bool = True, distinct_seeds: bool = False,
                       depths: tuple[int, int] = (MIN_DEPTH, MAX_DEPTH)) -> ElasticityConfig:
  """Three datasets (D_p, D_a, D_t) with random families, depth, supports, k and l.

  Args:
    draw: hypothesis's draw function (supplied by st.composite).
    layouts: support layouts to choose from (keys of proofs_check.configs.LAYOUTS).
    families: leaf-probability families to choose from.
    l_values: strategy for l (default: perturbation_sizes(), which includes l = 0).
    k_values: strategy for k (default: log-uniform in 10**[0, 6]).
    copy_probability: whether D_t may be an exact copy of D_a or of D_p (an alignment-like or a
      pre-training-like perturbation) instead of an independent draw.
    distinct_seeds: whether the three datasets must have different seeds (otherwise hypothesis's favourite
      seed 0 often makes them identical, a useful edge case for the exact claims).
    depths: smallest and largest tree depth drawn.
  """
  depth = draw(_integers(depths[0], depths[1]))
  layout = draw(_sampled(tuple(layouts)))
  support_p, support_a, support_t = layout_supports(layout, depth)
  slots = [(i, 3) if distinct_seeds else None for i in range(3)]
  pretrain = draw(_dataset_specs(tuple(support_p), tuple(families), slots[0]))
  align = draw(_dataset_specs(tuple(support_a), tuple(families), slots[1]))
  kinds = ["independent", "copy of D_a", "copy of D_p"] if copy_probability else ["independent"]
  kind = draw(_sampled(tuple(kinds)))
  if kind == "copy of D_a":
    perturb = align
  elif kind == "copy of D_p":
    perturb = pretrain
  else:
    perturb = draw(_dataset_specs(tuple(support_t), tuple(families), slots[2]))
  k = draw(k_values if k_values is not None else log_uniform(*LOG10_K))
  size_ratio = draw(l_values if l_values is not None else perturbation_sizes())
  n_a = draw(log_uniform(*LOG10_N_A))
  return ElasticityConfig(depth=depth, pretrain=pretrain, align=align, perturb=perturb, layout=layout, k=k,
                          l=size_ratio, n_a=n_a)


def pareto_configs(*, l_exponents=(-4.0, -2.0)) -> st.SearchStrategy[ElasticityConfig]:
  """Paper Thm. 4.2's setting: Pareto masses for all three datasets, l in 10**l_exponents (l << 1).

  D_t is 'unaligned' (supported where D_a has no mass, inside D_p: layout 'unaligned') or 'generic' (an
  independent Pareto draw on the whole tree, like D_p and D_a: layout 'shared').
  """
  return elasticity_configs(layouts=("unaligned", "shared"), families=("pareto",),
                            l_values=log_uniform(*l_exponents), copy_probability=False, distinct_seeds=True)


@st.composite
def small_alphabets(draw, max_symbols: int = 6) -> CodeConfig:
  """2..max_symbols positive probabilities (a Dirichlet-like draw via normalised weights)."""
  count = draw(_integers(2, max_symbols))
  weights = draw(st.lists(st.floats(min_value=1e-3, max_value=1.0), min_size=count, max_size=count))
  total = sum(weights)
  return CodeConfig(probs=tuple(w / total for w in weights),
                    response_length=draw(_integers(1, 20)))


@st.composite
def tree_sources(draw) -> CodeConfig:
  """A leaf distribution of a random family on a tree of depth 2..10 (optionally on a subtree)."""
  depth = draw(_integers(MIN_DEPTH, MAX_DEPTH))
  support = draw(_sampled(((), ALIGNED_PREFIX, UNALIGNED_PREFIX)))
  return CodeConfig(depth=depth, source=draw(dataset_specs(support)),
                    response_length=draw(_integers(1, 4 * depth)))


def code_configs() -> st.SearchStrategy[CodeConfig]:
  """Small explicit alphabets (also solved by brute force) or token-tree leaf distributions."""
  return st.one_of(small_alphabets(), tree_sources())


STATIONARY_DEPTHS = (3, 5)  # trees of 7 to 31 leaves for claim 10's fitted models.
STATIONARY_LAYOUTS = ("shared", "nested", "overlapping", "unaligned")  # D_p covers the tree: q > 0 at every leaf.
STATIONARY_FAMILIES = ("pareto", "zipf", "uniform")  # no near-zero Dirichlet masses (they push optima to infinity).
MAX_LINEAR_PARAMS = 8  # parameters of the linear model at most.
MAX_HIDDEN, MAX_FEATURES = 2, 2  # hidden units and input features of the two-layer model at most.


@st.composite
def stationary_configs(draw) -> StationaryConfig:
  """Claim 10: three datasets on a tree of 7..31 leaves and a random small model that is not the free simplex.

  The model has at most n_leaves - 2 parameters (the free simplex needs n_leaves - 1), so its fitted q differs
  from the size-weighted mixture in general. D_p covers the whole tree and the families have no near-zero
  masses, so the objective has a finite minimiser.
  """
  datasets = draw(elasticity_configs(layouts=STATIONARY_LAYOUTS, families=STATIONARY_FAMILIES,
                                     depths=STATIONARY_DEPTHS))
  room = token_tree.n_leaves(datasets.depth) - 2
  model = draw(_sampled(tuple(MODELS)))
  if model == "linear":
    width = draw(_integers(1, min(MAX_LINEAR_PARAMS, room)))
    n_features = 0
  else:
    n_features = draw(_integers(1, MAX_FEATURES))
    width = draw(_integers(1, max(1, min(MAX_HIDDEN, room // (n_features + 2)))))
  return StationaryConfig(datasets=datasets, model=model, width=width, n_features=n_features,
                          model_seed=draw(SEEDS))
