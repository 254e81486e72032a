"""The theory figures: Hooke's law of the exact mixture, the ratio against k, Huffman against entropy."""

from experiments.protocol import Experiment
from experiments.theory_figures import figures, run, summary
from theory import hooke_curves

EXPERIMENT = Experiment(
    name="theory", title="Theory figures (exact size-weighted mixtures)",
    help="exact theory curves: Hooke's law of the mixture, ratio against k, Huffman against entropy",
    config_class=hooke_curves.TheoryFiguresConfig, package=__name__, units=run.units, run_unit=run.run_unit,
    summarize=summary.summarize, format_summary=summary.format_summary, figures=figures.draw, report=summary.report)
