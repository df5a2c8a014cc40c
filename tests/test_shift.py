"""Shift validation, histogram equalisation and gamma augmentation."""

import json

import keras
import numpy as np
import pytest

from automl import records
from automl.data import shift
from automl.data.pipeline import RandomGamma
from automl.models.layers import HistogramEqualization
from automl.search.orchestrator import run_search
from automl.settings.run_config import SearchConfig
from automl.tasks import get_task
from automl.tasks.base import ValidationMetric


def _images(n=6, size=32, seed=0):
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 1, size)[None, :, None, None] * np.ones((n, size, 1, 1))
    return np.clip((ramp * 200 + rng.normal(0, 20, (n, size, size, 1))), 0, 255).astype(np.uint8)


def test_shifted_copies_are_deterministic_perturbed_and_shaped():
    images = _images()
    first = shift.shifted_copies(images, copies=2, seed=3)
    assert first.shape == (12, 32, 32, 1) and first.dtype == np.uint8
    np.testing.assert_array_equal(first, shift.shifted_copies(images, copies=2, seed=3))
    assert not np.array_equal(first, shift.shifted_copies(images, copies=2, seed=4))
    # Every copy differs from its original, and the two copies from each other.
    assert np.abs(first[:6].astype(int) - images).mean() > 2
    assert np.abs(first[:6].astype(int) - first[6:]).mean() > 2


def test_shifted_copies_reject_float_images():
    with pytest.raises(ValueError, match="uint8"):
        shift.shifted_copies(np.zeros((2, 8, 8, 1), np.float32))


def test_selection_set_pools_whole_copies_with_their_labels_in_order():
    images, labels = _images(3), np.array([0, 1, 1])
    pooled = shift.SelectionSet.build(images, labels, shifted=True, seed=5)
    assert pooled.shifted and pooled.n_clean == 3 and len(pooled.images) == 9
    np.testing.assert_array_equal(pooled.labels, [0, 1, 1] * 3)
    np.testing.assert_array_equal(pooled.clean_images, images)
    np.testing.assert_array_equal(pooled.images[3:], shift.shifted_copies(images, seed=5))
    plain = shift.SelectionSet.build(images, labels, shifted=False)
    assert not plain.shifted and len(plain.images) == 3
    with pytest.raises(ValueError, match="2 labels for 3"):
        shift.SelectionSet.build(images, labels[:2], shifted=True)


def test_shift_validation_callback_adds_its_metric():
    images, labels = _images(8), np.array([0, 1] * 4)
    model = keras.Sequential([keras.Input((32, 32, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(1, activation="sigmoid")])
    task = get_task("binary")
    callback = ValidationMetric(task, "val_shift_auc", images, labels)
    callback.set_model(model)
    logs = {}
    callback.on_epoch_end(0, logs)
    assert 0.0 <= logs["val_shift_auc"] <= 1.0


def test_histogram_equalisation_ignores_monotone_exposure_changes():
    x = _images(4).astype(np.float32) / 255.0
    layer = HistogramEqualization()
    out = keras.ops.convert_to_numpy(layer(x))
    gamma = keras.ops.convert_to_numpy(layer(x ** 1.7))
    assert abs(out.mean()) < 0.05 and abs(out.std() - 1) < 0.1
    # Gamma keeps the order of grey levels; only 8-bit rounding (merged levels) differs.
    assert np.abs(out - gamma).mean() < 0.05
    assert np.abs(out - keras.ops.convert_to_numpy(layer(1 - x))).mean() > 0.5  # inversion is not


def test_random_gamma_changes_exposure_only_when_training():
    x = np.full((16, 4, 4, 1), 0.5, np.float32)
    layer = RandomGamma(0.4, seed=0)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x, training=False)), x)
    out = keras.ops.convert_to_numpy(layer(x, training=True))
    per_image = out[:, 0, 0, 0]
    assert per_image.std() > 0.01 and per_image.min() >= 0.5 ** np.exp(0.4) - 1e-6
    assert np.allclose(out, per_image[:, None, None, None])  # one gamma per image


@pytest.mark.slow
def test_search_selects_and_thresholds_on_shifted_validation(synthetic_data, tmp_path):
    config = SearchConfig(data=str(synthetic_data), max_trials=2, epochs=1, image_size=32,
                          tuner="random", out=str(tmp_path), fixed={"normalize": "equalize"})
    run_dir = run_search(config, log=lambda *a: None)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["objective"]["name"] == "val_shift_auc"
    assert summary["config"]["validation"] == "shift"
    # The pooled set is the validation split and two shifted copies of it.
    assert sum(summary["val_shift"]["confusion_matrix"][0]) + sum(
        summary["val_shift"]["confusion_matrix"][1]) == 3 * summary["data"]["counts"]["val"]
    for trial in records.read_jsonl(run_dir / "trials.jsonl"):
        assert "val_shift_auc" in trial["history"] and trial["hparams"]["normalize"] == "equalize"


# Plain validation keeping the task's objective is checked by the Bayesian search of
# tests/test_search.py::test_grid_and_bayesian_tuners_run.


def test_unknown_validation_is_refused(synthetic_data, tmp_path):
    config = SearchConfig(data=str(synthetic_data), max_trials=1, epochs=1, image_size=32,
                          out=str(tmp_path), validation="test")
    with pytest.raises(ValueError, match="--validation: got 'test'; choose shift or plain"):
        run_search(config, log=lambda *a: None)
    assert not list(tmp_path.iterdir())  # refused before a run folder exists


def test_shift_objective_without_shift_validation_is_refused(synthetic_data, tmp_path):
    config = SearchConfig(data=str(synthetic_data), max_trials=1, epochs=1, image_size=32,
                          out=str(tmp_path), validation="plain", objective="val_shift_auc")
    with pytest.raises(ValueError, match="--objective: got 'val_shift_auc'.*--validation plain"):
        run_search(config, log=lambda *a: None)


def test_trial_time_limit_stops_at_the_search_deadline():
    import time

    from automl.search.budget import Budget
    from automl.search.callbacks import TrialTimeLimit

    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    late = TrialTimeLimit(None, Budget(1, started=time.time() - 3600))  # its end and overrun passed
    late.set_model(model)
    late.on_train_begin()
    late.on_epoch_end(0)
    assert model.stop_training
    model.stop_training = False
    early = TrialTimeLimit(60, Budget(60))
    early.set_model(model)
    early.on_train_begin()
    early.on_epoch_end(0)
    assert not model.stop_training
