"""Cross-validated refit: patient-grouped folds, out-of-fold scores, the fold ensemble."""

from __future__ import annotations

import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from automl.refit import choose, fold_models, plan, run, tta
from automl.refit.folds import pool_folds, unseen_validation
from automl.settings import choices


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
    folds = pool_folds(pool, 5, seed=0)
    assert set(folds) == set(range(5))
    assert (pool.assign(fold=folds).groupby("patient").fold.nunique() == 1).all()
    shares = pd.crosstab(folds, pool.subtype, normalize="index")
    assert (shares.max() - shares.min()).max() < 0.35  # every fold has every subtype, near its share
    assert (pool_folds(pool, 5, seed=0) == folds).all()  # seeded


def test_refit_option():
    assert choices.refit_folds("none") == 0 and choices.refit_folds("cv:5") == 5
    for bad in ("cv:1", "cv:11", "kfold:5", "cv:x"):
        with pytest.raises(ValueError, match="--refit"):
            choices.refit_folds(bad)


def test_the_refit_is_the_binary_default_on_real_data_only(shipped_real_data_refit, monkeypatch):
    from automl.settings.run_config import SearchConfig

    monkeypatch.setattr(choices, "REAL_DATA_REFIT", shipped_real_data_refit)

    def default(task, synthetic, **kwargs):
        return SearchConfig(task=task, **kwargs).with_defaults(synthetic=synthetic).refit

    assert default("binary", synthetic=False) == "cv:5"
    assert default("binary", synthetic=True) == "none" and default("binary", False, smoke=True) == "none"
    # No real-data study of the multiclass refit yet; the autoencoder has none.
    assert default("multiclass", synthetic=False) == "none" and default("autoencoder", False) == "none"
    assert default("binary", synthetic=False, refit="none") == "none"  # the user's choice stands
    assert default("multiclass", synthetic=False, refit="cv:3") == "cv:3"
    with pytest.raises(ValueError, match="--refit"):
        SearchConfig(refit="cv:1").validate()


def test_refit_epochs_count_from_scratch_to_the_best_epoch():
    trial = {"history": {"val_auc": [0.7, 0.9, 0.8]}, "hparams": {"tuner/initial_epoch": 4}, "seconds": 30}
    assert plan.refit_epochs(trial, "val_auc", "max") == 6  # 4 inherited + 2
    loss = {"history": {"val_loss": [0.5, 0.3, 0.4]}, "hparams": {}}
    assert plan.refit_epochs(loss, "val_loss", "min") == 2
    # A trial without a per-epoch record refits the epochs it was given, never a silent one.
    assert plan.refit_epochs({"history": {}, "hparams": {"tuner/epochs": 7}}, "val_auc", "max") == 7
    with pytest.raises(ValueError, match="trial 9: no val_auc history"):
        plan.refit_epochs({"trial_id": "9", "history": {}, "hparams": {}}, "val_auc", "max")
    # 10 s per epoch on 100 images; 3 folds each train 6 epochs on 2/3 of 150 images; then
    # 150 images (in 3 versions) are scored plain and through the 4 TTA variants, at a
    # third of a training step's 0.1 s per image; each fold's batch-norm pass after its
    # weights are averaged is one more forward pass over its 100 training images.
    train = 3 * 6 * 10 * (2 / 3) * 1.5
    scoring = 0.1 / 3 * 150 * 3 * 5
    batch_norm = 0.1 / 3 * 100 * 3
    assert plan.estimate_cost([trial], 3, objective="val_auc", direction="max", pool_size=150,
                                  train_size=100, scored_copies=3) == pytest.approx(
                                      train + scoring + batch_norm)


# Three real refits on 2 CPU cores (5,232 train + validation images, 4,186 of them the
# search's training images; 4 folds each): the best trial's seconds and epochs in the search,
# the epochs its folds trained, and what the refit took. The first two (binary-study-d813e46b)
# recorded the refit before its test-time-augmentation pass, the third (binary-study-00ae6f89,
# seed 0) with it.
REAL_REFITS = [(326.47, 12, 8, 696.57, False), (200.02, 12, 11, 660.80, False),
               (230.25, 12, 10, 855.45, True)]


