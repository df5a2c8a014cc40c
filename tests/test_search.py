import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import keras_tuner as kt
import pytest

from automl import records
from automl.models import backbones
from automl.search.orchestrator import new_run_dir, run_search
from automl.settings.run_config import SearchConfig

SUMMARY_KEYS = {"task", "run_id", "config", "env", "objective", "best_trial", "threshold",
                "trials_completed", "trials_failed", "search_seconds", "val", "test"}
SPLIT_KEYS = {"accuracy", "balanced_accuracy", "f1_macro", "auc", "sensitivity", "specificity",
              "per_class", "confusion_matrix", "brier", "ece", "bias", "ci"}


def _search(data, out, **kwargs):
    settings = dict(max_trials=2, epochs=1, image_size=32, tuner="random", out=str(out))
    settings.update(kwargs)
    return run_search(SearchConfig(data=str(data), **settings), log=lambda *a: None)


def _hparams_events(tb_dir: Path) -> bool:
    import tensorflow as tf

    for event_file in tb_dir.rglob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(event_file)):
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == "hparams":
                    return True
    return False


@pytest.mark.slow
@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_smoke_search_writes_complete_records(task, synthetic_data, tmp_path):
    run_dir = _search(synthetic_data, tmp_path, task=task, tuner="hyperband")
    lines = records.read_jsonl(run_dir / "trials.jsonl")
    assert len(lines) == 2 and len({t["trial_id"] for t in lines}) == 2
    assert {"trial_id", "status", "error", "hparams", "metrics", "params", "seconds",
            "started_at"} <= set(lines[0])
    summary = json.loads((run_dir / "summary.json").read_text())
    assert SUMMARY_KEYS <= set(summary)
    objective = summary["objective"]["name"]
    for line in lines:  # every metric from the one epoch that is best by the objective
        history = line["history"]
        best = max(range(len(history[objective])), key=lambda e: (history[objective][e], -e))
        assert line["metrics"] == {k: v[best] for k, v in history.items()}
    assert (run_dir / "environment.json").exists() and (run_dir / "MODEL_CARD.md").exists()
    for split in ("val", "test"):
        assert SPLIT_KEYS <= set(summary[split])
        assert set(summary[split]["bias"]) >= {"sens_spec_gap", "recall_spread", "positive_rate_skew"}
        assert set(summary[split]["ci"]) == {"accuracy", "f1_macro", "auc"}
    assert summary["env"]["git_commit"] is None or len(summary["env"]["git_commit"]) >= 40
    assert (run_dir / "best_model.keras").exists()
    for png in ("confusion_matrix.png", "roc.png", "training_curves.png"):
        assert (run_dir / png).stat().st_size > 1000
    assert _hparams_events(run_dir / "tb")
    from automl.evaluation import scored_model

    model = keras.models.load_model(run_dir / "best_model.keras", safe_mode=True)
    assert scored_model.embedding_model(model).output.shape[-1] > 0  # an ensemble's best member's
    assert set(summary["saliency"]) >= {"method", "saliency_area", "random_area", "difference"}
    assert (run_dir / "saliency_panel.png").stat().st_size > 1000


@pytest.mark.slow
def test_unbuildable_configurations_fail_and_search_goes_on(synthetic_data, tmp_path):
    # At 16 px, 5+ pooling blocks (4+ after a strided stem) cannot be built.
    run_dir = _search(synthetic_data, tmp_path, image_size=16, max_trials=6, seed=0)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["trials_failed"] >= 1 and summary["trials_completed"] >= 1
    failed = [t for t in records.read_jsonl(run_dir / "trials.jsonl") if t["status"] == "FAILED"]
    assert "pooling blocks" in failed[0]["error"]


@pytest.mark.slow
def test_all_trials_failing_exits_1(synthetic_data, tmp_path, monkeypatch):
    from automl.tasks.binary import BinaryTask

    def broken(self, hp, space):
        raise ValueError("cannot build this configuration (simulated)")

    monkeypatch.setattr(BinaryTask, "build", broken)
    with pytest.raises(SystemExit) as exit_:
        _search(synthetic_data, tmp_path)
    assert exit_.value.code == 1
    summary = json.loads(next(tmp_path.glob("binary-*/summary.json")).read_text())
    assert summary["trials_failed"] >= 1 and summary["best_trial"] is None


def test_an_unbuildable_image_size_is_refused_before_a_run_folder(synthetic_data, tmp_path):
    with pytest.raises(ValueError, match="8 px is too small for 6 pooling blocks"):
        _search(synthetic_data, tmp_path, image_size=8, fixed={"blocks": 6, "stem_stride": 1})
    assert not list(tmp_path.iterdir())


