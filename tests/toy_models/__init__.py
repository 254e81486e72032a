"""Tests of toy_models/."""
