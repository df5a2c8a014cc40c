"""Tests for automl.data.kaggle: fake Kaggle API, safe extraction, layout and credentials."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from automl.data import kaggle as kg
from automl.settings.paths import CLASS_FOLDERS

SECRET = "s3cr3t-key-0123456789abcdef"
SPLIT_FILES = {"train": 2, "val": 1, "test": 1}


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("L", (8, 8)).save(buf, format="JPEG")
    return buf.getvalue()


def expected_tree() -> set[str]:
    """Relative paths of the images a correct ingest yields under chest_xray/."""
    return {
        f"{split}/{cls}/{cls.lower()}_{i}.jpeg"
        for split, n in SPLIT_FILES.items()
        for cls in CLASS_FOLDERS
        for i in range(n)
    }


def make_kaggle_zip(path: Path) -> Path:
    """Write a small zip shaped like the real archive, junk and nested duplicate included."""
    img = _jpeg()
    with zipfile.ZipFile(path, "w") as zf:
        for rel in sorted(expected_tree()):
            zf.writestr(f"chest_xray/{rel}", img)
            zf.writestr(f"chest_xray/chest_xray/{rel}", img)  # the duplicate tree
            zf.writestr(f"__MACOSX/chest_xray/{Path(rel).parent}/._{Path(rel).name}", b"junk")
        zf.writestr("chest_xray/.DS_Store", b"junk")
        zf.writestr("chest_xray/train/.DS_Store", b"junk")
        zf.writestr("chest_xray/train/NORMAL/Thumbs.db", b"junk")
    return path


def tree(data_dir: Path) -> set[str]:
    return {p.relative_to(data_dir).as_posix() for p in data_dir.rglob("*") if p.is_file()}


class FakeApi:
    """Stands in for KaggleApi: counts calls and drops a prepared zip or raises."""

    def __init__(self, archive: Path | None = None, *, download_exc=None, auth_exc=None):
        self.archive, self.download_exc, self.auth_exc = archive, download_exc, auth_exc
        self.calls = 0

    def authenticate(self) -> None:
        if self.auth_exc:
            raise self.auth_exc

    def dataset_download_files(self, dataset, path, unzip, quiet) -> None:
        self.calls += 1
        assert dataset == kg.DATASET and unzip is False
        if self.download_exc:
            raise self.download_exc
        (Path(path) / "chest-xray-pneumonia.zip").write_bytes(self.archive.read_bytes())


@pytest.fixture
def no_creds(tmp_path, monkeypatch):
    """An environment with no Kaggle credential source at all."""
    for var in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "home").mkdir()
    (tmp_path / "cfg").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "cfg"))
    return tmp_path / "cfg"


@pytest.fixture
def kaggle_zip(tmp_path) -> Path:
    return make_kaggle_zip(tmp_path / "chest-xray-pneumonia.zip")


def assert_one_sentence(msg: str) -> None:
    assert msg.endswith(".") and "\n" not in msg and ". " not in msg


def test_download_with_fake_api_normalises_and_is_idempotent(tmp_path, kaggle_zip, no_creds):
    api, out, logs = FakeApi(kaggle_zip), tmp_path / "data", []
    data_dir = kg.download(out, api=api, log=logs.append)

    assert data_dir == out / "chest_xray"
    assert tree(data_dir) == expected_tree() | {kg.MARKER}
    assert json.loads((data_dir / kg.MARKER).read_text())["files"] == len(expected_tree())
    assert not (data_dir / "chest_xray").exists()
    assert not list(out.rglob("__MACOSX")) and not list(out.rglob(".DS_Store"))
    assert sorted(p.name for p in out.iterdir()) == ["chest_xray"]  # temp dirs cleaned up
    assert kg.is_complete(data_dir) and api.calls == 1

    kg.download(out, api=api, log=logs.append)
    assert api.calls == 1 and "already present" in logs[-1]
    kg.download(out, api=api, force=True, log=logs.append)
    assert api.calls == 2 and tree(data_dir) == expected_tree() | {kg.MARKER}


def test_ingest_archive_matches_api_path(tmp_path, kaggle_zip, no_creds):
    via_api = kg.download(tmp_path / "a", api=FakeApi(kaggle_zip), log=lambda _: None)
    by_hand = kg.ingest_archive(kaggle_zip, tmp_path / "b")
    assert by_hand == tmp_path / "b" / "chest_xray"
    assert tree(by_hand) == tree(via_api)
    assert kg.is_complete(by_hand)


@pytest.mark.parametrize(
    ("api", "start"),
    [
        (FakeApi(download_exc=ConnectionError(f"boom key={SECRET}")), "Could not reach Kaggle"),
        (FakeApi(auth_exc=OSError(f"bad key {SECRET}")), "No Kaggle credentials"),
        (FakeApi(auth_exc=SystemExit(1)), "No Kaggle credentials"),
    ],
)
def test_download_failures_become_download_error(tmp_path, no_creds, api, start):
    with pytest.raises(kg.DownloadError) as err:
        kg.download(tmp_path / "data", api=api, log=lambda _: None)
    msg = str(err.value)
    assert msg.startswith(start) and "--archive" in msg and SECRET not in msg
    assert_one_sentence(msg)
    assert err.value.__cause__ is None and err.value.__suppress_context__


def test_no_credentials_raises_before_touching_kaggle(tmp_path, no_creds):
    assert not kg.has_credentials()
    with pytest.raises(kg.DownloadError) as err:
        kg.download(tmp_path / "data", log=lambda _: None)
    msg = str(err.value)
    assert "kaggle.json" in msg and "KAGGLE_USERNAME" in msg and "--archive" in msg
    assert_one_sentence(msg)


def test_has_credentials_sources(tmp_path, no_creds, monkeypatch):
    monkeypatch.setenv("KAGGLE_USERNAME", "u")
    assert not kg.has_credentials()  # username without key is not enough
    monkeypatch.setenv("KAGGLE_KEY", SECRET)
    assert kg.has_credentials()
    monkeypatch.delenv("KAGGLE_KEY")
    (no_creds / "kaggle.json").write_text(json.dumps({"username": "u", "key": SECRET}))
    assert kg.has_credentials()


@pytest.mark.skipif(importlib.util.find_spec("kaggle") is None, reason="kaggle not installed")
def test_real_client_with_unusable_config_fails_fast(tmp_path):
    """A kaggle.json without a key gets past has_credentials; the real client must then fail
    fast with DownloadError. Run in a subprocess so kaggle's import-time config is fresh."""
    home, cfg = tmp_path / "home", tmp_path / "cfg"
    home.mkdir()
    cfg.mkdir()
    (cfg / "kaggle.json").write_text(json.dumps({"username": "u"}))
    os.chmod(cfg / "kaggle.json", 0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAGGLE_", "XDG_"))}
    env.update(HOME=str(home), KAGGLE_CONFIG_DIR=str(cfg))
    code = (
        "import sys; from pathlib import Path; from automl.data import kaggle as kg\n"
        "try: kg.download(Path(sys.argv[1]))\n"
        "except kg.DownloadError as e: print('DOWNLOAD_ERROR', e); sys.exit(2)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "data")],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "DOWNLOAD_ERROR No Kaggle credentials" in proc.stdout


def test_world_readable_config_warns_without_leaking_key(tmp_path, kaggle_zip, no_creds, capsys):
    cfg = no_creds / "kaggle.json"
    cfg.write_text(json.dumps({"username": "u", "key": SECRET}))
    os.chmod(cfg, 0o644)
    logs: list[str] = []
    kg.download(tmp_path / "data", api=FakeApi(kaggle_zip), log=logs.append)
    warnings = [m for m in logs if "chmod 600" in m]
    assert len(warnings) == 1 and str(cfg) in warnings[0]
    captured = capsys.readouterr()
    assert SECRET not in "\n".join(logs) + captured.out + captured.err

    os.chmod(cfg, 0o600)
    assert not kg.warn_if_world_readable(cfg, log=logs.append)


def _zip_with(path: Path, evil: zipfile.ZipInfo | str) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("chest_xray/train/NORMAL/ok.jpeg", b"fine")  # valid member comes first
        zf.writestr(evil, b"evil")
    return path


def _symlink_member() -> zipfile.ZipInfo:
    info = zipfile.ZipInfo("chest_xray/link")
    info.external_attr = 0o120777 << 16
    return info


@pytest.mark.parametrize(
    "member",
    ["../evil.txt", "chest_xray/../../evil.txt", "..\\evil.txt", "ABS", "C:/evil.txt", "LINK"],
)
def test_unsafe_archives_are_refused_before_writing(tmp_path, member):
    if member == "ABS":
        member = f"/tmp/abs_evil_{tmp_path.name}"
    evil = _symlink_member() if member == "LINK" else member
    archive = _zip_with(tmp_path / "evil.zip", evil)
    target = tmp_path / "a" / "b" / "target"

    with pytest.raises(kg.UnsafeArchiveError) as err:
        kg.safe_extract(archive, target)
    name = evil.filename if isinstance(evil, zipfile.ZipInfo) else evil
    assert str(archive) in str(err.value) and repr(name) in str(err.value)
    assert not target.exists()  # nothing written, not even the valid member
    assert not list(tmp_path.rglob("evil.txt"))
    assert not Path(f"/tmp/abs_evil_{tmp_path.name}").exists()

    # ingest_archive refuses too and cleans up its partial directory.
    out = tmp_path / "out"
    with pytest.raises(kg.UnsafeArchiveError):
        kg.ingest_archive(archive, out)
    assert list(out.iterdir()) == []


def test_safe_extract_skips_junk_and_directories(tmp_path):
    archive = tmp_path / "x.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("d/", b"")
        zf.writestr("d/keep.jpeg", b"x")
        zf.writestr("d/._keep.jpeg", b"x")
        zf.writestr("d/Thumbs.db", b"x")
        zf.writestr("__MACOSX/d/keep.jpeg", b"x")
    written = kg.safe_extract(archive, tmp_path / "t")
    assert written == [tmp_path / "t" / "d" / "keep.jpeg"]
    assert tree(tmp_path / "t") == {"d/keep.jpeg"}


def test_bad_archives_raise_value_error_naming_file(tmp_path):
    missing = tmp_path / "nope.zip"
    with pytest.raises(ValueError, match="nope.zip"):
        kg.ingest_archive(missing, tmp_path / "out")
    notzip = tmp_path / "notzip.zip"
    notzip.write_text("hello")
    with pytest.raises(ValueError, match="notzip.zip"):
        kg.ingest_archive(notzip, tmp_path / "out")
    wrong = tmp_path / "wrong.zip"
    with zipfile.ZipFile(wrong, "w") as zf:
        zf.writestr("images/a.jpeg", _jpeg())
    with pytest.raises(ValueError, match="wrong.zip.*train/ and test/"):
        kg.ingest_archive(wrong, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


def test_is_complete_requires_marker_and_images(tmp_path, kaggle_zip):
    data_dir = kg.ingest_archive(kaggle_zip, tmp_path / "out")
    assert kg.is_complete(data_dir)
    (data_dir / kg.MARKER).unlink()
    assert not kg.is_complete(data_dir)
    assert not kg.is_complete(tmp_path / "missing")


def test_normalise_layout_keeps_shallowest_tree(tmp_path):
    root = tmp_path / "x"
    for base in (root / "deep" / "chest_xray", root / "deep" / "chest_xray" / "chest_xray"):
        for split in ("train", "test"):
            for cls in CLASS_FOLDERS:
                (base / split / cls).mkdir(parents=True)
                (base / split / cls / "a.jpeg").write_bytes(b"x")
    data_dir = kg.normalise_layout(root, tmp_path / "out")
    assert data_dir == tmp_path / "out" / "chest_xray"
    assert sorted(p.name for p in data_dir.iterdir()) == ["test", "train"]
