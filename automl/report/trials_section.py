"""A run's trials: the trial table, the telling hyperparameters, the best value per family and score."""

from __future__ import annotations

from automl.records.runs import Run
from automl.records.trials import COMPLETED
from automl.records.values import dig, number
from automl.report.markdown import DASH, esc, fmt, fmt_count, short_text, table

KEY_HPARAMS = ("family", "score", "intensity", "blocks", "base_filters", "learning_rate", "augment",
               "balancing", "batch_size")


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