def test_new_run_never_reuses_a_run_folder(tmp_path, monkeypatch):
    # A run's tuner state lives in its folder: a fresh folder is a fresh search.
    config = SearchConfig(out=str(tmp_path))
    first, second = new_run_dir(config), new_run_dir(config)
    assert first != second and first.parent == second.parent
    monkeypatch.setattr(records, "new_run_id", lambda task: first.name)  # the same id again
    with pytest.raises(FileExistsError):
        new_run_dir(config)


@pytest.mark.slow
def test_grid_and_bayesian_tuners_run(synthetic_data, tmp_path):
    # The Bayesian search also checks plain validation: the task's own objective, no pooled set.
    for tuner, extra in (("grid", {}), ("bayesian", {"task": "multiclass", "validation": "plain"})):
        run_dir = _search(synthetic_data, tmp_path / tuner, tuner=tuner, max_trials=1, **extra)
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["trials_completed"] == 1
    assert summary["objective"]["name"] == "val_f1_macro" and "val_shift" not in summary


@pytest.mark.parametrize("family", sorted(backbones.APPLICATIONS))
def test_application_backbones_build_without_weights(family):
    hp = kt.HyperParameters()
    hp.Fixed("family", family)
    inputs, features = backbones.build_features(hp, 32, families=(family,))
    model = keras.Model(inputs, backbones.add_head(features, hp))
    assert model.get_layer("embedding").output.shape[-1] == 128


def test_pretrained_offline_fails_at_once(monkeypatch):
    import keras.src.utils.file_utils as file_utils

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure: [Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(file_utils, "get_file", offline)
    with pytest.raises(backbones.PretrainedUnavailable, match="could not be downloaded"):
        backbones.preflight_pretrained(("efficientnetb0",), 32)


@pytest.mark.realdata
def test_real_data_one_trial(real_data, tmp_path):
    # A search, not the refit (its real-data default): the refit has its own tests.
    run_dir = _search(real_data, tmp_path, max_trials=1, epochs=1, image_size=64, refit="none")
    summary = json.loads((run_dir / "summary.json").read_text())

    def filled(value):
        if isinstance(value, dict):
            return all(filled(v) for v in value.values())
        return value is not None

    assert summary["test"]["n"] == 624
    for key in ("objective", "val", "test", "env"):
        assert filled(summary[key]), key
    assert summary["config"]["image_size"] == 64


@pytest.mark.slow
def test_sigterm_then_kill_then_resume_loses_no_trial(synthetic_data, tmp_path):
    """A search stopped with SIGTERM (Ctrl-C, a scheduler) exits at once with code 130 and
    says how to resume; the resumed search killed with ``kill -9`` (no handler runs); the
    second resume finishes every trial, none lost, none twice."""
    command = [sys.executable, "-m", "automl.cli", "search", "--data", str(synthetic_data),
               "--tuner", "random", "--max-trials", "4", "--epochs", "2", "--image-size", "32",
               # float32: under bfloat16 a resumed trial's tf.data augmentation fails now and
               # then (a bfloat16 tensor reaches RandomTranslation: a known bug whose fix changes
               # the augmentation numerics), which is not what this test is about.
               "--precision", "float32", "--fix", "blocks=2", "--out", str(tmp_path)]

    def after_records(process, count):
        deadline = time.time() + 240
        while time.time() < deadline and process.poll() is None:
            runs = list(tmp_path.glob("binary-*/trials.jsonl"))
            if runs and len(records.read_jsonl(runs[0])) >= count:
                time.sleep(1.0)  # inside the next trial
                return runs[0]
            time.sleep(0.2)
        raise AssertionError(f"trial {count} never finished")

    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    trials = after_records(process, 1)
    started = time.time()
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=60)
    assert time.time() - started < 30, "did not exit promptly"
    assert process.returncode == 130
    assert "--resume" in output
    for line in trials.read_text().splitlines():
        json.loads(line)  # every record written so far is whole
    resume = command[:4] + ["--resume", str(trials.parent)]
    process = subprocess.Popen(resume, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    after_records(process, 2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert len(records.read_jsonl(trials)) < 4
    resumed = subprocess.run(resume, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    lines = records.read_jsonl(trials)
    assert sorted(t["trial_id"] for t in lines) == ["0", "1", "2", "3"]
    assert all(t["status"] == "COMPLETED" for t in lines), [t for t in lines if t["status"] != "COMPLETED"]


def test_an_interrupt_lost_in_a_finaliser_still_stops_the_search():
    """A SIGTERM that lands while Python runs a ``__del__`` (a dataset iterator between
    trials) has its exception swallowed: once, the search went on and ended with status 0.
    It is raised again at the next batch end and when the search returns."""
    from automl.search import interrupts

    class Finaliser:
        def __del__(self):
            interrupts.raise_interrupted(signal.SIGTERM, None)

    previous = interrupts.install_interrupt_handlers()
    try:
        Finaliser()  # "Exception ignored in ... __del__": nothing raised here
        with pytest.raises(interrupts.RunInterrupted, match="SIGTERM"):
            interrupts.InterruptCheck().on_train_batch_end(0)
        with pytest.raises(interrupts.RunInterrupted):
            interrupts.check_interrupted()
        interrupts.install_interrupt_handlers()  # a new search starts with nothing pending
        interrupts.check_interrupted()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@pytest.mark.slow
def test_mirrored_strategy_runs_on_cpu(synthetic_data, tmp_path):
    run_dir = _search(synthetic_data, tmp_path, max_trials=1, strategy="mirrored",
                      fixed={"blocks": 2})
    assert json.loads((run_dir / "summary.json").read_text())["config"]["strategy"] == "mirrored"


def test_application_families_are_the_backbones_that_exist():
    from automl.settings import choices

    assert tuple(backbones.APPLICATIONS) == choices.APPLICATION_FAMILIES


def test_an_ensemble_is_saved_as_one_model_that_scores_like_its_members(tmp_path):
    import numpy as np

    from automl.evaluation import scored_model

    def member(seed):
        keras.utils.set_random_seed(seed)
        inputs = keras.Input((8, 8, 1), name="image")
        x = keras.layers.Dense(4, name="embedding")(keras.layers.Flatten(name="flatten")(inputs))
        return keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid", name="prediction")(x),
                           name="binary_plain")  # the same names in every member, as in a search

    members = [member(0), member(1), member(2)]
    x = np.random.default_rng(0).random((5, 8, 8, 1)).astype("float32")
    expected = np.mean([m.predict(x, verbose=0) for m in members], axis=0)
    scored_model.scored_model(members).save(tmp_path / "best_model.keras")
    import automl

    loaded = automl.load_model(tmp_path / "best_model.keras")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), expected, atol=1e-6)
    encoder = scored_model.embedding_model(loaded)  # the best member's embedding
    np.testing.assert_allclose(encoder.predict(x, verbose=0),
                               keras.Model(members[0].inputs, members[0].get_layer("embedding").output)
                               .predict(x, verbose=0), atol=1e-6)
    assert scored_model.scored_model(members[:1]) is members[0]


