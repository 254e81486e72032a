"""The mitigations testbed at its tiny scale: saved units against independent recomputations, closed forms, configs."""

import itertools
import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import optimize, stats

from experiments import records, runner
from experiments.mitigations import EXPERIMENT, run
from experiments.mitigations import summary as mitigations_summary
from experiments.mitigations.config import (
  BASELINE,
  CORRECTOR,
  MODEL_DEFENCES,
  ZERO_IS_BASELINE,
  MitigationsConfig,
  Strengths,
)
from experiments.protocol import ReportContext
from experiments.rebound.summary import CENSOR
from theory import token_tree
from theory.conventions import ALIGN, PERTURB, PRETRAIN
from toy_models import corrector, defences


@pytest.fixture(scope="module")
def tiny(tiny_runs):
  """(config, summary, read-only RunDir) of the tiny run (the registry's shared one)."""
  _, config, result, reader = tiny_runs["mitigations"]
  return config, result, reader


# Independent re-implementations (loops, no code of the experiment's summary).

def aligned(depth: int) -> np.ndarray:
  return np.array([len(token_tree.leaf_bits(i, depth)) > 0 and token_tree.leaf_bits(i, depth)[0] == 0
                   for i in range(token_tree.n_leaves(depth))])


def first_crossing(n, u, share=0.5):
  """First n where the piecewise-linear curve u reaches `share` (loop), inf if never."""
  for i, value in enumerate(u):
    if value >= share:
      if i == 0:
        return float(n[0])
      return float(n[i - 1] + (share - u[i - 1]) / (u[i] - u[i - 1]) * (n[i] - n[i - 1]))
  return math.inf


def half_undo(config, score, start, pretrained):
  """Half-undo examples per seed against the baseline's half-way level, floored at 1, censored at CENSOR max n."""
  n = np.asarray(config.attack_sizes, dtype=np.float64)
  out = []
  for seed in range(score.shape[0]):
    u = (start[seed] - score[seed]) / (start[seed] - pretrained[seed])
    life = first_crossing(n, u)
    out.append(max(CENSOR * n[-1] if not math.isfinite(life) else life, 1.0))
  return np.array(out)


def own_half_life(config, score, pretrained):
  n = np.asarray(config.attack_sizes, dtype=np.float64)
  out = []
  for seed in range(score.shape[0]):
    life = first_crossing(n, (score[seed, 0] - score[seed]) / (score[seed, 0] - pretrained[seed]))
    out.append(CENSOR * n[-1] if not math.isfinite(life) else life)
  return np.array(out)


def sign_flip_p(differences):
  """One-sided (greater) p of the mean by enumerating every sign pattern; |d| <= 1e-9 is round-off, set to 0."""
  differences = np.where(np.abs(differences) <= 1e-9, 0.0, differences)
  total = differences.sum()
  sums = [np.dot(signs, differences) for signs in itertools.product((1.0, -1.0), repeat=differences.size)]
  return float(np.mean([s >= total - 1e-12 * np.abs(differences).sum() - 1e-300 for s in sums]))


def baseline_yardstick(config, reader):
  _, base = reader.load(BASELINE)
  return base, base["positive_score"][0][:, 0], base["pretrained_positive_score"]


# Saved units.

def test_saved_units_satisfy_their_identities(tiny):
  config, _, reader = tiny
  mask = aligned(config.depth)
  for unit in run.units(config):
    _, arrays = reader.load(unit.name)
    key = "composed_self_attack_log2q_bits" if unit.defence == CORRECTOR else "log2q_bits"
    q = np.exp2(arrays[key])
    np.testing.assert_allclose(q.sum(axis=-1), 1.0, atol=1e-10)
    score_key = key.replace("log2q_bits", "positive_score")
    np.testing.assert_allclose(arrays[score_key], (q * mask).sum(axis=-1), atol=1e-12)
    sources = arrays["sources"]
    start = np.exp2(arrays["start_log2q_bits"])
    for index in np.ndindex(start.shape[:-1]):
      seed = index[-1]
      for row in range(3):
        expected = -sum(p * math.log2(start[index][x]) for x, p in enumerate(sources[seed, row]) if p > 0)
        assert arrays["start_rates_bits"][index][row] == pytest.approx(expected, rel=1e-10)
      inside = start[index] * mask / (start[index] * mask).sum()
      reference = np.exp2(arrays["pretrained_log2q_bits"][seed]) * mask
      reference = reference / reference.sum()
      kl = sum(a * math.log(a / b) for a, b in zip(inside, reference, strict=True) if a > 0)
      assert arrays["start_within_aligned_kl_nats"][index] == pytest.approx(kl, rel=1e-8, abs=1e-13)
    if unit.defence != CORRECTOR:
      curves = run.curves(config, unit.defence)
      for index, curve in enumerate(curves):
        np.testing.assert_array_equal(arrays["log2q_bits"][index, :, 0],
                                      arrays["start_log2q_bits"][curve.strength_index])


