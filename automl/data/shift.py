"""Shift validation: validation images re-acquired under simulated exposure, blur and framing changes."""

from __future__ import annotations

from dataclasses import dataclass

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


COPIES = 2  # simulated re-acquisitions of each validation image


def shifted_copies(images: np.ndarray, *, copies: int = COPIES, seed: int = 0) -> np.ndarray:
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


@dataclass(frozen=True)
class SelectionSet:
    """The images every choice of a run is made on: validation, followed under shift
    validation by its simulated re-acquisitions (whole copies, in the same order).

    Built once per run (:meth:`build`) and handed to training (the per-epoch
    objective), scoring (ensemble, threshold, class weights) and the embeddings
    benchmark (KNN choices), so all of them see the same pooled set.
    """

    images: np.ndarray  # uint8 (n_clean * (1 + copies), S, S, 1)
    labels: np.ndarray  # integer class per image, lined up with ``images``
    n_clean: int  # the first ``n_clean`` images are the validation split itself

    @classmethod
    def build(cls, images: np.ndarray, labels: np.ndarray, *, shifted: bool,
              seed: int = 0) -> "SelectionSet":
        """Validation alone, or pooled with :func:`shifted_copies` of it (seeded: every
        trial and every later command sees the same copies)."""
        labels = np.asarray(labels)
        if len(labels) != len(images):
            raise ValueError(f"{len(labels)} labels for {len(images)} validation images")
        if not shifted:
            return cls(images, labels, len(images))
        copies = shifted_copies(images, seed=seed)
        repeats = 1 + (len(copies) // len(images) if len(images) else 0)
        return cls(np.concatenate([images, copies]), np.concatenate([labels] * repeats), len(images))

    @property
    def shifted(self) -> bool:
        """Whether simulated re-acquisitions are pooled in."""
        return len(self.images) > self.n_clean

    @property
    def clean_images(self) -> np.ndarray:
        return self.images[:self.n_clean]

    @property
    def clean_labels(self) -> np.ndarray:
        return self.labels[:self.n_clean]
