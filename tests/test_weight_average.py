"""Weight averaging of the refit's fold models: the average of the last epochs, batch norm remeasured."""

from __future__ import annotations

import keras
import keras_tuner as kt
import numpy as np
import pytest

from automl.data.pipeline import make_dataset
from automl.refit import weight_average
from automl.tasks import get_task
from automl.tasks.base import SearchSpace


def _binary_model(seed=0):
    """The search's binary network (plain family, its default choices) at 32 px."""
    keras.utils.set_random_seed(seed)
    return get_task("binary").build(kt.HyperParameters(), SearchSpace(image_size=32, families=("plain",)))


def _images(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, 32, 32, 1), dtype=np.uint8), rng.integers(0, 2, size=n)


@pytest.mark.parametrize("epochs, expected", [(1, 1), (2, 1), (3, 2), (6, 3), (9, 5), (12, 6)])
def test_the_average_takes_the_last_half_of_the_epochs(epochs, expected):
    assert weight_average.averaged_epochs(epochs) == expected


class _Snapshots(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.weights = []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append([np.array(w) for w in self.model.get_weights()])


def _trained(epochs: int, averaged: int):
    """The binary model trained ``epochs`` epochs with the average of the last ``averaged``,
    and its weights at the end of each epoch before the average."""
    model = _binary_model()
    images, labels = _images()
    snapshots = _Snapshots()
    # The snapshot callback runs first: it sees each epoch's weights before the average does.
    model.fit(make_dataset(images, labels.astype(np.float32), batch_size=8, training=True), epochs=epochs,
              callbacks=[snapshots, weight_average.WeightAverage(epochs, averaged)], verbose=0)
    return model, snapshots.weights


def test_the_trained_model_is_the_mean_of_its_last_epochs_weights():
    model, weights = _trained(4, 2)
    moved = 0
    for i, w in enumerate(model.get_weights()):
        expected = (weights[2][i] + weights[3][i]) / 2
        np.testing.assert_allclose(w, expected, rtol=1e-5, atol=1e-6)
        moved += not np.allclose(weights[3][i], expected)
    assert moved > 0  # the epochs' weights differ: the average is not the last epoch's


def test_one_averaged_epoch_leaves_the_model_as_trained():
    model, weights = _trained(2, 1)
    for w, last in zip(model.get_weights(), weights[-1]):
        np.testing.assert_array_equal(w, last)


def test_batch_norm_statistics_are_remeasured_over_the_images_as_the_model_computes_them():
    model = _binary_model()
    layers = weight_average.batch_norm_layers(model)
    assert layers, "the plain family has batch norm"
    first = layers[0]
    first.moving_mean.assign(np.full(first.moving_mean.shape, 5.0, np.float32))
    images, _ = _images(n=50)  # batches of 16, 16, 16 and 2: weighted by size
    weight_average.recompute_batch_norm(model, images, batch_size=16)
    # What enters the first batch-norm layer, batch by batch (nothing before it is random).
    source = model.layers[model.layers.index(first) - 1]
    assert isinstance(source, keras.layers.Conv2D)
    before = keras.Model(model.inputs, source.output)
    dataset = make_dataset(images, np.zeros(50), batch_size=16)
    batches = [np.asarray(before(x, training=True)) for x, _ in dataset]
    sizes = np.array([len(b) for b in batches], np.float64)
    axes = (0, 1, 2)
    means = np.stack([b.mean(axis=axes) for b in batches])
    variances = np.stack([b.var(axis=axes) for b in batches])
    np.testing.assert_allclose(first.moving_mean, (sizes[:, None] * means).sum(0) / sizes.sum(),
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(first.moving_variance, (sizes[:, None] * variances).sum(0) / sizes.sum(),
                               rtol=1e-3, atol=1e-5)
    assert first.momentum == pytest.approx(0.99)  # the layer's own momentum is back for training


def test_each_refit_fold_model_averages_its_last_epochs_and_remeasures_batch_norm(tmp_path):
    """The refit on its real path: a trial whose best epoch was the third refits 3 epochs per
    fold and averages the last 2; a rerun keeps those fold models, never ones trained without
    the average."""
    import pandas as pd

    from automl.refit import fold_models

    rng = np.random.default_rng(0)
    rows = [{"path": f"p{p}_{i}.jpeg", "patient": f"p{p}", "subtype": ["normal", "bacteria", "virus"][p % 3],
             "label": "NORMAL" if p % 3 == 0 else "PNEUMONIA"} for p in range(24) for i in range(2)]
    pool = pd.DataFrame(rows)
    images = rng.integers(0, 256, size=(len(pool), 32, 32, 1), dtype=np.uint8)
    space = SearchSpace(image_size=32, families=("plain",))
    hp = kt.HyperParameters()
    get_task("binary").build(hp, space)
    values = dict(hp.values, batch_size=16)
    trial = {"trial_id": "07", "hparams": values, "seconds": 3.0, "history": {"val_auc": [0.6, 0.7, 0.8]}}
    store = tmp_path / "refit"
    result = fold_models.cross_fit(get_task("binary"), space, pool, images, [trial], 2, objective="val_auc",
                                   direction="max", shifted=False, seed=0, store=store, log=lambda *a: None)
    assert [(r["epochs"], r["averaged_epochs"]) for r in result.fold_records] == [(3, 2), (3, 2)]
    for fold, model in enumerate(result.models["07"]):
        trained_on = images[result.folds != fold]
        stats = [np.array(layer.moving_variance) for layer in weight_average.batch_norm_layers(model)]
        weight_average.recompute_batch_norm(model, trained_on)  # measured already: nothing moves
        for before, layer in zip(stats, weight_average.batch_norm_layers(model)):
            np.testing.assert_allclose(layer.moving_variance, before, rtol=1e-4, atol=1e-6)
    # A fold model trained without the average (an earlier version's record) is trained again.
    lines = (store / fold_models.FOLDS_FILE).read_text().splitlines()
    old = [line.replace('"averaged_epochs": 2, ', "") for line in lines]
    (store / fold_models.FOLDS_FILE).write_text("\n".join(old[:1] + lines[1:]) + "\n")
    said = []
    fold_models.cross_fit(get_task("binary"), space, pool, images, [trial], 2, objective="val_auc",
                          direction="max", shifted=False, seed=0, store=store, log=said.append)
    assert said == ["refit: trial 07, fold 1/2: 24 images, 3 epochs, the weights of the last 2 averaged",
                    "refit: trial 07, fold 2/2: kept from the interrupted run"]
