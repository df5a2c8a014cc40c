"""Your own X-rays: a manifest of your names, labels and patients; every row checked; the split as a file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from automl import records
from automl.cli import main
from automl.data.index import scan
from automl.data.rebuild import run_data
from automl.refit.folds import pool_folds
from automl.settings.run_config import SearchConfig

SMOKE = ["--max-trials", "1", "--epochs", "1", "--image-size", "32", "--tuner", "random",
         "--validation", "plain", "--fix", "blocks=2"]
# Kermany's subtypes become plain labels of the user's own: no Kermany name is left.
OWN_LABELS = {"binary": {"normal": "healthy", "bacteria": "opacity", "virus": "opacity"},
              "multiclass": {"normal": "healthy", "bacteria": "lobar", "virus": "diffuse"}}


@pytest.fixture(scope="module")
def own(synthetic_data, tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    """The synthetic images copied under names without any Kermany pattern (``scan-0007.jpeg``)
    into a folder, with their patient as a given id and a train or test split: the folder and
    one row per image (its ``kind`` becomes each test's labels)."""
    root = tmp_path_factory.mktemp("own")
    (root / "images").mkdir()
    rows = []
    for i, row in enumerate(scan(synthetic_data).table.itertuples()):
        name = f"scan-{i:04d}.jpeg"
        shutil.copy(row.path, root / "images" / name)
        rows.append({"path": f"images/{name}", "kind": row.subtype, "patient_id": f"child-{row.patient}",
                     "split": "test" if row.split == "test" else "train"})
    return root, pd.DataFrame(rows)


def write(own: pd.DataFrame, task: str, path: Path, **changes) -> Path:
    """A manifest of ``own`` with ``task``'s labels; ``rows``: {row index: {column: value}};
    ``drop``: columns left out."""
    frame = own.assign(label=own.kind.map(OWN_LABELS[task])).drop(columns="kind")
    for position, values in changes.get("rows", {}).items():
        for column, value in values.items():
            frame.loc[position, column] = value
    frame.drop(columns=changes.get("drop", [])).to_csv(path, index=False)
    return path


def _bad_cases(root: Path, own: pd.DataFrame) -> dict:
    """Each bad-manifest case: the rows changed, and the start of the error it must give."""
    (root / "images" / "broken.jpeg").write_bytes(b"not a jpeg at all")
    assert own.split[0] == "test"
    train = int((own.split == "train").idxmax())  # a train row given the first (test) row's patient
    return {
        "missing file": ({"rows": {3: {"path": "images/gone.jpeg"}}},
                         "row 4 (images/gone.jpeg): no such file"),
        "undecodable file": ({"rows": {5: {"path": "images/broken.jpeg"}}},
                             "row 6 (images/broken.jpeg): not an image"),
        "duplicate path": ({"rows": {7: {"path": own.path[2]}}},
                           f"row 8 ({own.path[2]}): duplicate path, also row 3"),
        "patient in two splits": ({"rows": {train: {"patient_id": own.patient_id[0]}}},
                                  f"row {train + 1} ({own.path[train]}): patient '{own.patient_id[0]}' is "
                                  "in split train here and in split test at row 1"),
        "unknown label": ({"rows": {9: {"label": "effusion"}}},
                          f"row 10 ({own.path[9]}): unknown label 'effusion'"),
        "unknown split": ({"rows": {11: {"split": "holdout"}}},
                          f"row 12 ({own.path[11]}): unknown split 'holdout'"),
    }


BAD = ("missing file", "undecodable file", "duplicate path", "patient in two splits", "unknown label",
       "unknown split")


@pytest.mark.parametrize("case", BAD)
def test_each_bad_row_is_an_error_naming_it_and_no_run_folder_is_made(case, own, tmp_path, capsys):
    root, rows = own
    changes, expected = _bad_cases(root, rows)[case]
    bad = write(rows, "binary", root / f"bad-{case.replace(' ', '-')}.csv", **changes)
    code = main(["search", "--data", str(bad), "--positive", "opacity", *SMOKE, "--out",
                 str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 2 and expected in err, err
    assert bad.name in err and not (tmp_path / "runs").exists()
    assert case == "unknown label" or "1 problem(s)" in err  # its own error, no other row's
    assert main(["data", "check", "--data", str(bad), "--positive", "opacity", "--strict"]) == 1
    assert expected in capsys.readouterr().out


def test_a_manifest_without_patient_ids_is_usable_with_one_warning(own, capsys):
    root, rows = own
    path = write(rows, "binary", root / "no-patients.csv", drop=["patient_id"])
    assert main(["data", "check", "--data", str(path), "--positive", "opacity", "--strict"]) == 0
    out = capsys.readouterr().out
    warning = "warning: no-patients.csv: no patient_id column: the split cannot be grouped by patient"
    assert out.count(warning) == 1
    assert "0 errors" in out


def test_a_folder_and_the_manifest_it_infers_give_the_same_split(synthetic_data, tmp_path, capsys):
    path = tmp_path / "kermany.csv"
    assert main(["data", "manifest", "--data", str(synthetic_data), "--out", str(path)]) == 0
    assert set(pd.read_csv(path).split) == {"train", "test"}  # official val is part of the training pool
    for seed in (0, 3):
        folder, own = (run_data(SearchConfig(data=str(d), seed=seed), log=lambda *a: None)
                       for d in (synthetic_data, path))
        for name in ("train", "val", "test"):
            columns = ["label", "subtype", "patient"]
            assert folder.parts[name][columns].equals(own.parts[name][columns]), (seed, name)
            assert [Path(p).resolve() for p in folder.parts[name].path] == \
                [Path(p).resolve() for p in own.parts[name].path]


def test_the_split_file_is_the_split_and_the_folds_a_search_uses(own, tmp_path, capsys):
    root, rows = own
    source = write(rows, "binary", root / "own-binary.csv")
    split = tmp_path / "split.csv"
    assert main(["data", "split", "--data", str(source), "--positive", "opacity", "--seed", "2",
                 "--refit", "cv:3", "--out", str(split)]) == 0
    written = pd.read_csv(split, keep_default_na=False)
    config = SearchConfig(data=str(source), seed=2, positive="opacity", refit="cv:3")
    searched, from_file = run_data(config), run_data(SearchConfig(data=str(split), seed=2, refit="cv:3"))
    for name in ("train", "val", "test"):
        assert [Path(p).resolve() for p in searched.parts[name].path] == \
            [Path(p).resolve() for p in from_file.parts[name].path]
        assert list(written[written.split == name].patient_id) == list(searched.parts[name].patient)
    pool = pd.concat([searched.parts["train"], searched.parts["val"]], ignore_index=True)
    file_pool = pd.concat([from_file.parts["train"], from_file.parts["val"]], ignore_index=True)
    assert list(pool_folds(pool, 3, 2)) == list(pool_folds(file_pool, 3, 2)) == \
        [int(f) for f in written.fold if f != ""]


@pytest.mark.slow
def test_a_binary_search_on_your_own_labels_uses_the_split_file_and_names_your_classes(own, tmp_path, capsys):
    root, rows = own
    source = write(rows, "binary", root / "own-binary-search.csv")
    split = tmp_path / "split.csv"
    assert main(["data", "split", "--data", str(source), "--positive", "opacity", "--out", str(split)]) == 0
    assert main(["search", "--data", str(split), "--positive", "opacity", *SMOKE, "--out",
                 str(tmp_path / "runs")]) == 0
    (run_dir,) = (tmp_path / "runs").iterdir()
    summary, scores = records.read_json(run_dir / "summary.json"), pd.read_csv(run_dir / "scores.csv")
    written = pd.read_csv(split)
    for name in ("val", "test"):  # the search selected and scored on the file's very images
        assert list(scores[scores.split == name].path) == list(written[written.split == name].path)
    assert summary["test"]["class_names"] == ["healthy", "opacity"]
    assert summary["classes"] == {"names": ["healthy", "opacity"], "column": "label", "negative": "healthy",
                                  "positive": "opacity"}
    card = (run_dir / "MODEL_CARD.md").read_text()
    assert "(healthy, opacity)" in card and "opacity called healthy" in card and "PNEUMONIA" not in card
    assert main(["report", "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "report")]) == 0
    page = (tmp_path / "report" / "binary.md").read_text()
    assert "healthy" in page and "opacity" in page


@pytest.mark.slow
@pytest.mark.parametrize("task", ["multiclass", "autoencoder"])
def test_a_search_of_each_other_task_runs_on_your_own_manifest(task, own, tmp_path):
    root, rows = own
    labels = "multiclass" if task == "multiclass" else "binary"
    source = write(rows, labels, root / f"own-{task}.csv")
    positive = [] if task == "multiclass" else ["--positive", "opacity"]
    assert main(["search", "--task", task, "--data", str(source), *positive, *SMOKE, "--out",
                 str(tmp_path / "runs")]) == 0
    (run_dir,) = (tmp_path / "runs").iterdir()
    summary = records.read_json(run_dir / "summary.json")
    expected = ["healthy", "diffuse", "lobar"] if task == "multiclass" else ["healthy", "opacity"]
    assert summary["test"]["class_names"] == expected
