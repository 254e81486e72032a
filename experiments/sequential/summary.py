"""Summary statistics of the sequential study: slopes on log k, replay map, degradation, theory fit and verdicts.

Per arm, condition and model the slopes of log|Δγ_a/Δγ_p| on log k (one per seed), the replay map, the joint arm's
degradation with ||grad J||, the first-order theory against the runs, and the pre-registered verdicts.
"""

from __future__ import annotations

import numpy as np

from experiments import statistics, verdicts
from experiments.hooke.summary import slope_per_seed
from experiments.run_dir import RunDir
from experiments.sequential.config import KSCALING_CONDITIONS, REPLAY_VERDICT_CONDITION, SequentialConfig
from experiments.sequential.run import units
from experiments.statistics import mean_ci
from theory import seeding, token_tree
from theory.conventions import ALIGN, LN2, PRETRAIN, UNALIGNED_PREFIX

SMALLEST_SLOPE = 0.5  # a slope of log|ratio| on log k below this (half the joint law's 1) counts as no k-scaling.
SMALLEST_REPLAY_GAIN = 0.5  # the replay verdict's smallest effect of interest: slope(rho = max) - slope(rho = 0).
STATIONARY_GRADIENT = 1e-6
"""A converged joint point counts as stationary (descriptive) when ||grad J|| / N <= this (nats per response per
parameter unit); the pre-registered joint slope uses every seed, stationary or not."""
STATE_VARIABLE = "log unaligned-subtree mass after alignment"
"""The pre-registered state variable: ln u, u = q(responses starting with token 1) at the post-alignment state."""


def ratio_of(delta: np.ndarray) -> np.ndarray:
  """Delta gamma_a / Delta gamma_p of deltas (..., 3); NaN where Delta gamma_p = 0 and Delta gamma_a = 0."""
  with np.errstate(divide="ignore", invalid="ignore"):
    return delta[..., ALIGN] / delta[..., PRETRAIN]


def slopes(k: np.ndarray, ratio: np.ndarray) -> np.ndarray:
  """Per-seed least-squares slope of log|ratio| on log k.

  Args:
    k: the k grid, shape (K,).
    ratio: Δγ_a/Δγ_p (or any ratio), shape (K, seeds).

  Returns:
    (seeds,) slopes; NaN for a seed whose ratio is 0 or undefined at some k (its log does not exist).

  References:
    Ji et al., "Language Models Resist Alignment", ACL 2025, Thm. 4.2 (the ratio of order k: slope 1 on log-log).
  """
  good = np.all(np.isfinite(ratio) & (ratio != 0), axis=0)
  out = np.full(ratio.shape[1], np.nan)
  if good.any():
    out[good] = slope_per_seed(k, ratio[:, good])
  return out


def _ci(values) -> dict:
  values = np.asarray(values, np.float64)
  finite = values[np.isfinite(values)]
  if finite.size == 0:
    return {"mean": float("nan"), "ci95": float("nan"), "n": 0}
  mean, half = mean_ci(finite)
  return {"mean": float(mean), "ci95": float(half), "n": int(finite.size)}


def unaligned_mass(log2q: np.ndarray, depth: int) -> np.ndarray:
  """u = q(responses starting with token 1): the model's mass on the unaligned subtree, shape log2q.shape[:-1]."""
  return (np.exp2(log2q) * token_tree.prefix_mask(depth, UNALIGNED_PREFIX)).sum(axis=-1)


def entropy_bits(probs: np.ndarray) -> np.ndarray:
  """H(P_i) in bits per response of leaf distributions (..., n_leaves)."""
  return -np.where(probs > 0, probs * np.log2(np.where(probs > 0, probs, 1.0)), 0.0).sum(axis=-1)


