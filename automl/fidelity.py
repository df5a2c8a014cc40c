"""Multi-fidelity over image size: screen configurations small, retrain the best at full size."""

from __future__ import annotations

import json
from pathlib import Path

from automl import records

# Share of the training time spent screening (the rest retrains the best screened
# configurations at full size), and how many screened trials come before the first
# retraining (the first ranking needs a few to be worth anything).
SCREEN_SHARE = 0.4
MIN_SCREENED = 6


def config_key(values: dict) -> str:
    """A configuration's identity: its hyperparameters without Keras Tuner's bookkeeping
    (``tuner/*``) and without the image size it was trained at."""
    return json.dumps({k: v for k, v in values.items() if not k.startswith("tuner/") and k != "image_size"},
                      sort_keys=True, default=str)


def stage_seconds(trial_records: list[dict], screen_size: int) -> tuple[float, float, int]:
    """Wall seconds spent on screened trials and on full-size trials so far (failed and
    pruned ones included: their time was spent), and how many full-size trials ended."""
    screen = [r for r in trial_records if (r.get("image_size") or 0) == screen_size]
    full = [r for r in trial_records if (r.get("image_size") or 0) != screen_size]
    def seconds(part):
        return sum(float(r.get("seconds") or 0) for r in part)

    return seconds(screen), seconds(full), len(full)


class SizePromotionMixin:
    """An oracle mixin: between the underlying tuner's trials (screened at ``screen_size``),
    hand out the best screened configuration not yet retrained, at ``full_size`` and for
    ``max_epochs``, whenever screening has had its share of the wall time.

    The time each stage took is read from the run's trial records (``records_path``: the
    chief of a distributed search shares the run folder with its workers); the ranking,
    from the oracle's own trials. So the decision is the same for one process or a chief
    with workers, and after a resume. It is anytime: a search stopped at any moment has
    had its best screened configurations retrained.
    """

    def setup_promotion(self, *, screen_size: int, full_size: int, max_epochs: int,
                        hyperband: bool, records_path: Path | None = None) -> None:
        self.screen_size, self.full_size = screen_size, full_size
        self.promotion_epochs, self.promotion_hyperband = max_epochs, hyperband
        self.records_path = records_path
        self.force_promotion = False

    def _screened(self) -> tuple[list, list, list]:
        """Screened trials that ended, those of them with a score, and full-size trials."""
        trials = list(self.trials.values())
        ended = [t for t in trials if t.hyperparameters.values.get("image_size") == self.screen_size
                 and t.status != "RUNNING"]
        scored = [t for t in ended if t.status == "COMPLETED" and t.score is not None]
        full = [t for t in trials if t.hyperparameters.values.get("image_size") == self.full_size]
        return ended, scored, full

    def needs_final_promotion(self) -> bool:
        """True when the budget ends with no full-size trial yet but a screened configuration
        to retrain: the search then retrains that one rather than end without a model at
        the size the user asked for."""
        _, scored, full = self._screened()
        return bool(scored) and not full

    def next_promotion(self) -> dict | None:
        """The values of the next full-size trial, or None (keep screening)."""
        ended, screened, full = self._screened()
        # Failed screens (an architecture too deep for the small size) count towards the
        # first ranking too: they were tried, and waiting for more would starve the search.
        if not screened or (len(ended) < MIN_SCREENED and not self.force_promotion):
            return None
        trial_records = records.read_jsonl(self.records_path) if self.records_path else []
        screen_seconds, full_seconds, full_ended = stage_seconds(trial_records, self.screen_size)
        # A full-size trial still running counts as long as the finished ones took.
        running = len(full) - full_ended
        full_seconds += max(running, 0) * (full_seconds / full_ended if full_ended else 0.0)
        if screen_seconds < SCREEN_SHARE / (1 - SCREEN_SHARE) * full_seconds and not self.force_promotion:
            return None
        retrained = {config_key(t.hyperparameters.values) for t in full}
        ranked = sorted(screened, key=lambda t: t.score, reverse=self.objective.direction == "max")
        for trial in ranked:
            if config_key(trial.hyperparameters.values) not in retrained:
                values = {k: v for k, v in trial.hyperparameters.values.items() if not k.startswith("tuner/")}
                values["image_size"] = self.full_size
                if self.promotion_hyperband:
                    # A fresh trial of the full epoch budget, outside Hyperband's brackets.
                    values.update({"tuner/epochs": self.promotion_epochs, "tuner/initial_epoch": 0,
                                   "tuner/bracket": 0, "tuner/round": 0})
                return values
        return None

    def populate_space(self, trial_id):
        values = self.next_promotion()
        if values is not None:
            return {"status": "RUNNING", "values": values}
        return super().populate_space(trial_id)
