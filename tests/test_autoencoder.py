import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from automl.run_config import SearchConfig
from automl.search import run_search
from automl.tasks.autoencoder import anomaly_scores


def test_topk_score_sees_a_small_lesion_the_mean_hides():
    clean = np.zeros((2, 32, 32, 1))
    recon = clean.copy()
    recon[1, :3, :3] = 1.0  # a small focal error in image 1
    mean, topk = anomaly_scores(clean, recon), anomaly_scores(clean, recon, mode="topk")
    assert topk[1] / max(mean[1], 1e-9) > 5 and topk[0] == 0


@pytest.mark.slow
def test_objective_is_the_detection_auroc(synthetic_data, tmp_path):
    fixed = {"learning_rate": 3e-3, "loss": "mse", "encoder_depth": 2, "augment": 0.0,
             "denoise_noise": 0.0, "score": "mean", "batch_size": 16}
    run_dir = run_search(SearchConfig(task="autoencoder", data=str(synthetic_data), tuner="random",
                                      max_trials=1, epochs=8, image_size=32, out=str(tmp_path),
                                      fixed=fixed), log=lambda *a: None)
    summary = json.loads((run_dir / "summary.json").read_text())
    scores = pd.read_csv(run_dir / "scores.csv")
    val = scores[scores.split == "val"]
    recomputed = roc_auc_score(val.label == "PNEUMONIA", val.score)
    assert summary["objective"]["name"] == "val_auroc"
    assert summary["objective"]["value"] > 0.5
    assert abs(summary["objective"]["value"] - recomputed) < 1e-6
    assert set(summary["test"]["subtype_detection"]) == {"bacteria", "virus", "normal_flagged"}
    for png in ("score_histogram.png", "reconstructions.png", "roc.png"):
        assert (run_dir / png).exists()
    # Trained on NORMAL images only: the trial record says how many it saw per epoch.
    trials = [json.loads(line) for line in (run_dir / "trials.jsonl").read_text().splitlines()]
    assert trials[0]["status"] == "COMPLETED"


def test_stretch_contrast_removes_global_exposure():
    from automl.tasks.autoencoder import stretch_contrast

    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (1, 16, 16, 1)).astype(np.float32)
    dark = (base * 0.4 + 20).astype(np.uint8)
    bright = (base * 0.8 + 40).astype(np.uint8)
    a, b = stretch_contrast(dark), stretch_contrast(bright)
    assert a.dtype == np.uint8 and a.shape == dark.shape
    assert np.abs(a.astype(int) - b.astype(int)).mean() < 3


def test_equalize_histogram_removes_monotone_exposure_changes():
    from automl.tasks.autoencoder import equalize_histogram, prepare_intensity

    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (3, 16, 16, 1)).astype(np.float32) / 255.0
    dark = np.round(base ** 1.8 * 255).astype(np.uint8)
    bright = np.round(base ** 0.6 * 255).astype(np.uint8)
    a, b = equalize_histogram(dark), prepare_intensity(bright, "equalize")
    assert a.dtype == np.uint8 and a.shape == dark.shape
    assert np.abs(a.astype(int) - b.astype(int)).mean() < 4  # gamma is undone, up to 8-bit rounding
    assert 110 < a.mean() < 145  # a flat histogram has its mean mid-range
