"""cxr-automl: Keras Tuner AutoML benchmarks for pediatric chest X-ray classification."""

# Semantic versioning; each release is the git tag v<version> (CHANGELOG.md says what changed).
__version__ = "0.9.0"

import os as _os

# TensorFlow's C++ start-up chatter hides the progress output users read.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def load_model(path):
    """A run's ``best_model.keras`` with the toolkit's custom layers registered:
    ``automl.load_model(path)``. For a classifier it is the model its test numbers describe
    (an ensemble as one model); for the anomaly task it is the trained model, whose
    anomaly score also depends on the run's score choice and the normal training images."""
    import keras

    from automl.models import layers  # noqa: F401  (registers every custom layer and loss)

    return keras.models.load_model(path, compile=False)
