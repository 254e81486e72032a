"""Summary and verdicts of a mitigations run: half-undo examples, paired gains, frontier, breaking points, theory.

Two normalisations of a curve s(n) (s = positive score, the probability of the aligned subtree; s_pre = the
pre-trained model's):
- own gain (experiments.rebound): u(n) = (s(0) - s(n)) / (s(0) - s_pre), the share of the defended model's own
  alignment gain undone; its half-life says how fast that model loses what it has. Descriptive here: a defence that
  barely aligns (or dealigns: s(0) < s_pre) has almost no gain to lose and would look unbreakable.
- the baseline's yardstick (confirmatory): u_b(n) = (s_b(0) - s(n)) / (s_b(0) - s_pre), s_b(0) the undefended
  aligned model's score of the same seed. Its half-life, the HALF-UNDO EXAMPLES, is the number of attack examples
  that bring the model down to the level where the undefended model has lost half its gain, (s_b(0) + s_pre) / 2:
  the same safety level for every defence. For the baseline both normalisations coincide. A defended model that
  starts at or below that level needs no example: its half-undo examples are set to MIN_HALF_LIFE (log2 = 0).
Half-lives interpolate linearly on the grid and are censored at CENSOR x the largest n when never reached
(experiments.rebound.summary.censored_half_life). A defence's effect is its log2 half-undo gain over the baseline
(1 = twice as many examples), paired by seed: both pipelines share the seed's pre-trained model, data, attack
examples and minibatch keys. Confirmatory tests (CONFIRMATORY, fixed before the runs) are listed there; everything
else is descriptive with 95% intervals.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from scipy import stats

from experiments import statistics, verdicts
from experiments.mitigations import run
from experiments.mitigations.config import BASELINE, CORRECTOR, MODEL_DEFENCES, MitigationsConfig
from experiments.rebound.summary import CENSOR, GAIN_MIN, censored_half_life, undone_share
from experiments.run_dir import RunDir
from theory.conventions import ALIGN, PRETRAIN
from toy_models import datasets

CONFIRMATORY = ("slows rebound", "corrector trend", "elasticity predicts rebound")
"""The pre-registered tests: per defence at its default strength, 'slows rebound' (more half-undo examples than the
baseline under the main SFT attack, paired sign-flip test of the log2 difference); 'corrector trend' (the
corrector's own-gain half-life under the attack on it falls as W/C grows, Page's test); 'elasticity predicts
rebound' (across the baseline and the model defences, Spearman's rho of mean elasticity -E_a/E_p with mean rebound
speed -log2 half-undo examples is > 0, permutation test over defences)."""
MIN_HALF_LIFE = 1.0  # half-undo examples are at least one example (a model starting below the target: log2 = 0).
SMALLEST_CORRELATION = 0.3  # smallest Spearman correlation of interest: weaker is not 'predicts'.
BOOTSTRAP_DRAWS = 2000  # bootstrap resamples of seeds for the correlation's interval.
BOOTSTRAP_SEED = 0  # seed of those resamples (and of Monte Carlo permutations).
MAX_EXACT_DEFENCES = 9  # the permutation test enumerates all n! orders up to this many defences, Monte Carlo beyond.
PERMUTATION_DRAWS = 100_000  # Monte Carlo permutations beyond that.
ALPHA_DESCRIPTIVE = 0.05  # level of the descriptive (uncorrected) breaking-point judgements.
ROUND_OFF_LOG2 = 1e-9  # paired log2 differences this small are round-off (strength 0 vs the baseline): set to 0.


def _ci(values, axis: int = 0) -> dict:
  mean, half = statistics.mean_ci(values, axis=axis)
  return {"mean": np.asarray(mean).tolist(), "ci95": np.asarray(half).tolist()}


def collect(config: MitigationsConfig, run_dir: RunDir) -> dict:
  """{defence: (summary, arrays)} of the finished units, in grid order."""
  return {unit.defence: run_dir.load(unit.name) for unit in run.units(config) if run_dir.done(unit.name)}


def curve_index(config: MitigationsConfig, defence: str, strength_index: int, attack: str) -> int:
  """Position of a curve in a model defence's arrays."""
  for index, curve in enumerate(run.curves(config, defence)):
    if curve.strength_index == strength_index and curve.attack == attack:
      return index
  raise ValueError(f"no curve of {defence} at strength index {strength_index} under attack {attack!r}")


