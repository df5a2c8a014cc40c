"""Test-time augmentation: a model's output averaged over mild re-acquisitions of the same image."""

from __future__ import annotations

import keras
from keras import layers

# Mild, and each one a change of acquisition a reader would ignore: a darker and a
# brighter exposure, a slightly tighter framing. Never a horizontal flip (the heart is
# on the left).
EXPOSURES = (0.8, 1.25)
ZOOM = 0.9
VARIANTS = 1 + len(EXPOSURES) + 1  # the image, its exposures, its tighter framing


@keras.saving.register_keras_serializable(package="automl")
class Exposure(layers.Layer):
    """``x ** gamma`` on images in [0, 1]: another exposure of the same film."""

    def __init__(self, gamma: float, **kwargs):
        super().__init__(**kwargs)
        self.gamma = float(gamma)

    def call(self, inputs):
        return keras.ops.power(keras.ops.clip(inputs, 0.0, 1.0), self.gamma)

    def get_config(self):
        return {**super().get_config(), "gamma": self.gamma}


@keras.saving.register_keras_serializable(package="automl")
class CenterZoom(layers.Layer):
    """The central ``fraction`` of the image, resized back to full size: a tighter framing."""

    def __init__(self, fraction: float, **kwargs):
        super().__init__(**kwargs)
        self.fraction = float(fraction)

    def call(self, inputs):
        size = inputs.shape[1]
        margin = int(round(size * (1 - self.fraction) / 2))
        crop = inputs[:, margin:size - margin, margin:size - margin, :]
        return keras.ops.image.resize(crop, (size, inputs.shape[2]))

    def get_config(self):
        return {**super().get_config(), "fraction": self.fraction}


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
