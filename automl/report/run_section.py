"""One run's section of a task page: facts, command, per-class table, trials, KNN, t-SNE and plots."""

from __future__ import annotations

import re
from pathlib import Path

from automl.evaluation.metrics import chance_level_warning
from automl.records.runs import Run
from automl.records.trials import COMPLETED
from automl.report.markdown import DASH, dig, esc, fmt, fmt_count, number, rel, short_text, table
from automl.report.model_card import averaged_epochs, chosen_out_of_fold, saliency_images, threshold_rule

KEY_HPARAMS = ("family", "score", "intensity", "blocks", "base_filters", "learning_rate", "augment",
               "balancing", "batch_size")
# What an objective reads: said beside it, because an anomaly detector "trained on normals
# only" may still be selected with pneumonia labels.
OBJECTIVE_READS = {"val_auroc": "selected with validation labels (normal and pneumonia)",
                   "val_normal_loss": "label-free: trials selected on validation normals and "
                   "synthetic-defect copies of them, no pneumonia label or image; the threshold "
                   "still follows the run's rule on labelled validation"}
FEATURE_ORDER = ("embedding", "pixels", "pca50")
PLOTS = (("confusion_matrix.png", "confusion matrix"), ("roc.png", "ROC"),
         ("training_curves.png", "training curves"),
         ("pareto.png", "validation objective against CPU latency (Pareto front, chosen model ringed)"),
         ("saliency_panel.png", "Grad-CAM on test images: true/false positives and negatives"),
         ("score_histogram.png", "anomaly scores by subtype"),
         ("reconstructions.png", "test images: input, prediction, anomaly map"))


def render_hparams(hparams, image_size=None) -> str:
    """Compact ``k=v`` string of the telling hyperparameters (all but ``tuner/*`` if none of
    :data:`KEY_HPARAMS` is present), learning rate and other floats to 3 significant digits."""
    hparams = hparams if isinstance(hparams, dict) else {}
    keys = [k for k in KEY_HPARAMS if k in hparams]
    keys = keys or [k for k in hparams if not str(k).startswith("tuner/")]
    parts = [f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
             for k, v in ((k, hparams[k]) for k in keys)]
    if image_size is not None:
        parts.append(f"image_size={image_size}")
    return esc(" ".join(parts))


def gap(metrics) -> str:
    """|sensitivity - specificity| of a split's metrics, from its bias block or the two rates."""
    value = dig(metrics, "bias", "sens_spec_gap")
    sens, spec = number(dig(metrics, "sensitivity")), number(dig(metrics, "specificity"))
    if value is None and sens is not None and spec is not None:
        value = abs(sens - spec)
    return fmt(value)


def _trial_order(trial: dict) -> tuple:
    tid = str(trial.get("trial_id"))
    return (not tid.isdigit(), int(tid) if tid.isdigit() else 0, tid)


def pruned_reason(pruned: dict) -> str:
    """A pruned trial's status suffix: at epoch E (median M), or (AUC at chance) for the chance rule."""
    why = "AUC at chance" if pruned.get("rule") == "chance" else f"median {fmt(pruned.get('median'))}"
    return f" at epoch {esc(pruned.get('epoch'))} ({why})"


def render_trials(run: Run) -> str:
    """Trial-level table: every recorded trial, its image size, pruned ones with the epoch and
    median that stopped them, failed ones with the exception line."""
    name, best = dig(run.summary, "objective", "name"), run.summary.get("best_trial")
    rows = [{
        "trial": esc(t.get("trial_id")) + (" (best)" if str(t.get("trial_id")) == str(best) else "")
        + (f" (portfolio {esc(t['portfolio'])})" if t.get("portfolio") else ""),
        "worker": esc(t.get("worker", DASH)),
        "status": esc(t.get("status", DASH)) + (
            pruned_reason(t["pruned"]) if isinstance(t.get("pruned"), dict) else ""),
        "px": esc(t.get("image_size") or dig(run.summary, "config", "image_size") or DASH),
        esc(name): fmt(dig(t, "metrics", name)),
        "seconds": fmt(t.get("seconds"), 1),
        "params": fmt_count(t.get("params")),
        "hyperparameters": render_hparams(t.get("hparams")),
        "error": short_text(t.get("error")) or DASH,
    } for t in sorted(run.trials, key=_trial_order)]
    return table(rows, "_No trial records (trials.jsonl missing)._")


