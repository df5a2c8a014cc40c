"""MODEL_CARD.md: every section, filled from the records."""

import json

from automl.report.model_card import write_model_card

SECTIONS = ("## Intended use", "## Out of scope", "## Data and split", "## How the model was chosen",
            "## Test results", "## Bias", "## Operating points", "## Calibration", "## Saliency faithfulness",
            "## Known failure modes", "## Versions and reproduction")
TEST = {"n": 4, "accuracy": 0.75, "balanced_accuracy": 0.75, "f1_macro": 0.73, "auc": 0.8,
        "sensitivity": 0.5, "specificity": 1.0, "ece": 0.1, "brier": 0.2, "ci_unit": "patient",
        "ci": {"accuracy": [0.5, 1.0], "f1_macro": [0.4, 1.0], "auc": [0.5, 1.0]},
        "bias": {"sens_spec_gap": 0.5, "recall_spread": 0.5, "positive_rate_skew": -0.25,
                 "false_normal_rate": 0.5},
        "per_class": {"NORMAL": {"recall": 1.0}, "PNEUMONIA": {"recall": 0.5}},
        "class_names": ["NORMAL", "PNEUMONIA"]}


def write_records(folder, **extra) -> None:
    """A finished binary run's summary, command and scores; ``extra`` adds summary keys."""
    summary = {"run_id": "binary-x", "task": "binary", "test": TEST, "threshold": 0.4321,
               "prior_weights": None, "trials_completed": 3, "trials_failed": 1, "search_seconds": 600,
               "objective": {"name": "val_shift_auc", "value": 0.95},
               "config": {"image_size": 128, "val_fraction": 0.2, "seed": 7, "tuner": "hyperband",
                          "validation": "shift"},
               "data": {"counts": {"train": 10, "val": 3, "test": 4}},
               "env": {"git_commit": "abc123-dirty", "device": "CPU", "python": "3.11",
                       "packages": {"keras": "3.15"}},
               "ensemble": {"trials": ["2", "0"], "used": True}, **extra}
    (folder / "summary.json").write_text(json.dumps(summary))
    (folder / "command.txt").write_text("automl search --task binary --seed 7\n")
    # Selection rows (10 pneumonia at 0.55..1.0, 10 normal at 0.0..0.45; a refit's are "oof"),
    # then the test rows.
    split = "oof" if extra.get("val_source") == "out-of-fold" else "val"
    selection = [(split, "PNEUMONIA", "bacteria", 0.55 + 0.05 * i) for i in range(10)] + \
        [(split, "NORMAL", "normal", 0.05 * i) for i in range(10)]
    test = [("test", "NORMAL", "normal", 0.1), ("test", "NORMAL", "normal", 0.3),
            ("test", "PNEUMONIA", "bacteria", 0.9), ("test", "PNEUMONIA", "virus", 0.2)]
    (folder / "scores.csv").write_text(
        "split,path,label,subtype,patient,score\n" + "".join(
            f"{s},t{i}.jpeg,{label},{sub},p{i},{p}\n"
            for i, (s, label, sub, p) in enumerate(selection + test)))


def test_a_card_has_every_section_filled_from_the_records(tmp_path):
    write_records(tmp_path)
    text = write_model_card(tmp_path).read_text()
    positions = [text.index(s) for s in SECTIONS]
    assert positions == sorted(positions)
    for filled in ("0.750 [0.500, 1.000]", "over patients", "seed 7", "**shift** validation",
                   "trials 2, 0", "0.432", "abc123-dirty", "automl search --task binary --seed 7",
                   "NORMAL 1.000, PNEUMONIA 0.500", "Guangzhou", "Research and benchmarking only"):
        assert filled in text, filled
    assert (tmp_path / "reliability.png").stat().st_size > 1000
    # Operating points on the validation rows (never test): sens:0.90 keeps 9 of the 10
    # pneumonia scores, the lowest being 0.55, so its threshold sits between 0.55 and 0.60.
    points = text.split("## Operating points")[1].split("##")[0]
    assert "came from rule `balanced`" in points and "clean validation images" in points
    assert "| `sens:0.90` | 0.575       | 0.900         | 1.000         |" in points
    assert "automl predict --run RUN --threshold RULE" in points


def test_a_multiclass_card_lists_no_operating_points(tmp_path):
    write_records(tmp_path, task="multiclass", threshold=None, prior_weights=[1.0, 2.0, 1.0])
    assert "## Operating points" not in write_model_card(tmp_path).read_text()


def test_a_refit_runs_card_says_its_choices_were_made_out_of_fold(tmp_path):
    """After a cross-validated refit, the threshold, TTA and averaging were chosen on the
    fold models' out-of-fold scores, and the saliency images are the pool's, not validation's."""
    write_records(tmp_path, val_source="out-of-fold", val_shift={"auc": 0.9},
                  refit={"folds": 4, "trials": ["12"], "chosen": ["12"], "tta": True,
                         "fold_records": [{"trial_id": "12", "fold": 0, "epochs": 8, "averaged_epochs": 4}]},
                  saliency={"method": "Grad-CAM", "images": 64, "saliency_area": 0.6, "random_area": 0.5,
                            "difference": -0.1})
    text = write_model_card(tmp_path).read_text()
    chosen = text.split("## How the model was chosen")[1].split("##")[0]
    assert "retrained from scratch on 4 patient-grouped folds of train + validation" in chosen
    assert "test-time augmentation (used)" in chosen
    assert "out-of-fold scores pooled with their simulated re-acquisitions" in chosen
    assert "each fold model the average of its weights over its last epochs, calibrated on its own " \
           "held-out images" in chosen
    assert "ensemble and decision rule chosen" not in chosen
    saliency = text.split("## Saliency faithfulness")[1].split("##")[0]
    assert "64 pneumonia images of train + validation" in saliency and "validation pneumonia" not in saliency
    assert "chosen on the out-of-fold scores of train + validation" in text.split("## Operating points")[1]