@pytest.mark.parametrize("seconds, epochs, best_epoch, took, with_tta", REAL_REFITS)
def test_the_refit_estimate_stays_close_to_what_real_refits_took(seconds, epochs, best_epoch, took, with_tta):
    """Never more than 5% low (a low estimate overruns the user's budget), at most 25% high
    (a high one costs a fold)."""
    history = [0.9] * epochs
    history[best_epoch - 1] = 1.0
    trial = {"trial_id": "t", "seconds": seconds, "history": {"val_shift_auc": history}, "hparams": {}}
    estimate = plan.estimate_cost([trial], 4, objective="val_shift_auc", direction="max",
                                      pool_size=5232, train_size=4186, scored_copies=3)
    forward = seconds / epochs / (3 * 4186)
    estimate -= forward * 3 * 5232  # these refits' fold models averaged no weights
    if not with_tta:  # less the TTA pass: the pool's 3 versions through the variants
        estimate -= forward * 5232 * 3 * tta.VARIANTS
    assert 0.95 * took <= estimate <= 1.25 * took


# The end-to-end refit checks (one out-of-fold score per image, the saved model is the fold
# average) run on the refit search of tests/test_test_chooses_nothing.py.


def test_plan_takes_folds_first_then_configurations_within_the_time_left():
    trials = [{"trial_id": "a"}, {"trial_id": "b"}, {"trial_id": "c"}]

    def cost(chosen, k):
        return 100.0 * len(chosen) * (k - 1)

    assert plan.plan(trials, 5, cost, None) == (trials, 5)
    assert plan.plan(trials, 5, cost, 1200) == (trials, 5)
    assert plan.plan(trials, 5, cost, 400) == (trials[:1], 5)
    assert plan.plan(trials, 5, cost, 350) == (trials[:1], 4)
    assert plan.plan(trials, 5, cost, 250) == (trials[:1], 3)
    assert plan.plan(trials, 2, cost, 250) == (trials[:2], 2)
    # Not even two folds of the best fit: no refit (the budget is the user's limit).
    assert plan.plan(trials, 5, cost, 10) == ([], 0)


def test_when_two_folds_of_the_best_do_not_fit_the_plan_takes_the_next_best_that_fits():
    trials = [{"trial_id": "a"}, {"trial_id": "b"}, {"trial_id": "c"}]
    per_fold = {"a": 500.0, "b": 100.0, "c": 50.0}

    def cost(chosen, k):
        return k * sum(per_fold[t["trial_id"]] for t in chosen)

    assert plan.plan(trials, 5, cost, 1000) == (trials[:1], 2)  # the best fits: as before
    assert plan.plan(trials, 5, cost, 750) == (trials[1:], 5)  # b and c, 5 folds: 750 s
    assert plan.plan(trials, 5, cost, 400) == (trials[1:2], 4)
    assert plan.plan(trials, 5, cost, 150) == (trials[2:], 3)
    assert plan.plan(trials, 5, cost, 99) == ([], 0)


