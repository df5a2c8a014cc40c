"""A small generated chest-X-ray-like set in the Kaggle layout, for tests and the offline demo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

SIZE = 96
BANNER = (
    "*** SYNTHETIC DATA: these images are generated shapes, not X-rays; results mean "
    "nothing clinically. For the real data: set DATA=/path/to/chest_xray (or CXR_DATA_DIR), "
    "or run `make data` with Kaggle credentials, or `automl data download --archive "
    "chest-xray-pneumonia.zip`. ***"
)


def _chest(rng: np.random.Generator, size: int) -> tuple[np.ndarray, list[tuple]]:
    """A body silhouette with two dark lung fields; returns the image and the lung ellipses."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    image = 0.55 + 0.1 * rng.standard_normal() - 0.25 * ((xx - 0.5) ** 2 + (yy - 0.55) ** 2)
    lungs = []
    for side in (-1, 1):
        cx = 0.5 + side * (0.2 + 0.02 * rng.standard_normal())
        cy, rx, ry = 0.5 + 0.02 * rng.standard_normal(), 0.13, 0.3
        inside = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 < 1
        image = np.where(inside, image - 0.35, image)
        lungs.append((cx, cy, rx, ry))
    image = np.where(np.abs(xx - 0.5) < 0.04, image + 0.25, image)  # spine and mediastinum
    return image, lungs


def render(kind: str, rng: np.random.Generator, size: int = SIZE) -> np.ndarray:
    """One uint8 image of ``kind``: ``normal`` (clear lungs), ``bacteria`` (one dense
    lobar opacity) or ``virus`` (diffuse streaky opacities in both lungs)."""
    image, lungs = _chest(rng, size)
    yy, xx = np.mgrid[0:size, 0:size] / size
    if kind == "bacteria":
        cx, cy, rx, ry = lungs[rng.integers(2)]
        ox, oy = cx + 0.3 * rx * rng.standard_normal(), cy + ry * rng.uniform(-0.4, 0.5)
        blob = np.exp(-(((xx - ox) / 0.08) ** 2 + ((yy - oy) / 0.12) ** 2))
        image = image + 0.5 * blob
    elif kind == "virus":
        for cx, cy, rx, ry in lungs:
            inside = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 < 1
            angle = rng.uniform(0, np.pi)
            streaks = np.sin(20 * (xx * np.cos(angle) + yy * np.sin(angle)) + rng.uniform(0, 6))
            image = image + np.where(inside, 0.25 * (streaks > 0.3), 0)
    image = image + 0.03 * rng.standard_normal(image.shape)
    return (np.clip(image, 0, 1) * 255).astype(np.uint8)


def write_synthetic(out: Path | str, *, per_class: int = 40, seed: int = 0, size: int = SIZE) -> Path:
    """Write ``out/{train,val,test}/{NORMAL,PNEUMONIA}/`` with Kaggle-style names.

    Each patient has two images, so the patient-grouped split has work to do.
    ``per_class`` images per class go to train, a quarter as many to test, and
    two patients per class to val (like the tiny official val split).

    Returns:
        ``out``, the folder to pass as ``--data``.
    """
    out = Path(out)
    rng = np.random.default_rng(seed)
    counts = {"train": per_class, "val": 4, "test": max(4, per_class // 4)}
    patient = 0
    for split, n in counts.items():
        for kind in ("normal", "bacteria", "virus"):
            label = "NORMAL" if kind == "normal" else "PNEUMONIA"
            folder = out / split / label
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                if i % 2 == 0:
                    patient += 1
                if kind == "normal":
                    prefix = "NORMAL2-IM" if patient % 3 == 0 else "IM"
                    name = f"{prefix}-{patient:04d}-{i % 2 + 1:04d}.jpeg"
                else:
                    name = f"person{patient}_{kind}_{i}.jpeg"
                Image.fromarray(render(kind, rng, size), mode="L").save(folder / name, quality=92)
    return out
