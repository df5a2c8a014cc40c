"""The task contract: what a task selects, builds, fits and predicts."""

from __future__ import annotations

from dataclasses import dataclass, field

import keras
import numpy as np
import pandas as pd

from automl.data.pipeline import make_dataset
from automl.data.shift import SelectionSet
from automl.models import backbones
from automl.settings import choices


@dataclass
class SearchSpace:
    """Per-run choices fixed outside the tuner (image size, allowed families, overrides)."""

    image_size: int = 128
    families: tuple[str, ...] = choices.FAMILIES
    pretrained: bool = False
    seed: int = 0
    # Hyperparameters pinned by the user (name -> value), e.g. batch_size from --batch-size.
    fixed: dict = field(default_factory=dict)
    # The run's objective (None: the task's default), for tasks whose training depends on it.
    objective: str | None = None
    # Keras's jit_compile for every model ("auto": XLA on a GPU, not on a CPU).
    jit_compile: bool | str = "auto"
    # The Keras dtype policy models are built under (automl.models.precision).
    dtype_policy: str = "float32"


@dataclass
class SplitData:
    """Decoded images (uint8, N×S×S×1) and their index rows for one split."""

    table: pd.DataFrame
    images: np.ndarray
    # On the validation split: the run's selection set (validation, pooled with its
    # simulated re-acquisitions under shift validation); see automl.data.shift.
    selection: SelectionSet | None = None


class ValidationMetric(keras.callbacks.Callback):
    """Adds ``name`` to each epoch's logs: :meth:`Task.validation_quality` of the model's
    :meth:`Task.scores` on ``images`` — a measure Keras's own metrics cannot give (the
    exact AUROC of an anomaly score, the quality on pooled shift validation).

    Put it first in the callback list: early stopping and the tuner read what it writes.
    """

    def __init__(self, task: "Task", name: str, images: np.ndarray, labels: np.ndarray,
                 hparams: dict | None = None):
        super().__init__()
        self.task, self.metric_name, self.images, self.labels = task, name, images, labels
        self.hparams = hparams

    def on_epoch_end(self, epoch, logs=None):
        scores = self.task.scores(self.model, self.images, hparams=self.hparams)
        if logs is not None:
            logs[self.metric_name] = float(self.task.validation_quality(self.labels, scores))


class Task:
    """One learning problem over the chest X-ray index.

    A task says which rows it uses, what its targets are, how a model for a
    set of hyperparameters is built and trained, and what score the final
    evaluation reads (``evaluation`` is ``binary``, ``multiclass`` or ``anomaly``,
    matching :func:`automl.evaluation.metrics.evaluate`).
    """

    name: str = ""
    class_names: tuple[str, ...] = ()
    objective: str = ""
    evaluation: str = ""
    # Per-epoch Keras metrics the compiled model reports (``val_<name>`` on validation).
    metric_names: tuple[str, ...] = ("loss",)
    supports_shift_validation: bool = False
    # Whether ``--precision mixed`` may train this task's models in half precision.
    trains_in_mixed_precision: bool = True

    def default_objective(self, validation: str) -> str:
        """The objective a run maximises unless ``--objective`` says otherwise."""
        return self.objective

    def objectives(self, validation: str) -> tuple[str, ...]:
        """Every objective a run with this ``validation`` mode can select on."""
        return tuple(dict.fromkeys([self.default_objective(validation), self.objective,
                                    *(f"val_{m}" for m in self.metric_names)]))

    def check_image_size(self, image_size: int, *, fixed: dict, families: tuple[str, ...]) -> None:
        """Raise ValueError when no model of this task can be built at ``image_size``."""

    def attach_training(self, train: SplitData) -> None:
        """Called with the training split before any training or scoring (none by default):
        for scores that refer to the training images."""

    def select(self, table: pd.DataFrame) -> pd.DataFrame:
        """Rows of ``table`` the task can use (all by default)."""
        return table

    def use_labels(self, index, positive: str) -> None:
        """Take the classes of the data (an :class:`~automl.data.index.Index`): the binary task's
        two labels (``positive`` the positive one), the multiclass task's labels or subtypes.

        Raises:
            ValueError: a label the task cannot use, naming its first row.
        """
        raise NotImplementedError

    def classes_record(self) -> dict:
        """The summary's ``classes``: ``names`` (in score order), ``column`` (the index column
        they come from), ``negative`` (the reference label) and, with two classes, ``positive``."""
        raise NotImplementedError

    def restore_classes(self, record: dict | None) -> None:
        """Take back the classes a finished run recorded (:meth:`classes_record`), if any."""
        raise NotImplementedError

    def labels(self, table: pd.DataFrame) -> np.ndarray:
        """Integer class per row, 0 = normal."""
        raise NotImplementedError

    def model_inputs(self, images: np.ndarray, hparams: dict | None = None) -> np.ndarray:
        """uint8 images as the trained model takes them (float32 in [0, 1])."""
        return images.astype(np.float32) / 255.0

    def validation_quality(self, y: np.ndarray, scores: np.ndarray) -> float:
        """The objective's measure computed from labels and :meth:`scores` (AUC, macro-F1).

        Used for shift validation and to compare an ensemble with a single model.
        """
        raise NotImplementedError

    def build(self, hp, space: SearchSpace) -> keras.Model:
        raise NotImplementedError

    def fit(self, hp, model: keras.Model, train: SplitData, val: SplitData, space: SearchSpace,
            **fit_kwargs) -> keras.callbacks.History:
        raise NotImplementedError

    def scores(self, model: keras.Model, images: np.ndarray, *, batch_size: int = 64,
               hparams: dict | None = None) -> np.ndarray:
        """What the evaluation reads: P(pneumonia) (n,), class probabilities (n, k), or
        an anomaly score (n,). ``hparams``: the trial's values, for score choices."""
        raise NotImplementedError

    def extra_metrics(self, table: pd.DataFrame, y: np.ndarray, scores: np.ndarray,
                      result: dict) -> dict:
        """Task-specific additions to a split's metrics (none by default)."""
        return {}


