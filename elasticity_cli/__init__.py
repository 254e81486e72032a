"""The `elasticity` console command: a thin layer over theory, toy_models and proofs_check."""
