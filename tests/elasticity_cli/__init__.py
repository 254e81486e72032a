"""Tests of elasticity_cli/."""
