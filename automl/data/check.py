"""``automl data check``: what a data folder or manifest holds and everything wrong with it."""

from __future__ import annotations

from collections.abc import Callable

from tabulate import tabulate

from automl.data import index, manifest


def check_data(path: str, *, label_errors: Callable[[index.Index], list[str]] = lambda idx: []) -> dict:
    """Counts per split, duplicates, problems (skipped files of a folder), errors (bad rows of a
    manifest, and ``label_errors`` of the index: labels a task cannot use) and warnings.

    Raises:
        DataError: the folder or manifest cannot be read at all.
    """
    checked = manifest.check(path) if manifest.is_manifest(path) else manifest.Checked(index.scan(path))
    if checked.index is None:
        return {"root": str(path), "images": 0, "splits": {}, "duplicates": [], "problems": [],
                "warnings": [], "errors": checked.errors}
    return {**index.summarise(checked.index), "errors": checked.errors + label_errors(checked.index)}


def render_check(summary: dict) -> str:
    """:func:`check_data`'s summary as the console shows it."""
    lines = []
    if summary["splits"]:
        rows = [[split, *counts.values()] for split, counts in summary["splits"].items()]
        headers = ["split", *next(iter(summary["splits"].values())).keys()]
        lines += [f"{summary['root']}: {summary['images']} usable images\n",
                  tabulate(rows, headers=headers, tablefmt="github")]
    lines.append(f"\n{len(summary['duplicates'])} groups of byte-identical files "
                 f"({sum(len(g) for g in summary['duplicates'])} files)")
    lines += [f"warning: {warning}" for warning in summary["warnings"]]
    lines += [f"{len(summary['errors'])} errors", *(f"  {error}" for error in summary["errors"])]
    lines += [f"{len(summary['problems'])} problems",
              *(f"  {p['path']}: {p['reason']}" for p in summary["problems"])]
    return "\n".join(lines)
