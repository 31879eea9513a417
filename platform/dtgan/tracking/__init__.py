"""Tracking: run provenance, the MLflow backend (the only MLflow import) and reports."""
