"""The steps of `elasticity reproduce`, each returning its REPORT.md section, and the report writer."""

from __future__ import annotations

import pathlib

import numpy as np

from elasticity_cli import figure_theory, figures_command, readme_embed
from theory import records

CLAIM_EXAMPLES = {"quick": 40, "default": 300, "paper": 2000}  # hypothesis examples per claim, by scale.


def claims_step(config) -> str:
  """Runs every claim of proofs_check and returns the claims table."""
  import proofs_check

  proofs_check.run_all(examples=CLAIM_EXAMPLES[config.scale], seed=config.seed, out_dir=config.figures_dir)
  table = (config.figures_dir / "claims_table.md").read_text()
  if config.figures_dir.resolve() == pathlib.Path("figures").resolve():
    readme_embed.embed("claims", table)
  return ("## Claims (`elasticity check`)\n\n"
          f"Each claim checked symbolically where possible and on random configurations "
          f"({CLAIM_EXAMPLES[config.scale]} hypothesis examples per claim at this scale).\n\n" + table)


def theory_figures_step(config) -> str:
  """Computes (or reuses) the theory curves, draws them, and summarises them in numbers."""
  figures_command.make_theory_data(config.data, seed=config.seed)
  figure_theory.draw(config.data, config.figures_dir)
  data = records.read_npz(config.data / figure_theory.DATA_NAME / "arrays.npz")
  theory_config = figure_theory.load_config(config.data)
  l, k, delta = data["hooke_l"], data["hooke_k"], data["hooke_delta_rates"]
  smallest = delta[:, 0, 1] / -delta[:, 0, 0] / k
  k_r, ratio = data["ratio_k"], data["ratio_ratio"]
  opposite = ratio < 0
  slope = np.polyfit(np.log(k_r[opposite]), np.log(-ratio[opposite]), 1)[0]
  entropy, huffman, paper = data["huffman_entropy"], data["huffman_huffman"], data["huffman_paper"]
  lines = [
      "## Theory figures (`elasticity figures`)",
      "",
      f"Exact size-weighted mixture, {theory_config.family}({theory_config.param:g}) leaf masses, depth "
      f"{theory_config.depth}; D_p covers the tree, D_a the aligned subtree (prefix 0), D_t the unaligned "
      "subtree (prefix 1). Rates in bits per response.",
      "",
      "![Hooke's law](hooke_law.png)",
      "",
      f"- At l = {l[0]:g}: Δγ_a / (−Δγ_p) / k = " + ", ".join(
          f"{v:.4f} (k={kv:g})" for v, kv in zip(smallest, k, strict=True)) + ".",
      "- First l at which Δγ_p turns positive (pre-training data also gets worse, the disproportion ends): "
      + ", ".join(f"{_first_positive(l, rows[:, 0])} (k={kv:g})" for rows, kv in zip(delta, k, strict=True))
      + ".",
      "",
      "![Ratio against k](ratio_vs_k.png)",
      "",
      f"- {len(k_r)} random configurations, log10 k uniform in [0, 6], l = {theory_config.ratio_l:g}: fitted "
      f"slope of log|ratio| on log k = {slope:.3f}; the paper's signs (dγ_a/dl > 0 > dγ_p/dl) hold in "
      f"{opposite.sum()} of {len(k_r)}; median |ratio|/k = {np.median(np.abs(ratio) / k_r):.3f}, range "
      f"{np.min(np.abs(ratio) / k_r):.3f} to {np.max(np.abs(ratio) / k_r):.3f}.",
      "",
      "![Huffman vs entropy](huffman_vs_entropy.png)",
      "",
      f"- {len(entropy)} random leaf distributions: exact Huffman length equals the paper's ⌈H⌉ in "
      f"{int(np.isclose(huffman, paper).sum())} cases; max |Huffman − ⌈H⌉| = {np.abs(huffman - paper).max():.3f} "
      f"bits; all Huffman lengths in [H, H+1): {bool(np.all((huffman >= entropy - 1e-9) & (huffman < entropy + 1)))}.",
  ]
  return "\n".join(lines) + "\n"


def _first_positive(x: np.ndarray, y: np.ndarray) -> str:
  positive = np.flatnonzero(y > 0)
  return f"{x[positive[0]]:.3g}" if positive.size else f"none up to {x[-1]:g}"


