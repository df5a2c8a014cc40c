"""automl predict: a run's own preprocessing, scored model and decision rule on new images."""

import json
import shutil

import pytest

from automl import cli


@pytest.mark.slow
def test_predict_reports_bad_files_and_reproduces_the_test_metrics(binary_run, synthetic_data, tmp_path,
                                                                    capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    for source in list((synthetic_data / "test" / "PNEUMONIA").glob("*.jpeg"))[:3]:
        shutil.copy(source, folder / source.name)
    (folder / "damaged.jpeg").write_bytes(b"\xff\xd8 not really a jpeg")
    out = tmp_path / "rows.csv"
    cams = tmp_path / "cams"
    assert cli.main(["predict", "--run", str(binary_run), str(folder), "--out", str(out),
                     "--cam", str(cams)]) == 1
    assert len(list(cams.glob("*_saliency.png"))) == 3
    text = capsys.readouterr().out
    assert "damaged.jpeg" in text and "skipped" in text
    rows = out.read_text().splitlines()
    assert rows[0] == "path,p_pneumonia,decision" and len(rows) == 4
    # The Kaggle-layout test folder: the same numbers the run recorded for its test split.
    assert cli.main(["predict", "--run", str(binary_run), str(synthetic_data / "test")]) == 0
    summary = json.loads((binary_run / "summary.json").read_text())
    assert f"accuracy {summary['test']['accuracy']:.4f}" in capsys.readouterr().out
    # An operating point instead of the run's threshold, from the command line.
    assert cli.main(["predict", "--run", str(binary_run), str(synthetic_data / "test"),
                     "--threshold", "sens:0.95"]) == 0
    assert "(sens:0.95 on the run's" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["savedmodel", "tflite"])
def test_the_export_matches_predict(fmt, binary_run, synthetic_data, tmp_path):
    import numpy as np
    import pandas as pd
    import tensorflow as tf

    from automl.data.pipeline import load_images

    files = sorted((synthetic_data / "test").rglob("*.jpeg"))[:6]
    out = tmp_path / "rows.csv"
    assert cli.main(["predict", "--run", str(binary_run), *map(str, files), "--out", str(out)]) == 0
    expected = pd.read_csv(out).p_pneumonia.to_numpy()
    assert cli.main(["export", "--run", str(binary_run), "--format", fmt, "--out", str(tmp_path / fmt)]) == 0
    meta = json.loads((tmp_path / fmt / "metadata.json").read_text())
    summary = json.loads((binary_run / "summary.json").read_text())
    assert meta["decision"]["threshold"] == summary["threshold"] and meta["input"]["shape"][1] == 32
    assert [p["rule"] for p in meta["decision"]["operating_points"]][:2] == ["sens:0.99", "sens:0.95"]
    x = load_images([str(f) for f in files], 32, disk_cache=False).astype("float32") / 255.0
    if fmt == "savedmodel":
        loaded = tf.saved_model.load(str(tmp_path / fmt / "model"))  # kept: it owns the variables
        got = loaded.serve(x).numpy().reshape(-1)
    else:
        interpreter = tf.lite.Interpreter(model_path=str(tmp_path / fmt / "model.tflite"))
        runner = interpreter.get_signature_runner()
        name = next(iter(runner.get_input_details()))
        got = np.concatenate([next(iter(runner(**{name: x[i:i + 1]}).values())).reshape(-1)
                              for i in range(len(x))])
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_a_threshold_rule_is_chosen_on_the_runs_selection_scores_never_on_the_new_images(tmp_path):
    from automl.serve.predict import decision_threshold

    summary = {"run_id": "binary-x", "threshold": 0.42}
    rows = [("val", "PNEUMONIA", 0.55 + 0.05 * i) for i in range(10)] + \
        [("val", "NORMAL", 0.05 * i) for i in range(10)] + [("test", "NORMAL", 0.99)] * 5
    (tmp_path / "scores.csv").write_text("split,label,score\n" +
                                         "".join(f"{s},{lab},{v}\n" for s, lab, v in rows))
    said = []
    assert decision_threshold(tmp_path, summary, None) == 0.42  # the run's own
    assert decision_threshold(tmp_path, summary, "sens:0.9", log=said.append) == pytest.approx(0.575)
    assert "sensitivity 0.900, specificity 1.000" in said[0] and "instead of the run's 0.4200" in said[0]
    assert decision_threshold(tmp_path, summary, "0.7") == 0.7
    with pytest.raises(ValueError, match="the target sensitivity must be a number in"):
        decision_threshold(tmp_path, summary, "sens:90")
    with pytest.raises(ValueError, match="got 'best'"):
        decision_threshold(tmp_path, summary, "best")
    with pytest.raises(ValueError, match="decides by class weights"):
        decision_threshold(tmp_path, {"run_id": "multiclass-x", "threshold": None}, "sens:0.9")
    (tmp_path / "scores.csv").unlink()
    with pytest.raises(ValueError, match="scores.csv is missing"):
        decision_threshold(tmp_path, summary, "sens:0.9")
