import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from automl import cli
from automl.data import index
from automl.data.synthetic import write_synthetic


@pytest.mark.parametrize("name, expected", [
    ("person1234_bacteria_3187.jpeg", "person1234"),
    ("person42_virus_89.jpeg", "person42"),
    ("IM-0115-0001.jpeg", "IM-0115"),
    ("NORMAL2-IM-1427-0001.jpeg", "NORMAL2-IM-1427"),
    ("odd.png", "odd"),
])
def test_patient_id(name, expected):
    assert index.patient_id(name) == expected


def test_subtype_from_file_name():
    assert index.subtype("NORMAL", "IM-1-1.jpeg") == "normal"
    assert index.subtype("PNEUMONIA", "person1_bacteria_2.jpeg") == "bacteria"
    assert index.subtype("PNEUMONIA", "person1_virus_2.jpeg") == "virus"


def test_scan_synthetic(synthetic_data):
    idx = index.scan(synthetic_data)
    assert not idx.problems
    assert set(idx.table.split) == {"train", "val", "test"}
    assert set(idx.table.subtype) == {"normal", "bacteria", "virus"}
    # Two images per patient, so the patient column groups.
    assert idx.table.patient.nunique() < len(idx.table)


def _messy_folder(tmp_path, outside):
    root = write_synthetic(tmp_path / "messy", per_class=4, size=32)
    normal = root / "train" / "NORMAL"
    (normal / "IM-9001-0001.jpeg").write_bytes(b"")
    good = (root / "train" / "PNEUMONIA").iterdir().__next__().read_bytes()
    (normal / "IM-9002-0001.jpeg").write_bytes(good[: len(good) // 2])
    (normal / "IM-9003-0001.jpeg").write_text("this is not an image")
    (normal / "IM-9004-0001.jpeg").symlink_to(outside)
    unknown = root / "train" / "COVID"
    unknown.mkdir()
    shutil.copy(next((root / "train" / "NORMAL").glob("IM-0*.jpeg")), unknown / "IM-9005-0001.jpeg")
    array16 = (np.linspace(0, 65535, 32 * 32).reshape(32, 32)).astype(np.uint16)
    Image.fromarray(array16).save(normal / "IM-9006-0001.png")
    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[..., :3], rgba[..., 3] = 120, 255
    Image.fromarray(rgba, mode="RGBA").save(normal / "IM-9007-0001.png")
    # Odd but valid: a CMYK JPEG is read, not rejected; a folder named like an image is reported.
    Image.fromarray(array16 // 257).convert("L").convert("CMYK").save(normal / "IM-9008-0001.jpeg")
    (normal / "IM-9009-0001.jpeg").mkdir()
    return root


def test_problems_are_reported_and_skipped(tmp_path):
    outside = tmp_path / "outside.jpeg"
    Image.new("L", (16, 16)).save(outside)
    root = _messy_folder(tmp_path, outside)
    idx = index.scan(root)
    reasons = {os.path.basename(p["path"]): p["reason"] for p in idx.problems}
    assert "empty" in reasons["IM-9001-0001.jpeg"]
    assert "decoded" in reasons["IM-9002-0001.jpeg"]
    assert "not an image" in reasons["IM-9003-0001.jpeg"]
    assert "outside" in reasons["IM-9004-0001.jpeg"]
    assert "COVID" in reasons["COVID"]
    indexed = set(idx.table.path.map(os.path.basename))
    assert {"IM-9006-0001.png", "IM-9007-0001.png", "IM-9008-0001.jpeg"} <= indexed
    assert "folder named like an image" in reasons["IM-9009-0001.jpeg"]
    assert not indexed & {"IM-9001-0001.jpeg", "IM-9002-0001.jpeg", "IM-9003-0001.jpeg",
                          "IM-9004-0001.jpeg", "IM-9005-0001.jpeg", "IM-9009-0001.jpeg"}
    assert cli.main(["data", "check", "--data", str(root), "--strict"]) == 1
    assert cli.main(["data", "check", "--data", str(root)]) == 0


def test_check_json(synthetic_data, capsys):
    assert cli.main(["data", "check", "--data", str(synthetic_data), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    train = report["splits"]["train"]
    assert set(train) == {"NORMAL", "PNEUMONIA", "normal", "bacteria", "virus", "patients"}
    assert train["PNEUMONIA"] == train["bacteria"] + train["virus"]
    assert report["problems"] == []


def test_no_usable_images_is_a_clear_error(tmp_path):
    (tmp_path / "train" / "NORMAL").mkdir(parents=True)
    with pytest.raises(index.DataError, match="no usable images"):
        index.scan(tmp_path)
    with pytest.raises(index.DataError, match="does not exist"):
        index.scan(tmp_path / "missing")


def test_real_data_counts(real_data, capsys):
    assert cli.main(["data", "check", "--data", str(real_data), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    splits = report["splits"]
    assert (splits["train"]["NORMAL"], splits["train"]["PNEUMONIA"]) == (1341, 3875)
    assert (splits["train"]["bacteria"], splits["train"]["virus"]) == (2530, 1345)
    assert (splits["val"]["NORMAL"], splits["val"]["PNEUMONIA"]) == (8, 8)
    assert (splits["test"]["NORMAL"], splits["test"]["PNEUMONIA"]) == (234, 390)
    assert (splits["test"]["bacteria"], splits["test"]["virus"]) == (242, 148)
    assert all(splits[s]["patients"] > 0 for s in splits)
    assert report["problems"] == []