def yardstick(config: MitigationsConfig, baseline_arrays: dict) -> tuple[np.ndarray, np.ndarray]:
  """(s_b(0), s_pre) per seed: the undefended aligned model's positive score and the pre-trained model's."""
  start = baseline_arrays["positive_score"][curve_index(config, BASELINE, 0, run.MAIN_ATTACK)][:, 0]
  return start, baseline_arrays["pretrained_positive_score"]


def target_half_lives(config: MitigationsConfig, score: np.ndarray, start: np.ndarray,
                      pretrained: np.ndarray) -> np.ndarray:
  """Half-undo examples (floored at MIN_HALF_LIFE, censored at CENSOR x max n), shape (..., seeds), of curves
  score (..., seeds, n_sizes) against the baseline's yardstick (start, pretrained: (seeds,))."""
  n = np.asarray(config.attack_sizes, dtype=np.float64)
  gain = (start - pretrained)[:, None]
  ok = np.abs(gain) > GAIN_MIN
  u = np.where(ok, (start[:, None] - score) / np.where(ok, gain, 1.0), np.nan)
  return np.maximum(censored_half_life(n, u), MIN_HALF_LIFE)


def own_half_lives(config: MitigationsConfig, score: np.ndarray, pretrained: np.ndarray) -> np.ndarray:
  """Own-gain half-lives (experiments.rebound), shape (..., seeds), of score (..., seeds, n_sizes)."""
  n = np.asarray(config.attack_sizes, dtype=np.float64)
  u = undone_share(np.moveaxis(score, -2, 0), pretrained)  # (seeds, ..., n_sizes)
  return np.moveaxis(censored_half_life(n, u), 0, -1)


def _curve(config: MitigationsConfig, strength: float, attack: str, score: np.ndarray, start, pretrained) -> dict:
  return {"strength": strength, "attack": attack, "score": score,
          "undone_share": undone_share(score[:, None, :], pretrained)[:, 0],
          "half_life": target_half_lives(config, score, start, pretrained),
          "own_half_life": own_half_lives(config, score, pretrained)}


def model_curves(config: MitigationsConfig, defence: str, arrays: dict, start: np.ndarray) -> dict:
  """{(strength index, attack): curve} of a model defence: score (seeds, n_sizes), own u(n), half-undo examples and
  own half-lives (seeds,); `start` is the baseline's s_b(0) per seed."""
  strengths = config.strengths(defence).grid
  pretrained = arrays["pretrained_positive_score"]
  return {(c.strength_index, c.attack): _curve(config, strengths[c.strength_index], c.attack,
                                               arrays["positive_score"][index], start, pretrained)
          for index, c in enumerate(run.curves(config, defence))}


def corrector_curves(config: MitigationsConfig, arrays: dict, start: np.ndarray) -> dict:
  """The corrector's curves: the attacks on its base at every W/C level (key (level, attack)) and the attack on the
  corrector itself (key (level, 'corrector attack')), of the composed positive score."""
  pretrained = arrays["pretrained_positive_score"]
  base = arrays["composed_base_attack_positive_score"]  # (attacks, levels, seeds, n_sizes)
  out = {}
  for level, ratio in enumerate(config.corrector.grid):
    for index, curve in enumerate(run.corrector_base_curves(config)):
      out[(level, curve.attack)] = _curve(config, ratio, curve.attack, base[index, level], start, pretrained)
    out[(level, "corrector attack")] = _curve(config, ratio, "corrector attack",
                                              arrays["composed_self_attack_positive_score"][level], start, pretrained)
  return out