def test_the_refit_passes_over_a_best_that_does_not_fit_never_a_far_weaker_one(tmp_path, monkeypatch):
    from automl import records
    from automl.report import run_section
    from automl.search import refit_step
    from automl.settings.run_config import SearchConfig
    from automl.tasks import get_task
    from automl.tasks.base import SplitData

    per_fold = {"00": 1e6, "01": 20.0, "02": 1.0}
    for trial_id, auc in (("00", 0.99), ("01", 0.975), ("02", 0.83)):
        records.append_jsonl(tmp_path / "trials.jsonl", {
            "trial_id": trial_id, "status": "COMPLETED", "image_size": 32, "metrics": {"val_auc": auc},
            "hparams": {"lr": trial_id}})
    config = SearchConfig(data="unused", image_size=32, ensemble=3, refit="cv:5", out=str(tmp_path))
    top = refit_step.refit_top(config, tmp_path, "val_auc")
    # Trial 02 is 0.16 below the best: never a refit candidate, however cheap.
    assert plan.CANDIDATE_MARGIN == 0.02
    assert [t["trial_id"] for t in plan.candidates(top, "val_auc")] == ["00", "01"]
    monkeypatch.setattr(plan, "estimate_cost",
                        lambda trials, k, **kw: k * sum(per_fold[t["trial_id"]] for t in trials))

    def cross_fit(task, space, pool, images, trials, k, **kwargs):
        return fold_models.RefitResult(trials=trials, pool=pool, folds=np.arange(len(pool)) % k,
                                       selection=None)

    monkeypatch.setattr(fold_models, "cross_fit", cross_fit)
    pool = _pool(patients=6)
    data = (SplitData(pool[:4], np.zeros((4, 2, 2, 1))),
            SplitData(pool[4:], np.zeros((len(pool) - 4, 2, 2, 1))))
    said = []
    result = run.run_refit(config, tmp_path, get_task("binary"), None, data, top=top, objective="val_auc",
                           folds=5, left=100.0, log=said.append)
    assert [t["trial_id"] for t in result.trials] == ["01"] and result.plan["passed_over"] == ["00"]
    assert records.read_json(tmp_path / "refit" / run.PLAN_FILE) == {"trials": ["01"], "folds": 5,
                                                                       "passed_over": ["00"]}
    assert any("refitting the next best that fits (trial 01)" in line for line in said)
    summary = {"refit": {"folds": 5, "folds_requested": 5, "trials": ["01"], "chosen": ["01"],
                         "passed_over": ["00"]}}
    shown = run_section.render_refit(summary)
    assert "Passed over" in shown and "trial 00" in shown


def test_the_refit_encoder_never_trained_on_the_validation_images_the_knn_chooses_on():
    pool = _pool(patients=40)
    parts = {"train": pool.iloc[:60].reset_index(drop=True), "val": pool.iloc[60:].reset_index(drop=True)}
    fold, unseen = unseen_validation(parts, 3, seed=5)
    folds = pool_folds(pd.concat([parts["train"], parts["val"]], ignore_index=True), 3, seed=5)
    encoder_training = set(pd.concat([parts["train"], parts["val"]], ignore_index=True).path[folds != fold])
    assert fold == 0 and 0 < unseen.sum() < len(unseen)
    assert not set(parts["val"].path[unseen]) & encoder_training
    assert set(parts["val"].path[~unseen]) <= encoder_training


def test_when_the_refit_folds_reproduce_the_search_split_the_encoder_is_the_fold_that_held_it_out():
    from automl.data.splits import make_splits

    # K = 5 folds and a 1/5 validation share, same seed: the same splitter draws the same
    # groups, so one fold is the validation split (seed 1 of binary-study-00ae6f89: fold 2).
    pool = _pool(patients=60)
    index = types.SimpleNamespace(table=pool.assign(split="train"), root=Path("pool"))
    splits = make_splits(index, val_fraction=0.2, seed=1)
    parts = {"train": splits.train, "val": splits.val}
    folds = pool_folds(pd.concat([splits.train, splits.val], ignore_index=True), 5, seed=1)
    assert len(np.unique(folds[len(splits.train):])) == 1  # every validation image in one fold
    fold, unseen = unseen_validation(parts, 5, seed=1)
    assert fold == folds[len(splits.train)] and unseen.all()


@pytest.mark.slow
def test_a_refit_that_cannot_fit_the_time_budget_is_skipped_and_said(synthetic_data, tmp_path, monkeypatch):
    from automl import records
    from automl.records import runs
    from automl.report import run_section
    from automl.search.orchestrator import run_search
    from automl.settings.run_config import SearchConfig

    monkeypatch.setattr(plan, "estimate_cost", lambda *args, **kwargs: 1e6)  # never fits
    said = []
    run_dir = run_search(SearchConfig(data=str(synthetic_data), tuner="random", max_trials=1, epochs=1,
                                      image_size=32, fixed={"blocks": 2}, time_budget_minutes=1,
                                      refit="cv:5", out=str(tmp_path)), log=said.append)
    summary = records.read_json(run_dir / "summary.json")
    assert summary.get("refit") is None and summary["refit_skipped"]["folds_requested"] == 5
    # The refit had what the budget left and a trial's overrun allowance (a tenth of 1 minute).
    assert 63.0 < summary["refit_skipped"]["seconds_left"] + summary["search_seconds"] <= 66.0
    assert summary.get("val_source") != "out-of-fold" and not (run_dir / "refit").exists()
    assert any(line.startswith("refit skipped: two folds of trial") for line in said)
    assert "Cross-validated refit: skipped" in run_section.render_run(runs.load_run(run_dir), tmp_path)


