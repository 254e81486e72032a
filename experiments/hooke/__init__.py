"""Hooke's law in trained toy models: Δγ_a / Δγ_p against k in the joint and the sequential regime."""

from experiments.hooke import config, figures, report, run, summary
from experiments.protocol import Experiment


def _validate(hooke: config.HookeConfig) -> None:
  try:
    hooke.source(0).probabilities()  # draws the sources once: a bad family parameter fails here, before any write
  except ValueError as error:
    raise ValueError(f"param={hooke.param!r} of family {hooke.family!r}: {error}") from None


EXPERIMENT = Experiment(
    name="hooke", title="Simulated Hooke's law (`elasticity simulate hooke`)",
    help="Hooke's law in trained toy models: slope of log|Δγ_a/Δγ_p| on log k, joint and sequential regimes",
    config_class=config.HookeConfig, package=__name__, units=run.units, run_unit=run.run_unit,
    summarize=summary.summarize, format_summary=summary.format_summary, figures=figures.draw, report=report.report,
    validate=_validate)
