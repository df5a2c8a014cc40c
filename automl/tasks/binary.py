"""Negative vs positive (NORMAL vs PNEUMONIA, or the data's own two labels) with a sigmoid output."""

from __future__ import annotations

import keras
import numpy as np
from sklearn.metrics import roc_auc_score

from automl.models import backbones
from automl.tasks.base import SupervisedTask
from automl.tasks.classes import TwoLabels


class BinaryTask(TwoLabels, SupervisedTask):
    name = "binary"
    objective = "val_auc"
    evaluation = "binary"
    metric_names = ("loss", "auc", "accuracy")

    def validation_quality(self, y, scores):
        return float(roc_auc_score(y, scores)) if len(np.unique(y)) == 2 else 0.5

    def targets(self, table):
        return self.labels(table).astype(np.float32)[:, None]

    def output(self, x):
        # float32 under a mixed policy: probabilities, loss and metrics stay full precision.
        return keras.layers.Dense(1, activation="sigmoid", name="prediction", dtype="float32")(x)

    def compile(self, model, hp):
        model.compile(
            optimizer=backbones.make_optimizer(hp),
            loss=keras.losses.BinaryCrossentropy(
                label_smoothing=hp.Choice("label_smoothing", [0.0, 0.1], default=0.0)),
            metrics=[keras.metrics.AUC(name="auc"), keras.metrics.BinaryAccuracy(name="accuracy")],
        )

    def scores(self, model, images, *, batch_size=64, hparams=None):
        return super().scores(model, images, batch_size=batch_size).reshape(-1)