def gain(defended: np.ndarray, baseline: np.ndarray) -> statistics.Comparison:
  """Paired log2 gain of half-undo examples over the baseline, one-sided sign-flip test (greater); differences
  within ROUND_OFF_LOG2 count as 0 (a pipeline identical to the baseline up to float round-off gives p = 1)."""
  defended_log2, baseline_log2 = np.log2(defended), np.log2(baseline)
  defended_log2 = np.where(np.abs(defended_log2 - baseline_log2) <= ROUND_OFF_LOG2, baseline_log2, defended_log2)
  return statistics.paired_difference(defended_log2, baseline_log2, alternative="greater", units="log2 examples",
                                      what="mean over seeds of the log2 half-undo gain")


def costs(config: MitigationsConfig, arrays: dict, index) -> dict:
  """Utility costs of the models before the attack at strength `index` (or W/C level): the rise of D_p's rate over
  the pre-trained model's (bits per response), the KL inside the aligned subtree (nats per response), and the
  positive score they start the attack from."""
  rise = arrays["start_rates_bits"][index][:, PRETRAIN] - arrays["pretrained_rates_bits"][:, PRETRAIN]
  start = np.exp2(arrays["start_log2q_bits"][index]) @ datasets.aligned_mask(config.depth).astype(np.float64)
  return {"dp_rate_rise_bits": _ci(rise), "within_aligned_kl_nats": _ci(arrays["start_within_aligned_kl_nats"][index]),
          "positive_score_before_attack": _ci(start)}


def _lives(config: MitigationsConfig, lives: np.ndarray) -> dict:
  """log2 half-lives with CI and how many sit at the floor or the censoring point."""
  return {"log2": _ci(np.log2(lives)), "at_floor": int((lives <= MIN_HALF_LIFE).sum()),
          "censored": int((lives >= CENSOR * config.attack_sizes[-1]).sum())}


def defence_summary(config: MitigationsConfig, defence: str, arrays: dict, baseline: dict, start: np.ndarray) -> dict:
  """Frontier (every strength, main attack), the default strength against every attack, and the breaking point."""
  curves = corrector_curves(config, arrays, start) if defence == CORRECTOR else model_curves(config, defence,
                                                                                             arrays, start)
  strengths = config.strengths(defence)
  default = strengths.grid.index(strengths.default)
  level = (start + arrays["pretrained_positive_score"]) / 2  # the half-way level of each seed
  frontier = []
  for index, strength in enumerate(strengths.grid):
    curve = curves[(index, run.MAIN_ATTACK)]
    paired = gain(curve["half_life"], baseline[(0, run.MAIN_ATTACK)]["half_life"])
    frontier.append({"strength": strength, "half_undo": _lives(config, curve["half_life"]),
                     "own_half_life": _lives(config, curve["own_half_life"]), "gain_log2": _ci(paired.per_seed),
                     "gain_p_uncorrected": paired.test.p_value, **costs(config, arrays, index)})
  attacks = {}
  for attack in [c.attack for c in run.curves(config, BASELINE)]:
    if (default, attack) not in curves:
      continue
    curve = curves[(default, attack)]
    paired = gain(curve["half_life"], baseline[(0, attack)]["half_life"])
    attacks[attack] = {"half_undo": _lives(config, curve["half_life"]), "gain_log2": _ci(paired.per_seed),
                       "gain_p_uncorrected": paired.test.p_value,
                       "helps": bool(paired.test.p_value < ALPHA_DESCRIPTIVE
                                     and paired.effect.estimate >= config.smallest_effect_log2),
                       "score": _ci(curve["score"]), "undone_share": _ci(curve["undone_share"]),
                       "ends_above_target": int((curve["score"][:, -1] > level).sum())}
  ladder = [run.MAIN_ATTACK] + [f"sft lr x{f:g}" for f in config.breaking_lr_factors]
  broken = next((attack for attack in ladder if not attacks[attack]["helps"]), None)
  out = {"defence": defence, "default_strength": strengths.default, "frontier": frontier, "attacks": attacks,
         "breaking_point": broken if broken is not None else "holds through the ladder", "verdicts": []}
  main = gain(curves[(default, run.MAIN_ATTACK)]["half_life"], baseline[(0, run.MAIN_ATTACK)]["half_life"])
  out["verdicts"].append(verdicts.verdict(
      f"{defence}/slows rebound",
      f"{defence} at its default strength {strengths.default:g} slows the rebound: more attack examples than the "
      "undefended model to reach the undefended model's half-way level", main.effect, main.test, "positive",
      per_seed=main.per_seed, smallest_effect_of_interest=config.smallest_effect_log2,
      can_show="that an attacker needs more examples to bring the defended model down to the same safety level",
      cannot_show=("what the defence costs, or how it fares against other attacks (descriptive: frontier, breaking "
                   "point); half-undo examples beyond the grid are censored, which can only shrink the gain")))
  if defence == CORRECTOR:
    out["corrector"] = corrector_trend(config, arrays, curves)
    out["verdicts"].append(out["corrector"].pop("verdict"))
  if defence.startswith("replay"):
    out["replay_prediction"] = replay_prediction(config, defence, arrays)
  return out


