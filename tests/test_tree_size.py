"""The repository stays small enough to clone quickly: tracked files under a limit."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Bytes of every tracked file together (as `git ls-files | xargs du -cb` counts them).
LIMIT_BYTES = 30_000_000


def test_tracked_files_stay_under_the_limit():
    """Older runs' plots are dropped and bulky scores gzipped (benchmarks/results/README.md);
    a new record that pushes the tree past the limit must do the same."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        pytest.skip("git is not available")
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    paths = [ROOT / name for name in listed.stdout.decode().split("\0") if name]
    sizes = {path: path.stat().st_size for path in paths if path.is_file()}
    total = sum(sizes.values())
    largest = sorted(sizes, key=sizes.get, reverse=True)[:5]
    assert total <= LIMIT_BYTES, (f"tracked files take {total:,} bytes, over {LIMIT_BYTES:,}; largest: "
                                  + ", ".join(f"{p.relative_to(ROOT)} {sizes[p]:,}" for p in largest))
