"""Anomaly scores: from an anomaly map (pixel, SSIM, worst patches), from the embedding
(distance to the normal training images), and z-scored sums of them."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter, uniform_filter
from sklearn.covariance import LedoitWolf
from sklearn.neighbors import NearestNeighbors

# Each a searched choice; "a+b" is the sum of the parts, each z-scored on normal images.
SCORES = ("pixel", "ssim", "patch", "knn", "mahalanobis", "patch+knn", "pixel+mahalanobis")
MAP_SCORES = ("pixel", "ssim", "patch")
FEATURE_SCORES = ("knn", "mahalanobis")
PATCH, PATCH_FRACTION = 8, 0.02  # worst 2% of 8×8 patches
KNN_K = 5


def parts(score: str) -> tuple[str, ...]:
    """The single scores a (possibly combined) score is made of."""
    names = tuple(score.split("+"))
    unknown = [n for n in names if n not in MAP_SCORES + FEATURE_SCORES]
    if unknown:
        raise ValueError(f"unknown anomaly score {score!r}; choose from {', '.join(SCORES)}")
    return names


def ssim_error_map(images: np.ndarray, predictions: np.ndarray, *, sigma: float = 1.5) -> np.ndarray:
    """(1 − SSIM) / 2 per pixel, (n, s, s): structure the prediction got wrong, less sensitive to
    a global brightness offset than the squared error. Inputs (n, s, s, 1) in [0, 1]."""
    x, y = images[..., 0].astype(np.float64), predictions[..., 0].astype(np.float64)
    def blur(a):
        return gaussian_filter(a, sigma=(0, sigma, sigma))

    mx, my = blur(x), blur(y)
    vx, vy, cov = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    ssim = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return ((1.0 - ssim) / 2.0).astype(np.float32)


def worst_patches(maps: np.ndarray, *, patch: int = PATCH, fraction: float = PATCH_FRACTION) -> np.ndarray:
    """Mean of the worst ``fraction`` of ``patch``-sized windows of each map (n,): a small focal
    opacity that an average over the whole chest would hide."""
    pooled = uniform_filter(maps.astype(np.float64), size=(1, patch, patch), mode="nearest")
    pooled = pooled[:, ::max(1, patch // 2), ::max(1, patch // 2)].reshape(len(maps), -1)
    k = max(1, int(round(fraction * pooled.shape[1])))
    return np.sort(pooled, axis=1)[:, -k:].mean(axis=1)


class FeatureDistance:
    """Distance of an embedding to the normal training images' embeddings: mean euclidean
    distance to the ``k`` nearest after standardising each dimension on them, or the
    Mahalanobis distance to their (shrunk) Gaussian."""

    def __init__(self, reference: np.ndarray, *, k: int = KNN_K):
        self.mean, self.scale = reference.mean(axis=0), np.maximum(reference.std(axis=0), 1e-6)
        self.k = min(k, len(reference) - 1)
        self.neighbours = NearestNeighbors(n_neighbors=self.k + 1).fit(self._standard(reference))
        self.gaussian = LedoitWolf().fit(reference)

    def _standard(self, embeddings: np.ndarray) -> np.ndarray:
        return (embeddings - self.mean) / self.scale

    def knn(self, embeddings: np.ndarray, *, leave_one_out: bool = False) -> np.ndarray:
        """Mean distance to the ``k`` nearest normal embeddings; ``leave_one_out`` for the
        reference images themselves (their nearest is themselves)."""
        distances, _ = self.neighbours.kneighbors(self._standard(embeddings))
        return distances[:, 1:].mean(axis=1) if leave_one_out else distances[:, :self.k].mean(axis=1)

    def mahalanobis(self, embeddings: np.ndarray) -> np.ndarray:
        return np.sqrt(np.maximum(self.gaussian.mahalanobis(embeddings), 0.0))


def single_scores(names: tuple[str, ...], *, maps: np.ndarray | None, ssim_maps: np.ndarray | None,
                  embeddings: np.ndarray | None, distance: FeatureDistance | None,
                  leave_one_out: bool = False) -> dict[str, np.ndarray]:
    """Each named single score per image (higher = more abnormal)."""
    out = {}
    for name in names:
        if name == "pixel":
            out[name] = maps.reshape(len(maps), -1).mean(axis=1)
        elif name == "patch":
            out[name] = worst_patches(maps)
        elif name == "ssim":
            if ssim_maps is None:
                raise ValueError("the ssim score needs a reconstruction; this model predicts a defect map")
            out[name] = ssim_maps.reshape(len(ssim_maps), -1).mean(axis=1)
        elif name == "knn":
            out[name] = distance.knn(embeddings, leave_one_out=leave_one_out)
        else:
            out[name] = distance.mahalanobis(embeddings)
    return out


def combine(values: dict[str, np.ndarray], normals: dict[str, np.ndarray]) -> np.ndarray:
    """One score: a single part as it is, several summed after z-scoring each on ``normals``
    (the same parts on normal training images), so that no part dominates by its unit."""
    if len(values) == 1:
        return next(iter(values.values())).astype(np.float64)
    total = np.zeros(len(next(iter(values.values()))))
    for name, value in values.items():
        ref = normals[name]
        total += (value - ref.mean()) / max(float(ref.std()), 1e-12)
    return total