def minutes(seconds) -> str:
    return fmt(number(seconds) / 60, 1) if number(seconds) is not None else DASH


def calibrated(r: dict, pooled: str) -> str:
    """The fold models' weight averaging and calibration in the refit line (refits recorded
    before them had neither)."""
    if "calibration" not in r:
        return ""
    averaged = averaged_epochs(r)
    weights = (f"each fold model the average of its weights over its last "
               f"{esc('/'.join(map(str, averaged)))} epochs, batch norm remeasured; "
               if averaged and averaged != [1] else "")
    return (f"{weights}each fold model calibrated on its held-out images (out-of-fold {pooled} of the best "
            f"configuration as the fold models gave it: {fmt(r.get('oof_quality_uncalibrated'))}); ")


def render_refit(s: dict) -> str:
    """What the refit chose on out-of-fold scores, and the out-of-fold estimate (all a user
    without a test split would have) beside the test result."""
    r = s["refit"]
    folds = [f for f in r.get("fold_records", []) if isinstance(f, dict)]
    # The choices are made on the out-of-fold scores pooled with their re-acquisitions under
    # shift validation; each fold's own figure is on its clean held-out images.
    pooled = f"{esc(r.get('quality'))}, pooled with re-acquisitions," if s.get("val_shift") else esc(
        r.get("quality"))
    fewer = ""
    if r.get("folds_requested") not in (None, r.get("folds")):
        fewer = (f" (asked for {esc(r['folds_requested'])}; "
                 + ("more did not fit the time left)" if r.get("seconds_left") is not None
                    else "the pool has fewer patients)"))
    lines = [
        f"{esc(r.get('folds'))} patient-grouped, subtype-stratified folds of train + validation{fewer}; "
        f"configurations refit: {esc(', '.join(map(str, r.get('trials', []))))}; averaged: "
        f"{esc(', '.join(map(str, r.get('chosen', []))))} (out-of-fold {pooled} by number "
        f"averaged: {esc(', '.join(fmt(q) for q in r.get('oof_quality_by_count', [])))}); test-time "
        f"augmentation {'used' if r.get('tta') else 'not used'} (out-of-fold {pooled} "
        f"with it {fmt(r.get('oof_quality_tta'))}); {calibrated(r, pooled)}{minutes(r.get('seconds'))} "
        f"refit minutes after "
        f"{minutes(s.get('search_seconds'))} search minutes.", ""]
    rows = []
    for name, key in (("out-of-fold (clean)", "val"), ("out-of-fold + re-acquisitions", "val_shift"),
                      ("official test", "test")):
        m = s.get(key)
        if isinstance(m, dict):
            rows.append({"estimate": name, "accuracy": fmt(m.get("accuracy")), "AUC": fmt(m.get("auc")),
                         "macro-F1": fmt(m.get("f1_macro")), "sensitivity": fmt(m.get("sensitivity")),
                         "specificity": fmt(m.get("specificity")), "|sens − spec|": gap(m)})
    lines.append(table(rows, ""))
    if folds:
        lines += ["", table([{"trial": esc(f.get("trial_id")), "fold": esc(f.get("fold")),
                              "epochs": esc(f.get("epochs")), "train images": esc(f.get("train_images")),
                              "held-out images": esc(f.get("held_out_images")),
                              "held-out patients": esc(f.get("held_out_patients")),
                              f"held-out {esc(r.get('quality'))} (clean)": fmt(f.get("quality"))}
                             for f in folds], "")]
    if r.get("passed_over"):
        lines += ["", "Passed over (not even two folds of these better-validated configurations fitted "
                  f"the time left): trial {esc(', '.join(map(str, r['passed_over'])))}."]
    if r.get("failed_folds"):
        lines += ["", "Dropped from the refit (a fold model fell too far below its validation in the "
                  "search): " + render_failed_folds(r["failed_folds"]) + "."]
    return "\n".join(lines)


