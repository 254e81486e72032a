"""Toy language models trained with JAX and optax on synthetic multi-dataset mixtures."""
