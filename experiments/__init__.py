"""Experiments: one sub-package per experiment (config, run, summary, figures, report section), behind one registry."""
