"""Cross-validated refit: patient-grouped folds, out-of-fold scores, the fold ensemble."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from automl import choices, refit


def _pool(patients=30, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(patients):
        subtype = ["normal", "bacteria", "virus"][p % 3]
        for i in range(rng.integers(1, 4)):  # several images per patient
            rows.append({"path": f"p{p}_{i}.jpeg", "patient": f"p{p}", "subtype": subtype,
                         "label": "NORMAL" if subtype == "normal" else "PNEUMONIA"})
    return pd.DataFrame(rows)


def test_folds_never_share_a_patient_and_keep_the_subtype_shares():
    pool = _pool()
    folds = refit.pool_folds(pool, 5, seed=0)
    assert set(folds) == set(range(5))
    assert (pool.assign(fold=folds).groupby("patient").fold.nunique() == 1).all()
    shares = pd.crosstab(folds, pool.subtype, normalize="index")
    assert (shares.max() - shares.min()).max() < 0.35  # every fold has every subtype, near its share
    assert (refit.pool_folds(pool, 5, seed=0) == folds).all()  # seeded


def test_refit_option():
    assert choices.refit_folds("none") == 0 and choices.refit_folds("cv:5") == 5
    for bad in ("cv:1", "cv:11", "kfold:5", "cv:x"):
        with pytest.raises(ValueError, match="--refit"):
            choices.refit_folds(bad)


def test_refit_epochs_count_from_scratch_to_the_best_epoch():
    trial = {"history": {"val_auc": [0.7, 0.9, 0.8]}, "hparams": {"tuner/initial_epoch": 4}, "seconds": 30}
    assert refit.refit_epochs(trial, "val_auc", "max") == 6  # 4 inherited + 2
    loss = {"history": {"val_loss": [0.5, 0.3, 0.4]}, "hparams": {}}
    assert refit.refit_epochs(loss, "val_loss", "min") == 2
    # 10 s per epoch on 100 images; 3 folds each train 6 epochs on 2/3 of 150 images.
    assert refit.estimate_seconds([trial], 3, objective="val_auc", direction="max", pool_size=150,
                                  train_size=100) == pytest.approx(3 * 6 * 10 * (2 / 3) * 1.5)


# The end-to-end refit checks (one out-of-fold score per image, the saved model is the fold
# average) run on the refit search of tests/test_test_chooses_nothing.py.


def test_plan_takes_folds_first_then_configurations_within_the_time_left():
    trials = [{"trial_id": "a"}, {"trial_id": "b"}, {"trial_id": "c"}]

    def cost(chosen, k):
        return 100.0 * len(chosen) * (k - 1)

    assert refit.plan(trials, 5, cost, None) == (trials, 5)
    assert refit.plan(trials, 5, cost, 1200) == (trials, 5)
    assert refit.plan(trials, 5, cost, 400) == (trials[:1], 5)
    assert refit.plan(trials, 5, cost, 350) == (trials[:1], 4)
    assert refit.plan(trials, 5, cost, 250) == (trials[:1], 3)
    assert refit.plan(trials, 2, cost, 250) == (trials[:2], 2)
    # Nothing fits: still two folds of the best configuration (out-of-fold scores need two).
    assert refit.plan(trials, 5, cost, 10) == (trials[:1], 2)
