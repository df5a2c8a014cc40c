"""Generic readers for values in loaded records: a nested lookup and a numeric coercion.

Records are plain JSON, so any level may be missing or hold the wrong type; these readers
answer None instead of raising, and every layer above reads records through them.
"""

from __future__ import annotations

import math


def dig(obj, *keys):
    """``obj[k1][k2]...``, or None where a level is missing or not a dict."""
    for key in keys:
        obj = obj.get(key) if isinstance(obj, dict) else None
    return obj


def number(x) -> float | None:
    """``x`` as a float; None for a missing value, a bool, a non-number or NaN."""
    if isinstance(x, bool) or not isinstance(x, (int, float)) or math.isnan(x):
        return None
    return float(x)
