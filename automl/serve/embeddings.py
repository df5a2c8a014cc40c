"""Embeddings of a run's best model, and the KNN and t-SNE benchmarks on them."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE, trustworthiness
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import normalize

from automl import records
from automl.evaluation import metrics
from automl.evaluation.choose import decision_rule
from automl.evaluation.scored_model import embedding_model
from automl.refit.folds import unseen_validation
from automl.report import plots

try:
    from openTSNE import TSNE as OpenTSNE

    TSNE_METHOD = "openTSNE"
except ImportError:  # scikit-learn's is slower here but always present
    TSNE_METHOD = "sklearn"

KS = (1, 3, 5, 11, 21, 51)
DISTANCES = ("cosine", "euclidean")
PIXEL_SIZE = 32  # raw-pixel baselines use downscaled images: 1,024 features


def knn_benchmark(features: dict[str, dict[str, np.ndarray]], labels: dict[str, np.ndarray], *,
                  evaluation: str, class_names: list[str], seed: int = 0,
                  threshold_rule: str = "balanced") -> list[dict]:
    """KNN on each feature set: fit on train, choose k, distance and the decision rule on
    validation, score test once.

    The decision rule is the classifiers' own: a threshold on the neighbours' pneumonia
    vote (binary, ``threshold_rule`` as in :func:`automl.evaluation.decisions.choose_threshold`) or
    per-class prior weights on the votes
    (multiclass), chosen on validation. Without it a KNN votes with the training
    prior (74% pneumonia) and over-calls pneumonia wherever the classes overlap.

    Args:
        features: name -> split -> (n, d) array; splits ``train``, ``selection`` (the
            run's selection set: validation, pooled with its shifted copies under shift
            validation, see :class:`automl.data.shift.SelectionSet`) and optionally ``test``.
        labels: split -> integer labels (0 = normal).
        evaluation: ``binary`` or ``multiclass``, as for :func:`automl.evaluation.metrics.evaluate`.

    Returns:
        One row per (features, k, distance) with validation metrics; the row chosen on
        validation (best balanced accuracy, then macro-F1) has ``selected: true`` and test metrics.
    """
    rows = []
    for name, split in features.items():
        candidates = []
        for distance in DISTANCES:
            prepared = {s: normalize(x) if distance == "cosine" else x for s, x in split.items()}
            selection, y_selection = prepared["selection"], labels["selection"]
            for k in KS:
                if k > len(prepared["train"]):
                    continue
                model = KNeighborsClassifier(n_neighbors=k).fit(prepared["train"], labels["train"])
                votes = _votes(model, selection, len(class_names))
                rule = decision_rule(evaluation, y_selection, _scores(votes, evaluation),
                                     threshold_rule=threshold_rule)
                val = metrics.evaluate(y_selection, _scores(votes, evaluation), kind=evaluation,
                                       class_names=class_names, seed=seed, **rule)
                row = {"features": name, "k": k, "metric": distance, "selected": False,
                       "dim": int(split["train"].shape[1]), "val": val, "test": None,
                       "decision": {key: np.asarray(v).tolist() for key, v in rule.items()
                                    if v is not None},
                       "selection_n": int(len(y_selection))}
                candidates.append((row, model, prepared, rule))
        best_row, best_model, prepared, rule = max(
            candidates, key=lambda c: (c[0]["val"]["balanced_accuracy"], c[0]["val"]["f1_macro"]))
        best_row["selected"] = True
        if "test" in prepared and len(labels.get("test", [])):
            votes = _votes(best_model, prepared["test"], len(class_names))
            best_row["test"] = metrics.evaluate(labels["test"], _scores(votes, evaluation),
                                                kind=evaluation, class_names=class_names, seed=seed,
                                                **rule)
        rows += [c[0] for c in candidates]
    return rows


def _votes(model, x, n_classes: int) -> np.ndarray:
    """Neighbour vote shares (n, n_classes), zero for a class absent from train."""
    proba = np.zeros((len(x), n_classes))
    proba[:, model.classes_] = model.predict_proba(x)
    return proba


def _scores(votes: np.ndarray, evaluation: str) -> np.ndarray:
    return votes if evaluation == "multiclass" else votes[:, 1]


def pixel_features(images: dict[str, np.ndarray], *, seed: int = 0) -> dict[str, dict]:
    """Baselines: raw downscaled pixels, and their PCA-50 (fit on train only)."""
    import tensorflow as tf

    pixels = {s: tf.image.resize(x.astype(np.float32) / 255.0, (PIXEL_SIZE, PIXEL_SIZE),
                                 antialias=True).numpy().reshape(len(x), -1)
              for s, x in images.items()}
    pca = PCA(n_components=min(50, *(len(p) for p in pixels.values())), random_state=seed)
    pca.fit(pixels["train"])
    return {"pixels": pixels, "pca50": {s: pca.transform(p) for s, p in pixels.items()}}


def tsne_map(x: np.ndarray, *, seed: int = 0) -> tuple[np.ndarray, dict, float]:
    """2-D t-SNE of ``x`` (PCA-50 first when wider), its trustworthiness at k = 5 and 10, seconds.

    openTSNE when installed: on this 2-core machine it took 43 s where scikit-learn
    took 75 s for the same 1,670 embeddings (``benchmarks/bench_tsne.py``).
    """
    started = time.time()
    reduced = PCA(50, random_state=seed).fit_transform(x) if x.shape[1] > 50 and len(x) > 50 else x
    perplexity = min(30.0, (len(x) - 1) / 3)
    if TSNE_METHOD == "openTSNE":
        points = np.asarray(OpenTSNE(perplexity=perplexity, random_state=seed, n_jobs=2).fit(reduced))
    else:
        points = TSNE(2, init="pca", perplexity=perplexity, random_state=seed).fit_transform(reduced)
    seconds = time.time() - started
    trust = {str(k): float(trustworthiness(x, points, n_neighbors=k)) for k in (5, 10)
             if k < len(x) / 2}
    return points, trust, seconds


def embed_run(run_dir: Path, *, tsne: bool = True, log=print) -> dict:
    """Embeddings (saved in the run folder), ``knn.jsonl`` and ``tsne.json`` with PNGs."""
    import automl
    from automl.search.orchestrator import selection_set
    from automl.settings.run_config import SearchConfig
    from automl.tasks import task_data
    from automl.tasks.base import SplitData

    run_dir = Path(run_dir)
    summary = records.read_json(run_dir / "summary.json")
    saved = SearchConfig.load(run_dir)
    task, data = task_data(saved, log=log)
    config = data.config
    model = automl.load_model(run_dir / "best_model.keras")
    train = SplitData(*data.decoded("train"))
    task.attach_training(train)
    # KNN choices are made on the run's own selection set (pooled under shift validation).
    val_table, val_images = data.decoded("val")
    member = 0  # an ensemble's best member
    if isinstance(summary.get("refit"), dict):
        # After a refit every fold model trained on the validation images of the other folds:
        # the encoder is one fold model of the best configuration, and the KNN chooses on the
        # validation images it held out.
        member, unseen = unseen_validation(data.parts, summary["refit"]["folds"], config.seed)
        val_table, val_images = val_table[unseen].reset_index(drop=True), val_images[unseen]
        log(f"KNN: choices on the {int(unseen.sum())} validation images that the refit's fold-{member} "
            f"encoder did not train on")
    encoder = embedding_model(model, member)
    selection = selection_set(config, task, val_images, val_table)
    images = {"train": train.images, "selection": selection.images}
    labels = {"train": task.labels(train.table), "selection": selection.labels}
    if len(data.parts["test"]):
        test_table, images["test"] = data.decoded("test")
        labels["test"] = task.labels(test_table)
    # The inputs the model was trained on (the autoencoder's intensity choice included).
    embedded = {s: encoder.predict(task.model_inputs(x, summary.get("best_hparams")), batch_size=128,
                                   verbose=0)
                for s, x in images.items()}
    np.savez_compressed(run_dir / "embeddings.npz", **embedded, selection_n_clean=selection.n_clean,
                        **{f"{s}_labels": y for s, y in labels.items()})
    evaluation = "multiclass" if task.evaluation == "multiclass" else "binary"
    features = {"embedding": embedded, **pixel_features(images, seed=config.seed)}
    rows = knn_benchmark(features, labels, evaluation=evaluation,
                         class_names=list(task.class_names), seed=config.seed,
                         threshold_rule=config.threshold)
    for row in rows:
        row.update(run_id=summary["run_id"], task=summary["task"])
    (run_dir / "knn.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for row in (r for r in rows if r["selected"]):
        result = row["test"] or row["val"]
        log(f"KNN {row['features']:<9} k={row['k']:<2} {row['metric']:<9} "
            f"{'test' if row['test'] else 'val'} accuracy {result['accuracy']:.4f}")
    out = {"knn": rows}
    if tsne:
        # The map shows the validation images the KNN chose on (after a refit, a subset).
        out["tsne"] = tsne_benchmark(run_dir, features, {**data.parts, "val": val_table},
                                     n_clean=selection.n_clean, seed=config.seed, log=log)
    return out


def tsne_benchmark(run_dir: Path, features: dict, parts: dict, *, n_clean: int, seed: int = 0,
                   log=print) -> dict:
    """t-SNE maps of validation (the first ``n_clean`` rows of the selection set) + test
    for the learned embedding and raw pixels; ``parts`` holds the tables of those rows.

    Raises:
        ValueError: ``parts["val"]`` is not the table of the selection set's clean rows."""
    shown = ["val"] + (["test"] if "test" in features["embedding"] else [])
    if len(parts["val"]) != n_clean:
        raise ValueError(f"t-SNE: {len(parts['val'])} validation rows for {n_clean} embedded "
                         f"validation images in {run_dir}")
    table = pd.concat([parts[s] for s in shown])
    result = {"method": TSNE_METHOD, "splits": shown, "features": {}}
    for name in ("embedding", "pixels"):
        views = {"val": features[name]["selection"][:n_clean], "test": features[name].get("test")}
        x = np.concatenate([views[s] for s in shown])
        points, trust, seconds = tsne_map(x, seed=seed)
        png = f"tsne_{name}.png"
        plots.tsne_png(points, table.label.to_numpy(), table.subtype.to_numpy(), run_dir / png,
                       title=f"t-SNE of {name} ({' + '.join(shown)}, n={len(x)})")
        result["features"][name] = {"trustworthiness": trust, "png": png,
                                    "seconds": round(seconds, 2), "n": int(len(x))}
        log(f"t-SNE {name}: trustworthiness {trust} in {seconds:.1f}s")
    records.write_json(run_dir / "tsne.json", result)
    return result
