"""Test-time augmentation: a model's output averaged over mild re-acquisitions of the same image."""

from __future__ import annotations

import keras
from keras import layers

from automl.models.layers import CenterZoom, Exposure

# Mild, and each one a change of acquisition a reader would ignore: a darker and a
# brighter exposure, a slightly tighter framing. Never a horizontal flip (the heart is
# on the left).
EXPOSURES = (0.8, 1.25)
ZOOM = 0.9
VARIANTS = 1 + len(EXPOSURES) + 1  # the image, its exposures, its tighter framing


def with_tta(model: keras.Model, *, name: str | None = None) -> keras.Model:
    """``model`` applied to the image and its re-acquisitions, outputs averaged: one Keras
    model with the same inputs and outputs as ``model``."""
    inputs = keras.Input(tuple(model.inputs[0].shape[1:]), name="image")
    variants = [inputs, *(Exposure(g, name=f"exposure_{i}", dtype="float32")(inputs)
                          for i, g in enumerate(EXPOSURES)),
                CenterZoom(ZOOM, name="zoom", dtype="float32")(inputs)]
    outputs = [model(v) for v in variants]
    return keras.Model(inputs, layers.Average(name="tta_average", dtype="float32")(outputs),
                       name=name or f"{model.name}_tta")


def unwrapped(model: keras.Model) -> keras.Model:
    """The model inside a :func:`with_tta` wrapper, or ``model`` itself."""
    if any(layer.name == "tta_average" for layer in model.layers):
        return next(layer for layer in model.layers if isinstance(layer, keras.Model))
    return model