def collect(config: SequentialConfig, run_dir: RunDir) -> dict:
  """Stacks the finished units: {('joint'|'sequential', model): {'k': (K,), 'arrays': name -> (K, ...)}}; a model's
  arm is kept only when every k has finished (the slopes need the whole grid)."""
  out = {}
  for unit in units(config):
    if not run_dir.done(unit.name):
      continue
    summary, arrays = run_dir.load(unit.name)
    entry = out.setdefault((unit.arm, unit.model), {"k": [], "arrays": [], "summary": summary})
    entry["k"].append(unit.k)
    entry["arrays"].append(arrays)
  stacked = {}
  for key, entry in out.items():
    if len(entry["k"]) != len(config.k_grid):
      continue
    stacked[key] = {"k": np.asarray(entry["k"]), "summary": entry["summary"],
                    "arrays": {name: np.stack([a[name] for a in entry["arrays"]]) for name in entry["arrays"][0]}}
  return stacked


def _joint(config: SequentialConfig, entry: dict) -> dict:
  k, arrays = entry["k"], entry["arrays"]
  ratio = arrays["ratio"]  # (K, seeds, points): the last point is the converged one
  relative = arrays["weighted_residual_bits"] / arrays["weighted_scale_bits"]
  identity_gap = np.abs(arrays["weighted_residual_bits"] - arrays["stationarity_term_bits"]) / \
      arrays["weighted_scale_bits"]
  total = arrays["sizes"].sum(axis=-1)  # (K, seeds): N = n_p + n_a responses
  converged = ratio[..., -1]
  slope_values = slopes(k, converged)
  stationary = np.all(arrays["objective_gradient_norm_nats"][..., -1] / total <= STATIONARY_GRADIENT, axis=0)
  per_k = [{"k": float(kv), "minus_ratio_over_k": _ci(-converged[i] / kv),
            "max_abs_relative_residual": float(np.max(np.abs(relative[i, :, -1]))),
            "max_gradient_norm_nats": float(np.max(arrays["objective_gradient_norm_nats"][i, :, -1])),
            "max_solver_residual": float(np.max(arrays["solver_residual"][i, :, -1])),
            "newton_converged_share": float(np.mean(arrays["newton_converged"][i]))} for i, kv in enumerate(k)]
  labels = [f"{s} Adam steps" for s in arrays["stops"][0]] + ["converged"]
  degradation = []
  for j, label in enumerate(labels):
    minus = -ratio[..., j] / k[:, None]
    degradation.append({
        "point": label, "median_gradient_norm_per_response_nats": float(np.median(
            arrays["objective_gradient_norm_nats"][..., j] / total)),
        "median_abs_relative_residual": float(np.median(np.abs(relative[..., j]))),
        "median_abs_minus_ratio_over_k_minus_1": float(np.median(np.abs(minus - 1))),
        "max_identity_gap": float(np.max(identity_gap[..., j])),
        "max_solver_residual": float(np.max(arrays["solver_residual"][..., j])),
        "slope": _ci(slopes(k, ratio[..., j]))})
  return {"k": k.tolist(), "per_k": per_k, "slopes": slope_values.tolist(), "slope": _ci(slope_values),
          "stationary_seeds": int(stationary.sum()), "slope_stationary_seeds": _ci(slope_values[stationary]),
          "degradation": degradation, "parameter_count": int(entry["summary"]["parameter_count"])}


def _sequential(config: SequentialConfig, entry: dict) -> dict:
  k, arrays = entry["k"], entry["arrays"]
  names = entry["summary"]["conditions"]
  delta = arrays["rates_tuned_bits"] - arrays["rates_aligned_bits"]  # (K, C, seeds, 3)
  ratio = ratio_of(delta)
  predicted = ratio_of(arrays["instantaneous_bits"])
  steps = arrays["steps"]  # (K, C, stages, seeds)
  excess_nats = (arrays["rates_aligned_bits"][..., ALIGN] - entropy_bits(arrays["probs"][:, None, :, ALIGN])) * LN2
  mass = unaligned_mass(arrays["log2q_aligned"], config.depth)
  out = {}
  for c, name in enumerate(names):
    values, predicted_values = slopes(k, ratio[:, c]), slopes(k, predicted[:, c])
    out[name] = {
        "slopes": values.tolist(), "slope": _ci(values), "instantaneous_slopes": predicted_values.tolist(),
        "instantaneous_slope": _ci(predicted_values),
        "per_k": [{"k": float(kv), "ratio": _ci(ratio[i, c]), "minus_ratio_over_k": _ci(-ratio[i, c] / kv),
                   "instantaneous_ratio": _ci(predicted[i, c]),
                   "share_paper_signs": float(np.mean((delta[i, c, :, PRETRAIN] < 0) & (delta[i, c, :, ALIGN] > 0))),
                   "steps": {stage: float(np.mean(steps[i, c, s])) for s, stage in
                             enumerate(("pretrain", "align", "finetune"))},
                   "k_in_steps": float(np.mean(steps[i, c, 0] / steps[i, c, 1])),
                   "align_excess_nats_per_response": _ci(excess_nats[i, c]),
                   "unaligned_mass_after_alignment": _ci(mass[i, c])} for i, kv in enumerate(k)]}
  return out


