"""Proof that the official test split chooses nothing: permute its labels, or replace its
images by noise, and every choice of a search and of the KNN benchmark stays the same."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from automl import records
from automl.refit import calibration
from automl.refit.folds import unseen_validation
from automl.search.orchestrator import prepare, run_search
from automl.serve.embeddings import embed_run
from automl.settings.run_config import SearchConfig

pytestmark = pytest.mark.slow

# Everything that is chosen: on validation (and its shifted copies) only.
CHOICES = ("best_trial", "best_hparams", "objective", "ensemble", "threshold", "prior_weights",
           "val", "val_shift", "refit")


def _test_files(root):
    return sorted((root / "test").rglob("*.jpeg"))


def _permuted_test_labels(source, target):
    """The same data with the test images shuffled among the test files: each test image
    now carries another image's label (and class folder, patient and subtype)."""
    shutil.copytree(source, target)
    files = _test_files(target)
    contents = [f.read_bytes() for f in files]
    order = np.random.default_rng(7).permutation(len(files))
    assert (order != np.arange(len(files))).any()
    for file, k in zip(files, order):
        file.write_bytes(contents[k])
    return target


def _noise_test_images(source, target):
    shutil.copytree(source, target)
    rng = np.random.default_rng(8)
    for file in _test_files(target):
        size = Image.open(file).size
        Image.fromarray(rng.integers(0, 256, size[::-1], dtype=np.uint8), mode="L").save(file)
    return target


def _choices(run_dir):
    summary = records.read_json(run_dir / "summary.json")
    trials = [(t["trial_id"], t["hparams"], t["history"], t["metrics"])
              for t in records.read_jsonl(run_dir / "trials.jsonl")]
    knn = [(r["features"], r["k"], r["metric"], r["decision"], r["val"])
           for r in records.read_jsonl(run_dir / "knn.jsonl")]
    chosen = {key: summary.get(key) for key in CHOICES}
    if chosen["refit"]:
        # Timings differ from run to run.
        chosen["refit"] = {k: v for k, v in chosen["refit"].items() if not k.startswith("seconds")}
        chosen["refit"]["fold_records"] = [{k: v for k, v in f.items() if k != "seconds"}
                                           for f in chosen["refit"]["fold_records"]]
    return {"trials": trials, "knn": knn, **chosen}, summary["test"]


@pytest.fixture(scope="module")
def datasets(synthetic_data, tmp_path_factory):
    # Identical training in every variant (the searches train deterministically): any
    # difference is then something test changed.
    root = tmp_path_factory.mktemp("variants")
    return {"as is": synthetic_data,
            "test labels permuted": _permuted_test_labels(synthetic_data, root / "permuted"),
            "test images noise": _noise_test_images(synthetic_data, root / "noise")}


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_no_choice_reads_the_test_split(task, datasets, tmp_path):
    made, runs = {}, {}
    # Test time: the binary search (with its refit) is checked with permuted test labels,
    # the multiclass one with test images replaced by noise; both against the data as is.
    other = "test labels permuted" if task == "binary" else "test images noise"
    variants = {k: v for k, v in datasets.items() if k in ("as is", other)}
    for name, data in variants.items():
        # The binary search refits on folds: its choices are made on out-of-fold scores.
        config = SearchConfig(task=task, data=str(data), tuner="random", max_trials=2, epochs=1,
                              image_size=32, ensemble=2, fixed={"blocks": 2}, seed=0,
                              refit="cv:2" if task == "binary" else "none", deterministic="on",
                              out=str(tmp_path / name.replace(" ", "-")))
        run_dir = run_search(config, log=lambda *a: None)
        embed_run(run_dir, tsne=False, log=lambda *a: None)
        made[name], runs[name] = _choices(run_dir), run_dir
    chosen, test = made["as is"]
    assert chosen["knn"] and len(chosen["trials"]) == 2
    # The binary run decides on its refit's out-of-fold scores, the multiclass run on validation.
    assert chosen["refit" if task == "binary" else "ensemble"] is not None
    assert (task == "binary") == (chosen["threshold"] is not None)
    for name in (k for k in made if k != "as is"):
        other_chosen, other_test = made[name]
        for key in chosen:
            assert other_chosen[key] == chosen[key], f"{name}: {key} changed"
        # Not vacuous: the test scores did change.
        assert other_test["confusion_matrix"] != test["confusion_matrix"] or \
            other_test["auc"] != test["auc"], name
    if task == "binary":
        refit_run_is_whole(runs["as is"], datasets["as is"])
        refit_resumes_where_it_stopped(runs["as is"])
    else:
        # The multiclass refit, on its real shapes: one-hot targets, (n, 3) out-of-fold
        # probabilities, class weights chosen on them.
        config = SearchConfig(task=task, data=str(datasets["as is"]), tuner="random", max_trials=2, epochs=1,
                              image_size=32, ensemble=2, fixed={"blocks": 2}, seed=3, refit="cv:2",
                              out=str(tmp_path / "multiclass-refit"))
        refit_run_is_whole(run_search(config, log=lambda *a: None), datasets["as is"])


