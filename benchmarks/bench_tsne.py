"""t-SNE speed here: scikit-learn's TSNE vs openTSNE on a run's saved embeddings."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE, trustworthiness

from automl import records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run", required=True, help="a run folder with embeddings.npz (make embed)")
    parser.add_argument("--out", default="benchmarks/results/bench_tsne.json")
    args = parser.parse_args()
    saved = np.load(Path(args.run) / "embeddings.npz")
    x = np.concatenate([saved["val"], saved["test"]])
    x = PCA(50, random_state=0).fit_transform(x) if x.shape[1] > 50 else x
    rows = []
    started = time.perf_counter()
    points = TSNE(2, init="pca", perplexity=30, random_state=0).fit_transform(x)
    rows.append({"method": "sklearn", "seconds": time.perf_counter() - started,
                 "trustworthiness_5": float(trustworthiness(x, points, n_neighbors=5))})
    try:
        from openTSNE import TSNE as OpenTSNE

        started = time.perf_counter()
        points = np.asarray(OpenTSNE(perplexity=30, random_state=0, n_jobs=2).fit(x))
        rows.append({"method": "openTSNE", "seconds": time.perf_counter() - started,
                     "trustworthiness_5": float(trustworthiness(x, points, n_neighbors=5))})
    except ImportError as error:
        rows.append({"method": "openTSNE", "error": f"not installed ({error})"})
    result = {"run": Path(args.run).name, "n": int(len(x)), "dim": int(x.shape[1]), "rows": rows,
              "env": records.environment()}
    records.write_json(Path(args.out), result)
    for row in rows:
        print(row)


if __name__ == "__main__":
    main()
