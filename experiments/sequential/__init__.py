"""The sequential study: does fine-tuning undo alignment k times faster when models are trained stage by stage?"""

from experiments.protocol import Experiment
from experiments.sequential import config, figures, report, run, summary


def _validate(sequential: config.SequentialConfig) -> None:
  try:
    sequential.source(0).probabilities()  # draws the sources once: a bad family parameter fails here, before any write
  except ValueError as error:
    raise ValueError(f"param={sequential.param!r} of family {sequential.family!r}: {error}") from None


EXPERIMENT = Experiment(
    name="sequential", title="Sequential training against the −k law (`elasticity simulate sequential`)",
    help="joint optimum vs sequential pre-train/align/fine-tune: slopes of log|Δγ_a/Δγ_p| on log k, replay, theory",
    config_class=config.SequentialConfig, package=__name__, units=run.units, run_unit=run.run_unit,
    summarize=summary.summarize, format_summary=summary.format_summary, figures=figures.draw, report=report.report,
    validate=_validate)
