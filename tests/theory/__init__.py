"""Tests of theory/."""
