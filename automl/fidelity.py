"""Multi-fidelity over image size: screen configurations small, retrain the best at full size."""

from __future__ import annotations

import json

# Share of the training compute spent screening (the rest retrains the best screened
# configurations at full size), and how many screened trials come before the first
# retraining (the first ranking needs a few to be worth anything).
SCREEN_SHARE = 0.4
MIN_SCREENED = 4


def config_key(values: dict) -> str:
    """A configuration's identity: its hyperparameters without Keras Tuner's bookkeeping
    (``tuner/*``) and without the image size it was trained at."""
    return json.dumps({k: v for k, v in values.items() if not k.startswith("tuner/") and k != "image_size"},
                      sort_keys=True, default=str)


def trial_cost(values: dict, full_size: int, max_epochs: int) -> float:
    """Planned training compute of a trial in full-size epochs (convolutions scale with the
    pixels): Hyperband's epochs for the trial, else the full epoch budget."""
    epochs = values.get("tuner/epochs", max_epochs) - values.get("tuner/initial_epoch", 0)
    return epochs * (values.get("image_size", full_size) / full_size) ** 2


class SizePromotionMixin:
    """An oracle mixin: between the underlying tuner's trials (screened at ``screen_size``),
    hand out the best screened configuration not yet retrained, at ``full_size`` and for
    ``max_epochs``, whenever screening has had its share of the compute.

    The decision reads only the oracle's own trials (their scores, values and epochs), so
    it is the same for one process or a chief with workers, and after a resume. It is
    anytime: a search stopped at any moment has its best screened configurations retrained.
    """

    def setup_promotion(self, *, screen_size: int, full_size: int, max_epochs: int,
                        hyperband: bool) -> None:
        self.screen_size, self.full_size = screen_size, full_size
        self.promotion_epochs, self.promotion_hyperband = max_epochs, hyperband

    def next_promotion(self) -> dict | None:
        """The values of the next full-size trial, or None (keep screening)."""
        trials = list(self.trials.values())
        screened = [t for t in trials if t.hyperparameters.values.get("image_size") == self.screen_size
                    and t.status == "COMPLETED" and t.score is not None]
        full = [t for t in trials if t.hyperparameters.values.get("image_size") == self.full_size]
        if len(screened) < MIN_SCREENED:
            return None
        screen_cost = sum(trial_cost(t.hyperparameters.values, self.full_size, self.promotion_epochs)
                          for t in screened)
        full_cost = (len(full) + 1) * self.promotion_epochs  # committed, the next one included
        if screen_cost < SCREEN_SHARE / (1 - SCREEN_SHARE) * full_cost:
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
