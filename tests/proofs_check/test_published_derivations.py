"""The published claims record shows the symbolic derivations the code gives now, step by step."""

import pathlib

from experiments import records
from proofs_check import claims, run

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_published_symbolic_steps_are_the_current_derivations():
  # A derivation changed in theory/symbolic.py (its text, relation or verdict) without `elasticity reproduce
  # --publish` leaves figures/data/claims.json describing a proof the code no longer gives.
  saved = records.read_json(ROOT / "figures" / "data" / "claims.json")
  by_id = {claim.id: claim for claim in claims.CLAIMS}
  assert {record["id"] for record in saved["claims"]} == set(by_id)
  checked = 0
  for record in saved["claims"]:
    assert record["symbolic_steps"] == run.symbolic_steps(by_id[record["id"]]), record["id"]
    checked += len(record["symbolic_steps"])
  assert checked >= 20  # the derivations of claims 1a to 10, not an empty record