def test_sources_are_pretraining_restricted_to_each_subtree_without_the_empty_response(tiny):
  config, _, reader = tiny
  _, arrays = reader.load(BASELINE)
  for seed, probs in enumerate(arrays["sources"]):
    for row, first in ((ALIGN, 0), (PERTURB, 1)):
      keep = np.array([len(b) > 0 and b[0] == first
                       for b in (token_tree.leaf_bits(i, config.depth) for i in range(probs.shape[1]))])
      np.testing.assert_allclose(probs[row], np.where(keep, probs[PRETRAIN], 0) / probs[PRETRAIN][keep].sum(),
                                 rtol=1e-12, err_msg=f"seed {seed} row {row}")
      assert probs[row][0] == 0.0  # the EOS-only response is neither behaviour


def test_strength_zero_is_the_undefended_pipeline(tiny):
  """Every defence whose strength 0 is the baseline reproduces the baseline's models to round-off (same data, same
  keys, same aligned model), through every n2."""
  config, _, reader = tiny
  _, base = reader.load(BASELINE)
  checked = 0
  for defence in ZERO_IS_BASELINE:
    if defence not in config.defences or 0.0 not in config.strengths(defence).grid:
      continue
    _, arrays = reader.load(defence)
    zero = config.strengths(defence).grid.index(0.0)
    index = mitigations_summary.curve_index(config, defence, zero, run.MAIN_ATTACK)
    np.testing.assert_allclose(arrays["log2q_bits"][index], base["log2q_bits"][0], rtol=0, atol=1e-12,
                               err_msg=defence)
    moved = np.abs(base["log2q_bits"][0][:, -1] - base["log2q_bits"][0][:, 0]).max()
    assert moved > 1e-3  # the attack moved the model: the comparison is not vacuous
    checked += 1
  assert checked == len(ZERO_IS_BASELINE)


# Summary numbers from the saved units.

def test_half_undo_examples_gains_and_p_values_recomputed(tiny):
  config, result, reader = tiny
  base, start, pretrained = baseline_yardstick(config, reader)
  base_life = half_undo(config, base["positive_score"][0], start, pretrained)
  np.testing.assert_allclose(result["baseline"][run.MAIN_ATTACK]["half_undo"]["log2"]["mean"],
                             np.log2(base_life).mean(), rtol=1e-12)
  np.testing.assert_allclose(base_life, own_half_life(config, base["positive_score"][0], pretrained), rtol=1e-12)
  for defence, cell in result["defences"].items():
    _, arrays = reader.load(defence)
    strengths = config.strengths(defence).grid
    for index, row in enumerate(cell["frontier"]):
      if defence == CORRECTOR:
        score = arrays["composed_base_attack_positive_score"][0, index]
      else:
        score = arrays["positive_score"][mitigations_summary.curve_index(config, defence, index, run.MAIN_ATTACK)]
      life = half_undo(config, score, start, pretrained)
      difference = np.log2(life) - np.log2(base_life)
      assert row["strength"] == strengths[index]
      np.testing.assert_allclose(row["half_undo"]["log2"]["mean"], np.log2(life).mean(), rtol=1e-12, atol=1e-12)
      np.testing.assert_allclose(row["gain_log2"]["mean"], difference.mean(), rtol=1e-12, atol=1e-12)
      if strengths[index] == 0.0 and defence in ZERO_IS_BASELINE:
        assert row["gain_p_uncorrected"] == 1.0  # the baseline itself, up to round-off
      assert row["gain_p_uncorrected"] == pytest.approx(sign_flip_p(difference), abs=1e-12)
      assert row["half_undo"]["at_floor"] == int((life <= 1.0).sum())
    verdict = next(v for v in result["verdicts"] if v["key"] == f"{defence}/slows rebound")
    default = strengths.index(config.strengths(defence).default)
    assert verdict["effect"]["estimate"] == pytest.approx(cell["frontier"][default]["gain_log2"]["mean"], abs=1e-12)


