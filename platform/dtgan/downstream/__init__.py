"""Downstream study: timm defect classifiers trained on real, oversampled or synthetic-balanced sets."""
