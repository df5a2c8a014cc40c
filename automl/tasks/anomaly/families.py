"""Model families trained on normal images only, each with an ``embedding`` layer.

``autoencoder``, ``memory`` and ``inpainting`` predict the image (the anomaly map is what
they get wrong); ``defect`` predicts a per-pixel defect probability, trained to find
synthetic defects pasted into normal images (:mod:`automl.tasks.anomaly.defects`).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from automl.models.layers import MemoryUnit, ssim_loss

FAMILIES = ("autoencoder", "inpainting", "memory", "defect")
RECONSTRUCTING = ("autoencoder", "inpainting", "memory")
DEPTHS = (2, 3, 4)  # encoder downsampling steps the tuner chooses from
INPAINT_GRID = 8  # the in-painting masks hide cells of an 8×8 grid


LOSSES = {"mse": "mse", "mae": "mae", "ssim": ssim_loss}


def build(hp, image_size: int) -> keras.Model:
    """The model of ``hp['family']``. Declares: family, encoder_depth, encoder_filters,
    bottleneck, denoise_noise, memory_slots, loss, learning_rate.

    Raises:
        ValueError: the image size does not fit the encoder depth (a failed trial).
    """
    family = hp.Choice("family", list(FAMILIES), default="autoencoder")
    depth = hp.Int("encoder_depth", min(DEPTHS), max(DEPTHS), default=3)
    filters = hp.Choice("encoder_filters", [16, 32, 48], default=32)
    bottleneck = hp.Choice("bottleneck", [16, 32, 64, 128], default=64)
    noise = hp.Choice("denoise_noise", [0.0, 0.05, 0.1], default=0.05)
    lr = hp.Float("learning_rate", 1e-4, 3e-3, sampling="log", default=1e-3)
    if image_size % 2**depth:
        raise ValueError(f"encoder depth {depth} needs an image size divisible by {2**depth}; "
                         f"got {image_size} px")
    inputs = keras.Input((image_size, image_size, 1), name="image")
    x = layers.GaussianNoise(noise, name="denoise")(inputs) if noise else inputs
    for i in range(depth):
        x = layers.Conv2D(filters * 2**i, 3, strides=2, padding="same", activation="relu",
                          name=f"enc{i}")(x)
    shape = tuple(x.shape[1:])
    if family == "defect":
        # The map keeps its resolution: the code is broadcast beside the feature map, not a
        # bottleneck the localisation would have to pass through.
        code = layers.Dense(bottleneck, name="embedding")(layers.GlobalAveragePooling2D(name="pool")(x))
        tiled = layers.Reshape((1, 1, bottleneck), name="code_map")(code)
        tiled = layers.UpSampling2D(shape[:2], name="broadcast")(tiled)
        x = layers.Concatenate(name="features_and_code")([x, tiled])
    else:
        code = layers.Dense(bottleneck, name="embedding")(layers.Flatten(name="flatten")(x))
        if family == "memory":
            code = MemoryUnit(hp.Choice("memory_slots", [32, 64, 128], default=64), name="memory")(code)
        # Leaky: a decoder whose ReLUs all die outputs one constant image, and its "anomaly
        # score" is then just the image's brightness (seen with memory and in-painting).
        x = layers.Dense(int(np.prod(shape)), activation="leaky_relu", name="expand")(code)
        x = layers.Reshape(shape, name="unflatten")(x)
    for i in reversed(range(depth)):
        x = layers.Conv2DTranspose(max(filters * 2**i // 2, 16), 3, strides=2, padding="same",
                                   activation="leaky_relu", name=f"dec{i}")(x)
    if family == "defect":
        outputs = layers.Conv2D(1, 3, padding="same", activation="sigmoid", name="defect_map",
                                dtype="float32")(x)
        model = keras.Model(inputs, outputs, name="defect_detector")
        model.compile(optimizer=keras.optimizers.Adam(lr), loss="binary_crossentropy")
        return model
    outputs = layers.Conv2D(1, 3, padding="same", activation="sigmoid", name="reconstruction",
                            dtype="float32")(x)
    model = keras.Model(inputs, outputs, name=family)
    loss = hp.Choice("loss", list(LOSSES), default="mse")
    model.compile(optimizer=keras.optimizers.Adam(lr), loss=LOSSES[loss])
    return model


def inpainting_masks(image_size: int, *, grid: int = INPAINT_GRID) -> np.ndarray:
    """Four complementary masks (4, s, s, 1), 1 = hidden: the grid cells split by the parity of
    their row and column, so every pixel is hidden exactly once and always predicted from
    unhidden neighbours on every side."""
    cell = max(1, image_size // grid)
    rows = (np.arange(image_size) // cell) % 2
    masks = [(rows[:, None] == r) & (rows[None, :] == c) for r in (0, 1) for c in (0, 1)]
    return np.stack(masks).astype(np.float32)[..., None]


def random_inpainting_mask(batch, image_size: int, seed_generator, *, fraction: float = 0.25):
    """A random mask per image (TensorFlow): ``fraction`` of the grid cells hidden."""
    cells = keras.random.uniform((batch, INPAINT_GRID, INPAINT_GRID, 1), seed=seed_generator)
    hidden = tf.cast(cells < fraction, tf.float32)
    return tf.image.resize(hidden, (image_size, image_size), method="nearest")


def predict_maps(model: keras.Model, family: str, x: np.ndarray, *,
                 batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """``(prediction, anomaly map)`` of float images ``x`` (n, s, s, 1): the reconstruction and
    its squared error, the in-painted image (each pixel predicted while hidden) and its
    squared error, or the defect map twice."""
    if family == "defect":
        maps = model.predict(x, batch_size=batch_size, verbose=0)
        return maps, maps[..., 0]
    if family == "inpainting":
        prediction = np.zeros_like(x)
        for mask in inpainting_masks(x.shape[1]):
            filled = model.predict(x * (1.0 - mask), batch_size=batch_size, verbose=0)
            prediction += filled * mask
    else:
        prediction = model.predict(x, batch_size=batch_size, verbose=0)
    return prediction, ((x - prediction) ** 2)[..., 0]
