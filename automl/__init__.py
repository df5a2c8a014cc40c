"""cxr-automl: Keras Tuner AutoML benchmarks for pediatric chest X-ray classification."""

__version__ = "0.1.0"

import os as _os

# TensorFlow's C++ start-up chatter hides the progress output users read.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