@pytest.mark.slow
def test_ensemble_and_latency_cap_are_chosen_on_validation(synthetic_data, tmp_path):
    """One search (3 trials, ensemble of up to 3) checks both validation-time choices: the
    ensemble and the latency cap."""
    import numpy as np
    import pandas as pd

    from automl.data.pipeline import load_images
    from automl.evaluation import choose

    run_dir = _search(synthetic_data, tmp_path, max_trials=3, epochs=2, ensemble=3, fixed={"blocks": 2})
    summary = json.loads((run_dir / "summary.json").read_text())
    ensemble = summary["ensemble"]
    assert ensemble["trials"][0] == summary["best_trial"] and len(ensemble["trials"]) >= 2
    assert ensemble["used"] == (ensemble["val_quality_ensemble"] > ensemble["val_quality_single"])
    # The saved model is the scored one: its own test scores are the recorded ones.
    test = pd.read_csv(run_dir / "scores.csv").query("split == 'test'")
    images = load_images([str(synthetic_data / p) for p in test.path], 32)
    model = keras.models.load_model(run_dir / "best_model.keras")
    np.testing.assert_allclose(model.predict(images / 255.0, verbose=0).reshape(-1), test.score,
                               atol=1e-5)
    trials = [t for t in records.read_jsonl(run_dir / "trials.jsonl") if t["status"] == "COMPLETED"]
    assert all(t["latency_ms"] > 0 and t["params"] > 0 for t in trials)
    assert (run_dir / "pareto.png").stat().st_size > 1000
    assert summary["best_latency_ms"] == next(t["latency_ms"] for t in trials
                                              if t["trial_id"] == summary["best_trial"])
    ranked = choose.ranked_trials(trials, summary["objective"]["name"])
    fastest = min(t["latency_ms"] for t in trials)
    capped = choose.within_latency(ranked, fastest)
    assert [t["latency_ms"] for t in capped] == [fastest] * len(capped) and capped
    assert choose.within_latency(ranked + [{"trial_id": "x", "latency_ms": None}], 1e9) == ranked


def test_a_latency_cap_is_checked():
    with pytest.raises(ValueError, match="max_latency_ms: got -1"):
        SearchConfig(max_latency_ms=-1).validate()
