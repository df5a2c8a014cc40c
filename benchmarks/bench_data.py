"""Input-pipeline throughput: our decode-once cache vs keras.utils.image_dataset_from_directory."""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import keras
import numpy as np

from automl import records
from automl.data import index
from automl.data.pipeline import load_images, make_dataset
from automl.settings.labels import is_positive


def images_per_second(dataset, n_images: int) -> float:
    started = time.perf_counter()
    for _ in dataset:
        pass
    return n_images / (time.perf_counter() - started)


def measure(data: Path, image_size: int = 128, batch_size: int = 32, epochs: int = 3) -> dict:
    """Images/s of the first (decoding) and a later (cached) epoch for both loaders, same run."""
    table = index.scan(data).split("train")
    os.environ["CXR_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench-cache-")  # a cold cache
    try:
        started = time.perf_counter()
        images = load_images(table.path, image_size, progress=False)
        labels = is_positive(table.label, np.float32)
        ours = make_dataset(images, labels, batch_size=batch_size, training=True)
        for _ in ours:  # the first epoch = decoding everything + one pass
            pass
        first = len(table) / (time.perf_counter() - started)
        cached = [images_per_second(ours, len(table)) for _ in range(epochs - 1)]
        # A second search at the same size reads the on-disk cache instead of decoding.
        started = time.perf_counter()
        load_images(table.path, image_size, progress=False)
        disk_cache_load = len(table) / (time.perf_counter() - started)
    finally:
        shutil.rmtree(os.environ.pop("CXR_CACHE_DIR"), ignore_errors=True)
    keras_ds = keras.utils.image_dataset_from_directory(
        Path(data) / "train", image_size=(image_size, image_size), color_mode="grayscale",
        batch_size=batch_size, shuffle=True, seed=0, verbose=False)
    n = sum(1 for _ in Path(data).glob("train/*/*"))
    keras_epochs = [images_per_second(keras_ds, n) for _ in range(epochs)]
    return {
        "data": str(Path(data).name), "split": "train", "images": int(len(table)),
        "image_size": image_size, "batch_size": batch_size,
        "ours_first_epoch_images_per_sec": first,
        "ours_cached_epoch_images_per_sec": float(np.median(cached)),
        "ours_disk_cache_load_images_per_sec": disk_cache_load,
        "keras_first_epoch_images_per_sec": keras_epochs[0],
        "keras_later_epoch_images_per_sec": float(np.median(keras_epochs[1:])),
        "cached_speedup_vs_keras": float(np.median(cached) / np.median(keras_epochs[1:])),
        "env": records.environment(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default=os.environ.get("CXR_DATA_DIR"))
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--out", default="benchmarks/results/bench_data.json")
    args = parser.parse_args()
    if not args.data:
        raise SystemExit("set DATA=... or CXR_DATA_DIR to the chest_xray folder")
    result = measure(Path(args.data), args.image_size)
    records.write_json(Path(args.out), result)
    print(f"{'loader':<34}{'first epoch':>14}{'cached/later':>14}  (images/s, {args.image_size} px)")
    print(f"{'automl (decode once, cache)':<34}{result['ours_first_epoch_images_per_sec']:>14.0f}"
          f"{result['ours_cached_epoch_images_per_sec']:>14.0f}")
    keras_first, keras_later = (result[f"keras_{e}_epoch_images_per_sec"] for e in ("first", "later"))
    print(f"{'keras image_dataset_from_directory':<34}{keras_first:>14.0f}{keras_later:>14.0f}")
    disk = result["ours_disk_cache_load_images_per_sec"]
    print(f"cached speed-up vs keras: {result['cached_speedup_vs_keras']:.1f}x; "
          f"second search loads the disk cache at {disk:.0f} images/s")


if __name__ == "__main__":
    main()
