"""Anomaly detection: a convolutional autoencoder trained on NORMAL images only."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import layers
from sklearn.metrics import roc_auc_score

from automl.data.pipeline import make_dataset
from automl.tasks.base import SearchSpace, Task, ValidationMetric


@keras.saving.register_keras_serializable(package="automl")
def ssim_loss(y_true, y_pred):
    """1 - SSIM (plus a little MAE so flat regions still get a gradient)."""
    ssim = tf.image.ssim(y_true, y_pred, max_val=1.0, filter_size=7)
    return 1.0 - ssim + 0.1 * tf.reduce_mean(tf.abs(y_true - y_pred), axis=(1, 2, 3))


LOSSES = {"mse": "mse", "mae": "mae", "ssim": ssim_loss}
DEPTHS = (2, 3, 4)  # encoder downsampling steps the tuner chooses from


def anomaly_scores(images: np.ndarray, reconstructions: np.ndarray, *, mode: str = "mean",
                   top_fraction: float = 0.02) -> np.ndarray:
    """Reconstruction error per image (higher = more abnormal).

    Args:
        images, reconstructions: float arrays in [0, 1], shape (n, s, s, 1).
        mode: ``mean`` squared error over all pixels, or ``topk``: the mean of the
            worst ``top_fraction`` of pixels, which a small focal opacity cannot
            hide in an average over the whole chest.
    """
    errors = ((images - reconstructions) ** 2).reshape(len(images), -1)
    if mode == "mean":
        return errors.mean(axis=1)
    k = max(1, int(round(top_fraction * errors.shape[1])))
    return np.sort(errors, axis=1)[:, -k:].mean(axis=1)


def stretch_contrast(images: np.ndarray, *, low: float = 1.0, high: float = 99.0) -> np.ndarray:
    """Map each image's ``low``..``high`` intensity percentiles to 0..255 (uint8 in, uint8 out).

    Reconstruction error is sensitive to global exposure and contrast, which is
    where the official test split differs from train; stretching each image to
    its own range removes that before the autoencoder sees it.
    """
    flat = images.reshape(len(images), -1).astype(np.float32)
    lo, hi = np.percentile(flat, [low, high], axis=1)
    scaled = (flat - lo[:, None]) / np.maximum(hi - lo, 1.0)[:, None]
    return (np.clip(scaled, 0, 1) * 255).round().astype(np.uint8).reshape(images.shape)


def equalize_histogram(images: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
    """Per-image histogram equalisation (uint8 in, uint8 out): each grey level becomes its
    rank in the image, so no monotone exposure change survives. The same transform as the
    classifiers' ``equalize`` input layer, here applied before the images are stored."""
    from automl.backbones import HistogramEqualization

    layer, parts = HistogramEqualization(), []
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size].astype(np.float32) / 255.0
        standardized = keras.ops.convert_to_numpy(layer(x))
        parts.append(standardized / np.sqrt(12.0) + 0.5)  # back to [0, 1]
    out = np.concatenate(parts) if parts else np.zeros(images.shape, np.float32)
    return np.clip(np.round(out * 255.0), 0, 255).astype(np.uint8)


INTENSITY = {"raw": lambda images: images, "stretch": stretch_contrast, "equalize": equalize_histogram}


def prepare_intensity(images: np.ndarray, intensity: str) -> np.ndarray:
    return INTENSITY[intensity](images)