def corrector_trend(config: MitigationsConfig, arrays: dict, curves: dict) -> dict:
  """Does the corrector spring back faster with more copy data (W/C, the corrector's k)?

  'As predicted' means, pre-registered: the own-gain half-life of the composed positive score under the attack on
  the corrector (copy pairs of negatives) falls as W/C grows, by Page's trend test over the W/C levels with seeds as
  blocks, one-sided. The elasticity argument gives the direction (more copy data per correction pair is a larger k,
  so a faster spring-back towards copying), not a law for half-lives in examples: the slope of log2 half-life per
  doubling of W/C is reported with -1 (speed proportional to W/C) as a reference only. The half-life is each
  level's own gain (levels start from different corrected scores: a common target would reward the weaker
  corrector for starting lower); its gains are reported with it.
  """
  ratios = config.corrector.grid
  lives = np.stack([curves[(level, "corrector attack")]["own_half_life"] for level in range(len(ratios))])
  trend = statistics.stratified_trend(ratios, np.log2(lives), alternative="decreasing", units="log2 examples",
                                      what="slope of log2 half-life (attack on the corrector) on log2 W/C")
  verdict = verdicts.verdict(
      f"{CORRECTOR}/corrector trend", "the corrector springs back towards copying faster with more copy data: its "
      "half-life under the attack on it falls as W/C grows (the corrector's k)", trend.effect, trend.test, "negative",
      per_seed=trend.slopes, smallest_effect_of_interest=config.smallest_effect_log2,
      can_show="that more copy pairs per correction pair make the corrector's correction easier to undo",
      cannot_show="a proportionality (the slope is descriptive; -1 would be speed proportional to W/C)")
  gains = arrays["composed_self_attack_positive_score"][:, :, 0] - arrays["pretrained_positive_score"][None]
  return {"ratios": list(ratios), "log2_half_life": _ci(np.log2(lives), axis=1),
          "censored": (lives >= CENSOR * config.attack_sizes[-1]).sum(axis=1).tolist(),
          "slope": trend.effect.estimate, "slope_ci": [trend.effect.ci_low, trend.effect.ci_high],
          "page_p": trend.test.p_value, "gain": _ci(gains, axis=1),
          "correction_rate": _ci(arrays["start_correction_rate"], axis=1),
          "copy_rate": _ci(arrays["start_copy_rate"], axis=1), "verdict": verdict,
          "self_attack_scores": [{"ratio": ratio, "score": _ci(curves[(level, "corrector attack")]["score"])}
                                 for level, ratio in enumerate(ratios)]}


def replay_prediction(config: MitigationsConfig, defence: str, arrays: dict) -> list[dict]:
  """Per rho: the measured positive score after the longest main attack against the two mixture predictions (the
  attack stage's own optimum, and the size-weighted mixture of every dataset of the model's history)."""
  rows = []
  for index, strength in enumerate(config.strengths(defence).grid):
    measured = arrays["positive_score"][curve_index(config, defence, index, run.MAIN_ATTACK)][:, -1]
    stage, history = arrays["replay_predicted_stage"][index], arrays["replay_predicted_history"][index]
    rows.append({"rho": float(strength), "measured": _ci(measured), "predicted_stage": _ci(stage),
                 "predicted_history": _ci(history), "measured_minus_stage": _ci(measured - stage),
                 "measured_minus_history": _ci(measured - history)})
  return rows


