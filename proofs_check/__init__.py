"""Every claim of the elasticity theory, its assumptions and its evidence (symbolic steps, numeric checks).

Public API: run_all (what `elasticity check` and `elasticity reproduce` call), run_claim, CLAIMS, select,
ClaimResult and the status strings.
"""

from proofs_check.claims import BY_ID, CLAIMS, Claim, select
from proofs_check.run import (
    CONDITIONAL,
    FAILED,
    MEASURED,
    PROVEN,
    REFUTED,
    STATUSES,
    VERIFIED,
    ClaimResult,
    any_failed,
    run_all,
    run_claim,
)

__all__ = ["BY_ID", "CLAIMS", "CONDITIONAL", "FAILED", "MEASURED", "PROVEN", "REFUTED", "STATUSES",
           "VERIFIED", "Claim", "ClaimResult", "any_failed", "run_all", "run_claim", "select"]