def refit_run_is_whole(run_dir, data):
    """The refit run (``--refit cv:2``): every train + validation image has exactly one
    out-of-fold score, and the saved model is the average of the fold models and gives
    the recorded test scores."""
    import pandas as pd

    import automl
    from automl.data.pipeline import load_images
    from automl.tasks import get_task

    summary = records.read_json(run_dir / "summary.json")
    task = get_task(summary["task"])
    r = summary["refit"]
    assert r["folds"] == 2 and summary["val_source"] == "out-of-fold"
    if summary["task"] == "multiclass":
        # Class weights (None where none beats plain argmax out of fold), never a threshold.
        assert summary["threshold"] is None
        assert summary["prior_weights"] is None or len(summary["prior_weights"]) == 3
    # The refit's minutes are its folds' and then its test-time augmentation scoring's.
    assert r["seconds"] >= sum(f["seconds"] for f in r["fold_records"]) > 0
    scores = pd.read_csv(run_dir / "scores.csv")
    assert set(scores.split) == {"oof", "test"}  # the pool's rows are not a validation split
    # ... and the plots read them as the summary's "val" (a plot error is caught, not raised).
    assert "plot_error" not in summary and (run_dir / "roc.png").exists()
    oof = scores[scores.split == "oof"]
    counts = summary["data"]["counts"]
    assert len(oof) == oof.path.nunique() == counts["train"] + counts["val"]
    folds = [f for f in r["fold_records"] if f["trial_id"] == r["trials"][0]]
    assert sum(f["held_out_images"] for f in folds) == len(oof)
    model = automl.load_model(run_dir / "best_model.keras")
    members = [layer for layer in model.layers if layer.name.startswith("member_")]
    assert len(members) == 2 * len(r["chosen"])
    test = scores[scores.split == "test"]
    x = task.model_inputs(load_images([data / p for p in test.path], 32))
    saved = model.predict(x, verbose=0).reshape(len(test), -1)
    averaged = np.mean([m.predict(x, verbose=0).reshape(len(test), -1) for m in members], axis=0)
    assert np.allclose(saved, averaged, atol=1e-6)
    # Each member is a fold model followed by the calibration fitted on its held-out images.
    for index, member in enumerate(members):
        trial, fold = r["chosen"][index // 2], index % 2
        inner = calibration.unwrapped(member.layers[0])
        raw = inner.predict(x, verbose=0)
        raw = raw.reshape(-1) if raw.shape[1] == 1 else raw
        expected = calibration.apply(raw, r["calibration"][trial][fold]).reshape(len(test), -1)
        assert np.allclose(member.predict(x, verbose=0).reshape(len(test), -1), expected, atol=1e-5)
    recorded = test[[c for c in test.columns if c.startswith("score")]].to_numpy()
    assert recorded.shape == saved.shape and np.allclose(saved, recorded, atol=1e-5)
    # The embeddings of a refit run: KNN and t-SNE on the validation images its encoder (a
    # fold model) never saw (the t-SNE map had once labelled them with the whole split's rows).
    _, _, _, parts = prepare(SearchConfig.load(run_dir), log=lambda *a: None)
    fold, mask = unseen_validation(parts, r["folds"], summary["config"]["seed"])
    unseen = int(mask.sum())
    assert 0 < unseen <= counts["val"]
    # Those are the images that fold held out in the refit itself: their recorded out-of-fold
    # scores (pool order: train, then validation) are that fold's models' (members f, f + 2, ...).
    held = oof.iloc[counts["train"]:][mask]
    x = task.model_inputs(load_images([data / p for p in held.path], 32))
    held_out_by = np.mean([m.predict(x, verbose=0).reshape(len(held), -1) for m in members[fold::2]], axis=0)
    recorded = held[[c for c in held.columns if c.startswith("score")]].to_numpy()
    assert np.allclose(held_out_by, recorded, atol=1e-5)
    tsne = embed_run(run_dir, log=lambda *a: None)["tsne"]
    assert tsne["features"]["embedding"]["n"] == unseen + counts["test"]
    assert (run_dir / "tsne_embedding.png").exists()


def refit_resumes_where_it_stopped(run_dir):
    """A run killed during its refit, after one fold model of two was kept: the resumed run
    keeps that fold model, trains the other one again and ends with the same choices and
    test scores (op determinism is on in this module)."""
    before = records.read_json(run_dir / "summary.json")
    lines = (run_dir / "refit" / "folds.jsonl").read_text().splitlines()
    # Every refit configuration's fold models are kept, those of a configuration dropped for a
    # failed fold model too (automl.refit.run.checked_refit).
    dropped = {f["trial_id"] for f in before["refit"].get("failed_folds", [])}
    assert len(lines) == 2 * (len(before["refit"]["trials"]) + len(dropped))
    (run_dir / "refit" / "folds.jsonl").write_text(lines[0] + "\n")  # killed after the first fold
    (run_dir / "summary.json").unlink()
    # Room for more trials: a resumed refit must still not search again (new trials would take
    # the refit's time, and a new best trial would not be the one refit).
    config = records.read_json(run_dir / "config.json")
    records.write_json(run_dir / "config.json", {**config, "max_trials": config["max_trials"] + 2})
    trials_before = (run_dir / "trials.jsonl").read_text()
    said = []
    run_search(SearchConfig.load(run_dir), resume=run_dir, log=said.append)
    assert sum("kept from the interrupted run" in line for line in said) == 1
    assert (run_dir / "trials.jsonl").read_text() == trials_before
    trained = [line for line in said if line.startswith("refit: trial") and " images, " in line]
    assert len(trained) == len(lines) - 1
    after = records.read_json(run_dir / "summary.json")
    for key in ("best_trial", "threshold", "ensemble"):
        assert after.get(key) == before.get(key), key
    assert after["refit"]["chosen"] == before["refit"]["chosen"]
    assert after["test"]["auc"] == pytest.approx(before["test"]["auc"], abs=1e-6)
    # The kept fold's minutes, spent by the interrupted run, still count.
    kept = json.loads(lines[0])
    assert kept["seconds"] > 0
    assert after["refit"]["seconds"] >= kept["seconds"] + sum(
        f["seconds"] for f in after["refit"]["fold_records"] if f["fold"] != kept["fold"])
