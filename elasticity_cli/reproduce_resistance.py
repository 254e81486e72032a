"""The resistance step of `elasticity reproduce`: config by scale, run, figure and REPORT.md section."""

from __future__ import annotations

import dataclasses

from elasticity_cli import figure_resistance, simulate_resistance
from toy_models import resistance_summary
from toy_models.resistance_config import ResistanceConfig

FIGURES = [figure_resistance.FILE]


def scale_config(scale: str, seed: int) -> tuple[ResistanceConfig, str]:
  """The config at `scale` and its run directory name: quick (depth 6, 3 seeds, 1 size), default (3 datasets x 3
  sizes x 5 seeds, depth 8), paper (depth 10, 10 seeds, widths 16-64 with 2 layers, for a GPU)."""
  if scale == "quick":
    return ResistanceConfig(depth=6, seeds=3, seed=seed, model_sizes=((16, 1),)), "resistance_quick"
  if scale == "paper":
    return ResistanceConfig(depth=10, seeds=10, seed=seed, model_sizes=((16, 2), (32, 2), (64, 2)),
                            pretrain_mass=50000.0, align_mass=10000.0), "resistance_paper"
  return ResistanceConfig(seed=seed), "resistance"


def step(config) -> str:
  """Runs (or resumes) the resistance experiment, draws its figure and returns its REPORT.md section."""
  resistance, name = scale_config(config.scale, config.seed)
  summary = simulate_resistance.run_experiment(resistance, config.data / name)
  files = figure_resistance.draw(config.data, config.figures_dir, name)
  sizes = ", ".join(f"w{w} L{layers}" for w, layers in resistance.model_sizes)
  sft = dataclasses.asdict(resistance.sft)
  lines = ["## Resistance (`elasticity simulate resistance`; paper Table 1, Appendix Table 2)", "",
           f"Run directory `{config.data / name}`. Transformers {sizes}, depth {resistance.depth}, pre-trained on "
           f"{resistance.pretrain_mass:g} responses of a {resistance.pretrain_family} D_p, then SFT for "
           f"{sft['steps']} steps on {resistance.align_mass:g} responses of each alignment dataset "
           f"({', '.join(resistance.datasets)} sources on the aligned subtree); θ1, θ2, θ3 after steps "
           f"{list(resistance.checkpoint_steps())}. Forward and inverse alignment: {resistance.transfer.steps} steps "
           f"on the other checkpoint's {resistance.outputs} outputs, same minibatches. {resistance.seeds} seeds; "
           "loss in nats per token, KL(target ‖ model) in nats per response, p = one-sided paired t-test of "
           "inverse < forward.", "", "Verdicts:", ""]
  lines += [f"- {line}" for line in summary["verdicts"]]
  lines += ["", "```", resistance_summary.format_summary(summary, resistance), "```", ""]
  lines += [f"![{path.stem}]({path.name})" for path in files]
  return "\n".join(lines) + "\n"
