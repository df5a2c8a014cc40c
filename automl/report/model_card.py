"""MODEL_CARD.md of a run: what the model is fit for, how it was chosen and scored, from its records."""

from __future__ import annotations

from pathlib import Path

from automl import records
from automl.evaluation.decisions import selection_operating_points
from automl.evaluation.metrics import chance_level_warning
from automl.records.summary import averaged_epochs, chosen_out_of_fold, saliency_images, threshold_rule
from automl.records.values import dig
from automl.report import plots
from automl.report.markdown import DASH, esc, fmt, fmt_ci, table
from automl.settings.labels import is_positive, negative_label, negative_name, own_labels, positive_name

INTENDED = ("Research and benchmarking only: not a medical device, not for diagnosis or triage. "
            "Trained and tested on pediatric anterior-posterior chest radiographs (children aged "
            "one to five) from one hospital, the Guangzhou Women and Children's Medical Center "
            "(Kermany et al., Cell 2018).")
OUT_OF_SCOPE = ("Adults; lateral or PA films from other protocols; other hospitals, scanners or "
                "post-processing; other findings (COVID-19, tuberculosis, effusion, devices); any "
                "clinical decision. The official test split was acquired differently from train "
                "and a model that looks perfect on validation still over-calls pneumonia there.")
FAILURE_MODES = ("Over-calling pneumonia on images whose exposure, contrast or framing differ from "
                 "training (the shifted test split shows it: read sensitivity against specificity "
                 "below); viral pneumonia is found less often than bacterial; scores are calibrated "
                 "on this data set only; a single run is one draw of the seed (a study reports the "
                 "spread).")

OWN_DATA = ("Research and benchmarking only: not a medical device, not for diagnosis or triage. "
            "Trained and tested on the images of `{data}` with their own labels: what holds for "
            "them says nothing of other hospitals, scanners, populations or findings.")


def write_model_card(run_dir: Path) -> Path:
    """``MODEL_CARD.md`` (and ``reliability.png`` where there are probabilities) in ``run_dir``,
    from ``summary.json``, ``scores.csv`` and ``command.txt`` alone; returns its path."""
    run_dir = Path(run_dir)
    summary = records.read_json(run_dir / "summary.json")
    command = (run_dir / "command.txt").read_text().strip() if (run_dir / "command.txt").exists() else DASH
    test, config, env = summary.get("test") or {}, summary.get("config") or {}, summary.get("env") or {}
    scores = records.read_scores(run_dir) if records.scores_file(run_dir) else None
    reliability = _reliability_png(run_dir, summary, scores)
    counts = dig(summary, "data", "counts") or {}
    sections = [
        f"# Model card: {esc(summary['run_id'])}",
        f"Task: **{esc(summary['task'])}** ({', '.join(map(esc, test.get('class_names', [])))}). "
        "Generated from the run's records by `automl`; nothing here is written by hand.",
        *([f"**Warning: {esc(warning)}.**"] if (warning := chance_level_warning(summary.get("objective")))
          else []),
        *(["## Intended use", OWN_DATA.format(data=esc(Path(str(config.get("data", DASH))).name))]
          if own_labels(summary) else ["## Intended use", INTENDED, "## Out of scope", OUT_OF_SCOPE]),
        "## Data and split",
        (f"{_data_set(summary, config)}, at "
         f"{config.get('image_size', DASH)} px greyscale. Train {counts.get('train', DASH)}, "
         f"validation {counts.get('val', DASH)}, test {counts.get('test', DASH)} images. Validation is "
         f"{fmt(config.get('val_fraction'), 2)} of official train + val, grouped by patient (no "
         f"patient in two splits) and stratified by subtype, seed {config.get('seed', DASH)}."),
        "## How the model was chosen",
        (f"Keras Tuner `{esc(config.get('tuner', DASH))}` search, {summary.get('trials_completed', DASH)} "
         f"completed and {summary.get('trials_failed', DASH)} failed trials in "
         f"{fmt((summary.get('search_seconds') or 0) / 60, 1)} minutes. " + _chosen(summary, config)
         + f" Decision threshold {fmt(summary.get('threshold'))}{_rule(summary)}, class weights "
         f"{summary.get('prior_weights') or DASH}. The test split was scored once, after every choice."),
        "## Test results", _results(test),
        "## Bias", _bias(test, summary),
        *(["## Operating points", _operating_points(points, summary)]
          if (points := selection_operating_points(scores, summary)) else []),
        "## Calibration",
        (f"Expected calibration error {fmt(test.get('ece'))}, Brier score {fmt(test.get('brier'))} "
         f"(of P({esc(positive_name(summary))}); lower is better)."
         + (f"\n\n![reliability diagram]({reliability})" if reliability else "")),
        "## Saliency faithfulness", _saliency(summary.get("saliency"), summary),
        "## Known failure modes", FAILURE_MODES,
        "## Versions and reproduction",
        (f"git commit `{esc(env.get('git_commit') or DASH)}` on {esc(env.get('device') or DASH)} "
         f"({esc(summary.get('precision_policy') or 'float32')} precision); "
         + ", ".join(f"{esc(k)} {esc(v)}" for k, v in (env.get("packages") or {}).items())
         + f"; Python {esc(env.get('python') or DASH)}."),
        f"```sh\n{command}\n```",
    ]
    path = run_dir / "MODEL_CARD.md"
    path.write_text("\n\n".join(sections) + "\n", encoding="utf-8")
    return path


