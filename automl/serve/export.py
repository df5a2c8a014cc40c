"""Export a run's scored model for serving: a SavedModel or a TensorFlow Lite file, with its decision rule."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from automl import records

FORMATS = ("savedmodel", "tflite")


def metadata(run_dir: Path) -> dict:
    """What a user of the exported file needs beside it: the input it takes and the decision
    (with the other operating points a two-class model offers, chosen on its selection set)."""
    from automl.evaluation.decisions import selection_operating_points

    summary = records.read_json(Path(run_dir) / "summary.json")
    size = summary["config"]["image_size"]
    test = summary.get("test") or {}
    return {
        "run_id": summary["run_id"], "task": summary["task"],
        "class_names": test.get("class_names") or (summary.get("val") or {}).get("class_names"),
        "input": {"shape": [None, size, size, 1], "dtype": "float32",
                  "how": f"greyscale, resized to {size}×{size} (antialiased), divided by 255; the "
                         "model's own normalisation layers are inside it"},
        "output": ("P(pneumonia), shape (n, 1)" if summary["task"] == "binary" else
                   "class probabilities, shape (n, k), in class_names order"),
        "decision": {"threshold": summary.get("threshold"), "prior_weights": summary.get("prior_weights"),
                     "rule": "pneumonia when P(pneumonia) >= threshold" if summary.get("threshold")
                     is not None else "argmax of probabilities × prior_weights (ones if null)",
                     "operating_points": selection_operating_points(
                         records.read_scores(run_dir) if (Path(run_dir) / "scores.csv").exists() else None,
                         summary)},
        "test": {k: test.get(k) for k in ("n", "accuracy", "auc", "sensitivity", "specificity")},
        "environment": summary.get("env"),
    }


def export(run_dir: Path, fmt: str, *, out: Path | None = None) -> Path:
    """Write ``run_dir/export/<fmt>/`` (or ``out``): the scored model (ensemble and
    preprocessing inside) as a SavedModel (``serve`` signature) or ``model.tflite``, and a
    ``metadata.json`` with the decision threshold or class weights. Returns the folder.

    Raises:
        ValueError: an unknown format, or an anomaly run (its score needs more than a model).
    """
    import automl

    if fmt not in FORMATS:
        raise ValueError(f"--format: got {fmt!r}; choose {' or '.join(FORMATS)}")
    run_dir = Path(run_dir)
    info = metadata(run_dir)
    if info["task"] == "autoencoder":
        raise ValueError(f"{run_dir}: an anomaly run's score needs its score choice and the normal "
                         "training images, not only a model; use automl predict")
    target = Path(out) if out else run_dir / "export" / fmt
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    model = automl.load_model(run_dir / "best_model.keras")
    if fmt == "savedmodel":
        model.export(str(target / "model"), format="tf_saved_model", verbose=False)
    else:
        import tensorflow as tf

        with tempfile.TemporaryDirectory() as tmp:
            model.export(tmp, format="tf_saved_model", verbose=False)
            converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
            # Histogram equalisation counts grey levels with a TensorFlow op TFLite lacks.
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS,
                                                   tf.lite.OpsSet.SELECT_TF_OPS]
            (target / "model.tflite").write_bytes(converter.convert())
    records.write_json(target / "metadata.json", info)
    return target
