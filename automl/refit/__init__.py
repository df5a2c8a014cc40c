"""The cross-validated refit: folds, fold models, weight averaging, calibration, TTA, out-of-fold
choices."""
