"""What identifies a recorded trial, read the same way by the search, scoring, the portfolio
and the benchmarks."""

from __future__ import annotations

import json


def config_key(values: dict) -> str:
    """A configuration's identity: its hyperparameters without Keras Tuner's bookkeeping
    (``tuner/*``) and without the image size it was trained at."""
    return json.dumps({k: v for k, v in values.items() if not k.startswith("tuner/") and k != "image_size"},
                      sort_keys=True, default=str)


def trial_image_size(record: dict, default: int) -> int:
    """The image size a recorded trial trained at (``default`` for records made before
    image-size screening existed)."""
    return int(record.get("image_size") or record.get("hparams", {}).get("image_size") or default)
