"""Per-image intensity before an anomaly model: as recorded, contrast stretch, histogram equalisation."""

from __future__ import annotations

import keras
import numpy as np


def stretch_contrast(images: np.ndarray, *, low: float = 1.0, high: float = 99.0) -> np.ndarray:
    """Map each image's ``low``..``high`` intensity percentiles to 0..255 (uint8 in, uint8 out).

    Reconstruction error is sensitive to global exposure and contrast, which is
    where the official test split differs from train; stretching each image to
    its own range removes that before the autoencoder sees it.
    """
    flat = images.reshape(len(images), -1).astype(np.float32)
    lo, hi = np.percentile(flat, [low, high], axis=1)
    scaled = (flat - lo[:, None]) / np.maximum(hi - lo, 1.0)[:, None]
    return (np.clip(scaled, 0, 1) * 255).round().astype(np.uint8).reshape(images.shape)


def equalize_histogram(images: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
    """Per-image histogram equalisation (uint8 in, uint8 out): each grey level becomes its
    rank in the image, so no monotone exposure change survives. The same transform as the
    classifiers' ``equalize`` input layer, here applied before the images are stored."""
    from automl.models.layers import HistogramEqualization

    layer, parts = HistogramEqualization(), []
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size].astype(np.float32) / 255.0
        standardized = keras.ops.convert_to_numpy(layer(x))
        parts.append(standardized / np.sqrt(12.0) + 0.5)  # back to [0, 1]
    out = np.concatenate(parts) if parts else np.zeros(images.shape, np.float32)
    return np.clip(np.round(out * 255.0), 0, 255).astype(np.uint8)


INTENSITY = {"raw": lambda images: images, "stretch": stretch_contrast, "equalize": equalize_histogram}


def prepare_intensity(images: np.ndarray, intensity: str) -> np.ndarray:
    """``images`` (uint8) under the named normalisation (:data:`INTENSITY`)."""
    return INTENSITY[intensity](images)

