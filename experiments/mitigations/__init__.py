"""The mitigations testbed: which defences keep alignment from springing back, by how much, at what cost, where they
break, and does the theory predict it (`elasticity simulate mitigations`)."""

from experiments.mitigations import config, figures, report, run, summary
from experiments.protocol import Experiment


def validate(mitigations: config.MitigationsConfig) -> None:
  """Draws every seed's sources and corrector pairs once, so that a bad parameter fails before anything is written."""
  mitigations.sources(0)


EXPERIMENT = Experiment(
    name="mitigations", title="Mitigations testbed (`elasticity simulate mitigations`)",
    help="defences against the rebound (replay, KL anchors, constrained SFT, Lisa, Booster, Vaccine, Aligner): "
         "half-life gains, costs, breaking points, theory checks",
    config_class=config.MitigationsConfig, package=__name__, units=run.units, run_unit=run.run_unit,
    summarize=summary.summarize, format_summary=summary.format_summary, figures=figures.draw, report=report.report,
    validate=validate)
