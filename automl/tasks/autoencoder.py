"""Anomaly detection trained on NORMAL images only: a family of models, an anomaly score, a threshold."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from sklearn.metrics import roc_auc_score

from automl.data.pipeline import make_dataset
from automl.tasks.anomaly import families
from automl.tasks.anomaly import scores as anomaly
from automl.tasks.anomaly.defects import DefectBatches, defect_set
from automl.tasks.anomaly.intensity import INTENSITY, prepare_intensity
from automl.tasks.base import SearchSpace, Task, ValidationMetric
from automl.tasks.classes import TwoLabels

# Scores of runs recorded before the score choices widened.
LEGACY_SCORES = {"mean": "pixel", "topk": "patch"}
REFERENCE_SIZE = 600  # normal training images the feature distances and z-scores refer to


class LabelFreeSeparation(keras.callbacks.Callback):
    """``val_normal_loss``: 1 − AUROC of the trial's own anomaly score between validation
    normals and copies of them that carry a synthetic local defect (lower is better).

    It reads NORMAL images only, never a pneumonia label or image, and unlike a raw
    validation loss it is one scale for every family, training loss and score choice
    (MSE, SSIM and cross-entropy losses are not comparable numbers).
    """

    def __init__(self, task: "AutoencoderTask", normals: np.ndarray, hparams: dict, *, seed: int):
        super().__init__()
        defective, _ = defect_set(normals.astype(np.float32) / 255.0, seed=seed, clean_fraction=0.0)
        self.task, self.hparams = task, hparams
        self.images = np.concatenate([normals, np.round(defective * 255.0).astype(np.uint8)])
        self.labels = np.repeat([0, 1], len(normals))

    def on_epoch_end(self, epoch, logs=None):
        scores = self.task.scores(self.model, self.images, hparams=self.hparams)
        if logs is not None:
            logs["val_normal_loss"] = 1.0 - float(roc_auc_score(self.labels, scores))


class AutoencoderTask(TwoLabels, Task):
    name = "autoencoder"
    objective = "val_auroc"
    evaluation = "anomaly"
    label_free_objective = "val_normal_loss"
    # Anomaly scores are small differences between an image and its reconstruction (or
    # distances between embeddings): a half-precision mantissa (8 bits in bfloat16) drowns
    # them, and several families' losses and scores were written for float32 tensors.
    trains_in_mixed_precision = False

    def __init__(self):
        self.reference: np.ndarray | None = None  # uint8 normal training images

    def objectives(self, validation):
        return ("val_auroc", self.label_free_objective, "val_loss")

    def validation_quality(self, y, scores):
        return float(roc_auc_score(y, scores))

    def check_image_size(self, image_size, *, fixed, **_):
        depths = [fixed["encoder_depth"]] if "encoder_depth" in fixed else families.DEPTHS
        if not any(image_size % 2**d == 0 and image_size >= 2**d for d in depths):
            raise ValueError(f"--image-size: {image_size} px fits no encoder depth "
                             f"({', '.join(map(str, depths))}: the size must be divisible by 2**depth)")

    def attach_training(self, train) -> None:
        """Remember normal training images: feature distances and z-scores refer to them."""
        normal = train.images[train.table.label.to_numpy() == self.negative_label]
        rows = np.random.default_rng(0).permutation(len(normal))[:REFERENCE_SIZE]
        self.reference = normal[np.sort(rows)]

    def build(self, hp, space: SearchSpace) -> keras.Model:
        return families.build(hp, space.image_size)

    def fit(self, hp, model, train, val, space, **fit_kwargs):
        family = hp.get("family")
        score = hp.Choice("score", list(anomaly.SCORES), default="pixel")
        score = LEGACY_SCORES.get(score, score)
        if family == "defect" and "ssim" in anomaly.parts(score):
            raise ValueError("the ssim score needs a reconstruction; the defect family predicts a map")
        intensity = hp.Choice("intensity", list(INTENSITY), default="stretch")
        batch_size = hp.Choice("batch_size", [16, 32, 64], default=32)
        augment = hp.Float("augment", 0.0, 1.0, step=0.25, default=0.25)
        # Healthy chests only: the model must never learn what pneumonia looks like.
        normal = train.images[train.table.label.to_numpy() == self.negative_label]
        if self.reference is None:
            self.attach_training(train)
        images = prepare_intensity(normal, intensity)
        val_x = prepare_intensity(val.images[val.table.label.to_numpy() == self.negative_label],
                                  intensity).astype(np.float32) / 255.0
        train_data, val_data = self._datasets(family, images, val_x, batch_size=batch_size,
                                              augment=augment, seed=space.seed)
        callbacks = list(fit_kwargs.pop("callbacks", []))
        # Detection, not reconstruction, is what early stopping and the tuner optimise.
        if space.objective == self.label_free_objective:
            val_normals = val.images[val.table.label.to_numpy() == self.negative_label]
            callbacks.insert(0, LabelFreeSeparation(self, val_normals, dict(hp.values), seed=space.seed))
        elif (space.objective or self.objective) == self.objective:
            callbacks.insert(0, ValidationMetric(self, self.objective, val.images,
                                                 self.labels(val.table), dict(hp.values)))
        return model.fit(train_data, validation_data=val_data, callbacks=callbacks,
                         verbose=fit_kwargs.pop("verbose", 2), **fit_kwargs)

    @staticmethod
    def _datasets(family, images, val_x, *, batch_size, augment, seed):
        """Training and validation data of a family: (input, target) pairs from normals only.

        ``images``: uint8 normal training images (make_dataset scales its inputs to [0, 1]);
        ``val_x``: validation normals, already float in [0, 1].
        """
        x = images.astype(np.float32) / 255.0
        if family == "defect":
            return (DefectBatches(x, batch_size=batch_size, seed=seed),
                    tuple(defect_set(val_x, seed=seed + 1)))
        train = make_dataset(images, x, batch_size=batch_size, training=True, seed=seed)
        if augment > 0:
            from automl.data.pipeline import augmenter

            layer = augmenter(augment, seed)
            # Input and target get the same transform: the model learns to reconstruct
            # a moved chest, not to undo the move.
            train = train.map(lambda a, b: (lambda m: (m, m))(
                tf.clip_by_value(layer(a, training=True), 0.0, 1.0)))
        if family == "inpainting":
            size, generator = x.shape[1], keras.random.SeedGenerator(seed)
            train = train.map(lambda a, b: (a * (1.0 - families.random_inpainting_mask(
                tf.shape(a)[0], size, generator)), b))
            masks = families.inpainting_masks(size)
            hidden = np.stack([masks[i % len(masks)] for i in range(len(val_x))]) if len(val_x) else masks[:0]
            return train, (val_x * (1.0 - hidden), val_x)
        return train, (val_x, val_x)

    def model_inputs(self, images, hparams=None):
        # Runs recorded before the intensity choice existed used raw images.
        images = prepare_intensity(images, (hparams or {}).get("intensity", "raw"))
        return images.astype(np.float32) / 255.0

    def maps(self, model, images, hparams=None):
        """``(model inputs, prediction, anomaly map)`` of uint8 ``images``."""
        x = self.model_inputs(images, hparams)
        prediction, maps = families.predict_maps(model, (hparams or {}).get("family", "autoencoder"), x)
        return x, prediction, maps

    def scores(self, model, images, *, batch_size=64, hparams=None):
        hparams = hparams or {}
        score = LEGACY_SCORES.get(hparams.get("score", "pixel"), hparams.get("score", "pixel"))
        names = anomaly.parts(score)
        if (set(names) & set(anomaly.FEATURE_SCORES) or len(names) > 1) and self.reference is None:
            raise ValueError("feature-distance and combined anomaly scores need the normal training "
                             "images (attach_training)")
        # The normal training images' embeddings, computed once for every part that needs them.
        distance = (anomaly.FeatureDistance(self._embed(model, self.model_inputs(self.reference, hparams)))
                    if set(names) & set(anomaly.FEATURE_SCORES) else None)
        values = self._single_scores(model, images, names, hparams, distance=distance)
        if len(names) == 1:
            return values[names[0]]
        normals = self._single_scores(model, self.reference, names, hparams, distance=distance,
                                      leave_one_out=True)
        return anomaly.combine(values, normals)

    @staticmethod
    def _embed(model, x):
        """The ``embedding`` layer's output for model inputs ``x``."""
        encoder = keras.Model(model.inputs, model.get_layer("embedding").output)
        return encoder.predict(x, batch_size=128, verbose=0)

    def _single_scores(self, model, images, names, hparams, *, distance, leave_one_out=False):
        x, prediction, maps = self.maps(model, images, hparams)
        family = hparams.get("family", "autoencoder")
        ssim = (anomaly.ssim_error_map(x, prediction)
                if "ssim" in names and family in families.RECONSTRUCTING else None)
        embeddings = self._embed(model, x) if distance is not None else None
        return anomaly.single_scores(names, maps=maps, ssim_maps=ssim, embeddings=embeddings,
                                     distance=distance, leave_one_out=leave_one_out)

    def extra_metrics(self, table, y, scores, result):
        flagged = scores >= result["threshold"]
        rates = {kind: float(flagged[(table.subtype == kind).to_numpy()].mean())
                 for kind in ("bacteria", "virus") if (table.subtype == kind).any()}
        rates["normal_flagged"] = float(flagged[y == 0].mean()) if (y == 0).any() else None
        return {"subtype_detection": rates}
