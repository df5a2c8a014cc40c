"""Shift validation: validation images re-acquired under simulated exposure, blur and framing changes."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

# Per-image ranges of the simulated acquisition changes. Wide enough to move a
# model that keys on exposure or framing, mild enough that a radiologist would
# read every perturbed image the same way.
GAMMA = (0.6, 1.67)  # log-uniform: darker and brighter exposures
CONTRAST = (0.6, 1.3)  # around the image mean
BLUR_PROBABILITY = 0.5
BLUR_SCALE = (0.5, 0.8)  # down-sample to this fraction and back up: a lower-resolution detector
FRAME_SCALE = (0.8, 1.05)  # height and width scaled independently: another crop and aspect ratio


def shifted_copies(images: np.ndarray, *, copies: int = 2, seed: int = 0) -> np.ndarray:
    """``copies`` perturbed versions of ``images`` (uint8, N×S×S×1), stacked copy after copy.

    Each image gets its own random exposure (gamma), contrast, optional blur and
    framing, drawn from a generator seeded with ``seed``: the same validation set
    always gives the same shifted set, so trials are compared on equal terms.

    Returns:
        uint8 array of shape ``(copies * N, S, S, 1)``.
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 1 or images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 of shape (N, S, S, 1), got {images.dtype} {images.shape}")
    rng = np.random.default_rng(seed)
    return np.concatenate([_perturb(images, rng) for _ in range(copies)]) if len(images) else \
        images[:0]


def _perturb(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    n, size = len(images), images.shape[1]
    x = images.astype(np.float32) / 255.0
    gamma = np.exp(rng.uniform(*np.log(GAMMA), n)).astype(np.float32)[:, None, None, None]
    x = x ** gamma
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    contrast = rng.uniform(*CONTRAST, n).astype(np.float32)[:, None, None, None]
    x = np.clip((x - mean) * contrast + mean, 0.0, 1.0)
    out = np.empty_like(x)
    for i in range(n):
        image = tf.constant(x[i])
        if rng.random() < BLUR_PROBABILITY:
            low = max(8, int(size * rng.uniform(*BLUR_SCALE)))
            image = tf.image.resize(tf.image.resize(image, (low, low), antialias=True), (size, size))
        height, width = (max(8, int(size * rng.uniform(*FRAME_SCALE))) for _ in range(2))
        image = tf.image.resize(image, (height, width), antialias=True)
        # Larger than the frame: crop the centre; smaller: pad with black, as a detector would.
        image = tf.image.resize_with_crop_or_pad(image, size, size)
        out[i] = image.numpy()
    return np.clip(np.round(out * 255.0), 0, 255).astype(np.uint8)


def pooled(images: np.ndarray, shifted: np.ndarray | None) -> np.ndarray:
    """Validation images followed by their shifted copies (or the images alone)."""
    return images if shifted is None else np.concatenate([images, shifted])


def pooled_labels(labels: np.ndarray, images: np.ndarray, shifted: np.ndarray | None) -> np.ndarray:
    """Labels lined up with :func:`pooled` (the copies repeat the originals' order)."""
    if shifted is None:
        return labels
    copies, rest = divmod(len(shifted), max(len(images), 1))
    if rest:
        raise ValueError(f"{len(shifted)} shifted images are not whole copies of {len(images)}")
    return np.concatenate([labels] * (1 + copies))