def _replay(config: SequentialConfig, entry: dict) -> dict:
  k, arrays = entry["k"], entry["arrays"]
  if "rates_replay_bits" not in arrays:
    return {}
  rates = arrays["rates_replay_bits"]  # (K, R, F, 2 (with D_t, without), seeds, 3)
  names = entry["summary"]["replay_conditions"]
  conditions = entry["summary"]["conditions"]
  attributable_delta = rates[:, :, :, 0] - rates[:, :, :, 1]  # (K, R, F, seeds, 3)
  attributable = ratio_of(attributable_delta)  # (K, R, F, seeds)
  out = {}
  for r, name in enumerate(names):
    aligned = arrays["rates_aligned_bits"][:, conditions.index(name)]  # (K, seeds, 3)
    literal = ratio_of(rates[:, r, :, 0] - aligned[:, None])
    rows = []
    for f, rho in enumerate(arrays["replay_fractions"][0]):
      values = slopes(k, attributable[:, r, f])
      rows.append({"rho": float(rho), "slopes": values.tolist(), "slope": _ci(values),
                   "literal_slope": _ci(slopes(k, literal[:, f])),
                   "minus_ratio_over_k": [_ci(-attributable[i, r, f] / kv) for i, kv in enumerate(k)],
                   "median_abs_delta_pretrain_bits": [float(np.median(np.abs(attributable_delta[i, r, f, :, PRETRAIN])))
                                                      for i in range(len(k))],
                   "steps": [float(np.mean(arrays["replay_steps"][i, r, f])) for i in range(len(k))],
                   "capped_share": float(np.mean(arrays["replay_capped"][:, r, f]))})
    out[name] = rows
  return out


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
  x, y = x - x.mean(), y - y.mean()
  denominator = np.sqrt((x**2).sum() * (y**2).sum())
  return float((x * y).sum() / denominator) if denominator > 0 else float("nan")


def r_squared(y: np.ndarray, *columns: np.ndarray) -> float:
  """Share of the variance of y explained by an ordinary least-squares fit on the columns with an intercept.

  Args:
    y: the response, shape (n,).
    *columns: regressors, each shape (n,).

  Returns:
    1 - residual sum of squares / total sum of squares (NaN when y is constant).

  References:
    Draper & Smith, "Applied Regression Analysis", 3rd ed. 1998, Section 1.4 (the coefficient of determination).
  """
  design = np.column_stack([np.ones_like(y)] + list(columns))
  coefficients = np.linalg.lstsq(design, y, rcond=None)[0]
  residual = y - design @ coefficients
  total = ((y - y.mean())**2).sum()
  return float(1 - (residual**2).sum() / total) if total > 0 else float("nan")


