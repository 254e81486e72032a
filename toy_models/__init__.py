"""Toy language models trained with JAX and optax on synthetic multi-dataset mixtures (float64 by default)."""

import jax

# Theory and simulation are compared in float64; models may still be run in float32 (ModelConfig.dtype).
jax.config.update("jax_enable_x64", True)