def hooke_config(scale: str, seed: int):
  """The HookeConfig of the main job at `scale` (and the name of its run directory under the data root)."""
  from toy_models.hooke_config import HookeConfig
  from toy_models.plans import TRANSFORMER_PLAN, TrainingPlan
  from toy_models.stage_config import StageConfig

  if scale == "quick":  # tabular and n-gram only: the transformer's compilations alone took ~35 s of a 2-core CPU.
    return HookeConfig(k_grid=(10.0, 100.0, 1000.0), l_grid=(0.003, 0.03), depth=6, seed=seed,
                       models=("tabular", "ngram"),
                       tabular_plan=TrainingPlan(joint=StageConfig(steps=1500, learning_rate=0.1))), "hooke_quick"
  if scale == "paper":
    expected = TrainingPlan(joint=StageConfig(steps=3000, learning_rate=0.003),
                            pretrain=dataclasses_replace(TRANSFORMER_PLAN.pretrain, gradient="expected"),
                            align=dataclasses_replace(TRANSFORMER_PLAN.align, gradient="expected"),
                            finetune=dataclasses_replace(TRANSFORMER_PLAN.finetune, gradient="expected"))
    return HookeConfig(depth=10, seeds=5, seed=seed, align_mass=1000.0, transformer_width=64,
                       transformer_layers=2, transformer_heads=4, transformer_plan=expected), "hooke_paper"
  return HookeConfig(seed=seed), "hooke"


def dataclasses_replace(instance, **changes):
  """dataclasses.replace, re-validated by the class's __post_init__."""
  import dataclasses

  return dataclasses.replace(instance, **changes)


def hooke_step(config) -> str:
  """Runs (or resumes) the simulated Hooke's-law experiment, draws its figures, and reports its numbers."""
  from elasticity_cli import figure_hooke, simulate_hooke
  from toy_models import hooke_summary

  hooke, name = hooke_config(config.scale, config.seed)
  summary = simulate_hooke.run_experiment(hooke, config.data / name)
  files = figure_hooke.draw(config.data, config.figures_dir, name)
  lines = ["## Simulated Hooke's law (`elasticity simulate hooke`)", "",
           f"Run directory `{config.data / name}`; k grid {list(hooke.k_grid)}, l grid {list(hooke.l_grid)}, "
           f"|D_a| = {hooke.align_mass:g} responses, depth {hooke.depth}, {hooke.family} sources, "
           f"{hooke.perturbation} D_t, {hooke.seeds} seeds, {hooke.sampling} datasets.", "",
           "```", hooke_summary.format_summary(summary, hooke), "```", ""]
  for key, entry in summary.items():
    if key == "acceptance":
      continue
    smallest = entry["by_l"][f"{min(hooke.l_grid):g}"]
    lines.append(f"- {key}: slope {smallest['slope_mean']:.3f} ± {smallest['slope_ci95']:.3f} at l = "
                 f"{min(hooke.l_grid):g} (theory's exact mixture on the same data: {smallest['theory_slope']:.3f}); "
                 f"paper's signs Δγ_p < 0 < Δγ_a in {100 * smallest['share_paper_signs']:.0f}% of runs.")
  lines.append("")
  lines += [f"![{path.stem}]({path.name})" for path in files]
  return "\n".join(lines) + "\n"


def steps_for(scale: str) -> list[tuple[str, object]]:
  """The (title, function) steps of the main job at `scale`."""
  from elasticity_cli import reproduce_questions, reproduce_rebound, reproduce_resistance, reproduce_verdicts

  del scale
  steps = [("claims check", claims_step), ("theory figures", theory_figures_step),
           ("simulated Hooke's law", hooke_step)]
  steps.append(("resistance", reproduce_resistance.step))
  steps += [(experiment, reproduce_rebound.step_for(experiment)) for experiment in reproduce_rebound.TITLES]
  return steps + [("open questions", reproduce_questions.step), ("verdicts block", reproduce_verdicts.step)]


def write_report(config, sections: list[str]) -> pathlib.Path:
  """Writes figures/REPORT.md: provenance header, then every section."""
  provenance = records.provenance({"scale": config.scale, "seed": config.seed}, config.seed)
  versions = ", ".join(f"{name} {version}" for name, version in provenance["package_versions"].items())
  header = [
      "# lm-elasticity report",
      "",
      f"Generated by `elasticity reproduce --scale {config.scale} --seed {config.seed}` at "
      f"{provenance['created_utc']} from commit `{provenance['git_commit']}`.",
      f"Packages: {versions}.",
      "",
  ]
  path = config.figures_dir / "REPORT.md"
  text = "\n".join(header) + "\n".join(sections)
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.with_suffix(".md.tmp")
  tmp.write_text(text)
  tmp.replace(path)
  return path
