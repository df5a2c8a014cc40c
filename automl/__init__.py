"""cxr-automl: Keras Tuner AutoML benchmarks for pediatric chest X-ray classification."""

__version__ = "0.1.0"

import os as _os

# TensorFlow's C++ start-up chatter hides the progress output users read.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def load_model(path):
    """A run's ``best_model.keras`` (the model its test numbers describe, an ensemble as one
    model) with the toolkit's custom layers registered: ``automl.load_model(path)``."""
    import keras

    from automl import backbones  # noqa: F401  (registers the normalisation layers)
    from automl.anomaly import families  # noqa: F401  (registers MemoryUnit and ssim_loss)

    return keras.models.load_model(path, compile=False)
