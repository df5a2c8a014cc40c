"""tf.data input pipelines: decode once into a uint8 cache, then shuffle, augment, batch."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Sequence

import keras
import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from automl.data.index import os_reason
from automl.settings.paths import cache_dir


def _decode(path: tf.Tensor, image_size: int) -> tf.Tensor:
    raw = tf.io.read_file(path)
    # channels=3 folds grey, RGB and RGBA (alpha dropped) into one shape;
    # dtype=uint8 rescales 16-bit PNGs instead of clipping them.
    image = tf.io.decode_image(raw, channels=3, dtype=tf.uint8, expand_animations=False)
    image = tf.image.rgb_to_grayscale(image)
    image = tf.image.resize(image, (image_size, image_size), antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)


def cache_key(paths: Sequence[str], image_size: int) -> str:
    """A key that changes when any file, its size or mtime, or the image size changes."""
    digest = hashlib.sha1(str(image_size).encode())
    for path in paths:
        stat = os.stat(path)
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:20]


class DecodeError(ValueError):
    """Images the input pipeline could not decode; ``problems`` names each with its reason."""

    def __init__(self, problems: list[dict]):
        self.problems = problems
        super().__init__(f"{len(problems)} image(s) cannot be decoded: "
                         + "; ".join(f"{p['path']}: {p['reason']}" for p in problems))


def load_images(
    paths: Sequence[str], image_size: int, *, disk_cache: bool = True, progress: bool = True
) -> np.ndarray:
    """Decode, greyscale and resize images into one uint8 array.

    The result is cached on disk, keyed by the files and the size, so a second
    search at the same size decodes nothing.

    Returns:
        Array of shape ``(len(paths), image_size, image_size, 1)``, dtype uint8.

    Raises:
        DecodeError: a file could not be read or decoded (:func:`decode_images` skips it).
    """
    images, problems = decode_images(paths, image_size, disk_cache=disk_cache, progress=progress)
    if problems:
        raise DecodeError(problems)
    return images


def decode_images(
    paths: Sequence[str], image_size: int, *, disk_cache: bool = True, progress: bool = True
) -> tuple[np.ndarray, list[dict]]:
    """:func:`load_images` that skips the files it cannot decode: removed or unreadable since
    they were checked, or refused by TensorFlow's decoder. One bad file never stops a run.

    Returns:
        ``(images, problems)``: the images of the files that decoded, in order, and
        ``{"path", "reason"}`` for each file that did not.
    """
    paths = [str(p) for p in paths]
    if not paths:
        return np.zeros((0, image_size, image_size, 1), np.uint8), []
    cache_file = _cache_file(paths, image_size)
    if disk_cache and cache_file is not None and cache_file.exists():
        return np.load(cache_file), []
    dataset = (
        tf.data.Dataset.from_tensor_slices((np.arange(len(paths)), paths))
        .map(lambda i, p: (i, _decode(p, image_size)), num_parallel_calls=tf.data.AUTOTUNE)
        .ignore_errors()  # the files missing from the result are named below
        .batch(128)
        .prefetch(tf.data.AUTOTUNE)
    )
    kept, chunks = [], [np.zeros((0, image_size, image_size, 1), np.uint8)]
    with tqdm(total=len(paths), desc=f"decode {image_size}px", unit="img", disable=not progress) as bar:
        for rows, batch in dataset:
            kept += rows.numpy().tolist()
            chunks.append(batch.numpy())
            bar.update(len(chunks[-1]))
    images = np.concatenate(chunks)
    failed = sorted(set(range(len(paths))) - set(kept))
    problems = [{"path": paths[i], "reason": _decode_failure(paths[i])} for i in failed]
    if problems:
        # Keyed by the files that decoded: the tables the caller keeps after dropping the rest.
        cache_file = _cache_file([paths[i] for i in kept], image_size) if kept else None
    if disk_cache and cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(tmp, images)
        os.replace(tmp, cache_file)  # atomic: a concurrent reader never sees half a file
    return images, problems


def _cache_file(paths: list[str], image_size: int) -> Path | None:
    """Where the decoded ``paths`` are cached; None when a file can no longer be looked at."""
    try:
        return cache_dir() / "images" / f"{cache_key(paths, image_size)}.npy"
    except OSError:
        return None


def _decode_failure(path: str) -> str:
    """Why the pipeline could not decode ``path``, found by reading it again."""
    try:
        with open(path, "rb") as file:
            file.read(1)
    except OSError as error:
        return os_reason(error)
    return "cannot be decoded by the input pipeline (TensorFlow's decoder refused it)"


def oversample_indices(labels: np.ndarray, seed: int) -> np.ndarray:
    """Indices that repeat every class up to the size of the largest one."""
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    target = counts.max()
    parts = []
    for cls, count in zip(classes, counts):
        members = np.flatnonzero(labels == cls)
        extra = rng.choice(members, target - count, replace=True) if target > count else []
        parts.append(np.concatenate([members, np.asarray(extra, dtype=int)]))
    return rng.permutation(np.concatenate(parts))


def class_indices(targets: np.ndarray) -> np.ndarray:
    """Integer class per row of ``targets``: labels (n,), a single column (n, 1), or
    one-hot rows (n, k) (their argmax: every class counts, not just column 0)."""
    targets = np.asarray(targets).reshape(len(targets), -1)
    return targets[:, 0] if targets.shape[1] == 1 else np.argmax(targets, axis=1)


def augmenter(strength: float, seed: int) -> keras.Sequential | None:
    """Random geometric and photometric changes scaled by ``strength`` (0 = none).

    No horizontal flip: the heart sits on the left, and a flipped chest is not
    a chest the model will ever be shown.
    """
    if strength <= 0:
        return None
    layers = keras.layers
    # float32 whatever the global dtype policy (bfloat16 under mixed precision): the tf.data
    # map must never see a bfloat16 tensor, and the augmentation must not depend on the policy.
    f32 = {"dtype": "float32"}
    augment = keras.Sequential([
        layers.RandomRotation(0.03 * strength, fill_mode="constant", seed=seed, **f32),
        # Height and width zoom independently: the data set squeezes radiographs of
        # every aspect ratio into a square, so the squeeze itself must not be a cue.
        layers.RandomZoom(0.12 * strength, 0.12 * strength, fill_mode="constant", seed=seed + 1, **f32),
        layers.RandomTranslation(0.06 * strength, 0.06 * strength, fill_mode="constant", seed=seed + 2,
                                 **f32),
        layers.RandomContrast(min(0.9, 0.3 * strength), seed=seed + 3, **f32),
        layers.RandomBrightness(min(0.9, 0.15 * strength), value_range=(0.0, 1.0), seed=seed + 4, **f32),
        RandomGamma(0.25 * strength, seed=seed + 5, **f32),
    ])
    augment.dtype_policy = "float32"  # else the Sequential casts its input to the global policy
    return augment


class RandomGamma(keras.layers.Layer):
    """``x ** g`` per image with ``log g`` uniform in ±``factor``: over- and under-exposure,
    which brightness and contrast (linear changes) do not imitate. Inputs in [0, 1]."""

    def __init__(self, factor: float, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.factor, self.seed = factor, seed
        self.generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=True):
        if not training or self.factor <= 0:
            return inputs
        shape = (keras.ops.shape(inputs)[0], 1, 1, 1)
        log_gamma = keras.random.uniform(shape, -self.factor, self.factor, seed=self.generator)
        return keras.ops.power(keras.ops.clip(inputs, 1e-6, 1.0), keras.ops.exp(log_gamma))

    def get_config(self):
        return {**super().get_config(), "factor": self.factor, "seed": self.seed}


def deterministic_ops() -> bool:
    """Whether TensorFlow's deterministic ops are on in this process
    (:func:`automl.models.determinism.configure`)."""
    from tensorflow.python.framework import config as tf_config  # no public reader in TF 2.21

    return bool(tf_config.is_op_determinism_enabled())


def make_dataset(
    images: np.ndarray,
    targets: np.ndarray,
    *,
    batch_size: int,
    training: bool = False,
    augment: float = 0.0,
    oversample: bool = False,
    seed: int = 0,
) -> tf.data.Dataset:
    """Batches of ``(float32 images in [0, 1], targets)``.

    Training sets are shuffled with ``seed`` (reshuffled every epoch),
    optionally oversampled to class parity and augmented; evaluation sets keep
    their order so predictions line up with the index table.
    """
    if oversample:
        order = oversample_indices(class_indices(targets), seed)
        images, targets = images[order], targets[order]
    dataset = tf.data.Dataset.from_tensor_slices((images, targets))
    if training:
        dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size).map(
        lambda x, y: (tf.cast(x, tf.float32) / 255.0, y), num_parallel_calls=tf.data.AUTOTUNE
    )
    augment_layer = augmenter(augment, seed) if training else None
    if augment_layer is not None:
        # The augmentation draws from a stateful generator: mapped in parallel, batches would
        # take its draws in whatever order they run. Under deterministic ops, in order.
        parallel = None if deterministic_ops() else tf.data.AUTOTUNE
        dataset = dataset.map(
            lambda x, y: (tf.clip_by_value(augment_layer(x, training=True), 0.0, 1.0), y),
            num_parallel_calls=parallel,
        )
    return dataset.prefetch(tf.data.AUTOTUNE)


