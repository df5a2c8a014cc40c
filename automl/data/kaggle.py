"""Fetch the Kaggle chest X-ray archive (API or hand-downloaded zip) and lay it out safely."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import stat
import sys
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from automl.settings.paths import CLASS_FOLDERS, SPLITS

DATASET = "paultimothymooney/chest-xray-pneumonia"
DATASET_URL = f"https://www.kaggle.com/datasets/{DATASET}"
MARKER = ".complete"
IMAGE_SUFFIXES = {".jpeg", ".jpg", ".png"}
_JUNK_NAMES = {".DS_Store", "Thumbs.db"}
_EXPECTED = "a folder with train/ and test/ subfolders that each hold NORMAL/ and PNEUMONIA/"
_MANUAL = (
    f"or download the zip by hand from {DATASET_URL} "
    "and run `automl data download --archive PATH.zip`"
)
NO_CREDENTIALS = (
    "No Kaggle credentials: put your API token in ~/.kaggle/kaggle.json (chmod 600) "
    f"or set KAGGLE_USERNAME and KAGGLE_KEY, {_MANUAL}."
)


class DownloadError(RuntimeError):
    """Kaggle could not be used (no credentials or no network); the CLI maps it to exit code 2."""


class UnsafeArchiveError(ValueError):
    """A zip member would be written outside the extraction target."""


def kaggle_config_path() -> Path:
    """Return where the kaggle client looks for ``kaggle.json``.

    Mirrors the client: ``$KAGGLE_CONFIG_DIR``, else ``~/.kaggle``, else (Linux, when
    ``~/.kaggle`` is absent) ``$XDG_CONFIG_HOME/kaggle``.
    """
    if os.environ.get("KAGGLE_CONFIG_DIR"):
        return Path(os.environ["KAGGLE_CONFIG_DIR"]).expanduser() / "kaggle.json"
    legacy = Path.home() / ".kaggle"
    if legacy.exists() or not sys.platform.startswith("linux"):
        return legacy / "kaggle.json"
    xdg = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return xdg / "kaggle" / "kaggle.json"


def has_credentials() -> bool:
    """Return True if any credential source the kaggle client reads is present (not validated)."""
    env = os.environ
    if (env.get("KAGGLE_USERNAME") and env.get("KAGGLE_KEY")) or env.get("KAGGLE_API_TOKEN"):
        return True
    # kaggle>=1.8 also accepts an access token or cached OAuth credentials in ~/.kaggle.
    home = Path.home() / ".kaggle"
    extra = (home / n for n in ("access_token", "access_token.txt", "credentials.json"))
    return kaggle_config_path().is_file() or any(p.is_file() for p in extra)


def warn_if_world_readable(path: Path | None = None, log: Callable[[str], Any] = print) -> bool:
    """Log a warning if the kaggle.json at ``path`` is readable by group or others.

    Returns:
        True if a warning was logged. Only the path is mentioned, never the contents.
    """
    path = Path(path) if path is not None else kaggle_config_path()
    if os.name == "nt" or not path.is_file() or not path.stat().st_mode & 0o077:
        return False
    log(f"Warning: {path} is readable by other users; run `chmod 600 {path}`.")
    return True


def _unsafe_reason(info: zipfile.ZipInfo, root: Path) -> str | None:
    """Say why a member is unsafe to extract under ``root``, or return None if it is fine."""
    name = info.filename
    if stat.S_ISLNK(info.external_attr >> 16):
        return "is a symbolic link"
    if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name):
        return "has an absolute path"
    # Split on both separators: zips made on Windows may use backslashes.
    if ".." in re.split(r"[\\/]", name):
        return "contains '..'"
    if not (root / name).resolve().is_relative_to(root):
        return "resolves outside the target"
    return None


def _is_junk(parts: list[str]) -> bool:
    """Return True for macOS/Windows metadata that is not part of the dataset."""
    leaf = parts[-1]
    return "__MACOSX" in parts or leaf in _JUNK_NAMES or leaf.startswith("._")


def safe_extract(archive: Path, target: Path) -> list[Path]:
    """Extract the regular files of a zip into ``target``, refusing unsafe archives whole.

    Every member is checked before anything is written, so a refused archive leaves
    ``target`` untouched. Directories, non-regular entries and OS junk are skipped.

    Returns:
        The extracted file paths.

    Raises:
        UnsafeArchiveError: A member is a symlink, absolute, or escapes ``target``.
    """
    archive, target = Path(archive), Path(target)
    root = target.resolve()
    written: list[Path] = []
    with zipfile.ZipFile(archive) as zf:
        members = zf.infolist()
        for info in members:
            reason = _unsafe_reason(info, root)
            if reason:
                raise UnsafeArchiveError(
                    f"Refusing to extract {archive}: member {info.filename!r} {reason}."
                )
        for info in members:
            ftype = stat.S_IFMT(info.external_attr >> 16)
            parts = [p for p in re.split(r"[\\/]", info.filename) if p not in ("", ".")]
            # No file type bits (DOS tools, ZipFile.writestr) means a plain file.
            if info.is_dir() or not parts or (ftype and ftype != stat.S_IFREG) or _is_junk(parts):
                continue
            dest = target.joinpath(*parts)
            dest.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(dest, "wb") as dst:
                shutil.copyfileobj(src, dst)
            written.append(dest)
    return written


def _is_dataset_root(folder: Path) -> bool:
    return all((folder / s / c).is_dir() for s in ("train", "test") for c in CLASS_FOLDERS)


def normalise_layout(extracted_root: Path, out_dir: Path) -> Path:
    """Move the shallowest train/test tree under ``extracted_root`` to ``out_dir/chest_xray``.

    The Kaggle zip holds ``chest_xray/`` plus a nested duplicate ``chest_xray/chest_xray/``;
    only the split folders of the shallowest tree are kept, so the duplicate is dropped.
    An existing ``out_dir/chest_xray`` is replaced.

    Returns:
        ``out_dir/chest_xray``.

    Raises:
        ValueError: No folder under ``extracted_root`` looks like the dataset.
    """
    extracted_root, out_dir = Path(extracted_root), Path(out_dir)
    candidates = [extracted_root] + [p for p in extracted_root.rglob("*") if p.is_dir()]
    found = [p for p in candidates if _is_dataset_root(p)]
    if not found:
        raise ValueError(
            f"{extracted_root} does not hold the chest X-ray dataset: expected {_EXPECTED}."
        )
    src = min(found, key=lambda p: len(p.parts))
    # Stage next to the extracted files so the final move is a rename on one filesystem.
    staging = Path(tempfile.mkdtemp(prefix=".layout-", dir=extracted_root))
    for split in SPLITS:
        if (src / split).is_dir():
            shutil.move(str(src / split), str(staging / split))
    dest = out_dir / "chest_xray"
    if dest.exists():
        shutil.rmtree(dest)
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.move(str(staging), str(dest))
    return dest


def _has_image(folder: Path) -> bool:
    return folder.is_dir() and any(p.suffix.lower() in IMAGE_SUFFIXES for p in folder.iterdir())


def is_complete(data_dir: Path) -> bool:
    """Return True if ``data_dir`` (``out/chest_xray``) holds a finished ingest.

    Requires the ``.complete`` marker and at least one image per class in train and test.
    """
    data_dir = Path(data_dir)
    return (data_dir / MARKER).is_file() and all(
        _has_image(data_dir / s / c) for s in ("train", "test") for c in CLASS_FOLDERS
    )


def ingest_archive(archive: Path, out_dir: Path = Path("data")) -> Path:
    """Extract and normalise a chest X-ray zip (e.g. fetched by hand) into ``out_dir/chest_xray``.

    Returns:
        ``out_dir/chest_xray``, marked complete.

    Raises:
        ValueError: ``archive`` is missing, not a zip, or not the expected dataset.
        UnsafeArchiveError: ``archive`` has members that would escape the target.
    """
    archive, out_dir = Path(archive), Path(out_dir)
    if not archive.is_file():
        raise ValueError(f"Archive {archive} does not exist.")
    if not zipfile.is_zipfile(archive):
        raise ValueError(f"{archive} is not a zip file.")
    out_dir.mkdir(parents=True, exist_ok=True)
    # Extract inside out_dir so moving the result into place is a same-filesystem rename.
    partial = Path(tempfile.mkdtemp(prefix=".partial-", dir=out_dir))
    try:
        try:
            safe_extract(archive, partial)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError) as error:
            # A damaged, encrypted or unsupported member, or a full disk: named, not a traceback.
            raise ValueError(f"{archive} cannot be extracted: {error}") from None
        try:
            data_dir = normalise_layout(partial, out_dir)
        except ValueError:
            raise ValueError(f"{archive} is not the chest X-ray archive: expected {_EXPECTED}.") from None
        marker = {"files": sum(1 for p in data_dir.rglob("*") if p.is_file()), "archive": archive.name}
        (data_dir / MARKER).write_text(json.dumps(marker) + "\n")
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return data_dir


def _reason(exc: BaseException) -> str:
    """Describe a failure by class name and HTTP status only: exception text may echo secrets."""
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return type(exc).__name__ + (f" {status}" if isinstance(status, int) else "")


def download(out_dir: Path = Path("data"), *, api: Any = None, force: bool = False,
             log: Callable[[str], Any] = print) -> Path:
    """Download the dataset from Kaggle into ``out_dir/chest_xray`` unless already complete.

    Args:
        out_dir: Folder that receives ``chest_xray/``.
        api: A KaggleApi-like object (tests inject fakes); the real client is built if None.
        force: Fetch again even if a complete copy exists.
        log: Sink for progress messages.

    Returns:
        ``out_dir/chest_xray``.

    Raises:
        DownloadError: No usable credentials, or Kaggle could not be reached.
    """
    out_dir = Path(out_dir)
    data_dir = out_dir / "chest_xray"
    if not force and is_complete(data_dir):
        log(f"Dataset already present at {data_dir}; not downloading again.")
        return data_dir
    warn_if_world_readable(log=log)
    api = _authenticated(api)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".download-", dir=out_dir) as tmp:
        log(f"Downloading {DATASET} from Kaggle into {out_dir} ...")
        try:
            api.dataset_download_files(DATASET, path=tmp, unzip=False, quiet=False)
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - network errors vary by client
            # `from None` keeps the original text (which could echo a key) out of tracebacks.
            raise DownloadError(
                f"Could not reach Kaggle to download {DATASET} ({_reason(exc)}); "
                f"check your network and credentials, {_MANUAL}."
            ) from None
        zips = sorted(Path(tmp).glob("*.zip"))
        named = Path(tmp) / "chest-xray-pneumonia.zip"
        archive = named if named.is_file() else (zips[0] if len(zips) == 1 else None)
        if archive is None:
            raise DownloadError(f"Kaggle download left no single zip in {tmp}; {_MANUAL}.")
        data_dir = ingest_archive(archive, out_dir)
    log(f"Dataset ready at {data_dir}.")
    return data_dir


def _authenticated(api: Any) -> Any:
    """``api`` (or the real client when None), authenticated; DownloadError when it cannot be."""
    if api is None:
        # Bail out before importing: without credentials kaggle prints a long help text.
        if not has_credentials():
            raise DownloadError(NO_CREDENTIALS)
        try:
            # Importing the package runs kaggle's own authenticate(), which may sys.exit.
            with contextlib.redirect_stdout(io.StringIO()):
                from kaggle.api.kaggle_api_extended import KaggleApi
            api = KaggleApi()
        except (Exception, SystemExit):  # noqa: BLE001 - any import failure means no usable client
            raise DownloadError(NO_CREDENTIALS) from None
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            api.authenticate()
    except (Exception, SystemExit):  # noqa: BLE001 - kaggle exits or raises on bad credentials
        raise DownloadError(NO_CREDENTIALS) from None
    return api
