"""Anomaly detection trained on normal images only: model families, synthetic defects, scores."""
