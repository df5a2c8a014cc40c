"""A finished run's figures and model card, written from what the choose, score and explain stages found."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from automl import records
from automl.evaluation.explain import Explanation
from automl.report import plots
from automl.report.model_card import write_model_card


def write_figures(run_dir: Path, summary: dict, *, best: dict, trials: list[dict], objective: str,
                  cap: float | None, explanation: Explanation, log: Callable = print) -> None:
    """The run's PNGs: confusion matrix, ROC, training curves, an anomaly run's histograms and
    reconstructions, the latency Pareto plot of ``trials`` (the full-size ones) and a
    classifier's saliency panel. A figure never costs the scored results: a failed plot is
    the summary's ``plot_error``; the deletion test enters the summary as ``saliency`` once
    its panel is drawn."""
    try:
        plots.run_plots(run_dir, summary, best)
        if explanation.reconstruction_error is not None:
            raise explanation.reconstruction_error
        if explanation.reconstructions is not None:
            plots.anomaly_plots(run_dir, summary, explanation.reconstructions)
        plots.pareto_png(trials, objective, best["trial_id"], run_dir / "pareto.png", cap=cap)
    except Exception as error:  # a figure must not cost the scored results
        summary["plot_error"] = records.short_error(f"{type(error).__name__}: {error}")
        log(f"plots failed: {summary['plot_error']}")
    if explanation.saliency is None:
        return
    try:
        if explanation.panel is not None:
            panel = explanation.panel
            plots.saliency_panel_png(panel["images"], panel["maps"], panel["titles"],
                                     run_dir / "saliency_panel.png",
                                     title=f"{summary['run_id']}: Grad-CAM on test images (red = evidence "
                                           "for pneumonia)")
        summary["saliency"] = explanation.saliency
    except Exception as error:  # a figure must not cost the scored results
        log(f"saliency failed: {type(error).__name__}: {error}")


def write_card(run_dir: Path, *, log: Callable = print) -> None:
    """``MODEL_CARD.md`` (:func:`automl.report.model_card.write_model_card`) of a run whose
    ``summary.json`` is written; a failure is logged, never raised."""
    try:
        write_model_card(run_dir)
    except Exception as error:  # the card is a reading of the records, never worth the run
        log(f"model card failed: {type(error).__name__}: {error}")
