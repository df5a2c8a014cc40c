"""automl predict: a run's own preprocessing, scored model and decision rule on new images."""

import json
import shutil

import pytest

from automl import cli
from automl.run_config import SearchConfig
from automl.search import run_search


@pytest.fixture(scope="module")
def binary_run(synthetic_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    return run_search(SearchConfig(data=str(synthetic_data), tuner="random", max_trials=2, epochs=1,
                                   image_size=32, ensemble=2, fixed={"blocks": 2}, out=str(out)),
                      log=lambda *a: None)


@pytest.mark.slow
def test_predict_reports_bad_files_and_reproduces_the_test_metrics(binary_run, synthetic_data, tmp_path,
                                                                    capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    for source in list((synthetic_data / "test" / "PNEUMONIA").glob("*.jpeg"))[:3]:
        shutil.copy(source, folder / source.name)
    (folder / "damaged.jpeg").write_bytes(b"\xff\xd8 not really a jpeg")
    out = tmp_path / "rows.csv"
    assert cli.main(["predict", "--run", str(binary_run), str(folder), "--out", str(out)]) == 1
    text = capsys.readouterr().out
    assert "damaged.jpeg" in text and "skipped" in text
    rows = out.read_text().splitlines()
    assert rows[0] == "path,p_pneumonia,decision" and len(rows) == 4
    # The Kaggle-layout test folder: the same numbers the run recorded for its test split.
    assert cli.main(["predict", "--run", str(binary_run), str(synthetic_data / "test")]) == 0
    summary = json.loads((binary_run / "summary.json").read_text())
    assert f"accuracy {summary['test']['accuracy']:.4f}" in capsys.readouterr().out
