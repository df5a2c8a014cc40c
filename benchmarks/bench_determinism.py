"""What deterministic training costs: training images/s of the default binary model through the
search's own input pipeline (augmentation on), with determinism off and on, side by side.

Each setting runs in a fresh process (deterministic ops and thread pools are set per process):

- ``off``: parallel augmentation, TensorFlow's default ops;
- ``ops``: deterministic ops, augmentation still mapped in parallel;
- ``on``: what ``--deterministic on`` does (deterministic ops, fixed threads, ordered augmentation).

    python benchmarks/bench_determinism.py --json benchmarks/results/determinism_speed.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

SETTINGS = ("off", "ops", "on")


def child(setting: str, image_size: int, images: int, epochs: int, base_filters: int | None) -> dict:
    import keras
    import keras_tuner as kt
    import numpy as np

    from automl.data import pipeline
    from automl.models import determinism, precision
    from automl.tasks.base import SearchSpace
    from automl.tasks.binary import BinaryTask

    determinism.configure(setting == "on", 0)
    if setting == "ops":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
        pipeline.deterministic_ops = lambda: False  # keep the parallel map: ops alone
    precision.apply_precision("mixed")
    hp = kt.HyperParameters()
    if base_filters:
        hp.Fixed("base_filters", base_filters)
    model = BinaryTask().build(hp, SearchSpace(image_size=image_size, families=("plain",)))
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (images, image_size, image_size, 1), dtype=np.uint8)
    y = rng.integers(0, 2, (images, 1)).astype("float32")
    data = pipeline.make_dataset(x, y, batch_size=32, training=True, augment=1.0, seed=0)
    model.fit(data, epochs=1, verbose=0)  # tracing and warm-up
    started = time.perf_counter()
    model.fit(data, epochs=epochs, verbose=0)
    seconds = time.perf_counter() - started
    weights = float(sum(np.abs(w).sum() for w in model.get_weights()))
    keras.backend.clear_session()
    return {"setting": setting, "image_size": image_size,
            "model": f"plain, {hp.values['base_filters']} filters",
            "images_per_second": round(images * epochs / seconds, 1),
            "seconds": round(seconds, 2), "weights_checksum": weights}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--images", type=int, default=1024)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--base-filters", type=int, nargs="+", default=[8, 32],
                        help="model widths: a narrow net is bound by the input pipeline, a wide one "
                             "by its layers")
    parser.add_argument("--json")
    parser.add_argument("--child", choices=SETTINGS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.image_size, args.images, args.epochs, args.base_filters[0])))
        return {}
    rows, cost = [], {}
    for width in args.base_filters:
        for setting in SETTINGS:
            out = subprocess.run([sys.executable, __file__, "--child", setting,
                                  "--image-size", str(args.image_size), "--images", str(args.images),
                                  "--epochs", str(args.epochs), "--base-filters", str(width)],
                                 capture_output=True, text=True, check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"{width:3d} filters {setting:4s} {rows[-1]['images_per_second']:8.1f} images/s")
        off, on = rows[-3]["images_per_second"], rows[-1]["images_per_second"]
        cost[str(width)] = round(1 - on / off, 3)
        print(f"  determinism costs {100 * cost[str(width)]:.0f}% of the images/s")
    result = {"rows": rows, "cost_of_on": cost}
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=2)
    return result


if __name__ == "__main__":
    main()
