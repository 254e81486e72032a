"""A claim's simulated evidence is read, not recomputed, from the published runs' verdicts."""

import pytest

from experiments import paths, records
from proofs_check import claims, simulated


def test_claim_4_shows_the_published_joint_slopes_of_hooke():
  if paths.published_data() is None:
    pytest.skip("not a checkout")
  found = simulated.evidence((("hooke", "tabular/joint"), ("hooke", "ngram/joint")))
  saved = {v["key"]: v for v in records.read_json(paths.published_data() / "hooke" / "summary.json")["summary"]
           ["verdicts"]}
  assert [v["key"] for v in found["verdicts"]] == ["tabular/joint", "ngram/joint"]
  for v in found["verdicts"]:
    assert v["estimate"] == saved[v["key"]]["effect"]["estimate"] and v["consistency_check"]
    assert v["ci"] == [saved[v["key"]]["effect"]["ci_low"], saved[v["key"]]["effect"]["ci_high"]]
  assert "simulated: hooke:tabular/joint" in simulated.text(found)
  assert claims.BY_ID["4"].simulated_evidence() == found


def test_unknown_experiments_and_missing_runs():
  with pytest.raises(ValueError, match="unknown experiment 'nope'"):
    simulated.evidence((("nope", "x"),))
  assert simulated.evidence((("hooke", "no such key"),))["verdicts"] == []
  assert simulated.text(None) == "" and simulated.text({"verdicts": []}) == ""