def render_failed_folds(failed: list) -> str:
    """``trial T fold F: 0.701 held out against 0.992 on validation`` for each failed fold model."""
    return "; ".join(f"trial {esc(f.get('trial_id'))} fold {esc((f.get('fold') or 0) + 1)}: "
                     f"{fmt(f.get('quality'))} held out against {fmt(f.get('validation'))} on validation"
                     for f in failed if isinstance(f, dict))


def render_by_family(run: Run) -> str:
    """The best validation objective each (family, score) pair reached, and how many trials
    tried it: what the tuner's choice was made from."""
    name, best = dig(run.summary, "objective", "name"), {}
    sign = -1 if dig(run.summary, "objective", "direction") == "min" else 1
    for t in run.trials:
        hp = t.get("hparams") if isinstance(t.get("hparams"), dict) else {}
        key = (str(hp.get("family", "autoencoder")), str(hp.get("score", DASH)))
        value = number(dig(t, "metrics", name)) if t.get("status") == COMPLETED else None
        count, top = best.get(key, (0, None))
        best[key] = (count + 1, value if top is None or (value is not None and sign * value > sign * top)
                     else top)
    return table([{"family": esc(f), "score": esc(sc), "trials": str(n), f"best {esc(name)}": fmt(v)}
                  for (f, sc), (n, v) in sorted(best.items())], "_No trials._")


def _feature_order(name) -> tuple:
    return (FEATURE_ORDER.index(name) if name in FEATURE_ORDER else len(FEATURE_ORDER), str(name))


def render_knn(rows: list[dict]) -> str:
    """The KNN setting chosen on validation for each feature set, with its test scores."""
    picked = sorted((r for r in rows if r.get("selected") is True), key=lambda r: (
        _feature_order(r.get("features")), str(r.get("k")), str(r.get("metric"))))
    return table([{
        "features": esc(r.get("features")), "k": esc(r.get("k")), "metric": esc(r.get("metric")),
        "val accuracy": fmt(dig(r, "val", "accuracy")),
        "test accuracy": fmt(dig(r, "test", "accuracy")),
        "test balanced acc": fmt(dig(r, "test", "balanced_accuracy")),
        "test macro-F1": fmt(dig(r, "test", "f1_macro")),
        "test sens": fmt(dig(r, "test", "sensitivity")),
        "test spec": fmt(dig(r, "test", "specificity")),
        "test gap": gap(r.get("test")),
    } for r in picked], "_No selected KNN rows._")


def render_tsne(run: Run, out: Path) -> str:
    """Trustworthiness of each t-SNE map (higher is better), then the maps whose PNG exists."""
    features = dig(run.tsne, "features")
    features = features if isinstance(features, dict) else {}
    names = sorted(features, key=_feature_order)
    text = table([{
        "features": esc(f), "n": esc(dig(features, f, "n") or DASH),
        "trustworthiness@5": fmt(dig(features, f, "trustworthiness", "5")),
        "trustworthiness@10": fmt(dig(features, f, "trustworthiness", "10")),
        "seconds": fmt(dig(features, f, "seconds"), 1),
    } for f in names], "_No t-SNE maps._")
    images = [f"![t-SNE {esc(f)}]({rel(run.folder / png, out)})" for f in names
              if (png := dig(features, f, "png")) in run.pngs]
    return "\n\n".join([text, *images])


