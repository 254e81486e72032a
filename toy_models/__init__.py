"""Toy language models on token trees (tabular, n-gram, transformer), their training loop and exact metrics.

Nothing here changes JAX's global configuration: entry points (the `elasticity` command, the tests) enable float64
with jax.config.update("jax_enable_x64", True); functions that compare with theory check that it is on.
"""
