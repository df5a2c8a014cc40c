"""Scan a folder in the Kaggle layout into a validated table of images."""

from __future__ import annotations

import errno
import hashlib
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from PIL import Image, JpegImagePlugin, PngImagePlugin, UnidentifiedImageError

from automl.settings.paths import CLASS_FOLDERS, SPLITS

COLUMNS = ["path", "split", "label", "subtype", "patient"]
IMAGE_FORMATS = {"JPEG", "PNG"}
IMAGE_SUFFIXES = {".jpeg", ".jpg", ".png"}
# Every mode that converts to greyscale without loss of meaning, and that the pipeline's
# decoder reads as PIL converts it (checked for CMYK JPEGs and palette, grey+alpha and
# bilevel PNGs): 8-bit grey/colour, CMYK, palette, the 16-bit greyscale PNG modes.
IMAGE_MODES = {"L", "LA", "1", "P", "RGB", "RGBA", "CMYK", "I;16", "I;16B", "I;16L", "I"}
# The most pixels an image may declare: radiographs are at most about 3000 px a side, so a
# file declaring more is damaged or a decompression bomb (a few KB that would decode to GBs).
# PIL gets the same limit: an image under it decodes without PIL's bomb warning.
MAX_IMAGE_PIXELS = 10_000 * 10_000
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS

_PATIENT_PATTERNS = (
    re.compile(r"(person\d+)_", re.IGNORECASE),
    re.compile(r"(NORMAL2-IM-\d+)", re.IGNORECASE),
    re.compile(r"(IM-\d+)", re.IGNORECASE),
)


class DataError(ValueError):
    """A data folder that cannot be used at all."""


@dataclass
class Index:
    """The images of a data folder and what was wrong with the rest.

    Attributes:
        root: the folder that holds ``train/``, ``val/``, ``test/`` (a manifest's folder).
        table: one row per usable image, columns ``COLUMNS`` (a manifest's also ``row``,
            its row number, and ``fold`` where it gives one).
        problems: ``{"path", "reason"}`` for every file or folder skipped.
    """

    root: Path
    table: pd.DataFrame
    problems: list[dict] = field(default_factory=list)
    # Read from a manifest (automl.data.manifest): its file; None for a folder in the Kaggle layout.
    manifest: Path | None = None
    # What holds for the whole set rather than one file (a manifest without patient ids).
    warnings: list[str] = field(default_factory=list)

    def split(self, name: str) -> pd.DataFrame:
        return self.table[self.table.split == name].reset_index(drop=True)


def patient_id(filename: str) -> str:
    """Patient id from a Kaggle file name; the stem when no pattern matches."""
    for pattern in _PATIENT_PATTERNS:
        match = pattern.search(filename)
        if match:
            return match.group(1).upper().replace("PERSON", "person")
    return Path(filename).stem


def subtype(label: str, filename: str) -> str:
    """``normal``, ``bacteria`` or ``virus`` (``unknown`` for an unmarked PNEUMONIA file)."""
    if label == "NORMAL":
        return "normal"
    name = filename.lower()
    if "bacteria" in name:
        return "bacteria"
    if "virus" in name:
        return "virus"
    return "unknown"


def check_image(path: Path, root: Path) -> str | None:
    """Why ``path`` is not a usable image, or None when it is.

    Never raises: a scan of thousands of user files reports each bad one and goes on.
    """
    try:
        if path.is_symlink():
            target = path.resolve(strict=True)
            if not target.is_relative_to(root.resolve()):
                return f"symlink to a file outside the data folder ({target})"
        if path.stat().st_size == 0:
            return "empty file (0 bytes)"
        return _oversized(path) or _decode_problem(path)
    except RuntimeError:  # pathlib (Python < 3.13) raises it for a symlink loop
        return "symlink loop"
    except OSError as error:
        return os_reason(error)


def os_reason(error: OSError) -> str:
    """The reason a file could not be read, in words, for the problems list."""
    if error.errno == errno.ELOOP:
        return "symlink loop"
    if error.errno == errno.ENOENT:
        return "no such file (removed since it was listed, or a broken symlink)"
    if error.errno in (errno.EACCES, errno.EPERM):
        return "no read permission"
    return f"cannot be decoded: {error}"


def declared_size(path: Path) -> tuple[int, int] | None:
    """Width and height a PNG or JPEG header declares (no pixel is read); None for other files."""
    for plugin in (PngImagePlugin.PngImageFile, JpegImagePlugin.JpegImageFile):
        try:
            with plugin(path) as image:
                return image.size
        except (OSError, SyntaxError, ValueError):
            continue
    return None


def _oversized(path: Path) -> str | None:
    """Why ``path`` is refused before decoding: it declares more than ``MAX_IMAGE_PIXELS``."""
    size = declared_size(path)
    if size and size[0] * size[1] > MAX_IMAGE_PIXELS:
        return (f"declares {size[0]} × {size[1]} pixels, over the decompression limit "
                f"({MAX_IMAGE_PIXELS:,} pixels)")
    return None


def _decode_problem(path: Path) -> str | None:
    """Why the decoded file is not a usable image: format, pixel mode or a failed full decode."""
    try:
        with Image.open(path) as image:
            if image.format not in IMAGE_FORMATS:
                return f"unsupported image format {image.format} (JPEG or PNG expected)"
            if image.mode not in IMAGE_MODES:
                return (f"unsupported pixel mode {image.mode} (expected one of "
                        f"{', '.join(sorted(IMAGE_MODES))})")
            image.load()  # verify() misses truncated JPEGs; a full decode does not
    except UnidentifiedImageError:
        return "not an image (cannot be decoded as JPEG or PNG)"
    except Image.DecompressionBombError as error:  # another format declaring too many pixels
        return f"over the decompression limit ({MAX_IMAGE_PIXELS:,} pixels): {error}"
    except OSError as error:
        return os_reason(error)
    except (SyntaxError, ValueError) as error:
        return f"cannot be decoded: {error}"
    except Exception as error:  # noqa: BLE001 - a decoder's failure on one file must not stop a scan
        return f"cannot be decoded: {type(error).__name__}: {error}"
    return None


