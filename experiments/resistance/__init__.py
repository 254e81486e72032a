"""Resistance (paper Table 1): forward against inverse alignment between SFT checkpoints of toy transformers."""

from experiments.protocol import Experiment
from experiments.resistance import config, figures, report, run, summary


def _validate(resistance: config.ResistanceConfig) -> None:
  for dataset in resistance.datasets:  # draws every source once: bad parameters fail before any write
    resistance.source(dataset, 0)


EXPERIMENT = Experiment(
    name="resistance", title="Resistance (`elasticity simulate resistance`; paper Table 1)",
    help="resistance (paper Table 1): forward vs inverse alignment between SFT checkpoints θ1..θ3",
    config_class=config.ResistanceConfig, package=__name__, units=run.units, run_unit=run.run_unit,
    summarize=summary.summarize, format_summary=summary.format_summary, figures=figures.draw, report=report.report,
    validate=_validate)