def _checked(qualities: dict[str, list[float]], validation: dict[str, float]):
    """:func:`automl.refit.run.checked_refit` over a refit of configurations whose fold models
    scored ``qualities[trial]`` on their held-out images (``validation[trial]`` in the search)."""
    from automl.tasks import get_task

    trials = [{"trial_id": t, "metrics": {"val_auc": validation[t]}} for t in qualities]
    result = fold_models.RefitResult(
        trials=trials, pool=pd.DataFrame(), folds=np.array([0, 1]), selection=None,
        models={t: [f"{t}{f}" for f in range(len(q))] for t, q in qualities.items()},
        oof={t: np.zeros(2) for t in qualities},
        fold_records=[{"trial_id": t, "fold": f, "quality": v} for t, q in qualities.items()
                      for f, v in enumerate(q)],
        seconds=60.0, plan={"folds_requested": 2})
    return run.checked_refit(get_task("binary"), result, log=lambda *a: None)


def test_a_refit_drops_a_configuration_with_a_failed_fold_model_and_is_rejected_when_none_is_left():
    assert fold_models.FOLD_TOLERANCE == 0.1
    validation = {"12": 0.99, "07": 0.98}
    sound = _checked({"12": [0.992, 0.985], "07": [0.97, 0.95]}, validation)
    assert [t["trial_id"] for t in sound.trials] == ["12", "07"] and "failed_folds" not in sound.plan
    # The seed-1 refit of binary-study-4fa06528: fold 2 ended at 0.701 against 0.99.
    dropped = _checked({"12": [0.992, 0.701], "07": [0.97, 0.95]}, validation)
    assert [t["trial_id"] for t in dropped.trials] == ["07"] and list(dropped.models) == ["07"]
    failed = [{"trial_id": "12", "fold": 1, "quality": 0.701, "validation": 0.99}]
    assert dropped.plan["failed_folds"] == failed
    assert {r["trial_id"] for r in dropped.fold_records} == {"07"}
    rejected = _checked({"12": [0.992, 0.701]}, {"12": 0.99})
    assert rejected == {"folds_requested": 2, "seconds": 60.0, "rejected": failed}


@pytest.mark.slow
def test_a_rejected_refit_leaves_the_searchs_choices_and_says_so(synthetic_data, tmp_path, monkeypatch):
    from automl import records
    from automl.records import runs
    from automl.report import run_section
    from automl.search.orchestrator import run_search
    from automl.settings.run_config import SearchConfig

    monkeypatch.setattr(fold_models, "FOLD_TOLERANCE", -1.0)  # every fold model "fails"
    said = []
    run_dir = run_search(SearchConfig(data=str(synthetic_data), tuner="random", max_trials=1, epochs=1,
                                      image_size=32, fixed={"blocks": 2}, refit="cv:2", out=str(tmp_path)),
                         log=said.append)
    summary = records.read_json(run_dir / "summary.json")
    assert summary.get("refit") is None and summary.get("val_source") != "out-of-fold"
    assert [f["fold"] for f in summary["refit_skipped"]["rejected"]] == [0, 1]
    assert any(line.startswith("refit rejected") for line in said)
    assert "Cross-validated refit: rejected" in run_section.render_run(runs.load_run(run_dir), tmp_path)


