"""The `elasticity` console command: parses, calls experiments and proofs_check, prints (no logic of its own)."""
