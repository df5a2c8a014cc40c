import json

import numpy as np
import pytest

from automl.report.pages import write_report
from automl.search.orchestrator import run_search
from automl.serve import embeddings
from automl.settings.run_config import SearchConfig


def _blobs(n, shift, rng):
    x = rng.normal(size=(n, 8))
    y = rng.integers(0, 2, n)
    return x + shift * y[:, None], y


def test_knn_separable_blobs_and_shuffled_labels():
    rng = np.random.default_rng(0)
    (xtr, ytr), (xva, yva), (xte, yte) = (_blobs(n, 20.0, rng) for n in (200, 80, 80))
    features = {"toy": {"train": xtr, "selection": xva, "test": xte}}
    rows = embeddings.knn_benchmark(features, {"train": ytr, "selection": yva, "test": yte},
                                    evaluation="binary", class_names=["NORMAL", "PNEUMONIA"])
    chosen = [r for r in rows if r["selected"]]
    assert len(chosen) == 1 and chosen[0]["test"]["accuracy"] == 1.0
    assert {r["k"] for r in rows} == set(embeddings.KS)
    assert {r["metric"] for r in rows} == {"cosine", "euclidean"}

    shuffled = {s: rng.permutation(y) for s, y in (("train", ytr), ("selection", yva), ("test", yte))}
    noise = {"toy": {s: rng.normal(size=(len(y), 8)) for s, y in shuffled.items()}}
    rows = embeddings.knn_benchmark(noise, shuffled, evaluation="binary",
                                    class_names=["NORMAL", "PNEUMONIA"])
    chosen = next(r for r in rows if r["selected"])
    assert abs(chosen["test"]["balanced_accuracy"] - 0.5) < 0.15


def test_tsne_trustworthiness_of_structured_data():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(size=(60, 10)), rng.normal(size=(60, 10)) + 8])
    points, trust, seconds = embeddings.tsne_map(x)
    assert points.shape == (120, 2) and trust["5"] > 0.9 and seconds >= 0


@pytest.mark.slow
def test_search_embed_report_end_to_end(synthetic_data, tmp_path):
    runs = tmp_path / "runs"
    run_dir = run_search(SearchConfig(task="multiclass", data=str(synthetic_data), tuner="random",
                                      max_trials=2, epochs=2, image_size=32, out=str(runs)),
                         log=lambda *a: None)
    result = embeddings.embed_run(run_dir, log=lambda *a: None)
    assert {r["features"] for r in result["knn"]} == {"embedding", "pixels", "pca50"}
    assert (run_dir / "embeddings.npz").exists() and (run_dir / "tsne_embedding.png").exists()
    tsne = json.loads((run_dir / "tsne.json").read_text())
    assert set(tsne["features"]["embedding"]["trustworthiness"]) == {"5", "10"}
    written = write_report(runs, tmp_path / "reports")
    page = (tmp_path / "reports" / "multiclass.md").read_text()
    assert run_dir.name in page and "tsne_embedding.png" in page
    assert any(p.name == "README.md" for p in written)


def test_knn_threshold_is_chosen_on_validation_against_the_training_prior():
    rng = np.random.default_rng(1)

    def overlapping(n_normal, n_pneumonia):
        x = np.concatenate([rng.normal(0, 1, (n_normal, 4)), rng.normal(1.5, 1, (n_pneumonia, 4))])
        return x, np.r_[np.zeros(n_normal, int), np.ones(n_pneumonia, int)]

    # Train is 80% pneumonia; validation and test are balanced.
    (xtr, ytr), (xva, yva), (xsh, ysh), (xte, yte) = (
        overlapping(*n) for n in ((100, 400), (100, 100), (200, 200), (200, 200)))
    # The selection set: validation pooled with its shifted copies.
    features = {"toy": {"train": xtr, "selection": np.concatenate([xva, xsh]), "test": xte}}
    labels = {"train": ytr, "selection": np.r_[yva, ysh], "test": yte}
    rows = embeddings.knn_benchmark(features, labels, evaluation="binary",
                                    class_names=["NORMAL", "PNEUMONIA"])
    chosen = next(r for r in rows if r["selected"])
    assert chosen["selection_n"] == 600  # validation pooled with its shifted copies
    assert chosen["decision"]["threshold"] > 0.5  # the 80% prior is voted down
    assert chosen["test"]["bias"]["sens_spec_gap"] < 0.15
    fixed = embeddings.knn_benchmark(features, labels, evaluation="binary",
                                     class_names=["NORMAL", "PNEUMONIA"], threshold_rule="0.5")
    assert {r["decision"]["threshold"] for r in fixed} == {0.5}  # the run's own rule, as given
