"""Rebound across source families (is the paper's Pareto assumption needed?): Pareto, Zipf, Dirichlet, Markov."""

from experiments.rebound import family_member
from experiments.rebound.figures import across_figure

EXPERIMENT = family_member(
    "families", "Rebound across source families (`elasticity simulate families`; open question)",
    "rebound across source families (Pareto, Zipf, Dirichlet, Markov): is the Pareto assumption needed?", __name__,
    across_figure("families.png", "family", lambda c: c["family"]))
