"""Synthetic local defects in normal images, and their masks: what the ``defect`` family learns to find.

No pneumonia image is used: the defects are a patch pasted from another normal image, a
blended blob, or a local change of intensity, at a random place inside the chest.
"""

from __future__ import annotations

import math

import keras
import numpy as np

KINDS = ("paste", "blob", "intensity")


def add_defect(image: np.ndarray, donor: np.ndarray,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One defective copy of ``image`` (s, s, 1) in [0, 1] and its mask (s, s, 1) in {0, 1}."""
    size = image.shape[0]
    h, w = (int(v) for v in rng.integers(max(2, size // 10), max(3, size // 4), 2))
    top = int(rng.integers(int(0.15 * size), max(int(0.15 * size) + 1, int(0.85 * size) - h)))
    left = int(rng.integers(int(0.15 * size), max(int(0.15 * size) + 1, int(0.85 * size) - w)))
    out, mask = image.copy(), np.zeros_like(image)
    kind = KINDS[int(rng.integers(len(KINDS)))]
    if kind == "paste":
        sy, sx = int(rng.integers(0, size - h + 1)), int(rng.integers(0, size - w + 1))
        out[top:top + h, left:left + w] = donor[sy:sy + h, sx:sx + w]
        mask[top:top + h, left:left + w] = 1.0
    elif kind == "blob":
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
        cy, cx = top + h / 2, left + w / 2
        blob = np.exp(-(((yy - cy) / (h / 2)) ** 2 + ((xx - cx) / (w / 2)) ** 2))[..., None]
        amplitude = rng.uniform(0.15, 0.4) * rng.choice([-1.0, 1.0])
        out = np.clip(out + amplitude * blob, 0.0, 1.0)
        mask = (blob > 0.3).astype(np.float32)
    else:
        factor = rng.uniform(0.6, 0.85) if rng.random() < 0.5 else rng.uniform(1.15, 1.5)
        region = out[top:top + h, left:left + w]
        out[top:top + h, left:left + w] = np.clip(region * factor, 0.0, 1.0)
        mask[top:top + h, left:left + w] = 1.0
    return out.astype(np.float32), mask.astype(np.float32)


def defect_set(images: np.ndarray, *, seed: int,
               clean_fraction: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """A fixed set: each image (n, s, s, 1) in [0, 1] kept clean (empty mask) or given one defect."""
    rng = np.random.default_rng(seed)
    x, masks = images.astype(np.float32).copy(), np.zeros_like(images, dtype=np.float32)
    for i in range(len(images)):
        if rng.random() >= clean_fraction:
            donor = images[int(rng.integers(len(images)))]
            x[i], masks[i] = add_defect(images[i], donor, rng)
    return x, masks


class DefectBatches(keras.utils.PyDataset):
    """Training batches ``(images, masks)`` with fresh random defects every epoch."""

    def __init__(self, images: np.ndarray, *, batch_size: int, seed: int, clean_fraction: float = 0.5,
                 **kwargs):
        super().__init__(**kwargs)
        self.images, self.batch_size, self.seed = images.astype(np.float32), batch_size, seed
        self.clean_fraction, self.epoch = clean_fraction, 0
        self.order = np.random.default_rng(seed).permutation(len(images))

    def __len__(self) -> int:
        return math.ceil(len(self.images) / self.batch_size)

    def __getitem__(self, index: int):
        rows = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        return defect_set(self.images[rows], seed=self.seed + 7919 * self.epoch + index,
                          clean_fraction=self.clean_fraction)

    def on_epoch_end(self):
        self.epoch += 1
        self.order = np.random.default_rng(self.seed + self.epoch).permutation(len(self.images))
