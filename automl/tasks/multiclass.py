"""normal / bacterial / viral pneumonia (or the data's own three or more labels) with a softmax output."""

from __future__ import annotations

import keras
import numpy as np
from sklearn.metrics import f1_score

from automl.models import backbones
from automl.settings.labels import NEGATIVE_LABEL
from automl.tasks.base import SupervisedTask
from automl.tasks.classes import KERMANY_SUBTYPES, multiclass_classes


class MulticlassTask(SupervisedTask):
    name = "multiclass"
    class_names = KERMANY_SUBTYPES
    # The index column the classes are read from: Kermany's subtype, or a manifest's own labels.
    class_column = "subtype"
    negative_label = NEGATIVE_LABEL
    objective = "val_f1_macro"
    evaluation = "multiclass"
    metric_names = ("loss", "f1_macro", "accuracy")

    def use_labels(self, index, positive):
        self.class_column, self.class_names, self.negative_label = multiclass_classes(index)

    def classes_record(self):
        return {"names": list(self.class_names), "column": self.class_column,
                "negative": self.negative_label}

    def restore_classes(self, record):
        if record:
            self.class_names, self.class_column = tuple(record["names"]), record.get("column", "subtype")
            self.negative_label = record.get("negative", NEGATIVE_LABEL)

    def select(self, table):
        # A PNEUMONIA file whose name gives no subtype has no multiclass label.
        return table[table[self.class_column].isin(self.class_names)].reset_index(drop=True)

    def labels(self, table):
        codes = {c: i for i, c in enumerate(self.class_names)}
        return table[self.class_column].map(codes).to_numpy(np.int64)

    def validation_quality(self, y, scores):
        # Macro-F1 of the argmax, over all classes even when one is never predicted.
        return float(f1_score(y, np.argmax(scores, axis=1), average="macro",
                              labels=list(range(len(self.class_names))), zero_division=0))

    def targets(self, table):
        return keras.utils.to_categorical(self.labels(table), len(self.class_names)).astype(np.float32)

    def output(self, x):
        # float32 under a mixed policy: probabilities, loss and metrics stay full precision.
        return keras.layers.Dense(len(self.class_names), activation="softmax", name="prediction",
                                  dtype="float32")(x)

    def compile(self, model, hp):
        model.compile(
            optimizer=backbones.make_optimizer(hp),
            loss=keras.losses.CategoricalCrossentropy(
                label_smoothing=hp.Choice("label_smoothing", [0.0, 0.1], default=0.0)),
            metrics=[keras.metrics.F1Score(average="macro", name="f1_macro"),
                     keras.metrics.CategoricalAccuracy(name="accuracy")],
        )
