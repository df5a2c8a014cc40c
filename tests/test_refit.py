"""Cross-validated refit: patient-grouped folds, out-of-fold scores, the fold ensemble."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from automl import choices, records, refit


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


@pytest.mark.slow
def test_a_refit_search_scores_every_pool_image_once_and_saves_the_fold_average(synthetic_data, tmp_path):
    import automl
    from automl.data.pipeline import load_images
    from automl.run_config import SearchConfig
    from automl.search import run_search
    from automl.tasks.binary import BinaryTask

    run_dir = run_search(SearchConfig(data=str(synthetic_data), tuner="random", max_trials=2, epochs=1,
                                      image_size=32, ensemble=2, fixed={"blocks": 2}, refit="cv:3",
                                      out=str(tmp_path)), log=lambda *a: None)
    summary = records.read_json(run_dir / "summary.json")
    r = summary["refit"]
    assert r["folds"] == 3 and summary["val_source"] == "out-of-fold"
    assert 1 <= len(r["chosen"]) <= len(r["trials"]) <= 2
    # Every image of train + validation has exactly one out-of-fold score, from the fold
    # model that did not train on it (each fold's held-out patients are its own).
    scores = pd.read_csv(run_dir / "scores.csv")
    oof = scores[scores.split == "val"]
    counts = summary["data"]["counts"]
    assert len(oof) == oof.path.nunique() == counts["train"] + counts["val"]
    folds = [f for f in r["fold_records"] if f["trial_id"] == r["trials"][0]]
    assert sum(f["held_out_images"] for f in folds) == len(oof)
    # The saved model is the average of the chosen configurations' fold models (with TTA
    # when chosen) and gives the recorded test scores.
    model = automl.load_model(run_dir / "best_model.keras")
    members = [layer for layer in model.layers if layer.name.startswith("member_")]
    assert len(members) == 3 * len(r["chosen"])
    test = scores[scores.split == "test"]
    images = load_images([synthetic_data / p for p in test.path], 32)
    x = BinaryTask().model_inputs(images)
    saved = model.predict(x, verbose=0).reshape(-1)
    averaged = np.mean([m.predict(x, verbose=0).reshape(-1) for m in members], axis=0)
    assert np.allclose(saved, averaged, atol=1e-6)
    assert np.allclose(saved, test.score.to_numpy(), atol=1e-5)