def test_breaking_points_follow_the_stated_rule(tiny):
  config, result, reader = tiny
  ladder = [run.MAIN_ATTACK] + [f"sft lr x{f:g}" for f in config.breaking_lr_factors]
  base, start, pretrained = baseline_yardstick(config, reader)
  for defence, cell in result["defences"].items():
    _, arrays = reader.load(defence)
    helps = {}
    for attack in ladder:
      base_index = mitigations_summary.curve_index(config, BASELINE, 0, attack)
      base_life = half_undo(config, base["positive_score"][base_index], start, pretrained)
      default = config.strengths(defence).grid.index(config.strengths(defence).default)
      if defence == CORRECTOR:
        names = [c.attack for c in run.corrector_base_curves(config)]
        score = arrays["composed_base_attack_positive_score"][names.index(attack), default]
      else:
        score = arrays["positive_score"][mitigations_summary.curve_index(config, defence, default, attack)]
      difference = np.log2(half_undo(config, score, start, pretrained)) - np.log2(base_life)
      helps[attack] = sign_flip_p(difference) < 0.05 and difference.mean() >= config.smallest_effect_log2
      assert cell["attacks"][attack]["helps"] == helps[attack]
    expected = next((a for a in ladder if not helps[a]), "holds through the ladder")
    assert cell["breaking_point"] == expected


def test_replay_prediction_closed_form_against_a_brute_force_mixture(tiny):
  """The stage prediction rho s_replay is the positive share of the free model that minimises the attack stage's
  loss, found numerically; the history prediction is the positive share of every dataset's counts summed."""
  config, result, reader = tiny
  data = run.seed_data(config)
  mask = aligned(config.depth)
  n2 = config.attack_sizes[-1]
  for defence in ("replay_alignment", "replay_pretraining"):
    _, arrays = reader.load(defence)
    for index, rho in enumerate(config.strengths(defence).grid):
      for seed in range(config.seeds):
        counts = arrays["replay_mixture_counts"][index, seed]
        np.testing.assert_allclose(counts.sum(), n2 / (1 - rho), rtol=1e-12)

        def cross_entropy(logits, counts=counts):
          shifted = logits - logits.max()
          log_q = shifted - np.log(np.exp(shifted).sum())
          return -(counts * log_q).sum(), counts.sum() * np.exp(log_q) - counts

        fit = optimize.minimize(cross_entropy, np.zeros(counts.size), jac=True, method="L-BFGS-B",
                                options={"gtol": 1e-13, "ftol": 1e-16, "maxiter": 20_000})
        optimum = np.exp(fit.x - fit.x.max()) / np.exp(fit.x - fit.x.max()).sum()
        assert arrays["replay_predicted_stage"][index, seed] == pytest.approx(optimum @ mask, abs=1e-6)
        replayed = data["align"][seed] if defence == "replay_alignment" else data["pretrain"][seed]
        history = data["pretrain"][seed] + data["align"][seed] + data["attack"][seed, -1] + (
            rho / (1 - rho) * n2 * replayed / replayed.sum())
        assert arrays["replay_predicted_history"][index, seed] == pytest.approx(history @ mask / history.sum(),
                                                                                rel=1e-12)
    rows = result["defences"][defence]["replay_prediction"]
    for index, row in enumerate(rows):
      curve = mitigations_summary.curve_index(config, defence, index, run.MAIN_ATTACK)
      assert row["measured"]["mean"] == pytest.approx(arrays["positive_score"][curve][:, -1].mean(), rel=1e-12)
  assert result["defences"]["replay_alignment"]["replay_prediction"][0]["predicted_stage"]["mean"] == 0.0


