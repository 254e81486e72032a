"""The REPORT.md section of the resistance experiment (paper Table 1 and Appendix Table 2 at toy scale)."""

from __future__ import annotations

from experiments.resistance import summary as resistance_summary
from experiments.resistance.config import PAIRS, ResistanceConfig
from toy_models.models import build_model


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


def report(config: ResistanceConfig, summary: dict, context) -> str:
  """The section: the config in words, the verdict lines, mean KLs, the table and the figure."""
  lines = [f"Paper Table 1 and Appendix Table 2 at toy scale. {describe(config)}", "", "Verdicts:", ""]
  lines += context.verdicts(summary)
  kl = summary.get("statistics", {}).get("mean_kl")
  if kl:
    lines += ["", f"Mean KL(target ‖ model) over every cell and seed, nats per response: forward "
                  f"{kl['forward_before_nats']:.4f} → {kl['forward_after_nats']:.4f}, inverse "
                  f"{kl['inverse_before_nats']:.4f} → {kl['inverse_after_nats']:.4f}."]
  lines += ["", "```", resistance_summary.format_summary({**summary, "verdicts": []}, config), "```", ""]
  return "\n".join(lines + context.links()) + "\n"