def render_run(run: Run, out: Path) -> str:
    """Per-run section: facts, command, per-class table, trials, KNN, t-SNE and plots."""
    s = run.summary
    split, metrics = ("test", run.test) if run.test else ("validation", s.get("val"))
    counts, problems = dig(s, "data", "counts"), dig(s, "data", "problems")
    counts = ", ".join(f"{esc(k)} {esc(v)}" for k, v in counts.items()) if isinstance(
        counts, dict) else DASH
    best = next((t for t in run.trials if str(t.get("trial_id")) == str(s.get("best_trial"))), {})
    seconds = number(s.get("search_seconds"))
    facts = [
        (f"data: {esc(Path(str(dig(s, 'config', 'data') or DASH)).name)} ({counts}); "
         f"{len(problems) if isinstance(problems, list) else 0} data problem(s)"),
        (f"tuner {esc(dig(s, 'config', 'tuner') or DASH)}: {fmt_count(s.get('trials_completed'))} "
         f"trial(s) completed"
         + (f" at {esc(dig(s, 'config', 'image_size'))} px after {fmt_count(s.get('trials_screened'))} "
            f"screened at {esc(dig(s, 'config', 'screen_size'))} px" if s.get("trials_screened") else "")
         + f", {fmt_count(s.get('trials_pruned') or 0)} pruned ({esc(dig(s, 'config', 'prune') or 'none')}), "
         f"{fmt_count(s.get('trials_failed'))} failed, "
         f"{DASH if seconds is None else fmt(seconds / 60, 1)} search minutes; "
         f"{esc(run.validation)} validation"),
        (f"objective: {esc(dig(s, 'objective', 'name'))} = {fmt(dig(s, 'objective', 'value'))} "
         f"({esc(dig(s, 'objective', 'direction'))}), best trial {esc(s.get('best_trial'))} "
         f"({fmt_count(best.get('params'))} parameters"
         + (f", {fmt(best['latency_ms'], 1)} ms per image on CPU" if number(best.get("latency_ms")) else "")
         + ")"
         + (f"; {OBJECTIVE_READS[name]}" if (name := dig(s, "objective", "name")) in OBJECTIVE_READS
            else "")),
        (f"best hyperparameters: "
         f"{render_hparams(s.get('best_hparams'), dig(s, 'config', 'image_size')) or DASH}"),
        (f"git commit {esc(dig(s, 'env', 'git_commit'))} on {esc(dig(s, 'env', 'device'))}, "
         f"{esc(s.get('precision_policy') or 'float32')} precision, XLA {esc(s.get('xla') or 'auto')}"),
    ]
    if warning := chance_level_warning(s.get("objective")):
        facts.insert(0, f"**Warning: {esc(warning)}**")
    if isinstance(sal := s.get("saliency"), dict):
        facts.append(f"saliency faithfulness ({esc(sal.get('method'))}, deletion test on "
                     f"{sal.get('images')} {saliency_images(s)}): area under P(pneumonia) "
                     f"{fmt(sal.get('saliency_area'))} deleting the most salient pixels first, "
                     f"{fmt(sal.get('random_area'))} deleting at random; difference "
                     f"**{fmt(sal.get('difference'))}** (target ≥ 0.1)")
    if (run.folder / "MODEL_CARD.md").is_file():
        facts.append(f"[model card]({rel(run.folder / 'MODEL_CARD.md', out)}): intended use, data, "
                     "selection, results, bias, calibration, versions")
    if run.test and dig(run.test, "ci"):
        unit = dig(run.test, "ci_unit") or "image"
        facts.append(f"test 95% intervals: percentile bootstrap, 1,000 resamples of {esc(unit)}s"
                     + (" (all images of a sampled patient together)" if unit == "patient" else ""))
    if isinstance(dig(metrics, "bias"), dict):
        facts.append(f"{split} bias: |sensitivity − specificity| {gap(metrics)}, recall spread "
                     f"{fmt(dig(metrics, 'bias', 'recall_spread'))}, predicted minus true pneumonia "
                     f"rate {fmt(dig(metrics, 'bias', 'positive_rate_skew'), signed=True)}")
    if number(s.get("threshold")) is not None:
        chosen_on = "out-of-fold scores of train + validation" if chosen_out_of_fold(s) else "validation"
        facts.append(f"decision threshold (rule `{esc(threshold_rule(s))}`, chosen on {chosen_on}): "
                     f"{fmt(s['threshold'])}")
    if not run.test:
        facts.append("**validation only**: no test split was scored; figures below are validation")
    if number(dig(metrics, "auc_pneumonia")) is not None:
        facts.append(f"{split} AUC pneumonia vs normal: {fmt(metrics['auc_pneumonia'])}")
    detection = dig(metrics, "subtype_detection")
    parts = [f"### {esc(run.run_id)}", "\n".join(f"- {f}" for f in facts)]
    parts += ["\n".join(f"- note: {esc(p)}" for p in run.problems)] if run.problems else []
    if run.command:
        # A fence longer than any backtick run inside shows the command verbatim.
        fence = "`" * max(3, 1 + max(map(len, re.findall(r"`+", run.command)), default=0))
        parts.append(f"Command:\n\n{fence}sh\n{run.command}\n{fence}")
    per_class = dig(metrics, "per_class")
    if isinstance(per_class, dict) and per_class:
        parts += [f"#### Per class ({split})", table([{
            "class": esc(c), "precision": fmt(dig(m, "precision")), "recall": fmt(dig(m, "recall")),
            "f1": fmt(dig(m, "f1")), "support": esc(dig(m, "support"))}
            for c, m in per_class.items()], "")]
    if isinstance(detection, dict) and detection:
        names = {"bacteria": "bacterial pneumonia detected", "virus": "viral pneumonia detected",
                 "normal_flagged": "normal flagged (false alarms)"}
        parts += [f"#### Detection by subtype ({split}, at the validation threshold)", table([
            {"subtype": esc(names.get(k, k)), "rate": fmt(v)} for k, v in detection.items()], "")]
    if any(isinstance(t.get("hparams"), dict) and "score" in t["hparams"] for t in run.trials):
        parts += ["#### By family and score (validation)", render_by_family(run)]
    if isinstance(s.get("refit"), dict):
        parts += ["#### Cross-validated refit: out-of-fold estimate beside test", render_refit(s)]
    elif isinstance(s.get("refit_skipped"), dict) and s["refit_skipped"].get("rejected"):
        parts += ["#### Cross-validated refit: rejected", (
            f"Every refit configuration had a fold model that failed ("
            f"{render_failed_folds(s['refit_skipped']['rejected'])}), so every choice was made on "
            f"validation and the saved model is the search's."), ""]
    elif isinstance(s.get("refit_skipped"), dict):
        skipped = s["refit_skipped"]
        parts += ["#### Cross-validated refit: skipped", (
            f"`--refit cv:{esc(skipped.get('folds_requested'))}` asked for; two folds of the best "
            f"configuration needed about {minutes(skipped.get('seconds_needed'))} minutes and "
            f"{minutes(skipped.get('seconds_left'))} were left in the time budget, so every choice was "
            f"made on validation."), ""]
    parts += ["#### Trials", render_trials(run)]
    if run.knn:
        parts += ["#### KNN on features (setting chosen on validation)", render_knn(run.knn)]
    if run.tsne is not None:
        parts += [f"#### t-SNE ({esc(dig(run.tsne, 'method') or DASH)})", render_tsne(run, out)]
    plots = [f"![{title}]({rel(run.folder / name, out)})" for name, title in PLOTS
             if name in run.pngs]
    parts += ["#### Plots", "\n\n".join(plots)] if plots else []
    return "\n\n".join(parts)
