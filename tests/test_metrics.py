"""Tests for automl.evaluation.metrics."""

import json

import numpy as np
import pytest
from sklearn.metrics import f1_score, roc_auc_score

from automl.evaluation import bootstrap as B
from automl.evaluation import decisions as D
from automl.evaluation import metrics as M

BIN = ["NORMAL", "PNEUMONIA"]
MC = ["normal", "bacteria", "virus"]


def _binary(n=200, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p = np.clip(0.3 * y + 0.35 + rng.normal(0, 0.2, n), 0, 1)
    return y, p


def _multiclass(n=300, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    logits = rng.normal(0, 1, (n, 3))
    logits[np.arange(n), y] += 1.5
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return y, p


def test_perfect_predictions():
    y = np.array([0, 0, 1, 1, 1])
    out = M.evaluate(y, np.array([0.1, 0.2, 0.8, 0.9, 0.7]), kind="binary", class_names=BIN,
                     n_resamples=50)
    assert out["accuracy"] == 1 and out["auc"] == 1 and out["f1_macro"] == 1
    assert all(v == 0 for v in out["bias"].values())
    assert out["ci"]["accuracy"] == [1.0, 1.0]


def test_always_pneumonia():
    y = np.r_[np.zeros(234, int), np.ones(390, int)]
    out = M.evaluate(y, np.full(624, 0.9), kind="binary", class_names=BIN, n_resamples=100)
    assert out["accuracy"] == pytest.approx(0.625)
    assert out["sensitivity"] == 1 and out["specificity"] == 0
    assert out["bias"]["sens_spec_gap"] == 1
    assert out["bias"]["positive_rate_skew"] == pytest.approx(0.375)
    assert out["bias"]["false_normal_rate"] == 0
    assert out["auc"] == 0.5
    assert out["per_class"]["NORMAL"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0,
                                          "support": 234}
    assert out["confusion_matrix"] == [[0, 234], [0, 390]]


@pytest.mark.parametrize("rule", ["balanced", "youden", "f1"])
def test_threshold_rules_separable(rule):
    y = np.r_[np.zeros(50, int), np.ones(50, int)]
    s = np.r_[np.linspace(0.0, 0.3, 50), np.linspace(0.7, 1.0, 50)]
    t = D.choose_threshold(y, s, rule=rule)
    assert 0.3 < t <= 0.7
    assert (M.predict_labels(s, threshold=t) == y).all()
    assert D.choose_threshold(y, s, rule=rule) == t  # deterministic


def test_operating_point_rules_keep_their_target_on_the_selection_set():
    # 10 positives at 0.10..1.00 and 10 negatives at 0.05..0.50 (overlapping).
    y = np.r_[np.ones(10, int), np.zeros(10, int)]
    s = np.r_[np.linspace(0.1, 1.0, 10), np.linspace(0.05, 0.5, 10)]
    t = D.choose_threshold(y, s, rule="sens:0.9")
    pred = M.predict_labels(s, threshold=t)
    assert pred[y == 1].mean() == 0.9  # 9 of 10 positives: the target, exactly
    # ... and the highest such threshold: one step up loses a positive.
    assert t == pytest.approx(0.175) and M.predict_labels(s, threshold=0.21)[y == 1].mean() < 0.9
    t = D.choose_threshold(y, s, rule="spec:0.8")
    pred = M.predict_labels(s, threshold=t)
    assert (pred[y == 0] == 0).mean() == 0.8 and t == pytest.approx(0.425)
    assert D.choose_threshold(y, s, rule="sens:1") <= 0.1 and D.choose_threshold(y, s, rule="spec:1") > 0.5
    # Sensitivity needs positives only; an impossible target is an error naming it.
    assert D.choose_threshold([1, 1], [0.2, 0.9], rule="sens:0.5") == pytest.approx(0.55)
    with pytest.raises(ValueError, match="needs negatives"):
        D.choose_threshold([1, 1], [0.2, 0.9], rule="spec:0.5")
    for bad in ("sens:0", "sens:1.5", "spec:x"):
        with pytest.raises(ValueError, match="must be a number in \\(0, 1\\]"):
            D.choose_threshold(y, s, rule=bad)


def test_threshold_numeric_and_invalid():
    assert D.choose_threshold([0, 1], [0.2, 0.9], rule="0.5") == 0.5
    assert D.choose_threshold([0, 1], [0.2, 0.9], rule=0.3) == 0.3
    with pytest.raises(ValueError, match="rule"):
        D.choose_threshold([0, 1], [0.2, 0.9], rule="best")
    with pytest.raises(ValueError, match="both classes"):
        D.choose_threshold([1, 1], [0.2, 0.9])


def test_threshold_balanced_beats_default_on_imbalanced():
    y, p = _binary(400, seed=1)
    t = D.choose_threshold(y, p)

    def ba(thr):
        return np.mean([np.mean((p >= thr)[y == c] == c) for c in (0, 1)])

    assert ba(t) >= ba(0.5) - 1e-12


def test_anomaly_scores_unbounded():
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(60, int), np.ones(90, int)]
    s = np.r_[rng.uniform(100, 160, 60), rng.uniform(140, 200, 90)]
    t = D.choose_threshold(y, s)
    assert 100 <= t <= 200
    out = M.evaluate(y, s, kind="anomaly", threshold=t, class_names=BIN, n_resamples=100)
    assert out["brier"] is None and out["ece"] is None
    assert out["auc"] == pytest.approx(roc_auc_score(y, s))
    assert out["threshold"] == t and out["balanced_accuracy"] > 0.7
    json.dumps(out)
    with pytest.raises(ValueError, match="threshold"):
        M.evaluate(y, s, kind="anomaly", class_names=BIN)


def test_ci_contains_point_and_deterministic():
    y, p = _binary(300)
    yp = M.predict_labels(p, threshold=0.5)
    a = M.bootstrap_ci(y, yp, p, n_resamples=500, seed=3)
    assert a == M.bootstrap_ci(y, yp, p, n_resamples=500, seed=3)
    assert a != M.bootstrap_ci(y, yp, p, n_resamples=500, seed=4)
    point = {"accuracy": np.mean(y == yp), "f1_macro": f1_score(y, yp, average="macro"),
             "auc": roc_auc_score(y, p)}
    for k, (lo, hi) in a.items():
        assert lo <= point[k] <= hi and hi - lo < 0.25


def test_bootstrap_auc_matches_sklearn_with_ties():
    y = np.array([0, 0, 1, 1, 0, 1, 1, 0])
    s = np.array([0.1, 0.5, 0.5, 0.9, 0.3, 0.3, 0.7, 0.2])
    counts = np.ones((1, len(y)))
    assert B._rank_auc(counts, y == 1, s)[0] == pytest.approx(roc_auc_score(y, s))
    y3, p3 = _multiclass(90)
    ci = M.bootstrap_ci(y3, p3.argmax(1), p3, n_resamples=200)
    assert ci["auc"][0] <= roc_auc_score(y3, p3, multi_class="ovr") <= ci["auc"][1]


def test_prior_correction():
    y, p = _multiclass(300)
    perfect = np.eye(3)[y] * 0.8 + 0.2 / 3
    assert D.choose_prior_correction(y, perfect) is None
    # virus (2) systematically under-predicted: its mass leaks to bacteria (1)
    skewed = p.copy()
    skewed[:, 1] += 0.6 * skewed[:, 2]
    skewed[:, 2] *= 0.4
    w = D.choose_prior_correction(y, skewed)
    assert w is not None and w.shape == (3,) and w[0] == 1 and w[2] > w[1]
    base = f1_score(y, skewed.argmax(1), average="macro")
    assert f1_score(y, M.predict_labels(skewed, weights=w), average="macro") > base


def test_multiclass_evaluate():
    y, p = _multiclass(300)
    out = M.evaluate(y, p, kind="multiclass", class_names=MC, n_resamples=200)
    assert np.array(out["confusion_matrix"]).shape == (3, 3)
    assert list(out["per_class"]) == MC
    assert [r for r in np.array(out["confusion_matrix"]).sum(1)] == \
        [out["per_class"][c]["support"] for c in MC]
    assert out["auc"] == pytest.approx(roc_auc_score(y, p, multi_class="ovr"))
    assert out["auc_pneumonia"] == pytest.approx(roc_auc_score(y != 0, 1 - p[:, 0]))
    pred = p.argmax(1)
    assert out["sensitivity"] == pytest.approx(np.mean(pred[y != 0] != 0))
    assert out["threshold"] is None and out["class_names"] == MC
    json.loads(json.dumps(out))
    with pytest.raises(ValueError, match="multiclass"):
        M.evaluate(y, p, kind="multiclass", threshold=0.5, class_names=MC)


def test_evaluate_keys_and_json():
    y, p = _binary(120)
    out = M.evaluate(y, p, kind="binary", class_names=BIN, n_resamples=100)
    assert set(out) == {"n", "accuracy", "balanced_accuracy", "f1_macro", "auc", "sensitivity",
                        "specificity", "per_class", "confusion_matrix", "brier", "ece", "bias",
                        "ci", "ci_unit", "threshold", "class_names"}
    assert set(out["ci"]) == {"accuracy", "f1_macro", "auc"}
    assert json.loads(json.dumps(out, allow_nan=False)) == out


def test_one_class_auc_none():
    y = np.ones(20, int)
    out = M.evaluate(y, np.linspace(0.2, 0.9, 20), kind="binary", class_names=BIN,
                     n_resamples=50)
    assert out["auc"] is None and out["ci"]["auc"] is None
    json.dumps(out, allow_nan=False)
    y3 = np.array([0, 1, 1, 0])
    out3 = M.evaluate(y3, np.full((4, 3), 1 / 3), kind="multiclass", class_names=MC,
                      n_resamples=20)
    assert out3["auc"] is None and out3["auc_pneumonia"] == 0.5


def test_calibration():
    y = np.array([0, 1, 0, 1])
    assert M.brier_score_loss(y, y.astype(float)) == 0
    assert M.expected_calibration_error(y, y.astype(float)) == 0
    assert M.expected_calibration_error(y, np.full(4, 0.5)) == 0
    assert M.expected_calibration_error([1, 1], [0.2, 0.2], n_bins=10) == pytest.approx(0.8)
    assert M.brier_score_loss([1, 0], [0.5, 0.5]) == 0.25
    with pytest.raises(ValueError, match="prob_positive"):
        M.brier_score_loss([0, 1], [0.5, 1.5])


def test_bias_multiclass_and_roc_points():
    y = np.array([0, 0, 1, 1, 2, 2])
    yp = np.array([0, 1, 1, 1, 0, 2])
    b = M.bias_measures(y, yp)
    assert b["recall_spread"] == pytest.approx(0.5)
    assert b["false_normal_rate"] == pytest.approx(0.25)
    assert b["sens_spec_gap"] == pytest.approx(0.25)
    assert b["positive_rate_skew"] == pytest.approx(0.0)
    fpr, tpr = M.roc_points([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    assert fpr[0] == 0 and tpr[-1] == 1 and isinstance(fpr, list)


def test_input_validation_messages():
    with pytest.raises(ValueError, match=r"shape \(n,\)"):
        M.evaluate([0, 1], [0.5], kind="binary", class_names=BIN)
    with pytest.raises(ValueError, match="kind"):
        M.evaluate([0, 1], [0.5, 0.5], kind="regression", class_names=BIN)
    with pytest.raises(ValueError, match="y_true"):
        M.evaluate([0, 3], [0.5, 0.5], kind="binary", class_names=BIN)


def test_patient_bootstrap_resamples_whole_patients():
    rng = np.random.default_rng(0)
    # 40 patients with 10 images each; a patient's images are all right or all wrong.
    patients = np.repeat(np.arange(40), 10)
    y = np.repeat(rng.integers(0, 2, 40), 10)
    right = np.repeat(rng.random(40) < 0.8, 10)
    y_pred = np.where(right, y, 1 - y)
    by_image = M.bootstrap_ci(y, y_pred, metrics=["accuracy"], seed=1)["accuracy"]
    by_patient = M.bootstrap_ci(y, y_pred, groups=patients, metrics=["accuracy"], seed=1)["accuracy"]
    # 400 images look like 400 independent cases; there are only 40 independent patients.
    assert by_patient[1] - by_patient[0] > 2 * (by_image[1] - by_image[0])
    assert by_patient[0] < np.mean(y == y_pred) < by_patient[1]
    # One image per patient: the same resamples as image resampling.
    assert M.bootstrap_ci(y, y_pred, groups=np.arange(400), metrics=["accuracy"], seed=1) == \
        M.bootstrap_ci(y, y_pred, metrics=["accuracy"], seed=1)
    out = M.evaluate(y, np.where(y_pred == 1, 0.9, 0.1), kind="binary", class_names=BIN,
                     groups=patients, n_resamples=200)
    assert out["ci_unit"] == "patient"
    with pytest.raises(ValueError, match="groups must have shape"):
        M.bootstrap_ci(y, y_pred, groups=patients[:10])
