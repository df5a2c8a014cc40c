"""The cross-validated refit: folds, fold models, weight averaging, calibration, TTA and out-of-fold choices."""
