"""Report generator: golden Markdown from hand-written run folders, escaping, robustness."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
from pathlib import Path

import pytest

from automl import __version__
from automl.records.runs import Run, load_runs, ranked
from automl.report.headline import load_anchors
from automl.report.markdown import esc, short_text
from automl.report.pages import render_task, write_report
from automl.report.trials_section import render_hparams
from automl.settings.run_config import SearchConfig

GOLDEN = Path(__file__).parent / "golden"
# Regenerate the golden pages after an intended change of the report, then read the diff:
#   UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_report.py -q && git diff tests/golden
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"

ENV = {"git_commit": "1bc7a55217839b5445fef72274f193b68528438d", "python": "3.11.7",
       "platform": "Linux-6.1-x86_64-with-glibc2.36",
       "packages": {"tensorflow-cpu": "2.21.0", "keras": "3.15.1", "keras-tuner": "1.4.8"},
       "device": "CPU (x86_64, 2 cores)", "cpu_count": 2, "version": __version__}
HPARAMS = {"family": "residual", "normalize": "per_image", "blocks": 4, "base_filters": 32,
           "dropout": 0.2, "optimizer": "adamw", "learning_rate": 0.0012345678,
           "tuner/epochs": 3, "tuner/initial_epoch": 0, "balancing": "class_weight",
           "batch_size": 32, "augment": 1.0}


def split(n, acc, bal, f1, auc, sens, spec, classes, support, *, ece=0.041234, **extra) -> dict:
    """Metrics of one split in the layout of ``automl.evaluation.metrics.evaluate`` (full precision)."""
    per_class = {c: {"precision": acc, "recall": bal, "f1": f1, "support": s}
                 for c, s in zip(classes, support)}
    return {"n": n, "accuracy": acc, "balanced_accuracy": bal, "f1_macro": f1, "auc": auc,
            "sensitivity": sens, "specificity": spec, "per_class": per_class,
            "confusion_matrix": [[1, 0], [0, 1]], "brier": 0.1123, "ece": ece,
            "bias": {"sens_spec_gap": abs(sens - spec), "recall_spread": 0.123456,
                     "positive_rate_skew": 0.0456789, "false_normal_rate": 1 - sens},
            "ci": {"accuracy": [acc - 0.0234567, acc + 0.0198765], "f1_macro": [f1 - 0.03, f1 + 0.03],
                   "auc": [auc - 0.02, auc + 0.02]},
            "threshold": 0.4321, "class_names": list(classes), **extra}


def trial(run_id, task, tid, status, value, *, name, params, error=None, hparams=HPARAMS) -> dict:
    metrics = {} if value is None else {name: value, "loss": 0.3}
    return {"run_id": run_id, "task": task, "trial_id": tid, "worker": "tuner0", "status": status,
            "error": error, "hparams": hparams, "metrics": metrics, "history": {},
            "params": params, "seconds": 61.25, "started_at": "2026-11-25T21:46:29Z"}


def write_run(root: Path, run_id: str, task: str, *, objective: tuple[str, float],
              val: dict, test: dict | None, trials: list[dict], hparams=HPARAMS) -> Path:
    folder = root / run_id
    (folder / "tuner").mkdir(parents=True)  # tuner/ and tb/ are never searched
    (folder / "tuner" / "summary.json").write_text("{not even json")
    config = {"task": task, "data": "/data/chest_xray", "tuner": "bayesian", "max_trials": 3,
              "epochs": 10, "image_size": 128, "seed": 0, "smoke": False}
    counts = {"train": 4185, "val": 1047, "test": 624 if test else 0}
    summary = {"task": task, "run_id": run_id, "config": config, "env": ENV,
               "objective": {"name": objective[0], "direction": "max", "value": objective[1]},
               "best_trial": "1", "best_hparams": hparams,
               "threshold": 0.4321 if task == "binary" else None, "prior_weights": None,
               "trials_completed": sum(t["status"] == "COMPLETED" for t in trials),
               "trials_failed": sum(t["status"] == "FAILED" for t in trials),
               "search_seconds": 1834.5,
               "data": {"root": "/data/chest_xray", "counts": counts, "problems": []},
               "val": val, "test": test}
    (folder / "summary.json").write_text(json.dumps(summary, indent=2))
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    (folder / "trials.jsonl").write_text("".join(json.dumps(t) + "\n" for t in trials))
    return folder


def make_runs(root: Path) -> Path:
    """Three runs: binary with test and side files, binary validation-only, multiclass with a
    FAILED trial."""
    b1 = "binary-20261125-100000-aaaa"
    names = ("NORMAL", "PNEUMONIA")
    folder = write_run(
        root, b1, "binary", objective=("val_auc", 0.9612345),
        val=split(1047, 0.91, 0.9, 0.905, 0.9612345, 0.92, 0.88, names, (270, 777)),
        test=split(624, 0.8862179487179487, 0.8611, 0.8772, 0.9512, 0.9615, 0.7607, names,
                   (234, 390)),
        trials=[trial(b1, "binary", "0", "COMPLETED", 0.95, name="val_auc", params=1782019),
                trial(b1, "binary", "1", "COMPLETED", 0.9612345, name="val_auc", params=305313)])
    (folder / "command.txt").write_text(
        "automl search --task binary --data /data/chest_xray --tuner bayesian --max-trials 3\n")
    for png in ("roc.png", "confusion_matrix.png", "tsne_embedding.png"):
        (folder / png).write_bytes(b"\x89PNG\r\n\x1a\n")
    knn = [{"features": f, "k": k, "metric": "cosine", "selected": k == 20,
            "val": {"accuracy": 0.9 - 0.1 * i, "balanced_accuracy": 0.88, "f1_macro": 0.87,
                    "sensitivity": 0.93, "specificity": 0.82},
            "test": {"accuracy": 0.85 - 0.1 * i, "balanced_accuracy": 0.81, "f1_macro": 0.8,
                     "sensitivity": 0.97, "specificity": 0.65,
                     "bias": {"sens_spec_gap": 0.32}}}
           for i, f in enumerate(("pixels", "embedding")) for k in (10, 20)]
    (folder / "knn.jsonl").write_text("".join(json.dumps(r) + "\n" for r in knn))
    tsne = {"method": "sklearn", "features": {
        "pixels": {"trustworthiness": {"5": 0.81234, "10": 0.79876}, "png": "tsne_pixels.png",
                   "seconds": 12.345, "n": 1671},
        "embedding": {"trustworthiness": {"5": 0.93456, "10": 0.92111},
                      "png": "tsne_embedding.png", "seconds": 10.5, "n": 1671}}}
    (folder / "tsne.json").write_text(json.dumps(tsne))

    b2 = "binary-20261126-090000-bbbb"
    write_run(root, b2, "binary", objective=("val_auc", 0.9401),
              val=split(1047, 0.89, 0.87, 0.88, 0.9401, 0.9, 0.84, names, (270, 777)), test=None,
              trials=[trial(b2, "binary", "0", "COMPLETED", 0.93, name="val_auc", params=98765),
                      trial(b2, "binary", "1", "COMPLETED", 0.9401, name="val_auc",
                            params=120000)])

    m1 = "multiclass-20261125-110000-cccc"
    classes = ("normal", "bacteria", "virus")
    traceback = ('Traceback (most recent call last):\n  File "/work/main/automl/backbones.py", '
                 'line 73, in build_features\nValueError: 6 pooling blocks need an image of at '
                 'least 64 px; got 32 px')
    write_run(
        root / "nested", m1, "multiclass", objective=("val_f1_macro", 0.7812),
        val=split(1047, 0.8, 0.78, 0.7812, 0.9, 0.95, 0.85, classes, (270, 500, 277),
                  auc_pneumonia=0.93),
        test=split(624, 0.7788, 0.7601, 0.7532, 0.8899, 0.9641, 0.7179, classes, (234, 242, 148),
                   auc_pneumonia=0.9211),
        trials=[trial(m1, "multiclass", "0", "COMPLETED", 0.70, name="val_f1_macro", params=50),
                trial(m1, "multiclass", "1", "COMPLETED", 0.7812, name="val_f1_macro",
                      params=305443),
                trial(m1, "multiclass", "2", "FAILED", None, name="val_f1_macro", params=None,
                      error=traceback)])
    return root


@pytest.fixture
def runs(tmp_path) -> Path:
    return make_runs(tmp_path / "runs")


def test_golden_pages(runs, tmp_path):
    out = tmp_path / "report"
    out.mkdir()
    (out / "CAVEATS.md").write_text("# Caveats\n")
    written = write_report(runs, out)
    assert [p.name for p in written] == ["README.md", "binary.md", "multiclass.md", "history.md",
                                         "leaderboard.csv"]
    assert (out / "CAVEATS.md").read_text() == "# Caveats\n"
    for path in written:
        golden = GOLDEN / path.name
        if UPDATE:
            GOLDEN.mkdir(exist_ok=True)
            golden.write_bytes(path.read_bytes())
        assert path.read_bytes() == golden.read_bytes(), f"{path.name} differs from {golden}"


def test_rerun_is_byte_identical(runs, tmp_path):
    first = {p.name: p.read_bytes() for p in write_report(runs, tmp_path / "a")}
    second = {p.name: p.read_bytes() for p in write_report(runs, tmp_path / "a")}
    assert first == second
    assert str(tmp_path) not in "".join(b.decode() for b in first.values())


def test_selection_is_by_validation_never_test(runs):
    found, _ = load_runs(runs)
    binary = [r for r in found if r.task == "binary"]
    # The validation-only run has the lower val AUC; a missing test never promotes a run.
    assert [r.run_id for r in ranked(binary)] == ["binary-20261125-100000-aaaa",
                                                  "binary-20261126-090000-bbbb"]
    binary[1].summary["objective"]["value"] = 0.99
    assert ranked(binary)[0].run_id == "binary-20261126-090000-bbbb"


def test_shift_validation_runs_rank_ahead_of_plain_ones(tmp_path):
    runs = [_objective_run(tmp_path, "plain-high", "val_auc", 0.99, "plain"),
            _objective_run(tmp_path, "shift-low", "val_shift_auc", 0.95, "shift"),
            _objective_run(tmp_path, "shift-high", "val_shift_auc", 0.97, "shift"),
            _objective_run(tmp_path, "none", "val_auc", None),
            # Ranked by the recorded validation mode, not by the objective's name.
            _objective_run(tmp_path, "old-high", "val_auc", 0.995)]  # before shift validation: plain
    assert [r.run_id for r in ranked(runs)] == ["shift-high", "shift-low", "old-high", "plain-high", "none"]


def _objective_run(tmp_path, name, objective, value, validation=None, named=False):
    config = {"validation": validation} if validation else {}
    if named:
        config["objective"] = objective  # the user's --objective
    return Run(tmp_path / name, {"task": "binary", "run_id": name, "config": config,
                                 "objective": {"name": objective, "value": value, "direction": "max"}})


def test_runs_selected_on_other_objectives_are_never_ranked_by_their_number(tmp_path):
    # val_accuracy 0.99 is not a better val_shift_auc 0.97: runs on an objective a user named
    # rank after the default-objective runs of their kind, grouped by objective name.
    runs = [_objective_run(tmp_path, "acc-high", "val_accuracy", 0.99, "shift", named=True),
            _objective_run(tmp_path, "auc-named", "val_auc", 0.995, "shift", named=True),
            _objective_run(tmp_path, "default-low", "val_shift_auc", 0.95, "shift"),
            _objective_run(tmp_path, "acc-low", "val_accuracy", 0.90, "shift", named=True),
            _objective_run(tmp_path, "default-high", "val_shift_auc", 0.97, "shift")]
    assert [r.run_id for r in ranked(runs)] == ["default-high", "default-low", "acc-high", "acc-low",
                                                "auc-named"]


def _cells(line: str) -> int:
    return len(re.findall(r"(?<!\\)\|", line))


def test_escaping_keeps_tables_whole(tmp_path):
    nasty = {**HPARAMS, "family": "plain|x\ny `z` <b>"}
    rid = "binary-20261125-100000-dddd"
    folder = write_run(
        tmp_path / "runs", rid, "binary", objective=("val_auc", 0.9),
        val=split(10, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, ("NORMAL", "PNEUMONIA"), (5, 5)), test=None,
        hparams=nasty,
        trials=[trial(rid, "binary", "1", "FAILED", None, name="val_auc", params=None,
                      hparams=nasty, error="boom | bad\n`x` <y> " + "long " * 60)])
    (folder / "command.txt").write_text("automl search --note 'a|b'\n  --x `y`\n")
    found, _ = load_runs(tmp_path / "runs")
    page = render_task("binary", found, tmp_path / "report")
    rows = [line for line in page.splitlines() if line.startswith("|")]
    for block in page.split("\n\n"):
        lines = [line for line in block.splitlines() if line.startswith("|")]
        assert len({_cells(line) for line in lines}) <= 1, block
    assert rows and "plain\\|x y \\`z\\` &lt;b&gt;" in page
    assert "<b>" not in page and "<y>" not in page
    error = short_text("boom | bad\n`x` <y> " + "long " * 60)
    assert error.startswith("\\`x\\` &lt;y&gt; long") and error.endswith("…")
    assert "\n" not in esc("a\nb\r\nc") and esc("a|b") == "a\\|b"
    assert render_hparams({"learning_rate": 0.000123456, "tuner/bracket": 1}) == \
        "learning_rate=0.000123"


def test_empty_runs_folder(tmp_path):
    (tmp_path / "runs").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "perf.md").write_text("# Speed\n")
    written = write_report(tmp_path / "runs", tmp_path / "out")
    assert [p.name for p in written] == ["README.md"]
    text = written[0].read_text()
    assert "No runs found under `../runs`" in text and "_No runs yet" in text
    assert "- [perf.md](perf.md)" in text and "CAVEATS" not in text and "CAMPAIGN" not in text
    (tmp_path / "out" / "CAMPAIGN.md").write_text("# What was tried\n")
    text = write_report(tmp_path / "runs", tmp_path / "out")[0].read_text()
    assert "- [CAMPAIGN.md](CAMPAIGN.md)" in text and "tried for each target" in text


def test_missing_runs_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="runs must be an existing folder"):
        write_report(tmp_path / "nope", tmp_path / "out")


def test_broken_summary_is_listed_not_fatal(runs, tmp_path):
    broken = runs / "binary-20261127-000000-eeee"
    broken.mkdir()
    (broken / "summary.json").write_text('{"task": "binary", "run_id": ')
    odd = runs / "weird"
    odd.mkdir()
    (odd / "summary.json").write_text('["a list"]')
    with open(runs / "binary-20261125-100000-aaaa" / "trials.jsonl", "a") as handle:
        handle.write('{"torn": ')
    readme = write_report(runs, tmp_path / "out")[0].read_text()
    problems = readme.split("## Problems")[1].split("## Environment")[0]
    assert "../runs/binary-20261127-000000-eeee: summary.json unreadable" in problems
    assert "../runs/weird: summary.json is not an object" in problems
    assert "trials.jsonl: 1 unreadable line(s) skipped" in problems
    assert "binary-20261126-090000-bbbb" in readme.split("## What the default")[1]


def test_autoencoder_all_failed_and_anchors(tmp_path):
    rid = "autoencoder-20261125-120000-ffff"
    names = ("NORMAL", "PNEUMONIA")
    write_run(tmp_path / "runs", rid, "autoencoder", objective=("val_auc", 0.8),
              val=split(100, 0.7, 0.7, 0.7, 0.8, 0.7, 0.7, names, (50, 50), ece=None),
              test=split(624, 0.7, 0.7, 0.7, 0.8, 0.7, 0.7, names, (234, 390), ece=None,
                         subtype_detection={"bacteria": 0.8123, "virus": 0.6012,
                                            "normal_flagged": 0.2}),
              trials=[trial(rid, "autoencoder", "1", "COMPLETED", 0.8, name="val_auc",
                            params=1000)])
    dead = write_run(tmp_path / "runs", "binary-20261125-130000-gggg", "binary",
                     objective=("val_auc", 0.0), val=None, test=None,
                     trials=[trial("x", "binary", "0", "FAILED", None, name="val_auc",
                                   params=None, error="OOM")])
    summary = json.loads((dead / "summary.json").read_text())
    summary["objective"]["value"], summary["best_trial"] = None, None
    (dead / "summary.json").write_text(json.dumps(summary))
    out = tmp_path / "out"
    written = write_report(tmp_path / "runs", out)
    auto = (out / "autoencoder.md").read_text()
    assert "| bacterial pneumonia detected  | 0.812  |" in auto
    assert "| normal flagged (false alarms) | 0.200  |" in auto
    assert "SimSID" in (out / "README.md").read_text()
    assert "| –      |" in (out / "binary.md").read_text()  # all trials failed: no rank
    assert len(written) == 5


def test_anchors_are_well_formed():
    anchors = load_anchors()["anchors"]
    metrics = {"accuracy", "auc", "sensitivity", "specificity", "f1_macro"}
    assert {a["task"] for a in anchors} == {"binary", "multiclass", "autoencoder", "subtype"}
    for entry in anchors:
        assert entry["system"] and entry["source"] and "notes" in entry
        present = metrics & entry.keys()
        assert present and all(0 <= entry[m] <= 1 for m in present)
        assert set(entry.get("qualifiers", {})) <= present
    kermany = next(a for a in anchors if a["task"] == "binary" and "Kermany" in a["system"])
    assert kermany["accuracy"] == 0.928 and "10.1016/j.cell.2018.02.010" in kermany["source"]


def test_a_study_is_aggregated_and_is_its_tasks_headline(tmp_path):
    runs = tmp_path / "runs"
    make_runs(runs)  # a single binary run with a higher validation objective than the study
    study = runs / "binary-study-0123abcd"
    names = ("NORMAL", "PNEUMONIA")
    ids = {}
    for seed, (acc, auc) in enumerate(((0.90, 0.95), (0.92, 0.97), (0.94, 0.96))):
        rid = f"binary-20261127-10000{seed}-s00{seed}"
        ids[str(seed)] = rid
        write_run(study, rid, "binary", objective=("val_auc", 0.90 + 0.01 * seed),
                  val=split(1047, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, names, (270, 777)),
                  test=split(624, acc, acc, acc, auc, acc + 0.02, acc - 0.03, names, (234, 390)),
                  trials=[trial(rid, "binary", "1", "COMPLETED", 0.9, name="val_auc", params=10)])
    (study / "study.json").write_text(json.dumps({"study_id": study.name, "task": "binary",
                                                  "config": {}, "seeds": [0, 1, 2], "runs": ids}))
    out = tmp_path / "reports"
    write_report(runs, out)
    page = (out / "binary.md").read_text()
    board = page.split("## Leaderboard")[1].split("##")[0]
    first = next(line for line in board.splitlines() if line.startswith("| ["))
    assert first.startswith("| [binary-study-0123abcd](#binary-study-0123abcd) (study, 3 seeds)")
    assert "0.920 ± 0.020" in first and "0.960 ± 0.010" in first  # accuracy, AUC: mean ± sd
    assert "(seed 2 of [binary-study-0123abcd]" in board and "(single run)" in board
    section = page.split("### binary-study-0123abcd")[1].split("###")[0]
    assert "| accuracy          | 0.920 ± 0.020 | 0.900–0.940 | 0.900    | 0.920    | 0.940    |" in section
    assert (out / "study_binary-study-0123abcd.png").stat().st_size > 1000
    readme = (out / "README.md").read_text()
    # Its runs have no full configuration recorded: not the default one, the latest study instead.
    headline = next(line for line in readme.splitlines() if "cxr-automl, other configuration" in line)
    assert "binary-study-0123abcd" in headline and "0.920 ± 0.020" in headline
    assert "accuracy (study mean)" in readme
    sd_row = next(line for line in readme.splitlines() if "accuracy (study sd over seeds)" in line)
    assert "<= 0.015" in sd_row and "0.020" in sd_row and "**no**" in sd_row  # sd 0.020 > 0.015
    # Unreadable study records are a problem line, not a crash.
    (runs / "broken-study").mkdir()
    (runs / "broken-study" / "study.json").write_text("{")
    write_report(runs, out)
    assert "broken-study: study.json unreadable" in (out / "README.md").read_text()


def test_a_study_heads_its_task_only_with_two_finished_seeds(tmp_path):
    runs = tmp_path / "runs"
    study = runs / "autoencoder-study-00000000"
    study.mkdir(parents=True)
    # Its first seed still running (no summary.json), no single run: the report still renders.
    (study / "study.json").write_text(json.dumps({"study_id": study.name, "task": "autoencoder",
                                                  "config": {}, "seeds": [0, 1],
                                                  "runs": {"0": "autoencoder-x"}}))
    (study / "autoencoder-x").mkdir()
    write_report(runs, tmp_path / "out")
    assert "No runs" in (tmp_path / "out" / "README.md").read_text()
    names = ("NORMAL", "PNEUMONIA")
    write_run(study, "autoencoder-x", "autoencoder", objective=("val_auroc", 0.8),
              val=split(10, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, names, (5, 5)),
              test=split(624, 0.7, 0.7, 0.7, 0.75, 0.7, 0.7, names, (234, 390)),
              trials=[trial("autoencoder-x", "autoencoder", "1", "COMPLETED", 0.8, name="val_auroc",
                            params=1)])
    write_report(runs, tmp_path / "out")
    readme = (tmp_path / "out" / "README.md").read_text()
    assert "cxr-automl, single run (`autoencoder-x`)" in readme  # one seed: the run, not the study
    assert "0.700 ± –" in (tmp_path / "out" / "autoencoder.md").read_text()  # no spread from one seed


def default_config(task="binary", **changes) -> dict:
    """``config.json`` of ``automl search --task TASK`` on real data (every budget field filled
    in, as a run records it), with ``changes``."""
    config = dataclasses.asdict(SearchConfig(task=task).with_defaults(synthetic=False))
    return {**config, "families": list(config["families"]), "data": "/data/chest_xray", **changes}


def budget_run(folder, rid, acc, *, validation, minutes, budget=18.0, val_auc=0.95, peer=None, knn=None,
               version=__version__):
    """A binary run of the default configuration but its time budget and validation, with its
    search minutes and a test accuracy ``acc``, made by toolkit ``version``."""
    names = ("NORMAL", "PNEUMONIA")
    path = write_run(folder, rid, "binary", objective=("val_auc", val_auc),
                     val=split(1047, 0.9, 0.9, 0.9, val_auc, 0.9, 0.9, names, (270, 777)),
                     test=split(624, acc, acc, acc, 0.95, acc + 0.05, acc - 0.05, names, (234, 390)),
                     trials=[trial(rid, "binary", "1", "COMPLETED", val_auc, name="val_auc", params=1)])
    summary = json.loads((path / "summary.json").read_text())
    summary["config"] = default_config(validation=validation, time_budget_minutes=budget)
    summary["env"] = {k: v for k, v in ENV.items() if k != "version"}
    summary["env"].update({"version": version} if version else {})
    summary["search_seconds"] = minutes * 60
    if peer:
        summary["peer"] = peer
    (path / "summary.json").write_text(json.dumps(summary))
    (path / "config.json").write_text(json.dumps(summary["config"]))
    if knn is not None:
        (path / "knn.jsonl").write_text(json.dumps({"features": "embedding", "selected": True,
                                                    "test": {"accuracy": knn}}) + "\n")


def budget_study(runs, study_id, seeds, *, budget=18.0, val_auc=0.95, day=2, version=__version__):
    """A binary study of the default configuration (but ``budget``), made on day ``day`` of
    November by toolkit ``version`` (None: before versions were recorded): ``seeds`` is one
    (test accuracy, search minutes) per seed."""
    study = runs / study_id
    ids = {}
    for seed, (acc, minutes) in enumerate(seeds):
        ids[str(seed)] = f"binary-202611{day:02d}-10000{seed}-{study_id[-4:]}"
        budget_run(study, ids[str(seed)], acc, validation="shift", minutes=minutes, budget=budget,
                   val_auc=val_auc, knn=acc - 0.005, version=version)
    state = {"study_id": study_id, "task": "binary", "config": {"time_budget_minutes": budget},
             "seeds": list(range(len(seeds))), "runs": ids, "created_at": f"2026-11-{day:02d}T10:00:00Z"}
    (study / "study.json").write_text(json.dumps({**state, **({"version": version} if version else {})}))


def peer_lines(readme: str) -> list[str]:
    peers = readme.split("## Peers and ablation")[1].split("## Targets")[0]
    return [line for line in peers.splitlines() if line.startswith("| ") and "---" not in line][1:]


def test_the_headline_study_sits_beside_its_peers_ablation_and_wall_time_targets(tmp_path):
    runs = tmp_path / "runs"
    budget_study(runs, "binary-study-0123abcd", ((0.90, 18.5), (0.92, 20.5)))
    budget_run(runs, "autokeras-binary-20261125-000000-old", 0.80, validation="plain", minutes=25,
               peer="autokeras")
    budget_run(runs, "autokeras-binary-20261126-000000-new", 0.75, validation="plain", minutes=24,
               peer="autokeras")
    budget_run(runs, "binary-20261126-000000-plain", 0.44, validation="plain", minutes=18.1)
    out = tmp_path / "reports"
    write_report(runs, out)
    readme = (out / "README.md").read_text()
    lines = peer_lines(readme)
    assert [line.split("|")[1].strip() for line in lines] == [
        f"cxr-automl, default configuration, version {__version__} (2 seeds)", "autokeras",
        "cxr-automl, plain validation (ablation)"]
    assert "0.910 ± 0.014" in lines[0] and "19.5 (max 20.5)" in lines[0]
    # The latest peer run, not the one with the better test score.
    assert "autokeras-binary-20261126-000000-new" in lines[1] and "24.0" in lines[1]
    assert "binary-20261126-000000-plain" in lines[2] and "0.440" in lines[2]
    targets = readme.split("## Targets")[1]
    knn_row = next(line for line in targets.splitlines() if "KNN accuracy on its embedding (study" in line)
    assert ">= 0.900 (classifier − 0.01)" in knn_row and "0.905" in knn_row and "yes" in knn_row
    wall_row = next(line for line in targets.splitlines() if "search wall minutes (slowest seed)" in line)
    assert "<= 19.8 (budget + 10%)" in wall_row and "20.5" in wall_row and "**no**" in wall_row


def headline_line(readme: str) -> str:
    return next(line for line in readme.splitlines() if line.startswith("| binary ") and "cxr-automl" in line)


def test_the_headline_is_the_default_configuration_on_the_current_version(tmp_path):
    """Not the best by validation, nor the latest of any kind: the latest study of the default
    configuration made with this version; other versions and budgets are never ranked with it."""
    runs = tmp_path / "runs"
    budget_study(runs, "binary-study-curr", ((0.90, 18.5), (0.92, 20.5)), val_auc=0.95, day=2)
    budget_study(runs, "binary-study-0ld0", ((0.95, 18.0), (0.97, 18.0)), val_auc=0.99, day=4,
                 version="0.8.1")
    budget_study(runs, "binary-study-60mi", ((0.96, 59.0), (0.98, 61.0)), budget=60.0, val_auc=0.995, day=5)
    budget_study(runs, "binary-study-pre0", ((0.99, 18.0), (0.99, 18.0)), val_auc=0.999, day=6, version=None)
    out = tmp_path / "reports"
    write_report(runs, out)
    readme = (out / "README.md").read_text()
    assert "binary-study-curr" in headline_line(readme) and "0.910 ± 0.014" in headline_line(readme)
    assert f"the default configuration on version {__version__}, study `binary-study-curr`" in readme
    assert "binary-study-curr" in readme.split("## Targets")[1].split("##")[0]
    page = (out / "binary.md").read_text()
    board = page.split("## Leaderboard")[1].split("## Peers")[0]
    assert "binary-study-curr" in board and "binary-study-60mi" not in board  # another budget
    assert "### binary-study-curr" in page and "### binary-study-0ld0" not in page
    history = (out / "history.md").read_text()
    for other, what in (("binary-study-0ld0", "| 0.8.1 "), ("binary-study-60mi", "budget=60 min"),
                        ("binary-study-pre0", "| pre-0.9 ")):
        row = next(line for line in history.splitlines() if other in line)
        assert what in row, row
    # Without a study of this version, the latest default study of an older one, marked so.
    shutil.rmtree(runs / "binary-study-curr")
    write_report(runs, out)
    readme = (out / "README.md").read_text()
    assert "binary-study-pre0" in headline_line(readme) and "| pre-0.9 " in headline_line(readme)
    assert (f"no study of the default configuration on version {__version__} yet; shown is the latest one, "
            "study `binary-study-pre0`, made with version **pre-0.9**") in readme
    assert "binary-study-pre0 (older version: pre-0.9)" in readme.split("## Targets")[1]
    assert "_No run or study of version" in (out / "binary.md").read_text()


@pytest.fixture
def shipped_defaults(monkeypatch, shipped_real_data_refit):
    """The real-data defaults as shipped (the tests switch the binary refit off: conftest.py)."""
    from automl.settings import choices

    monkeypatch.setattr(choices, "REAL_DATA_REFIT", shipped_real_data_refit)


def test_a_default_configuration_is_compared_as_filled_in(tmp_path, shipped_defaults):
    from automl.records.runs import Study
    from automl.report.configuration import budget_of, describe

    def study(**changes):
        folder = tmp_path / f"run{len(list(tmp_path.iterdir()))}"
        folder.mkdir()
        config = default_config(**changes)
        (folder / "config.json").write_text(json.dumps(config))
        run = Run(folder, {"task": "binary", "run_id": folder.name, "config": config})
        return Study(folder, {"task": "binary"}, [run], [0])

    assert describe(study(seed=7, out="elsewhere", data="/other")) == "default"
    assert describe(study(refit="cv:5")) == "default"  # what the default fills in on real data
    assert describe(study(refit="none", portfolio="none")) == "portfolio=none, refit=none"
    assert describe(study(time_budget_minutes=60.0)) == "budget=60 min"
    # A missing budget field is the wall-clock budget; a compute budget is another configuration.
    assert budget_of({"time_budget_minutes": 18.0}) == ("minutes", 18.0)
    assert budget_of({"budget": "compute:40", "time_budget_minutes": 18.0}) == ("compute", 40.0)
    assert describe(study(budget="compute:40")) == "budget=compute:40.0"
    old = study()
    saved = json.loads((old.folder / "config.json").read_text())
    del saved["portfolio"]  # made before the warm start existed: it ran without one
    (old.folder / "config.json").write_text(json.dumps(saved))
    assert describe(old) == "portfolio=none"


def test_leaderboard_csv_reads_back_with_stable_columns(tmp_path):
    import csv

    from automl.report.tables import COLUMNS

    runs = tmp_path / "runs"
    budget_study(runs, "binary-study-0123abcd", ((0.90, 18.5), (0.92, 20.5)))
    budget_run(runs, "autokeras-binary-20261126-000000-new", 0.75, validation="plain", minutes=24,
               peer="autokeras")
    write_report(runs, tmp_path / "reports")
    with open(tmp_path / "reports" / "leaderboard.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == COLUMNS
    head = rows[0]
    assert (head["task"], head["role"], head["id"], head["version"]) == (
        "binary", "headline", "binary-study-0123abcd", __version__)
    assert float(head["accuracy_mean"]) == pytest.approx(0.91) and head["seeds"] == "2"
    assert head["budget"] == "18 min" and head["hardware"] == "CPU (x86_64, 2 cores)"
    assert head["pretraining"] == "no"
    kermany = next(r for r in rows if "Kermany" in r["system"] and r["task"] == "binary")
    assert kermany["role"] == "published" and kermany["pretraining"] == "yes"
    assert float(kermany["accuracy_mean"]) == 0.928 and kermany["accuracy_sd"] == ""
    peer = next(r for r in rows if r["role"] == "peer")
    assert peer["system"] == "autokeras" and float(peer["accuracy_mean"]) == 0.75


def test_a_refit_runs_wall_minutes_count_its_refit(tmp_path):
    """``--time-budget`` covers the search and the refit: the wall-time target sees both."""
    runs = tmp_path / "runs"
    budget_study(runs, "binary-study-60mi0000", ((0.80, 40.0), (0.82, 44.0)), budget=60.0)
    state = json.loads((runs / "binary-study-60mi0000" / "study.json").read_text())
    first = runs / "binary-study-60mi0000" / state["runs"]["0"] / "summary.json"
    summary = json.loads(first.read_text())
    summary["refit"] = {"folds": 4, "folds_requested": 5, "seconds_left": 1200.0, "seconds": 27.0 * 60,
                        "trials": ["12"], "chosen": ["12"], "quality": "auc", "oof_quality_by_count": [0.96],
                        "tta": True, "oof_quality_tta": 0.97, "oof_quality_uncalibrated": 0.94,
                        "calibration": {"12": [{"coef": [[1.1]], "intercept": [-0.3]}]},
                        "fold_records": [{"trial_id": "12", "fold": 0, "epochs": 8, "averaged_epochs": 4,
                                          "quality": 0.98}]}
    summary.update(val_source="out-of-fold", val_shift=summary["val"],
                   saliency={"method": "Grad-CAM", "images": 64, "saliency_area": 0.6, "random_area": 0.5,
                             "difference": -0.1})
    first.write_text(json.dumps(summary))
    write_report(runs, tmp_path / "reports")
    targets = (tmp_path / "reports" / "README.md").read_text().split("## Targets")[1]
    wall_row = next(line for line in targets.splitlines() if "search wall minutes (slowest seed)" in line)
    assert "<= 66.0 (budget + 10%)" in wall_row and "67.0" in wall_row and "**no**" in wall_row
    # The run's page says what each refit figure is measured on.
    page = (tmp_path / "reports" / "binary.md").read_text()
    assert "4 patient-grouped, subtype-stratified folds of train + validation (asked for 5; more did not " \
           "fit the time left)" in page
    assert "(out-of-fold auc, pooled with re-acquisitions, by number averaged: 0.960)" in page
    assert "held-out auc (clean)" in page and "27.0 refit minutes" in page
    assert "each fold model the average of its weights over its last 4 epochs, batch norm remeasured; " \
           "each fold model calibrated on its held-out images (out-of-fold auc, pooled with " \
           "re-acquisitions, of the best configuration as the fold models gave it: 0.940)" in page
    assert "decision threshold (rule `balanced`, chosen on out-of-fold scores of train + validation)" in page
    assert "64 pneumonia images of train + validation" in page


def test_a_chosen_model_at_chance_is_flagged_in_the_report_and_its_model_card(tmp_path):
    """A search that chose its only full-size trial, collapsed at chance (val AUC 0.500):
    its page and card must say so, not read like a result."""
    from automl.evaluation.metrics import chance_level_warning
    from automl.report.model_card import write_model_card

    assert chance_level_warning({"name": "val_shift_auc", "value": 0.98}) is None
    assert chance_level_warning({"name": "val_normal_loss", "value": 0.5}) is None  # not an AUC
    assert chance_level_warning({"name": "val_auroc", "value": 0.53}) is not None
    names = ("NORMAL", "PNEUMONIA")
    rid = "binary-20261126-211631-dead"
    folder = write_run(tmp_path / "runs", rid, "binary", objective=("val_auc", 0.5),
                       val=split(1047, 0.74, 0.5, 0.43, 0.5, 1.0, 0.0, names, (270, 777)),
                       test=split(624, 0.4375, 0.48, 0.43, 0.474, 0.303, 0.662, names, (234, 390)),
                       trials=[trial(rid, "binary", "1", "COMPLETED", 0.5, name="val_auc", params=10)])
    write_report(tmp_path / "runs", tmp_path / "out")
    page = (tmp_path / "out" / "binary.md").read_text()
    assert "**Warning: the chosen model is at chance level on validation (val_auc 0.500)" in page
    card = write_model_card(folder).read_text()
    assert "**Warning: the chosen model is at chance level" in card
    assert card.index("Warning") < card.index("## Intended use")


def test_readme_what_to_expect_block_is_what_make_report_writes(shipped_defaults):
    """Run ``make report OUT=benchmarks/results/runs`` when this fails."""
    from automl.records.runs import load_studies
    from automl.report.headline import headlines
    from automl.report.tables import expect_block, with_block

    root = Path(__file__).resolve().parents[1]
    runs = root / "benchmarks" / "results" / "runs"
    if not runs.is_dir():
        pytest.skip("no committed records in this checkout")
    found, _ = load_runs(runs)
    studies, _ = load_studies(runs, found)
    readme = (root / "README.md").read_text(encoding="utf-8")
    assert with_block(readme, expect_block(headlines(found, studies), root / "reports", root)) == readme
