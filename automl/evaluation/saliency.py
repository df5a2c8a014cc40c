"""Where a classifier looked: Grad-CAM and SmoothGrad maps, and a deletion test of their faithfulness."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from automl.refit import calibration, tta

METHODS = ("gradcam", "smoothgrad")
DELETION_STEPS = 10  # 0%, 10%, ... 100% of the pixels removed


def members(model: keras.Model) -> list[keras.Model]:
    """The models whose maps are averaged: an ensemble's members, or the model itself; a
    member with test-time augmentation is explained through the model it wraps, on the
    image as given (its maps of re-framed copies would not line up with the image), and a
    calibrated fold model (a refit's) through the model it calibrates: the maps are scaled
    to [0, 1], and a one-probability calibration only rescales the evidence."""
    nested = [layer.layers[0] for layer in model.layers if layer.name.startswith("member_")]
    return [tta.unwrapped(calibration.unwrapped(m)) for m in nested or [model]]


def pneumonia_probability(outputs, evaluation: str):
    """P(pneumonia) from a classifier's output: the sigmoid, or 1 − P(normal) of the softmax."""
    if isinstance(outputs, (list, tuple)):  # a model built with ``outputs=[head]`` (AutoKeras's)
        if len(outputs) != 1:
            raise ValueError(f"a classifier has one output; this model has {len(outputs)}")
        outputs = outputs[0]
    return outputs[:, 0] if evaluation == "binary" else 1.0 - outputs[:, 0]


def _last_feature_map(model: keras.Model) -> keras.layers.Layer:
    """The last layer with a spatial (4-D) output: where Grad-CAM reads the evidence."""
    spatial = [layer for layer in model.layers if len(layer.output.shape) == 4
               and not isinstance(layer, keras.layers.InputLayer)]
    if not spatial:
        raise ValueError(f"{model.name} has no spatial layer for Grad-CAM")
    return spatial[-1]


def gradcam(model: keras.Model, x: np.ndarray, *, evaluation: str) -> np.ndarray:
    """Grad-CAM maps (n, s, s) in [0, 1] of P(pneumonia), averaged over an ensemble's members.

    Args:
        x: model inputs, float (n, s, s, 1) in [0, 1].
    """
    maps = []
    for member in members(model):
        layer = _last_feature_map(member)
        probe = keras.Model(member.inputs, [layer.output, member.output])
        inputs = tf.convert_to_tensor(x, tf.float32)
        with tf.GradientTape() as tape:
            features, outputs = probe(inputs, training=False)
            target = pneumonia_probability(outputs, evaluation)
        grads = tape.gradient(target, features)
        weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
        cam = tf.nn.relu(tf.reduce_sum(weights * features, axis=-1, keepdims=True))
        maps.append(tf.image.resize(cam, x.shape[1:3]).numpy()[..., 0])
    return _unit(np.mean(maps, axis=0))


def smoothgrad(model: keras.Model, x: np.ndarray, *, evaluation: str, samples: int = 12,
               noise: float = 0.1, seed: int = 0) -> np.ndarray:
    """SmoothGrad maps (n, s, s) in [0, 1]: |∂ P(pneumonia) / ∂ pixel| averaged over noisy
    copies (and an ensemble's members).

    The pixel is the one the network reads: after the model's intensity normalisation
    (its ``standardize`` layer) when it has one, because histogram equalisation is a rank
    transform without a gradient with respect to the raw grey levels.
    """
    rng = np.random.default_rng(seed)
    total = np.zeros(x.shape[:3], np.float32)
    parts = members(model)
    for _ in range(samples):
        noisy = tf.convert_to_tensor(np.clip(x + rng.normal(0, noise, x.shape), 0, 1), tf.float32)
        for member in parts:
            try:
                normalize = member.get_layer("standardize")
            except ValueError:
                pixels, rest = noisy, member
            else:
                # The rest of the network from the normalised image on: its gradient is
                # defined where the normalisation's own is not.
                pixels, rest = normalize(noisy), keras.Model(normalize.output, member.output)
            with tf.GradientTape() as tape:
                tape.watch(pixels)
                target = pneumonia_probability(rest(pixels, training=False), evaluation)
            total += np.abs(tape.gradient(target, pixels).numpy()[..., 0]) / len(parts)
    return _unit(total / samples)


def saliency_maps(model: keras.Model, x: np.ndarray, *, evaluation: str, method: str = "gradcam"):
    if method not in METHODS:
        raise ValueError(f"unknown saliency method {method!r}; choose {' or '.join(METHODS)}")
    return (gradcam if method == "gradcam" else smoothgrad)(model, x, evaluation=evaluation)


def _unit(maps: np.ndarray) -> np.ndarray:
    low = maps.min(axis=(1, 2), keepdims=True)
    return (maps - low) / np.maximum(maps.max(axis=(1, 2), keepdims=True) - low, 1e-12)


def deletion_curve(model: keras.Model, x: np.ndarray, order_maps: np.ndarray, *, evaluation: str,
                   steps: int = DELETION_STEPS) -> np.ndarray:
    """Mean P(pneumonia) as the pixels are deleted (set to the image's mean) in the order of
    ``order_maps`` (highest first), at 0, 1/steps, ..., 100% deleted: (steps + 1,)."""
    n, size = len(x), x.shape[1] * x.shape[2]
    ranking = np.argsort(-order_maps.reshape(n, -1), axis=1, kind="stable")
    flat, fill = x.reshape(n, -1).copy(), x.reshape(n, -1).mean(axis=1, keepdims=True)
    deleted, done = [], 0
    for step in range(steps + 1):
        upto = int(round(step / steps * size))
        rows = np.repeat(np.arange(n), upto - done)
        flat[rows, ranking[:, done:upto].reshape(-1)] = np.repeat(fill[:, 0], upto - done)
        done = upto
        deleted.append(flat.reshape(x.shape).copy())
    # One prediction over every step's images: a predict call per step cost more in
    # set-up than in the model.
    outputs = model.predict(np.concatenate(deleted), batch_size=64, verbose=0)
    p = np.asarray(pneumonia_probability(outputs, evaluation)).reshape(steps + 1, n)
    return p.mean(axis=1).astype(float)


def faithfulness(model: keras.Model, x: np.ndarray, *, evaluation: str, method: str = "gradcam",
                 seed: int = 0) -> dict:
    """The deletion test: the area under the deletion curve when the most salient pixels go
    first, against random deletion order. A faithful map makes P(pneumonia) fall sooner:
    ``random_area − saliency_area`` > 0 (the target is ≥ 0.1)."""
    maps = saliency_maps(model, x, evaluation=evaluation, method=method)
    random_maps = np.random.default_rng(seed).random(maps.shape)
    salient = deletion_curve(model, x, maps, evaluation=evaluation)
    random = deletion_curve(model, x, random_maps, evaluation=evaluation)

    def area(curve: np.ndarray) -> float:
        return float(np.trapezoid(curve, dx=1.0 / (len(curve) - 1)))

    return {"method": method, "images": int(len(x)), "saliency_area": area(salient),
            "random_area": area(random), "difference": area(random) - area(salient),
            "saliency_curve": salient.round(6).tolist(), "random_curve": random.round(6).tolist()}


def panel_picks(y: np.ndarray, predicted: np.ndarray, *, per_kind: int = 2) -> list[tuple[str, int]]:
    """A few test images of each outcome, pneumonia vs normal: (kind, index) for true
    positives, false positives, false negatives and true negatives, in that order."""
    truth, call = y != 0, predicted != 0
    kinds = {"true positive": truth & call, "false positive": ~truth & call,
             "false negative": truth & ~call, "true negative": ~truth & ~call}
    return [(kind, int(i)) for kind, mask in kinds.items() for i in np.flatnonzero(mask)[:per_kind]]
