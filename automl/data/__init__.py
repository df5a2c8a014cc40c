"""Data layer: index, splits, tf.data pipeline, Kaggle download, synthetic set."""
