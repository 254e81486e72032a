"""The rebound family (paper Fig. 4-6, Appendix Table 3): align, then fine-tune on the opposite behaviour.

This package holds the shared code (config, runs, summary, figures, report); this experiment is `rebound` itself.
Its siblings model_size, pretrain_volume and families are experiments of the same code with their own scales.
"""

import functools

from experiments.protocol import Experiment
from experiments.rebound import config, figures, report, run, summary


def validate(rebound: config.ReboundConfig) -> None:
  """Draws every family's sources once, so that a bad parameter fails before anything is written."""
  for family in rebound.families:
    rebound.sources(family, 0)


def family_member(name: str, title: str, help_text: str, package: str, draw) -> Experiment:
  """An experiment of the rebound family: the shared code with its own name, scales, figure and confirmatory tests
  (summary.CONFIRMATORY[name])."""
  summarize = functools.partial(summary.summarize, confirmatory=summary.CONFIRMATORY[name])
  return Experiment(name=name, title=title, help=help_text, config_class=config.ReboundConfig, package=package,
                    units=run.units, run_unit=run.run_unit, summarize=summarize,
                    format_summary=summary.format_summary, figures=draw, report=report.report, validate=validate)


EXPERIMENT = family_member(
    "rebound", "Rebound (`elasticity simulate rebound`; paper Fig. 4, Appendix Table 3)",
    "rebound (paper Fig. 4, Table 3): align on positives, fine-tune on negatives (SFT and DPO, both orders)",
    __name__, figures.draw_rebound_figures)
