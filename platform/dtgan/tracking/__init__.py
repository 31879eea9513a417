"""Tracking: the MLflow backend (the only MLflow import), provenance, and the comparison reports."""