def test_corrector_composition_and_trend_recomputed(tiny):
  config, result, reader = tiny
  _, arrays = reader.load(CORRECTOR)
  base = np.exp2(arrays["pretrained_log2q_bits"])
  matrices = np.exp(arrays["corrector_log_matrix"])  # (levels, seeds, n, n)
  np.testing.assert_allclose(matrices.sum(axis=-1), 1.0, atol=1e-10)
  for level in range(matrices.shape[0]):
    for seed in range(config.seeds):
      composed = np.array([sum(base[seed, x] * matrices[level, seed, x, y] for x in range(base.shape[1]))
                           for y in range(base.shape[1])])
      np.testing.assert_allclose(np.exp2(arrays["composed_self_attack_log2q_bits"][level, seed, 0]), composed,
                                 rtol=1e-10)
      np.testing.assert_allclose(np.exp2(arrays["composed_base_attack_log2q_bits"][0, level, seed, 0]), composed,
                                 rtol=1e-10)
  pretrained = arrays["pretrained_positive_score"]
  lives = np.stack([own_half_life(config, arrays["composed_self_attack_positive_score"][level], pretrained)
                    for level in range(matrices.shape[0])])
  trend = result["defences"][CORRECTOR]["corrector"]
  np.testing.assert_allclose(trend["log2_half_life"]["mean"], np.log2(lives).mean(axis=1), rtol=1e-12)
  x = np.log2(config.corrector.grid)
  slopes = [np.polyfit(x, np.log2(lives[:, seed]), 1)[0] for seed in range(config.seeds)]
  assert trend["slope"] == pytest.approx(np.mean(slopes), abs=1e-12)