def spearman(x: np.ndarray, y: np.ndarray) -> float:
  """Spearman's rho of x and y (midranks; NaN when either is constant).

  References:
    Spearman (1904), "The proof and measurement of association between two things", Am. J. Psychol. 15, 72-101.
  """
  rx, ry = stats.rankdata(x), stats.rankdata(y)
  if np.ptp(rx) == 0 or np.ptp(ry) == 0:
    return math.nan
  return float(np.corrcoef(rx, ry)[0, 1])


def correlation_test(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float, bool, int]:
  """Permutation test of Spearman's rho(x, y) > 0 over the orders of y: (rho, p, p_floor, exact, arrangements).

  Exact over all n! orders up to MAX_EXACT_DEFENCES values, Monte Carlo (seeded, the observed order included)
  beyond; ties are kept as midranks, so tied values cannot be told apart by any order. p_floor is the smallest p
  any data with these ranks could give.

  References:
    Pitman (1937), "Significance tests which may be applied to samples from any populations. II. The correlation
    coefficient test", Suppl. J. R. Stat. Soc. 4, 225-232.
  """
  rx, ry = stats.rankdata(x), stats.rankdata(y)
  observed = spearman(x, y)
  if not math.isfinite(observed):
    return observed, 1.0, 1.0, True, 0
  n = len(x)
  if n <= MAX_EXACT_DEFENCES:
    orders, exact = np.array(list(itertools.permutations(range(n)))), True
  else:
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    orders = np.concatenate([np.arange(n)[None], np.argsort(rng.random((PERMUTATION_DRAWS, n)), axis=1)])
    exact = False
  centred_x, centred_y = rx - rx.mean(), ry - ry.mean()
  null = (centred_y[orders] @ centred_x) / math.sqrt((centred_x @ centred_x) * (centred_y @ centred_y))
  tolerance = 1e-12
  p = float(np.mean(null >= observed - tolerance))
  floor = float(np.mean(null >= null.max() - tolerance)) if exact else 1.0 / orders.shape[0]
  return observed, p, floor, exact, orders.shape[0]


def elasticity_of(config: MitigationsConfig, defence: str, arrays: dict) -> np.ndarray:
  """-E_a / E_p per seed at the default strength (one fresh Adam step on the attack stage's data): how much the
  positive source's rate rises per unit fall of D_p's (the paper's elasticity ratio with its sign flipped)."""
  strengths = config.strengths(defence)
  e = arrays["elasticity_bits"][strengths.grid.index(strengths.default)]  # (seeds, 3)
  return -e[:, ALIGN] / e[:, PRETRAIN]


