"""Per-fold calibration: each fold model's output put on one scale, fitted on the images it held out."""

from __future__ import annotations

import keras
import numpy as np
from sklearn.linear_model import LogisticRegression

# Probabilities are clipped before their logarithm (EPSILON): a saturated output (exactly 0
# or 1 in float32) would otherwise give an infinite feature.
from automl.models.layers import EPSILON, Calibration


def _features(scores: np.ndarray) -> np.ndarray:
    """The calibration's inputs: logit(p) for one probability per image, log(p) per class."""
    p = np.clip(np.asarray(scores, np.float64), EPSILON, 1 - EPSILON)
    return (np.log(p) - np.log1p(-p))[:, None] if p.ndim == 1 else np.log(p)


def identity(scores: np.ndarray) -> dict:
    """The calibration that changes nothing (a fold whose held-out images lack a class)."""
    k = 1 if np.ndim(scores) == 1 else np.shape(scores)[1]
    return {"coef": np.eye(k).tolist(), "intercept": [0.0] * k}


def fit(y: np.ndarray, scores: np.ndarray) -> dict:
    """Platt scaling (one probability: ``sigmoid(a * logit(p) + b)``) or its multiclass form
    (``softmax(log(p) @ W + b)``) fitted by logistic regression on one fold's held-out
    images and their re-acquisitions.

    Why: a fold model trains to a fixed epoch count with nothing to pick its epoch, so fold
    models of one configuration can rank their held-out images equally well while putting
    them on very different scales (the balanced thresholds of the three fold models of
    one run were 0.95, 0.76 and 0.13). Out-of-fold scores pooled across
    such folds rank worse than each fold does (out-of-fold AUC 0.939 beside per-fold
    0.970-0.989), and one threshold for their average means something different for each.
    This is scikit-learn's ``CalibratedClassifierCV(ensemble=True)``: each fold's model
    calibrated on its own held-out part, the calibrated models averaged.

    Returns:
        ``{"coef": (d, d) list, "intercept": (d,) list}`` (d = 1 for one probability, else
        the class count); :func:`identity` when ``y`` lacks a class.
    """
    y = np.asarray(y)
    x = _features(scores)
    k = max(x.shape[1], 2)
    if len(np.unique(y)) < k:
        return identity(scores)
    regression = LogisticRegression(C=1.0, max_iter=1000).fit(x, y)
    return {"coef": regression.coef_.T.tolist(), "intercept": regression.intercept_.tolist()}


def apply(scores: np.ndarray, params: dict) -> np.ndarray:
    """``scores`` calibrated by ``params`` (:func:`fit`), in the shape they came in."""
    z = _features(scores) @ np.asarray(params["coef"]) + np.asarray(params["intercept"])
    if np.ndim(scores) == 1:
        return (1.0 / (1.0 + np.exp(-z[:, 0]))).astype(np.float32)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return (z / z.sum(axis=1, keepdims=True)).astype(np.float32)


def calibrated(model: keras.Model, params: dict, *, name: str | None = None) -> keras.Model:
    """``model`` followed by its :class:`Calibration`: one Keras model, same inputs and
    output shape."""
    inputs = keras.Input(tuple(model.inputs[0].shape[1:]), name="image")
    layer = Calibration(params["coef"], params["intercept"], name="calibration", dtype="float32")
    outputs = layer(model(inputs))
    return keras.Model(inputs, outputs, name=name or f"{model.name}_calibrated")


def unwrapped(model: keras.Model) -> keras.Model:
    """The model inside a :func:`calibrated` wrapper, or ``model`` itself."""
    if any(isinstance(layer, Calibration) for layer in model.layers):
        return next(layer for layer in model.layers if isinstance(layer, keras.Model))
    return model