def scan(root: Path | str, *, workers: int = 4) -> Index:
    """Index every image under ``root/{train,val,test}/{NORMAL,PNEUMONIA}``.

    Damaged or unexpected files are reported in ``Index.problems`` and skipped,
    never raised, so that one bad file cannot stop a long run.

    Raises:
        DataError: ``root`` does not exist, has no split folders, or holds no usable image.
    """
    root = _find_root(Path(root))
    problems: list[dict] = []
    candidates = _candidates(root, problems)
    with ThreadPoolExecutor(workers) as pool:
        reasons = list(pool.map(lambda c: check_image(c[0], root), candidates))
    rows = []
    for (file, split, label), reason in zip(candidates, reasons):
        if reason:
            problems.append({"path": str(file), "reason": reason})
            continue
        kind = subtype(label, file.name)
        if kind == "unknown":
            problems.append({"path": str(file), "reason": "PNEUMONIA file name says neither "
                             "_bacteria_ nor _virus_; indexed for the binary task only"})
        rows.append((str(file), split, label, kind, patient_id(file.name)))
    if not rows:
        raise DataError(f"{root}: no usable images found in {{train,val,test}}/{{NORMAL,PNEUMONIA}}/")
    return Index(root, pd.DataFrame(rows, columns=COLUMNS), problems)


def _candidates(root: Path, problems: list[dict]) -> list[tuple[Path, str, str]]:
    """``(file, split, label)`` of every file in a class folder; a stray file or folder, or a
    folder that cannot be listed, is added to ``problems``."""
    candidates = []
    for split_dir in _entries(root, problems):
        if split_dir.name not in SPLITS or not split_dir.is_dir():
            continue  # the Kaggle zip and our copies carry other folders; only splits matter
        for class_dir in _entries(split_dir, problems):
            if not class_dir.is_dir():
                problems.append({"path": str(class_dir), "reason": "stray file outside a class folder"})
            elif class_dir.name not in CLASS_FOLDERS:
                problems.append({
                    "path": str(class_dir),
                    "reason": f"unknown class folder {class_dir.name!r} "
                    f"(expected {' or '.join(CLASS_FOLDERS)}); its files were not indexed",
                })
            else:
                for file in _entries(class_dir, problems):
                    if file.is_dir():
                        looks = " named like an image" if file.suffix.lower() in IMAGE_SUFFIXES else ""
                        problems.append({"path": str(file), "reason": f"a folder{looks} inside a class "
                                         "folder; its contents were not indexed"})
                    else:
                        candidates.append((file, split_dir.name, class_dir.name))
    return candidates


def _entries(folder: Path, problems: list[dict]) -> list[Path]:
    """The visible entries of ``folder``, sorted; none (and a problem) when it cannot be listed.
    The scan never descends below a class folder, so a folder linking to its parent is no loop."""
    try:
        return sorted(p for p in folder.iterdir() if not _hidden(p))
    except OSError as error:
        problems.append({"path": str(folder), "reason": f"folder cannot be listed: {os_reason(error)}"})
        return []


def summarise(index: Index) -> dict:
    """Counts per split, class and subtype, patients per split, duplicates and problems."""
    table = index.table
    labels, kinds = CLASS_FOLDERS, ("normal", "bacteria", "virus")
    if index.manifest is not None:  # a manifest's own labels and subtypes
        labels = sorted(table.label.unique())
        kinds = sorted(set(table.subtype.unique()) - set(labels))
    splits = {}
    for name, part in table.groupby("split", sort=False):
        counts = {label: int((part.label == label).sum()) for label in labels}
        counts.update({kind: int((part.subtype == kind).sum()) for kind in kinds})
        counts["patients"] = int(part.patient.nunique())
        splits[name or "unassigned"] = counts
    splits = {s: splits[s] for s in (*SPLITS, "unassigned") if s in splits}
    return {
        "root": str(index.manifest or index.root),
        "images": int(len(table)),
        "splits": splits,
        "duplicates": duplicate_groups(table.path.tolist()),
        "problems": index.problems,
        "warnings": index.warnings,
    }


def duplicate_groups(paths: list[str]) -> list[list[str]]:
    """Groups of byte-identical files (content SHA-256), each group sorted."""
    by_hash: dict[str, list[str]] = {}
    for path in paths:
        try:
            digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        except OSError:
            continue  # removed or made unreadable since the scan: it has no duplicate to find
        by_hash.setdefault(digest, []).append(path)
    return sorted(sorted(group) for group in by_hash.values() if len(group) > 1)


def _hidden(path: Path) -> bool:
    return path.name.startswith(".") or path.name in {"__MACOSX", "Thumbs.db"}


def _find_root(path: Path) -> Path:
    if not path.is_dir():
        raise DataError(f"{path}: data folder does not exist")
    for candidate in (path, path / "chest_xray"):
        if any((candidate / split).is_dir() for split in SPLITS):
            return candidate
    raise DataError(f"{path}: expected train/, val/ and test/ folders (the Kaggle chest_xray layout)")