def elasticity_summary(config: MitigationsConfig, found: dict, lives: dict, own_lives: dict) -> dict:
  """Does a lower elasticity predict a slower rebound across the baseline and the model defences?"""
  names = [d for d in (BASELINE,) + MODEL_DEFENCES if d in found and d in lives]
  if len(names) < 3:
    return {"defences": names, "note": "fewer than 3 defences: no correlation"}
  elastic = np.stack([elasticity_of(config, d, found[d][1]) for d in names])  # (defences, seeds)
  speed = -np.log2(np.stack([lives[d] for d in names]))
  own_speed = -np.log2(np.stack([own_lives[d] for d in names]))
  rho, p, floor, exact, count = correlation_test(elastic.mean(axis=1), speed.mean(axis=1))
  rng = np.random.default_rng(BOOTSTRAP_SEED)
  seeds = elastic.shape[1]
  draws = rng.integers(0, seeds, size=(BOOTSTRAP_DRAWS, seeds))
  boot = np.array([spearman(elastic[:, d].mean(axis=1), speed[:, d].mean(axis=1)) for d in draws])
  defined = boot[np.isfinite(boot)]
  low, high = np.quantile(defined, [0.025, 0.975]).tolist() if defined.size else [-math.inf, math.inf]
  distinct = len(np.unique(np.round(elastic.mean(axis=1), 12)))
  estimate = rho if math.isfinite(rho) else math.nan
  effect = statistics.Effect(estimate=estimate, ci_low=low, ci_high=high, units="Spearman's rho",
                             what="Spearman correlation over defences of mean -E_a/E_p with mean rebound speed "
                             "(-log2 half-undo examples)", interval="percentile bootstrap over seeds")
  test = statistics.TestResult(name=f"{'exact' if exact else 'Monte Carlo'} permutation test over the {len(names)} "
                               "defences of Spearman's rho", statistic=estimate, p_value=p, alternative="greater",
                               exact=exact, n_permutations=count, p_floor=floor)
  verdict = verdicts.verdict(
      "elasticity/elasticity predicts rebound", "a lower elasticity (-E_a/E_p of one fresh Adam step on the attack "
      "stage's data) goes with a slower rebound across defences", effect, test, "positive",
      smallest_effect_of_interest=SMALLEST_CORRELATION,
      can_show=f"an association across these {len(names)} defences ({distinct} distinct mean elasticities)",
      cannot_show="causation, or anything about defences not in the set; the interval reflects seed noise only, not "
                  "the choice of defences")
  return {"defences": names, "elasticity": _ci(elastic, axis=1), "speed": _ci(speed, axis=1),
          "own_speed": _ci(own_speed, axis=1), "rho": estimate, "ci": [low, high], "p": p, "p_floor": floor,
          "exact": exact, "distinct_elasticities": distinct, "bootstrap_defined": int(defined.size),
          "rho_own_gain": spearman(elastic.mean(axis=1), own_speed.mean(axis=1)),
          "rho_max": spearman(elastic.mean(axis=1), stats.rankdata(elastic.mean(axis=1), method="ordinal")),
          "verdict": verdict}


def summarize(config: MitigationsConfig, run_dir: RunDir) -> dict:
  """Every defence's frontier, attacks and breaking point, the theory checks, and the verdicts (raw: corrected by
  whoever reports them)."""
  found = collect(config, run_dir)
  if BASELINE not in found:
    return {"defences": {}, "baseline": {}, "verdicts": []}
  start, pretrained = yardstick(config, found[BASELINE][1])
  baseline = model_curves(config, BASELINE, found[BASELINE][1], start)
  out = {"yardstick": {"aligned_score": _ci(start), "pretrained_score": _ci(pretrained),
                       "target_score": _ci((start + pretrained) / 2)},
         "baseline": {attack: {"half_undo": _lives(config, curve["half_life"]), "score": _ci(curve["score"]),
                               "undone_share": _ci(curve["undone_share"])}
                      for (_, attack), curve in baseline.items()},
         "baseline_costs": costs(config, found[BASELINE][1], 0), "defences": {}, "verdicts": []}
  lives = {BASELINE: baseline[(0, run.MAIN_ATTACK)]["half_life"]}
  own_lives = {BASELINE: baseline[(0, run.MAIN_ATTACK)]["own_half_life"]}
  for defence, (_, arrays) in found.items():
    if defence == BASELINE:
      continue
    cell = defence_summary(config, defence, arrays, baseline, start)
    out["defences"][defence] = cell
    out["verdicts"] += cell["verdicts"]
    if defence != CORRECTOR:
      strengths = config.strengths(defence)
      curve = model_curves(config, defence, arrays, start)[(strengths.grid.index(strengths.default), run.MAIN_ATTACK)]
      lives[defence], own_lives[defence] = curve["half_life"], curve["own_half_life"]
  out["elasticity"] = elasticity_summary(config, found, lives, own_lives)
  if "verdict" in out["elasticity"]:
    out["verdicts"].append(out["elasticity"].pop("verdict"))
  return out


