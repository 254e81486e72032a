"""The rebound-family steps of `elasticity reproduce`: configs by scale, runs, figures and REPORT.md sections."""

from __future__ import annotations

from elasticity_cli import figure_rebound, rebound_command
from toy_models import rebound_summary
from toy_models.rebound_config import ReboundConfig, experiment_config

TITLES = {
    "rebound": "Rebound (`elasticity simulate rebound`; paper Fig. 4, Appendix Table 3)",
    "model-size": "Rebound against model size (`elasticity simulate model-size`; paper Fig. 5)",
    "pretrain-volume": "Rebound against pre-training volume (`elasticity simulate pretrain-volume`; paper Fig. 6)",
    "families": "Rebound across source families (`elasticity simulate rebound --families ...`; open question)",
}
SHORT_TITLES = {
    "rebound": "Rebound (paper Fig. 4, Appendix Table 3)",
    "model-size": "Rebound against model size (paper Fig. 5)",
    "pretrain-volume": "Rebound against pre-training volume (paper Fig. 6)",
    "families": "Rebound across source families (open question)",
}
COMMANDS = {
    "rebound": "elasticity simulate rebound",
    "model-size": "elasticity simulate model-size",
    "pretrain-volume": "elasticity simulate pretrain-volume",
    "families": "elasticity simulate rebound --families pareto,zipf,dirichlet,markov --first-sizes 1000,5000 "
                "--orders positive_first --methods sft --out-dir figures/data/rebound-families",
}


def scale_config(experiment: str, scale: str, seed: int) -> tuple[ReboundConfig, str]:
  """The config of `experiment` at `scale` and the name of its run directory under the data root.

  quick: depth 6, 3 seeds, a coarser grid, one-layer sizes for model-size (a first look); default: the defaults
  (CPU, minutes); paper: depth 10, 10 seeds, larger models and budgets (documented for a GPU).
  """
  name = figure_rebound.RUNS[experiment]
  if scale == "quick":
    changes = {"depth": 6, "seeds": 3, "first_sizes": (1000, 5000), "second_sizes": (0, 100, 500, 2000),
               "seed": seed}
    if experiment == "model-size":  # 13x in parameters: one layer each, to keep the quick look short.
      changes["model_sizes"] = ((8, 1), (16, 1), (32, 1))
    if experiment == "pretrain-volume":
      changes["pretrain_masses"] = (300.0, 3000.0, 10000.0)
    if experiment == "families":
      changes["families"] = ("pareto", "zipf", "markov")
    return experiment_config(experiment, **changes), f"{name}_quick"
  if scale == "paper":
    changes = {"depth": 10, "seeds": 10, "seed": seed}
    if experiment == "model-size":
      changes["model_sizes"] = ((16, 1), (32, 2), (64, 4))
    elif experiment == "pretrain-volume":
      changes["pretrain_masses"] = (3000.0, 10000.0, 30000.0, 100000.0, 300000.0)
    else:
      changes["model_sizes"] = ((32, 2),)
    return experiment_config(experiment, **changes), f"{name}_paper"
  return experiment_config(experiment, seed=seed), name


def _describe(config: ReboundConfig) -> str:
  sizes = ", ".join(f"w{w} L{layers}" for w, layers in config.model_sizes)
  return (f"Transformers {sizes} (heads {config.heads}), depth {config.depth}, families {', '.join(config.families)}, "
          f"{config.behaviours} behaviour sources, {config.sampling} datasets, pre-training on "
          f"{', '.join(f'{m:g}' for m in config.pretrain_masses)} responses; first stage n1 in "
          f"{list(config.first_sizes)}, second stage n2 in {list(config.second_sizes)} ({', '.join(config.orders)}; "
          f"{', '.join(m.upper() for m in config.methods)}); {config.seeds} seeds; 1 epoch per stage at learning "
          f"rate {config.second.learning_rate:g} (Adam, minibatches of {config.pretrain.batch_size}, "
          f"{config.first.batch_size}, {config.second.batch_size}). Score = probability of the first stage's "
          "behaviour, exact over every response; ± are 95% t-intervals over seeds.")


def step_for(experiment: str):
  """The reproduce step of one rebound-family experiment: run (or resume), draw, report."""

  def step(config) -> str:
    rebound, name = scale_config(experiment, config.scale, config.seed)
    summary = rebound_command.run_experiment(rebound, config.data / name, label=experiment)
    files = figure_rebound.draw(config.data, config.figures_dir, {experiment: name})
    lines = [f"## {TITLES[experiment]}", "", f"Command: `{COMMANDS[experiment]}`; run directory "
             f"`{config.data / name}`.", "", _describe(rebound), "", "Verdicts:", ""]
    lines += [f"- {line}" for line in summary["verdicts"]]
    lines += ["", "```", rebound_summary.format_summary(summary, rebound), "```", ""]
    lines += [f"![{path.stem}]({path.name})" for path in files]
    return "\n".join(lines) + "\n"

  step.__name__ = f"{experiment.replace('-', '_')}_step"
  step.__doc__ = f"Runs (or resumes) the {experiment} experiment, draws its figure and reports its verdicts."
  return step