def theory_runs(config: SequentialConfig, entry: dict) -> dict[str, np.ndarray]:
  """Every (k, condition, seed) run of a model flattened: log|ratio| measured, log|E_a/E_p| predicted, log k,
  ln u (the state variable), the seed index, signs; runs whose ratio or prediction is 0 or undefined are dropped."""
  k, arrays = entry["k"], entry["arrays"]
  measured = ratio_of(arrays["rates_tuned_bits"] - arrays["rates_aligned_bits"])  # (K, C, seeds)
  predicted = ratio_of(arrays["instantaneous_bits"])
  state = np.log(unaligned_mass(arrays["log2q_aligned"], config.depth))
  log_k = np.broadcast_to(np.log(k)[:, None, None], measured.shape)
  seed = np.broadcast_to(np.arange(measured.shape[-1]), measured.shape)
  condition = np.broadcast_to(np.arange(measured.shape[1])[:, None], measured.shape)
  keep = np.isfinite(measured) & (measured != 0) & np.isfinite(predicted) & (predicted != 0) & np.isfinite(state)
  return {"log_ratio": np.log(np.abs(measured[keep])), "log_predicted": np.log(np.abs(predicted[keep])),
          "log_k": log_k[keep], "state": state[keep], "seed": seed[keep], "condition": condition[keep],
          "same_sign": np.sign(measured[keep]) == np.sign(predicted[keep]), "dropped": int((~keep).sum())}


def _theory(config: SequentialConfig, model: str, entry: dict) -> dict:
  runs = theory_runs(config, entry)
  y, x = runs["log_ratio"], runs["log_predicted"]
  if y.size < 3:
    return {"runs": int(y.size), "dropped": runs["dropped"]}
  seeds = np.unique(runs["seed"])
  rng = np.random.default_rng(seeding.derive(config.seed, "sequential", "bootstrap", model))
  resampled = []
  for _ in range(config.bootstrap_resamples):
    picks = np.concatenate([np.flatnonzero(runs["seed"] == s) for s in rng.choice(seeds, seeds.size)])
    resampled.append(_pearson(x[picks], y[picks]))
  low, high = np.nanpercentile(resampled, [2.5, 97.5])
  fit = np.polyfit(x, y, 1)
  names = entry["summary"]["conditions"]
  by_condition = {name: {"runs": int((runs["condition"] == c).sum()),
                         "median_abs_log10_error": float(np.median(np.abs(y - x)[runs["condition"] == c]) / np.log(10))
                         if (runs["condition"] == c).any() else float("nan"),
                         "same_sign_share": float(np.mean(runs["same_sign"][runs["condition"] == c]))
                         if (runs["condition"] == c).any() else float("nan")}
                  for c, name in enumerate(names)}
  return {"runs": int(y.size), "dropped": runs["dropped"], "correlation": _pearson(x, y), "by_condition": by_condition,
          "correlation_ci95": [float(low), float(high)], "fit_slope": float(fit[0]), "fit_intercept": float(fit[1]),
          "r2_log_k": r_squared(y, runs["log_k"]), "r2_state": r_squared(y, runs["state"]),
          "r2_log_k_and_state": r_squared(y, runs["log_k"], runs["state"]), "r2_prediction": r_squared(y, x),
          "same_sign_share": float(np.mean(runs["same_sign"])), "state_variable": STATE_VARIABLE}


def summarize(config: SequentialConfig, run_dir: RunDir) -> dict:
  """The study's summary, from the saved units only.

  Args:
    config: the study's config.
    run_dir: the run directory (finished units are read; a model's arm needs every k).

  Returns:
    'joint' (per model: -ratio/k per k, the slope per seed with its CI, over stationary seeds too, the degradation
    table), 'sequential' (per model and condition: ratios, slopes measured and predicted by E_a/E_p, k in steps, the
    alignment's excess and the state variable), 'replay' (per model and replay condition: the slope at each rho),
    'theory' (per model: the correlation of log|E_a/E_p| with log|Δγ_a/Δγ_p| with its bootstrap CI over seeds, and
    R^2 of log k, of the state variable and of the prediction), 'verdicts' (raw; experiments.verdicts) and
    'uncomputable_verdicts'.

  References:
    Efron & Tibshirani, "An Introduction to the Bootstrap", 1993, Ch. 13 (percentile intervals; seeds resampled);
    Fisher (1935), The Design of Experiments, section 21 (the sign-flip tests of the verdicts).
  """
  collected = collect(config, run_dir)
  out = {"joint": {}, "sequential": {}, "replay": {}, "theory": {}, "verdicts": []}
  for (arm, model), entry in collected.items():
    if arm == "joint":
      out["joint"][model] = _joint(config, entry)
    else:
      out["sequential"][model] = _sequential(config, entry)
      out["replay"][model] = _replay(config, entry)
      out["theory"][model] = _theory(config, model, entry)
  listed = verdict_list(config, out)
  out["verdicts"] = [v for v in listed if not v.get("uncomputable")]
  out["uncomputable_verdicts"] = [v["key"] for v in listed if v.get("uncomputable")]
  return out


