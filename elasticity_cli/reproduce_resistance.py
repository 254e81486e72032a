"""The resistance step of `elasticity reproduce`: config by scale, run, figure and REPORT.md section."""

from __future__ import annotations

import dataclasses
import pathlib

from elasticity_cli import figure_resistance, simulate_resistance
from toy_models import resistance_summary
from toy_models.models import build_model
from toy_models.resistance_config import PAIRS, ResistanceConfig

FIGURES = [figure_resistance.FILE]
SCALES = ("quick", "default", "paper")
QUICK_STAGE_STEPS = {"pretrain": 40, "sft": 30, "transfer": 40}  # quick: shorter stages, batches of 50 as default.


def scale_config(scale: str, seed: int) -> tuple[ResistanceConfig, str]:
  """The config at `scale` and its run directory name.

  Args:
    scale: 'quick' (10-15 s on 2 CPU cores: depth 6, one size (width 8), 3 datasets, 3 seeds, shorter
      stages; 9 cells), 'default' (ResistanceConfig(): 3 datasets x 3 sizes x 3 pairs = 27 cells, 5 seeds,
      45-85 s on 2 CPU cores) or 'paper' (for a GPU: depth 10, 10 seeds, widths 16, 32, 64 with 2 layers,
      10x the data and proportionally longer stages).
    seed: the first seed.

  Returns:
    (config, name of its run directory under the data root).
  """
  if scale not in SCALES:
    raise ValueError(f"scale={scale!r} is not allowed; allowed: {', '.join(SCALES)}")
  base = ResistanceConfig(seed=seed)
  if scale == "quick":
    stages = {name: dataclasses.replace(getattr(base, name), epochs=None, steps=steps)
              for name, steps in QUICK_STAGE_STEPS.items()}
    return dataclasses.replace(base, depth=6, seeds=3, model_sizes=((8, 1),), pretrain_mass=2000.0,
                               align_mass=1000.0, **stages), "resistance_quick"
  if scale == "paper":
    stages = {name: dataclasses.replace(getattr(base, name), steps=600) for name in ("sft", "transfer")}
    return dataclasses.replace(base, depth=10, seeds=10, model_sizes=((16, 2), (32, 2), (64, 2)),
                               pretrain_mass=50000.0, align_mass=20000.0, **stages), "resistance_paper"
  return base, "resistance"


def describe(config: ResistanceConfig) -> str:
  """The config in words, for the report."""
  sizes = ", ".join(f"width {w} × {layers} layer{'s' if layers > 1 else ''} "
                    f"({build_model(config.model_config((w, layers)), config.depth).parameter_count():,} parameters)"
                    for w, layers in config.model_sizes)
  steps = config.checkpoint_steps()
  pretrain_steps = config.pretrain.steps_for(config.pretrain_mass)
  plural = "s" if len(config.model_sizes) > 1 else ""
  outputs = ("exact response distribution" if config.outputs == "exact"
             else f"{config.output_samples} responses sampled from it")
  return (f"Transformers {sizes} on the depth-{config.depth} token tree ({2**config.depth - 1} responses), "
          f"pre-trained for {pretrain_steps} steps on {config.pretrain_mass:g} responses of a "
          f"{config.pretrain_family} D_p, then SFT-ed for {config.sft.steps} steps on {config.align_mass:g} responses "
          f"of each alignment dataset ({', '.join(config.datasets)} sources on the aligned subtree: toy stand-ins for "
          f"Alpaca, TruthfulQA, BeaverTails); θ1, θ2, θ3 after {steps[0]}, {steps[1]} and {steps[2]} steps. Each "
          f"checkpoint's {outputs} is a dataset; forward alignment trains θi on θj's outputs (i < j), inverse "
          f"alignment θj on θi's, both for {config.transfer.steps} steps at learning rate "
          f"{config.transfer.learning_rate:g} with the same minibatches of {config.transfer.batch_size}. "
          f"{len(config.datasets)} datasets × {len(config.model_sizes)} size{plural} × {len(PAIRS)} pairs = "
          f"{len(config.datasets) * len(config.model_sizes) * len(PAIRS)} cells, {config.seeds} seeds each (Adam, "
          f"constant learning rate, float64). Loss: the exact final SFT loss in nats per token; excess: loss minus "
          f"the target's entropy per token (= KL(target ‖ model) / E|x|, free of the target's entropy); KL: "
          f"KL(target ‖ model) in nats per response before → after training (Appendix Table 2 analogue); gap: "
          f"inverse − forward, paired by seed (negative = the paper's resistance); p: one-sided paired t-test of "
          f"inverse < forward.")


def step(config) -> str:
  """Runs (or resumes) the resistance experiment, draws its figure and returns its REPORT.md section.

  Args:
    config: the reproduce config (attributes scale, seed, data: the data root, figures_dir).

  Returns:
    The markdown section: the config in words, the verdict lines, the table and the figure.
  """
  resistance, name = scale_config(config.scale, config.seed)
  run_dir = pathlib.Path(config.data) / name
  summary = simulate_resistance.run_experiment(resistance, run_dir)
  files = figure_resistance.draw(config.data, config.figures_dir, name)
  lines = ["## Resistance (`elasticity simulate resistance`)", "",
           f"Paper Table 1 and Appendix Table 2 at toy scale; run directory `{run_dir}`. {describe(resistance)}", "",
           "Verdicts:", ""]
  lines += [f"- {line}" for line in summary["verdicts"]]
  kl = summary.get("statistics", {}).get("mean_kl")
  if kl:
    lines += ["", f"Mean KL(target ‖ model) over every cell and seed, nats per response: forward "
                  f"{kl['forward_before_nats']:.4f} → {kl['forward_after_nats']:.4f}, inverse "
                  f"{kl['inverse_before_nats']:.4f} → {kl['inverse_after_nats']:.4f}."]
  lines += ["", "```", resistance_summary.format_summary({**summary, "verdicts": []}, resistance), "```", ""]
  figures_dir = pathlib.Path(config.figures_dir)
  lines += [f"![{path.stem}]({path.relative_to(figures_dir).as_posix()})" for path in files]
  return "\n".join(lines) + "\n"