def _data_set(summary: dict, config: dict) -> str:
    """Which data: Kermany's in its official split, or a manifest's (its split as given or carved)."""
    if not str(config.get("data", "")).lower().endswith((".csv", ".parquet", ".pq")):
        return "Kermany et al. 2018 chest X-rays (CC BY 4.0), official split"
    classes = ", ".join(map(esc, dig(summary, "classes", "names") or []))
    return f"The images of manifest `{esc(Path(config['data']).name)}` (classes {classes})"


def _chosen(summary: dict, config: dict) -> str:
    """How the model was chosen: on validation, or (after a cross-validated refit) the trial on
    validation and everything after it on the fold models' out-of-fold scores."""
    objective = (f"`{esc(dig(summary, 'objective', 'name'))}` = {fmt(dig(summary, 'objective', 'value'))}")
    validation = f"**{esc(config.get('validation', 'plain'))}** validation"
    refit = summary.get("refit")
    if not isinstance(refit, dict):
        return (f"Trial, epoch, ensemble and decision rule chosen on {validation} by {objective}; "
                f"ensemble used: {_ensemble(summary)}.")
    pooled = " pooled with their simulated re-acquisitions" if summary.get("val_shift") else ""
    averaged = ("the average of its weights over its last epochs, "
                if max(averaged_epochs(refit), default=1) > 1 else "")
    return (f"Trial chosen on {validation} by {objective}; then trial(s) "
            f"{', '.join(map(str, refit.get('trials', [])))} retrained from scratch on "
            f"{refit.get('folds')} patient-grouped folds of train + validation (cross-validated refit). "
            f"The configurations averaged ({', '.join(map(str, refit.get('chosen', [])))}), test-time "
            f"augmentation ({'used' if refit.get('tta') else 'not used'}), the decision threshold and "
            f"class weights were chosen on the fold models' out-of-fold scores{pooled}, each fold model "
            f"{averaged}calibrated on its own held-out images; the model is the average of the "
            f"calibrated fold models.")



def _saliency(result: dict | None, summary: dict) -> str:
    if not result:
        return "Not measured for this run (runs made before saliency existed, or the anomaly task)."
    return (f"{esc(result['method'])} maps, deletion test on {result['images']} {saliency_images(summary)}: "
            f"the area under P(pneumonia) is {fmt(result['saliency_area'])} when the most "
            f"salient pixels are deleted first and {fmt(result['random_area'])} when pixels are "
            f"deleted at random; difference {fmt(result['difference'])} (a faithful map makes the "
            "probability fall sooner; target ≥ 0.1). See `saliency_panel.png` for test images.")