def _life_text(row: dict) -> str:
  return (f"{row['log2']['mean']:.2f} ± {row['log2']['ci95']:.2f} ({row['at_floor']} at the floor, "
          f"{row['censored']} censored)")


def format_summary(summary: dict, config: MitigationsConfig) -> str:
  """Text tables: the baseline, each defence's frontier and attacks, the theory checks, and the verdicts
  Holm-corrected within this run."""
  if not summary.get("baseline"):
    return "no finished units"
  n = config.attack_sizes[-1]
  stick = summary["yardstick"]
  lines = [f"yardstick: undefended aligned score {stick['aligned_score']['mean']:.3f}, pre-trained "
           f"{stick['pretrained_score']['mean']:.3f}, half-way level {stick['target_score']['mean']:.3f} (means over "
           f"seeds); log2 half-undo examples (floor {MIN_HALF_LIFE:g}, censored at {CENSOR * n:g}):"]
  for attack, row in summary["baseline"].items():
    lines.append(f"  baseline vs {attack:>16}: {_life_text(row['half_undo'])}; score "
                 + " ".join(f"{v:.3f}" for v in row["score"]["mean"]))
  for defence, cell in summary["defences"].items():
    lines.append(f"{defence} (default {cell['default_strength']:g}; breaking point: {cell['breaking_point']}):")
    for row in cell["frontier"]:
      lines.append(f"  strength {row['strength']:>6g}: half-undo {_life_text(row['half_undo'])}, gain "
                   f"{row['gain_log2']['mean']:+.2f} ± {row['gain_log2']['ci95']:.2f} "
                   f"(p {row['gain_p_uncorrected']:.3g}),"
                   f" own-gain log2 half-life {row['own_half_life']['log2']['mean']:.2f}; D_p rate rise "
                   f"{row['dp_rate_rise_bits']['mean']:+.3f} bits, KL in A {row['within_aligned_kl_nats']['mean']:.3f}"
                   f" nats, score before attack {row['positive_score_before_attack']['mean']:.3f}")
    for attack, row in cell["attacks"].items():
      lines.append(f"  vs {attack:>16}: gain {row['gain_log2']['mean']:+.2f} ± {row['gain_log2']['ci95']:.2f} "
                   f"(p {row['gain_p_uncorrected']:.3g}; {'helps' if row['helps'] else 'does not help'})")
    for row in cell.get("replay_prediction", []):
      lines.append(f"  rho {row['rho']:g}: score after {n} examples {row['measured']['mean']:.3f} ± "
                   f"{row['measured']['ci95']:.3f}; stage mixture {row['predicted_stage']['mean']:.3f}; whole-history "
                   f"mixture {row['predicted_history']['mean']:.3f}")
    if "corrector" in cell:
      c = cell["corrector"]
      lines.append("  attack on the corrector, own-gain log2 half-life per W/C " + ", ".join(
          f"{r:g}: {m:.2f} ± {h:.2f} (gain {g:.3f})" for r, m, h, g in zip(
              c["ratios"], c["log2_half_life"]["mean"], c["log2_half_life"]["ci95"], c["gain"]["mean"], strict=True))
          + f"; slope {c['slope']:+.2f} per doubling [{c['slope_ci'][0]:+.2f}, {c['slope_ci'][1]:+.2f}], Page p "
          f"{c['page_p']:.3g}")
  e = summary.get("elasticity", {})
  if "rho" in e:
    lines.append(f"elasticity vs rebound speed over {len(e['defences'])} defences ({e['distinct_elasticities']} "
                 f"distinct mean elasticities): Spearman {e['rho']:+.2f} [{e['ci'][0]:+.2f}, {e['ci'][1]:+.2f}], "
                 f"permutation p {e['p']:.3g}; with own-gain speeds {e['rho_own_gain']:+.2f}")
  lines.append("verdicts (Holm-corrected within this run; `elasticity reproduce` corrects over the whole report):")
  lines += [f"  {line}" for line in verdicts.lines(summary["verdicts"], "this run")]
  return "\n".join(lines)