class SupervisedTask(Task):
    """Shared training for the classifiers: balancing, augmentation, batch size."""

    supports_shift_validation = True

    def default_objective(self, validation: str) -> str:
        return self.shift_objective if validation == "shift" else self.objective

    def check_image_size(self, image_size, *, fixed, families):
        backbones.check_image_size(image_size, fixed=fixed, families=families)

    def targets(self, table: pd.DataFrame) -> np.ndarray:
        return self.labels(table)

    def output(self, x) -> keras.KerasTensor:
        raise NotImplementedError

    def compile(self, model: keras.Model, hp) -> None:
        raise NotImplementedError

    def build(self, hp, space: SearchSpace) -> keras.Model:
        inputs, features = backbones.build_features(
            hp, space.image_size, families=space.families, pretrained=space.pretrained)
        outputs = self.output(backbones.add_head(features, hp))
        model = keras.Model(inputs, outputs, name=f"{self.name}_{hp.get('family')}")
        self.compile(model, hp)
        return model

    def training_choices(self, hp) -> tuple[str, int, float]:
        """The hyperparameters a trial declares when it starts training: balancing, batch
        size and augmentation strength."""
        return (hp.Choice("balancing", ["class_weight", "oversample", "none"], default="class_weight"),
                hp.Choice("batch_size", [16, 32, 64], default=32),
                hp.Float("augment", 0.0, 2.0, step=0.25, default=1.0))

    def fit(self, hp, model, train, val, space, **fit_kwargs):
        balancing, batch_size, augment = self.training_choices(hp)
        labels = self.labels(train.table)
        train_ds = make_dataset(train.images, self.targets(train.table), batch_size=batch_size,
                                training=True, augment=augment, seed=space.seed,
                                oversample=balancing == "oversample")
        val_ds = make_dataset(val.images, self.targets(val.table), batch_size=128)
        class_weight = None
        if balancing == "class_weight":
            counts = np.bincount(labels, minlength=len(self.class_names))
            class_weight = {k: len(labels) / (len(counts) * max(c, 1)) for k, c in enumerate(counts)}
        callbacks = list(fit_kwargs.pop("callbacks", []))
        if val.selection is not None and val.selection.shifted:
            # Pooling makes one ranking (or one argmax) serve clean and shifted images alike,
            # so a model whose scores drift with exposure or framing loses even if each
            # version alone is well separated: that drift is what a threshold chosen on
            # clean validation does not survive on the official test split.
            callbacks.insert(0, ValidationMetric(self, self.shift_objective, val.selection.images,
                                                 val.selection.labels))
        return model.fit(train_ds, validation_data=val_ds, class_weight=class_weight,
                         callbacks=callbacks, verbose=fit_kwargs.pop("verbose", 2), **fit_kwargs)

    @property
    def shift_objective(self) -> str:
        """The objective under shift validation: ``val_auc`` becomes ``val_shift_auc``."""
        return "val_shift_" + self.objective.removeprefix("val_")

    def scores(self, model, images, *, batch_size=64, hparams=None):
        data = make_dataset(images, np.zeros(len(images)), batch_size=batch_size)
        return model.predict(data.map(lambda x, y: x), verbose=0)