def _rule(summary: dict) -> str:
    """`` (rule `sens:0.95`)`` after a threshold the run chose by that rule; nothing without one
    (multiclass runs choose class weights instead)."""
    if not isinstance(summary.get("threshold"), (int, float)):
        return ""
    return f" (rule `{esc(threshold_rule(summary))}`)"



def _operating_points(points: list[dict], summary: dict) -> str:
    where = "out-of-fold scores of train + validation" if chosen_out_of_fold(summary) else \
        "clean validation images"
    return "\n\n".join([
        (f"The run's own threshold ({fmt(summary.get('threshold'))}) came from rule "
         f"`{esc(threshold_rule(summary))}`. Other operating points, chosen on the "
         f"{where} (never on test); apply one with `automl predict --run RUN --threshold RULE`. A "
         "target met on these images can move on another population: the shift of this data "
         "set's test split moved specificity far more than sensitivity."),
        table([{"rule": f"`{esc(p['rule'])}`", "threshold": fmt(p["threshold"]),
                "sensitivity": fmt(p["sensitivity"]), "specificity": fmt(p["specificity"])}
               for p in points], DASH)])




def _ensemble(summary: dict) -> str:
    ensemble = summary.get("ensemble")
    if not ensemble:
        return "no (one model)"
    return f"yes, trials {', '.join(map(str, ensemble['trials']))}" if ensemble["used"] else "no"


def _results(test: dict) -> str:
    if not test:
        return "No test split was scored."
    ci = test.get("ci") or {}
    unit = test.get("ci_unit", "image")
    rows = [{"metric": "accuracy", "value [95% CI]": fmt_ci(test.get("accuracy"), ci.get("accuracy"))},
            {"metric": "balanced accuracy", "value [95% CI]": fmt(test.get("balanced_accuracy"))},
            {"metric": "macro-F1", "value [95% CI]": fmt_ci(test.get("f1_macro"), ci.get("f1_macro"))},
            {"metric": "AUC", "value [95% CI]": fmt_ci(test.get("auc"), ci.get("auc"))},
            {"metric": "sensitivity", "value [95% CI]": fmt(test.get("sensitivity"))},
            {"metric": "specificity", "value [95% CI]": fmt(test.get("specificity"))}]
    return (f"{test.get('n', DASH)} test images; intervals: percentile bootstrap over {esc(unit)}s, "
            "1,000 resamples.\n\n" + table(rows, ""))


def _bias(test: dict, summary: dict) -> str:
    if not test:
        return DASH
    bias, positive, negative = test.get("bias") or {}, positive_name(summary), negative_name(summary)
    recall = {c: dig(m, "recall") for c, m in (test.get("per_class") or {}).items()}
    detection = test.get("subtype_detection") or {}
    lines = [f"\\|sensitivity − specificity\\| {fmt(bias.get('sens_spec_gap'))}; recall spread "
             f"{fmt(bias.get('recall_spread'))}; predicted minus true {esc(positive)} rate "
             f"{fmt(bias.get('positive_rate_skew'), signed=True)}; {esc(positive)} called {esc(negative)} "
             f"{fmt(bias.get('false_normal_rate'))}.",
             "Recall per class: " + ", ".join(f"{esc(c)} {fmt(r)}" for c, r in recall.items()) + "."]
    if detection:
        lines.append("Detection per subtype: " + ", ".join(f"{esc(k)} {fmt(v)}" for k, v in detection.items())
                     + ".")
    return "\n\n".join(lines)


def _reliability_png(run_dir: Path, summary: dict, scores: dict | None) -> str | None:
    """The test split's reliability diagram of P(pneumonia), when the run has probabilities."""
    if summary.get("task") == "autoencoder" or scores is None or scores["test"].empty:
        return None
    test = scores["test"]
    p = records.positive_scores(test).to_numpy()
    y = is_positive(test.label, negative=negative_label(summary))
    plots.reliability_png(y, p, run_dir / "reliability.png", title=f"{summary['run_id']}: test")
    return "reliability.png"
