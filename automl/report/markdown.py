"""Markdown building blocks for the reports: safe cells, rounded numbers, GitHub tables, links."""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import quote

import pandas as pd

from automl.records.values import number

DASH = "–"


def esc(value) -> str:
    """Text from a file made safe for one table cell: no bare ``|``, newline, backtick or tag."""
    text = str(value).replace("\\", "\\\\").replace("|", "\\|").replace("`", "\\`")
    return " ".join(text.replace("<", "&lt;").replace(">", "&gt;").split())


def fmt(x, digits: int = 3, *, signed: bool = False) -> str:
    """A number rounded for display; ``–`` when missing or not a number."""
    value = number(x)
    if value is None:
        return DASH
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def fmt_ci(value, interval) -> str:
    """``0.912 [0.889, 0.934]``; just the value when the interval is missing."""
    if isinstance(interval, list) and len(interval) == 2 and DASH not in map(fmt, interval):
        return f"{fmt(value)} [{fmt(interval[0])}, {fmt(interval[1])}]"
    return fmt(value)


def fmt_count(x) -> str:
    return f"{x:,}" if isinstance(x, int) and not isinstance(x, bool) else DASH


def short_text(text, limit: int = 120, *, last_line: bool = True) -> str:
    """Escaped one-line snippet: the last non-empty line (a traceback's exception) or all lines,
    cut to ``limit`` characters."""
    lines = [line.strip() for line in str(text or "").splitlines() if line.strip()]
    text = (lines[-1:] if last_line else lines) or [""]
    text = " ".join(text)
    return esc(text if len(text) <= limit else text[: limit - 1] + "…")


def table(rows: list[dict], empty: str) -> str:
    """A GitHub table of formatted, escaped strings (tabulate must not re-parse numbers)."""
    if not rows:
        return empty
    frame = pd.DataFrame(rows, columns=list(rows[0])).fillna(DASH)
    return frame.to_markdown(index=False, tablefmt="github", disable_numparse=True)


def anchor(text: str) -> str:
    """GitHub's anchor for a heading ``text``."""
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def rel(path: Path, out: Path) -> str:
    """``path`` relative to the report folder, URL-quoted, with forward slashes."""
    return quote(Path(os.path.relpath(path.resolve(), out.resolve())).as_posix(), safe="/")