def verdict_list(config: SequentialConfig, results: dict) -> list[dict]:
  """The pre-registered verdicts from a summary: joint slope per model (consistency check), k-scaling per model in
  the two KSCALING_CONDITIONS, replay gain per model in the Adam condition (paired over seeds)."""
  out = []
  for model, entry in results["joint"].items():
    out.append(_slope_verdict(f"sequential/joint/{model}", entry["slopes"], consistency=True,
                              claim=f"{model}, joint optimum (implicit d/dl at l = 0): |dγ_a/dl / dγ_p/dl| scales "
                                    "as k (first-order optimality of the count-weighted objective)"))
  for model, conditions in results["sequential"].items():
    for name in KSCALING_CONDITIONS:
      if name in conditions:
        out.append(_slope_verdict(f"sequential/kscaling/{model}/{name}", conditions[name]["slopes"],
                                  claim=f"{model}, sequential {name}, l = {config.l:g}: |Δγ_a/Δγ_p| grows with k "
                                        "(the paper's k-scaling)"))
  for model, replay in results["replay"].items():
    rows = replay.get(REPLAY_VERDICT_CONDITION)
    if not rows or len(rows) < 2:
      continue
    first = next(row for row in rows if row["rho"] == 0)
    last = max(rows, key=lambda row: row["rho"])
    a, b = np.asarray(last["slopes"]), np.asarray(first["slopes"])
    good = np.isfinite(a) & np.isfinite(b)
    if good.sum() < 2:
      out.append(_uncomputable(f"sequential/replay/{model}"))
      continue
    test = statistics.paired_difference(a[good], b[good], alternative="greater", units="per unit log k",
                                        what=f"mean over seeds of slope(ρ = {last['rho']:g}) - slope(ρ = 0)")
    out.append(verdicts.verdict(
        f"sequential/replay/{model}", f"{model}, {REPLAY_VERDICT_CONDITION}: replaying ρ = {last['rho']:g} of D_p "
        "and D_a raises the slope of log|Δγ_a/Δγ_p| on log k above plain sequential fine-tuning (ρ = 0)",
        test.effect, test.test, "positive", per_seed=a[good] - b[good],
        smallest_effect_of_interest=SMALLEST_REPLAY_GAIN,
        can_show="that replay moves sequential fine-tuning toward the joint regime's k-scaling",
        cannot_show="where between the regimes the converged fixed point lies (the budget is capped)"))
  return out


def _uncomputable(key: str) -> dict:
  """A placeholder for a pre-registered verdict whose per-seed values are undefined (fewer than 2 finite seeds):
  dropped from the verdict list by summarize, listed under 'uncomputable_verdicts'."""
  return {"key": key, "uncomputable": True}


def _slope_verdict(key: str, per_seed: list[float], *, claim: str, consistency: bool = False) -> dict:
  values = np.asarray(per_seed, np.float64)
  values = values[np.isfinite(values)]
  if values.size < 2:
    return _uncomputable(key)
  test = statistics.paired_difference(values, np.zeros(values.size), alternative="greater", units="per unit log k",
                                      what=f"mean over {values.size} seeds of the slope")
  return verdicts.verdict(
      key, claim, test.effect, test.test, "positive", per_seed=values, consistency_check=consistency,
      smallest_effect_of_interest=SMALLEST_SLOPE,
      can_show="that fine-tuning moves alignment more, relative to pre-training, the larger k",
      cannot_show="the mechanism (the joint slope holds at any stationary point of the count-weighted objective, "
                  "whatever the model)" if consistency else "why (see the instantaneous-elasticity theory rows)")