def _scaled_folds(seed=0, n=400, copies=3):
    """A refit of one configuration on two folds whose models rank their held-out images
    equally well but on different scales (fold 1 says "pneumonia" far more readily), as the
    fold models of binary-20261128-130133-c0a8 did."""
    from sklearn.metrics import roc_auc_score

    from automl.data.shift import SelectionSet

    rng = np.random.default_rng(seed)
    folds = np.arange(n) % 2
    labels = rng.integers(0, 2, n)
    y = np.tile(labels, copies)
    margin = 1.5 * (2 * y - 1) + rng.normal(0, 1.0, len(y))
    margin += np.where(np.tile(folds, copies) == 1, 3.0, 0.0)
    scores = (1 / (1 + np.exp(-margin))).astype(np.float32)
    result = fold_models.RefitResult(
        trials=[{"trial_id": "01"}], pool=pd.DataFrame(index=range(n)), folds=folds,
        selection=SelectionSet(np.zeros((n * copies, 1, 1, 1), np.uint8), y, n), oof={"01": scores})
    per_fold = [roc_auc_score(y[np.tile(folds, copies) == f], scores[np.tile(folds, copies) == f])
                for f in (0, 1)]
    return result, y, scores, per_fold


def test_calibrating_each_fold_on_its_held_out_images_puts_the_fold_models_on_one_scale():
    from sklearn.metrics import roc_auc_score

    from automl.evaluation import decisions

    result, y, scores, per_fold = _scaled_folds()
    pooled = roc_auc_score(y, scores)
    assert pooled < min(per_fold) - 0.02  # pooled as they came out, the folds rank worse
    calibrated, fitted = choose.calibrated_oof(result, scores)
    assert len(fitted) == 2 and roc_auc_score(y, calibrated) > min(per_fold) - 0.005
    # Calibration is monotone within a fold: each fold ranks its images as before.
    rows = np.tile(result.folds, 3) == 1
    assert roc_auc_score(y[rows], calibrated[rows]) == pytest.approx(per_fold[1])
    # One threshold now means the same for both folds: their balanced thresholds agree.
    held = [np.tile(result.folds, 3) == f for f in (0, 1)]
    thresholds = [decisions.choose_threshold(y[rows], calibrated[rows]) for rows in held]
    raw = [decisions.choose_threshold(y[rows], scores[rows]) for rows in held]
    assert abs(thresholds[0] - thresholds[1]) < 0.15 < abs(raw[0] - raw[1])


@pytest.mark.parametrize("classes", [1, 3])
def test_a_calibrated_model_is_its_model_then_the_calibration_and_survives_saving(tmp_path, classes):
    import keras

    import automl
    from automl.refit import calibration

    rng = np.random.default_rng(1)
    inputs = keras.Input((4, 4, 1))
    flat = keras.layers.Flatten()(inputs)
    outputs = keras.layers.Dense(classes, activation="sigmoid" if classes == 1 else "softmax")(flat)
    model = keras.Model(inputs, outputs, name="fold_model")
    x = rng.random((64, 4, 4, 1)).astype(np.float32)
    raw = model.predict(x, verbose=0)
    raw = raw[:, 0] if classes == 1 else raw
    y = rng.integers(0, max(classes, 2), 64)
    params = calibration.fit(y, raw)
    wrapped = calibration.calibrated(model, params, name="trial_01_fold_0")
    assert calibration.unwrapped(wrapped) is model and calibration.unwrapped(model) is model
    wrapped.save(tmp_path / "m.keras")
    loaded = automl.load_model(tmp_path / "m.keras")
    expected = calibration.apply(raw, params).reshape(len(x), -1)
    assert np.allclose(loaded.predict(x, verbose=0), expected, atol=1e-5)
    if classes == 1:
        # A user's fresh process, which has imported nothing of automl but load_model
        # (here the test module had registered the layer: `automl export` had failed so).
        import subprocess
        import sys

        np.save(tmp_path / "x.npy", x)
        code = ("import sys, numpy as np, automl; m = automl.load_model(sys.argv[1]); "
                "np.save(sys.argv[3], m.predict(np.load(sys.argv[2]), verbose=0))")
        subprocess.run([sys.executable, "-c", code, str(tmp_path / "m.keras"), str(tmp_path / "x.npy"),
                        str(tmp_path / "y.npy")], check=True, capture_output=True)
        assert np.allclose(np.load(tmp_path / "y.npy"), expected, atol=1e-5)
    # A fold whose held-out images lack a class is left as it is.
    same = calibration.fit(np.zeros(64, int), raw)
    assert np.allclose(calibration.apply(raw, same), np.clip(raw, 1e-6, 1 - 1e-6), atol=1e-5)