class AutoencoderTask(Task):
    name = "autoencoder"
    class_names = ("NORMAL", "PNEUMONIA")
    objective = "val_auroc"
    evaluation = "anomaly"

    def labels(self, table):
        return (table.label == "PNEUMONIA").to_numpy(np.int64)

    def validation_quality(self, y, scores):
        return float(roc_auc_score(y, scores))

    def check_image_size(self, image_size, *, fixed, families):
        depths = [fixed["encoder_depth"]] if "encoder_depth" in fixed else DEPTHS
        if not any(image_size % 2**d == 0 and image_size >= 2**d for d in depths):
            raise ValueError(f"--image-size: {image_size} px fits no encoder depth "
                             f"({', '.join(map(str, depths))}: the size must be divisible by 2**depth)")

    def build(self, hp, space: SearchSpace) -> keras.Model:
        depth = hp.Int("encoder_depth", min(DEPTHS), max(DEPTHS), default=3)
        filters = hp.Choice("encoder_filters", [16, 32, 48], default=32)
        bottleneck = hp.Choice("bottleneck", [16, 32, 64, 128], default=64)
        noise = hp.Choice("denoise_noise", [0.0, 0.05, 0.1], default=0.05)
        size = space.image_size
        if size % 2**depth:
            raise ValueError(f"encoder depth {depth} needs an image size divisible by {2**depth}; "
                             f"got {size} px")
        inputs = keras.Input((size, size, 1), name="image")
        x = layers.GaussianNoise(noise, name="denoise")(inputs) if noise else inputs
        for i in range(depth):
            x = layers.Conv2D(filters * 2**i, 3, strides=2, padding="same", activation="relu",
                              name=f"enc{i}")(x)
        shape = tuple(x.shape[1:])
        x = layers.Flatten(name="flatten")(x)
        code = layers.Dense(bottleneck, name="embedding")(x)
        x = layers.Dense(int(np.prod(shape)), activation="relu", name="expand")(code)
        x = layers.Reshape(shape, name="unflatten")(x)
        for i in reversed(range(depth)):
            x = layers.Conv2DTranspose(max(filters * 2**i // 2, 16), 3, strides=2, padding="same",
                                       activation="relu", name=f"dec{i}")(x)
        outputs = layers.Conv2D(1, 3, padding="same", activation="sigmoid", name="reconstruction")(x)
        model = keras.Model(inputs, outputs, name="autoencoder")
        loss = hp.Choice("loss", list(LOSSES), default="mse")
        lr = hp.Float("learning_rate", 1e-4, 3e-3, sampling="log", default=1e-3)
        model.compile(optimizer=keras.optimizers.Adam(lr), loss=LOSSES[loss])
        return model

    def fit(self, hp, model, train, val, space, **fit_kwargs):
        hp.Choice("score", ["mean", "topk"], default="mean")
        intensity = hp.Choice("intensity", list(INTENSITY), default="stretch")
        batch_size = hp.Choice("batch_size", [16, 32, 64], default=32)
        augment = hp.Float("augment", 0.0, 1.0, step=0.25, default=0.25)
        # Healthy chests only: the model must never learn what pneumonia looks like.
        normal = prepare_intensity(train.images[train.table.label.to_numpy() == "NORMAL"], intensity)
        as_float = normal.astype(np.float32) / 255.0
        train_ds = make_dataset(normal, as_float, batch_size=batch_size, training=True,
                                augment=0, seed=space.seed)
        if augment > 0:
            train_ds = self._augment_pairs(train_ds, augment, space.seed)
        val_normal = prepare_intensity(val.images[val.table.label.to_numpy() == "NORMAL"], intensity)
        val_ds = make_dataset(val_normal, val_normal.astype(np.float32) / 255.0, batch_size=128)
        callbacks = list(fit_kwargs.pop("callbacks", []))
        # Detection, not reconstruction, is what early stopping and the tuner optimise.
        callbacks.insert(0, ValidationMetric(self, self.objective, val.images,
                                             self.labels(val.table), dict(hp.values)))
        return model.fit(train_ds, validation_data=val_ds, callbacks=callbacks,
                         verbose=fit_kwargs.pop("verbose", 2), **fit_kwargs)

    @staticmethod
    def _augment_pairs(dataset, strength: float, seed: int):
        from automl.data.pipeline import augmenter

        layer = augmenter(strength, seed)
        # Input and target get the same transform: the model learns to reconstruct
        # a moved chest, not to undo the move.
        return dataset.map(lambda x, y: (lambda a: (a, a))(
            tf.clip_by_value(layer(x, training=True), 0.0, 1.0)))

    def model_inputs(self, images, hparams=None):
        # Runs recorded before the intensity choice existed used raw images.
        images = prepare_intensity(images, (hparams or {}).get("intensity", "raw"))
        return images.astype(np.float32) / 255.0

    def reconstruction_scores(self, model, x, *, mode="mean", batch_size=64):
        """Anomaly scores of ``x``, float model inputs (see :meth:`model_inputs`)."""
        reconstructions = model.predict(x, batch_size=batch_size, verbose=0)
        return anomaly_scores(x, reconstructions, mode=mode)

    def scores(self, model, images, *, batch_size=64, hparams=None):
        return self.reconstruction_scores(model, self.model_inputs(images, hparams),
                                          mode=(hparams or {}).get("score", "mean"),
                                          batch_size=batch_size)

    def extra_metrics(self, table, y, scores, result):
        flagged = scores >= result["threshold"]
        rates = {kind: float(flagged[(table.subtype == kind).to_numpy()].mean())
                 for kind in ("bacteria", "virus") if (table.subtype == kind).any()}
        rates["normal_flagged"] = float(flagged[y == 0].mean()) if (y == 0).any() else None
        return {"subtype_detection": rates}

    def extra_plots(self, run_dir, model, summary, images):
        import pandas as pd

        from automl import plots

        scores = pd.read_csv(run_dir / "scores.csv")
        plots.score_histogram_png(scores, summary["threshold"], run_dir / "score_histogram.png")
        split = "test" if images.get("test") is not None else "val"
        frame = scores[scores.split == split].reset_index(drop=True)
        picks = [*frame.index[frame.label == "NORMAL"][:3], *frame.index[frame.label == "PNEUMONIA"][:3]]
        x = self.model_inputs(images[split][picks], summary["best_hparams"])
        plots.reconstruction_grid_png(x, model.predict(x, verbose=0), frame.label[picks].tolist(),
                                      run_dir / "reconstructions.png")
        return ["score_histogram.png", "reconstructions.png"]
