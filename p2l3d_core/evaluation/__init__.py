"""Metrics and baselines for comparing methods."""
