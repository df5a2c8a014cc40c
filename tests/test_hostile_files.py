"""One hostile file (a decompression bomb, a symlink loop, a folder loop, an unreadable or
vanished file, a FIFO) is reported by path and reason and skipped: no command crashes."""

from __future__ import annotations

import builtins
import json
import os
import struct
import subprocess
import sys
import warnings
import zlib
from pathlib import Path

import pytest
from PIL import Image

from automl.data import index, pipeline
from automl.data.synthetic import write_synthetic

BOMB = "IM-9101-0001.png"  # declares 40000 x 40000 pixels in a file of a few dozen bytes
BIG = "IM-9102-0001.png"  # 12000 x 12000: over our limit, under PIL's error threshold
LOOP_A, LOOP_B = "IM-9103-0001.jpeg", "IM-9104-0001.jpeg"
FOLDER_LOOP = "loop"
FIFO = "IM-9105-0001.jpeg"


def png_header(path: Path, width: int, height: int) -> Path:
    """A PNG that declares ``width`` x ``height`` 8-bit grey pixels and holds none."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b""))
                     + chunk(b"IEND", b""))
    return path


def add_hostile_files(folder: Path) -> None:
    """The hostile files, in ``folder`` (a class folder or any folder given to predict)."""
    png_header(folder / BOMB, 40000, 40000)
    png_header(folder / BIG, 12000, 12000)
    (folder / LOOP_A).symlink_to(folder / LOOP_B)
    (folder / LOOP_B).symlink_to(folder / LOOP_A)
    (folder / FOLDER_LOOP).symlink_to(folder, target_is_directory=True)
    os.mkfifo(folder / FIFO)


@pytest.fixture(scope="module")
def hostile_data(tmp_path_factory) -> Path:
    root = write_synthetic(tmp_path_factory.mktemp("hostile") / "chest_xray", per_class=12, size=32)
    add_hostile_files(root / "train" / "NORMAL")
    return root


def automl_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "automl.cli", *args], capture_output=True, text=True,
                          timeout=600)


def reasons_by_name(problems: list[dict]) -> dict[str, str]:
    return {Path(p["path"]).name: p["reason"] for p in problems}


def assert_named(reasons: dict[str, str]) -> None:
    assert "declares 40000 × 40000 pixels, over the decompression limit" in reasons[BOMB]
    assert "declares 12000 × 12000 pixels" in reasons[BIG]
    assert reasons[LOOP_A] == reasons[LOOP_B] == "symlink loop"
    assert "empty" in reasons[FIFO]


def test_data_check_names_each_hostile_file_and_exits_by_strictness(hostile_data):
    result = automl_cli("data", "check", "--data", str(hostile_data), "--json")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "DecompressionBomb" not in result.stderr
    reasons = reasons_by_name(json.loads(result.stdout)["problems"])
    assert_named(reasons)
    assert "folder inside a class folder" in reasons[FOLDER_LOOP]
    strict = automl_cli("data", "check", "--data", str(hostile_data), "--strict")
    assert strict.returncode == 1 and "Traceback" not in strict.stderr
    assert BOMB in strict.stdout and LOOP_A in strict.stdout


def test_the_decompression_limit_is_applied_to_pil(tmp_path):
    # An image between PIL's own default limit and ours opens without PIL's bomb warning.
    assert Image.MAX_IMAGE_PIXELS == index.MAX_IMAGE_PIXELS
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with Image.open(png_header(tmp_path / "x.png", 9800, 9800)) as image:
            assert image.size == (9800, 9800)


def test_a_file_without_read_permission_is_a_problem(tmp_path, monkeypatch):
    root = write_synthetic(tmp_path / "chest_xray", per_class=4, size=16)
    locked = sorted((root / "train" / "NORMAL").glob("*.jpeg"))[0]
    real_open = builtins.open

    def refusing_open(file, *args, **kwargs):
        if str(file) == str(locked):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    # Tests run as root, where chmod 000 does not stop a read: the refusal is simulated.
    monkeypatch.setattr(builtins, "open", refusing_open)
    reasons = reasons_by_name(index.scan(root).problems)
    assert reasons[locked.name] == "no read permission"


def test_a_file_removed_after_the_scan_is_skipped_when_decoded(tmp_path):
    root = write_synthetic(tmp_path / "chest_xray", per_class=4, size=16)
    paths = index.scan(root).table.path.tolist()
    assert index.check_image(root / "gone.jpeg", root).startswith("no such file")
    os.remove(paths[1])
    images, problems = pipeline.decode_images(paths, 16, progress=False)
    assert len(images) == len(paths) - 1
    assert problems == [{"path": paths[1], "reason": index.os_reason(FileNotFoundError(2, "x"))}]
    with pytest.raises(pipeline.DecodeError, match="removed"):
        pipeline.load_images(paths, 16, progress=False)
    # The images of the files that decoded are cached under those files.
    kept = paths[:1] + paths[2:]
    assert (pipeline.cache_dir() / "images" / f"{pipeline.cache_key(kept, 16)}.npy").exists()


def test_a_damaged_archive_member_is_a_value_error(tmp_path):
    import zipfile

    from automl.data import kaggle

    archive = tmp_path / "chest.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("chest_xray/train/NORMAL/a.jpeg", b"x" * 4096)
    data = bytearray(archive.read_bytes())
    start = data.index(b"a.jpeg") + len(b"a.jpeg")
    data[start:start + 8] = b"\0" * 8  # corrupt the compressed bytes: a CRC or inflate error
    archive.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="cannot be extracted"):
        kaggle.ingest_archive(archive, tmp_path / "out")


@pytest.mark.slow
def test_a_search_over_hostile_files_completes_and_records_them(hostile_data, tmp_path, monkeypatch):
    from automl import records
    from automl.data import rebuild
    from automl.search.orchestrator import run_search
    from automl.settings.run_config import SearchConfig

    scan = index.scan
    removed = []

    def scan_then_remove(root):
        # A file removed between the scan and the decode: skipped, named, the search goes on.
        found = scan(root)
        victim = found.table[found.table.split == "train"].path.iloc[0]
        Path(victim).rename(tmp_path / "elsewhere.jpeg")
        removed.append(victim)
        return found

    monkeypatch.setattr(rebuild.data_index, "scan", scan_then_remove)
    try:
        run_dir = run_search(SearchConfig(data=str(hostile_data), tuner="random", max_trials=1, epochs=1,
                                          image_size=32, fixed={"blocks": 2}, out=str(tmp_path / "runs")),
                             log=lambda *a: None)
    finally:
        (tmp_path / "elsewhere.jpeg").rename(removed[0])
    summary = records.read_json(run_dir / "summary.json")
    assert summary["best_trial"] is not None
    reasons = reasons_by_name(summary["data"]["problems"])
    assert_named(reasons)
    assert reasons[Path(removed[0]).name].startswith("no such file")


@pytest.mark.slow
def test_predict_names_hostile_files_and_exits_1(binary_run, synthetic_data, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    usable = sorted((synthetic_data / "test" / "NORMAL").glob("*.jpeg"))[:2]
    for source in usable:
        (folder / source.name).write_bytes(source.read_bytes())
    add_hostile_files(folder)
    result = automl_cli("predict", "--run", str(binary_run), str(folder), str(folder / LOOP_A))
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and "DecompressionBomb" not in result.stderr
    skipped = {line.split(": ", 1)[0].removeprefix("skipped "): line.split(": ", 1)[1]
               for line in result.stdout.splitlines() if line.startswith("skipped ")}
    assert_named({Path(p).name: r for p, r in skipped.items()})
    assert str(folder / LOOP_A) in skipped  # a loop named on the command line, too
    scored = [line for line in result.stdout.splitlines() if line.startswith(str(folder))]
    assert sorted(Path(line.split()[0]).name for line in scored) == [f.name for f in usable]