def test_corrector_minibatch_loss_matches_the_full_conditional_matrix():
  depth, batch = 3, 7
  n = token_tree.n_leaves(depth)
  params = corrector.init_corrector(jax.random.PRNGKey(3), depth, 1.5, jnp.float64)
  pairs = np.random.default_rng(0).integers(0, 3, size=n * n).astype(np.float64)
  key = jax.random.PRNGKey(11)
  value = jax.jit(run.corrector_loss(depth, batch))(params, {"pairs": jnp.asarray(pairs)}, key)
  picks = np.asarray(jax.random.choice(key, n * n, (batch,), p=jnp.asarray(pairs / pairs.sum())))
  log_c = np.asarray(jax.jit(corrector.corrector_log_probs)(params))
  lengths = token_tree.response_lengths(depth)
  expected = -sum(log_c[p // n, p % n] for p in picks) / sum(lengths[p % n] for p in picks)
  assert float(value) == pytest.approx(expected, rel=1e-12)


def test_corrector_matrices_in_chunks_of_runs_equal_each_run_alone(monkeypatch):
  depth, runs = 3, 5
  tables = np.stack([np.asarray(corrector.init_corrector(jax.random.PRNGKey(i), depth, 1.5, jnp.float64)["logits"])
                     for i in range(runs)])
  alone = np.stack([np.asarray(corrector.corrector_log_probs({"logits": jnp.asarray(t)})) for t in tables])
  per_run = token_tree.n_leaves(depth) * run.metrics.evaluation_bytes(
      run.build_model(run.ModelConfig(kind="tabular"), depth), 1, token_tree.n_leaves(depth))
  for limit in (10**12, 2 * per_run, 1):  # one call; chunks of 2 (the last repeats run 4); chunks of 1
    monkeypatch.setattr(run.metrics, "MEMORY_LIMIT_BYTES", limit)
    np.testing.assert_allclose(run.corrector_matrices(depth, tables), alone, rtol=1e-13, atol=1e-13)


def test_elasticity_correlation_recomputed(tiny):
  config, result, reader = tiny
  e = result["elasticity"]
  assert e["defences"] == [d for d in (BASELINE,) + MODEL_DEFENCES if d in config.defences or d == BASELINE]
  base, start, pretrained = baseline_yardstick(config, reader)
  elastic, speed = [], []
  for defence in e["defences"]:
    _, arrays = reader.load(defence)
    strengths = config.strengths(defence)
    default = strengths.grid.index(strengths.default)
    values = arrays["elasticity_bits"][default]
    elastic.append(np.mean(-values[:, ALIGN] / values[:, PRETRAIN]))
    score = arrays["positive_score"][mitigations_summary.curve_index(config, defence, default, run.MAIN_ATTACK)]
    speed.append(-np.log2(half_undo(config, score, start, pretrained)).mean())
  np.testing.assert_allclose(e["elasticity"]["mean"], elastic, rtol=1e-12)
  assert e["rho"] == pytest.approx(stats.spearmanr(elastic, speed).statistic, abs=1e-12)
  baseline_e = reader.load(BASELINE)[1]["elasticity_bits"][0]
  for defence in ("kl_anchor_response", "kl_anchor_token", "tokenwise_constrained", "lisa"):
    values = reader.load(defence)[1]["elasticity_bits"]  # (strengths, seeds, 3): the same aligned model at every one
    np.testing.assert_array_equal(values, np.broadcast_to(baseline_e, values.shape), err_msg=defence)
  _, replay = reader.load("replay_alignment")
  assert not np.allclose(replay["elasticity_bits"][-1], baseline_e)  # other data: another elasticity
  np.testing.assert_array_equal(replay["elasticity_plain_bits"][-1], baseline_e)  # the attack data alone: the same


def test_correlation_permutation_test_against_brute_force():
  rng = np.random.default_rng(4)
  for n in (4, 5, 6):
    x, y = rng.normal(size=n), rng.normal(size=n)
    x[1] = x[0]  # a tie
    rho, p, floor, exact, count = mitigations_summary.correlation_test(x, y)
    permuted = [stats.spearmanr(x, y[list(order)]).statistic for order in itertools.permutations(range(n))]
    assert exact and count == math.factorial(n)
    assert rho == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)
    assert p == pytest.approx(np.mean([r >= rho - 1e-12 for r in permuted]), abs=1e-12)
    assert floor == pytest.approx(np.mean([r >= max(permuted) - 1e-12 for r in permuted]), abs=1e-12)


# Schedules and steps.

def test_lisa_steps_and_anchors_follow_its_phases():
  config = MitigationsConfig(lisa_alignment_steps=3, lisa_finetune_steps=5)
  lisa = run.lisa_schedule(config)
  reanchor = run.lisa_reanchor(lisa)
  curve = run.Curve(0, run.MAIN_ATTACK, 1.0, 1.0, "sft")
  for n2 in (10, 40, 50, 60, 500):
    total = run.attack_steps(config, "lisa", curve, n2, 1.0)
    user = math.ceil(n2 / config.attack.batch_size)
    phases = lisa.phases(total)
    assert sum(p.steps for p in phases if p.state == "finetune") == user and phases[-1].state == "finetune"
    starts = {p.start for p in phases}
    assert [bool(reanchor(t)) for t in range(total)] == [t in starts for t in range(total)]
  replay = run.attack_steps(config, "replay_alignment", curve, 75, 0.25)
  assert replay == math.ceil(75 / 0.75 / config.attack.batch_size)


def test_attack_losses_at_strength_zero_are_the_sft_loss():
  """At strength 0 every attack-stage objective equals the baseline's minibatch NLL at any parameters."""
  config = EXPERIMENT.config("tiny")
  model = run.build_model(config.model_config(), config.depth)
  params = jax.tree_util.tree_map(lambda x: x[0], run.training.init_params(model, jax.random.PRNGKey(2)[None]))
  n = token_tree.n_leaves(config.depth)
  other = jax.tree_util.tree_map(lambda x: x[0], run.training.init_params(model, jax.random.PRNGKey(5)[None]))
  nexts, picked = run._token_level_fns(model)
  rng = np.random.default_rng(1)
  data = {"attack": jnp.asarray(rng.integers(0, 4, n).astype(np.float64) + 0.1), "replay": jnp.zeros(n),
          "reference": jnp.asarray(np.asarray(run.metrics.leaf_log2_probs(model, jax.tree_util.tree_map(
              lambda x: x[None], other)))[0] * math.log(2)),
          "next_log_probs": nexts(jax.tree_util.tree_map(lambda x: x[None], other))[0],
          "token_log_probs": picked(jax.tree_util.tree_map(lambda x: x[None], other))[0], "strength": 0.0}
  key = jax.random.PRNGKey(9)
  plain = jax.jit(run.attack_loss(model, BASELINE, "sft", 10, 0.1, None))(params, data, key)
  for defence in ("kl_anchor_response", "kl_anchor_token", "tokenwise_constrained"):
    loss = jax.jit(run.attack_loss(model, defence, "sft", 10, 0.1, None))
    assert float(loss(params, data, key)) == pytest.approx(float(plain), rel=1e-12), defence
    if defence == "kl_anchor_response":
      strong = loss(params, {**data, "strength": 2.0}, key)
  kl = jax.jit(defences.response_kl_nats, static_argnums=0)(model, params, data["reference"])
  assert float(strong) == pytest.approx(float(plain) + 2.0 * float(kl), rel=1e-12) and float(kl) > 1e-6


# Report, figures, resumption, configs.

def test_report_ranks_by_gain_and_draws_its_figures(tiny, tmp_path):
  config, result, reader = tiny
  files = EXPERIMENT.figures(config, result, reader, tmp_path)
  assert [f.name for f in files] == ["mitigations_frontier.png", "mitigations_attacks.png",
                                     "mitigations_corrector.png"]
  assert all(f.stat().st_size > 5_000 for f in files)
  context = ReportContext(experiment="mitigations", figures_dir=tmp_path, run_reader=reader, scale="tiny",
                          files=tuple(files))
  section = EXPERIMENT.report(config, result, context)
  rows = [line for line in section.splitlines() if re.match(r"\| \d+ \| ", line)]
  ranked = [line.split(" | ")[1] for line in rows]
  gains = {d: c["frontier"][config.strengths(d).grid.index(c["default_strength"])]["gain_log2"]["mean"]
           for d, c in result["defences"].items()}
  assert ranked == sorted(gains, key=lambda d: -gains[d])
  assert all(f"]({f.name})" in section for f in files)
  assert len(result["verdicts"]) == len(config.defences) + 2 <= 12


def test_resume_reuses_units_and_the_summary_is_saved(tiny):
  config, result, reader = tiny
  unit = reader.unit_path(BASELINE)
  before = unit.stat().st_mtime_ns
  again = runner.run(EXPERIMENT, config, reader.path, show_progress=False)
  assert records.plain(again) == records.plain(result) and unit.stat().st_mtime_ns == before
  assert records.read_json(reader.path / "summary.json")["summary"] == records.plain(result)


@pytest.mark.parametrize("changes, message", [
    ({"attack_sizes": (10, 20, 30)}, "attack_sizes=[10, 20, 30] is not allowed"),
    ({"attack_sizes": (0, 20, 10)}, "attack_sizes=[0, 20, 10] is not allowed"),
    ({"defences": ("replay_alignment", "magic")}, "defences=['replay_alignment', 'magic'] is not allowed"),
    ({"replay_alignment": Strengths(default=0.5, grid=(0.0, 1.0))}, "replay_alignment.grid=[0.0, 1.0]"),
    ({"kl_anchor_response": Strengths(default=2.0, grid=(0.0, 1.0))}, "kl_anchor_response.default=2.0"),
    ({"booster": Strengths(default=1.0, grid=(1.0, 0.5))}, "booster.grid=[1.0, 0.5]"),
    ({"corrector": Strengths(default=1.0, grid=(1.0,))}, "corrector.grid=[1.0] is not allowed"),
    ({"corrector": Strengths(default=1.0, grid=(0.0, 1.0))}, "corrector.grid=[0.0, 1.0]"),
    ({"corrector": Strengths(default=1.0, grid=(1.0, 1.5)), "corrector_corrections": 3}, "4.5 copy pairs"),
    ({"dpo_defences": ("replay_alignment",)}, "dpo_defences=['replay_alignment'] is not allowed"),
    ({"breaking_lr_factors": (0.5,)}, "breaking_lr_factors=[0.5]"),
    ({"lisa_finetune_steps": 0}, "lisa_finetune_steps=0"),
    ({"depth": 12}, "depth=12"),
    ({"heads": 3}, "heads=3 does not divide width=8"),
    ({"booster_alpha": float("nan")}, "booster_alpha=nan"),
    ({"family": "normal"}, "unknown distribution family 'normal'"),
])
def test_bad_configs_give_one_line_errors(changes, message):
  with pytest.raises(ValueError, match=re.escape(message)) as error:
    MitigationsConfig(**changes)
  assert "\n" not in str(error.value)


def test_scales_are_valid_and_the_default_is_the_specified_design():
  default = EXPERIMENT.config("default")
  assert default.seeds == 10 and default.attack_sizes == (0, 10, 20, 50, 100, 200, 500, 1000, 2000)
  assert (default.depth, default.width, default.layers, default.heads) == (6, 8, 1, 2)
  assert default.breaking_lr_factors == (3.0, 10.0) and default.breaking_epochs == 3.0
  assert set(default.defences) == set(MODEL_DEFENCES) | {CORRECTOR}
  assert defences.TokenwiseBetas().betas(6).tolist() == [0.5, 2, 2, 2, 2, 0.1]
  assert len(default.defences) + 2 <= 12  # the confirmatory family's size
  for scale in ("tiny", "quick", "paper"):
    assert EXPERIMENT.config(scale) != default
