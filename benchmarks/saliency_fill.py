"""After the fact: a run's Grad-CAM deletion test with pixels replaced by the image mean (as the
run does) or by a blurred copy. Reads validation images and the run's model; chooses nothing."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter

from automl import records
from automl.evaluation import saliency


def deletion_areas(run_dir: Path, *, images: int = 64, steps: int = 10) -> dict:
    """Area under mean P(pneumonia) while deleting the most salient pixels first vs in random
    order, for each fill, on the first ``images`` validation pneumonia images."""
    import automl
    from automl.data.pipeline import load_images
    from automl.search.orchestrator import prepare
    from automl.settings.run_config import SearchConfig

    config, _, task, parts = prepare(SearchConfig.load(run_dir), log=lambda *a: None)
    val = load_images(parts["val"].path, config.image_size)
    x = task.model_inputs(val[np.flatnonzero(task.labels(parts["val"]) != 0)[:images]])
    model = automl.load_model(run_dir / "best_model.keras")
    orders = {"gradcam": saliency.gradcam(model, x, evaluation=task.evaluation),
              "random": np.random.default_rng(0).random(x.shape[:3])}
    fills = {"mean": np.repeat(x.reshape(len(x), -1).mean(1, keepdims=True), x[0].size, 1),
             "blur": gaussian_filter(x[..., 0], sigma=(0, 8, 8)).reshape(len(x), -1)}
    out = {}
    for fill, target in fills.items():
        for name, order in orders.items():
            ranking = np.argsort(-order.reshape(len(x), -1), axis=1, kind="stable")
            curve = []
            for step in range(steps + 1):
                k = int(round(step / steps * x[0].size))
                flat = x.reshape(len(x), -1).copy()
                rows, cols = np.repeat(np.arange(len(x)), k), ranking[:, :k].reshape(-1)
                flat[rows, cols] = target[rows, cols]
                p = model.predict(flat.reshape(x.shape), verbose=0)
                curve.append(float(saliency.pneumonia_probability(p, task.evaluation).mean()))
            out[f"{fill}/{name}"] = float(np.trapezoid(curve, dx=1.0 / steps))
    return {"run": run_dir.name, "images": int(len(x)), "areas": out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run", required=True, help="a finished classifier run with its best_model.keras")
    parser.add_argument("--out", default="benchmarks/results/saliency_fill.json")
    args = parser.parse_args()
    result = deletion_areas(Path(args.run))
    records.write_json(Path(args.out), result)
    print(result)


if __name__ == "__main__":
    main()