def _fmt(entry: dict, digits: int = 2) -> str:
  return f"{entry['mean']:.{digits}f}±{entry['ci95']:.{digits}f}" if entry["n"] else "n/a"


def format_summary(results: dict, config: SequentialConfig) -> str:
  """Plain-text tables: joint slopes and -ratio/k, sequential slopes per condition (measured and predicted), the
  replay map, the theory's fit, and the verdicts corrected within this run."""
  k_text = ", ".join(f"{k:g}" for k in config.k_grid)
  lines = [f"joint optimum (implicit derivative at l = 0): slope of log|ratio| on log k (all seeds | seeds stationary "
           f"at every k: ||grad J||/N <= {STATIONARY_GRADIENT:g}); -ratio/k at k = {k_text}; max |residual| / scale"]
  for model, entry in results["joint"].items():
    per_k = ", ".join(_fmt(row["minus_ratio_over_k"], 4) for row in entry["per_k"])
    residual = max(row["max_abs_relative_residual"] for row in entry["per_k"])
    lines.append(f"  {model:<18} slope {_fmt(entry['slope'], 4):<16} | {_fmt(entry['slope_stationary_seeds'], 4)} "
                 f"({entry['stationary_seeds']} seeds)  -ratio/k {per_k}  {residual:.1e}")
  lines.append("joint degradation (medians over k and seeds): point, ||grad J|| / N (nats), |residual| / scale, "
               "|-ratio/k - 1|, slope")
  for model, entry in results["joint"].items():
    for row in entry["degradation"]:
      lines.append(f"  {model:<18} {row['point']:<16} {row['median_gradient_norm_per_response_nats']:9.2e} "
                   f"{row['median_abs_relative_residual']:9.2e} {row['median_abs_minus_ratio_over_k_minus_1']:9.2e} "
                   f"{_fmt(row['slope'], 3)}")
  lines.append(f"sequential (l = {config.l:g}): slope of log|Δγa/Δγp| on log k (measured | predicted by E_a/E_p); "
               f"mean ratio Δγa/Δγp at k = {k_text}; k in steps")
  for model, conditions in results["sequential"].items():
    for name, entry in conditions.items():
      ratios = ", ".join(f"{row['ratio']['mean']:.3g}" for row in entry["per_k"])
      steps = ", ".join(f"{row['k_in_steps']:.3g}" for row in entry["per_k"])
      lines.append(f"  {model:<18} {name:<28} {_fmt(entry['slope']):<12} | {_fmt(entry['instantaneous_slope']):<12}"
                   f" ratio {ratios:<28} k_steps {steps}")
  lines.append("replay (slope of log|Δγa/Δγp| on log k, Δγ attributable to D_t: with minus without D_t)")
  for model, replay in results["replay"].items():
    for name, rows in replay.items():
      cells = "  ".join(f"ρ={row['rho']:g}: {_fmt(row['slope'])}" for row in rows)
      lines.append(f"  {model:<18} {name:<28} {cells}")
  lines.append(f"theory: log|E_a/E_p| against log|Δγa/Δγp| over runs; R² of log k, of the state ({STATE_VARIABLE}), "
               "of the prediction")
  for model, entry in results["theory"].items():
    if "correlation" not in entry:
      lines.append(f"  {model:<18} too few runs ({entry['runs']})")
      continue
    low, high = entry["correlation_ci95"]
    lines.append(f"  {model:<18} r = {entry['correlation']:.3f} [{low:.3f}, {high:.3f}] over {entry['runs']} runs "
                 f"({entry['dropped']} dropped); R² log k {entry['r2_log_k']:.3f}, state {entry['r2_state']:.3f}, "
                 f"both {entry['r2_log_k_and_state']:.3f}, prediction {entry['r2_prediction']:.3f}; same sign "
                 f"{100 * entry['same_sign_share']:.0f}%")
  lines.append("verdicts (Holm-corrected within this run; `elasticity reproduce` corrects over the whole report):")
  lines += [f"  {line}" for line in verdicts.lines(results.get("verdicts", []), "this run")]
  return "\n".join(lines)
