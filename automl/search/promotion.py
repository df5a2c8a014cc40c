"""Multi-fidelity over image size: screen configurations small, retrain the best at full size."""

from __future__ import annotations

from pathlib import Path

from automl import records
from automl.records.trials import COMPLETED, RUNNING, config_key
from automl.settings import choices

# Share of the training time spent screening (the rest retrains the best screened
# configurations at full size), and how many screened trials come before the first
# retraining (the first ranking needs a few to be worth anything).
SCREEN_SHARE = 0.4
MIN_SCREENED = 6

# Full-size seconds per epoch over screened seconds per epoch, per unit of pixel ratio,
# until the run has retrained a configuration of its width (``base_filters``) to measure it:
# the median over the retrained configurations of the committed binary runs (64 -> 128 px on
# 2 CPU cores) was 2.4 for 4 times the pixels (a per-epoch fixed cost does not grow) ...
PRIOR_COST_PER_PIXEL_RATIO = 0.6
# ... but it depends on the width: 1.91 for 8 filters, 1.92 for 16, 2.86 for 32. The 8-filter
# nets are bound by the per-epoch fixed cost, the 32-filter ones by convolutions; one ratio for
# all would estimate a wide net from a narrow one's measurement at a fraction of its time.
PRIOR_COST_BY_WIDTH = {8: 1.91 / 4, 16: 1.92 / 4, 32: 2.86 / 4}
# How much longer than its even share of the full-size stage one ensemble member may take:
# on the committed runs the estimate below erred by a median of 16%, at most 77%.
MEMBER_SLACK = 1.5
# How far below the best screen's validation objective a screen may be and still be taken for
# its shorter full-size time: of the configurations the committed binary runs retrained at
# 128 px, those screened below 0.7 AUC came out far below those screened at 0.78 or more, and
# a screen well below the best, retrained for its time, takes one of the ensemble's full-size
# slots with a weak model.
PROMOTION_MARGIN = 0.1


def stage_seconds(trial_records: list[dict], screen_size: int,
                  key: str = "seconds") -> tuple[float, float, int]:
    """What screened trials and full-size trials have cost so far (failed and pruned ones
    included: it was spent), and how many full-size trials ended; ``key``: the records' cost
    field (wall ``seconds``, or ``compute`` units under a compute budget)."""
    screen = [r for r in trial_records if (r.get("image_size") or 0) == screen_size]
    full = [r for r in trial_records if (r.get("image_size") or 0) != screen_size]
    def spent(part):
        return sum(float(r.get(key) or 0) for r in part)

    return spent(screen), spent(full), len(full)


def epoch_seconds(record: dict, key: str = "seconds") -> float | None:
    """Cost per trained epoch of a trial record (its ``key``: wall seconds or compute units;
    None without a finished epoch)."""
    epochs = len((record.get("history") or {}).get("loss") or [])
    return float(record[key]) / epochs if epochs and record.get(key) else None


def cost_ratio(trial_records: list[dict], screen_size: int, full_size: int,
               width: int | None = None, cost_key: str = "seconds") -> float:
    """Full-size over screened cost per epoch (``cost_key``: seconds or compute units),
    measured on the configurations of this ``width`` (``base_filters``; None: any) that this
    run has trained at both sizes (their median), else a prior: in seconds the width's, scaled
    by the pixel ratio; in compute the pixel ratio itself (a layer's count grows with its pixels)."""
    timed = [(r, config_key(r.get("hparams") or {}), epoch_seconds(r, cost_key)) for r in trial_records
             if width is None or (r.get("hparams") or {}).get("base_filters") == width]
    screened = {}
    for r, key, seconds in timed:
        if (r.get("image_size") or 0) == screen_size and seconds:
            screened.setdefault(key, seconds)
    ratios = [seconds / screened[key] for r, key, seconds in timed
              if (r.get("image_size") or 0) == full_size and r.get("status") == COMPLETED
              and seconds and key in screened]
    if ratios:
        return float(sorted(ratios)[len(ratios) // 2])
    if cost_key != "seconds":
        return (full_size / screen_size) ** 2
    return PRIOR_COST_BY_WIDTH.get(width, PRIOR_COST_PER_PIXEL_RATIO) * (full_size / screen_size) ** 2


def promotion_choice(ranked: list, estimates: dict, allowance: float | None, members: int,
                     margin: float = PROMOTION_MARGIN):
    """Which of the ``ranked`` screened trials (best first, none retrained yet) to retrain:
    of the best ``members`` whose score is within ``margin`` of the best's, the best whose
    estimated full-size seconds (``estimates[trial_id]``, None = unknown) fit the
    ``allowance``, else the cheapest of them. Without an allowance (no time budget), the best.

    Why: at two epochs the big networks rank first (they learn fastest early), and one of
    them retrained at full size could take half a short budget: the search then ended with
    two full-size models where its ensemble wanted three. Keeping to the best few screens,
    and to those near the best score, bounds what the ranking gives up for time."""
    if allowance is None or not ranked:
        return ranked[0] if ranked else None
    near = [t for t in ranked[:max(members, 1)] if abs(t.score - ranked[0].score) <= margin]
    for trial in near:
        estimate = estimates.get(trial.trial_id)
        if estimate is None or estimate <= allowance:
            return trial
    return min(near, key=lambda t: estimates[t.trial_id])


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
                        hyperband: bool, records_path: Path | None = None,
                        budget_amount: float | None = None, members: int = 1,
                        trial_limit: float | None = None, key: str = "seconds") -> None:
        """``budget_amount``: the search's budget (wall seconds, or compute units with ``key``
        ``compute``: the promotion is priced in the trial records' ``key``); with it, a
        full-size trial should fit one ``members``-th of the full-size stage's share (see
        :func:`promotion_choice`); ``trial_limit``: the per-trial limit, which caps any estimate."""
        self.screen_size, self.full_size = screen_size, full_size
        self.promotion_epochs, self.promotion_hyperband = max_epochs, hyperband
        self.records_path = records_path
        self.force_promotion = False
        self.promotion_members = max(members, 1)
        self.full_stage_seconds = (1 - SCREEN_SHARE) * budget_amount if budget_amount else None
        self.trial_seconds = trial_limit
        self.cost_key = key

    def member_allowance(self, full_seconds: float, full_trials: int, workers: int) -> float | None:
        """Seconds one more full-size trial may take: what is left of the full-size stage's
        share of the budget (on every worker) over the ensemble members still wanted, with
        :data:`MEMBER_SLACK`."""
        if not self.full_stage_seconds:
            return None
        # Wall time passes on every worker at once; a compute budget is the workers' together.
        sharing = max(workers, 1) if self.cost_key == "seconds" else 1
        left = max(self.full_stage_seconds * sharing - full_seconds, 0.0)
        return MEMBER_SLACK * left / max(self.promotion_members - full_trials, 1)

    def full_size_estimates(self, trials: list, trial_records: list[dict]) -> dict:
        """Estimated wall seconds of retraining each of ``trials`` at full size for the
        promotion's epochs (None where its screen has no timed epoch)."""
        by_id = {r.get("trial_id"): r for r in trial_records}
        estimates, ratios = {}, {}
        for trial in trials:
            per_epoch = epoch_seconds(by_id.get(trial.trial_id) or {}, self.cost_key)
            width = trial.hyperparameters.values.get("base_filters")
            if width not in ratios:  # one pass over the records per width, not per trial
                ratios[width] = cost_ratio(trial_records, self.screen_size, self.full_size, width=width,
                                           cost_key=self.cost_key)
            ratio = ratios[width]
            estimate = per_epoch * ratio * self.promotion_epochs if per_epoch else None
            if estimate is not None and self.trial_seconds:
                estimate = min(estimate, self.trial_seconds)
            estimates[trial.trial_id] = estimate
        return estimates

    def _screened(self) -> tuple[list, list, list]:
        """Screened trials that ended, those of them with a score, and full-size trials."""
        trials = list(self.trials.values())
        ended = [t for t in trials if t.hyperparameters.values.get("image_size") == self.screen_size
                 and t.status != RUNNING]
        scored = [t for t in ended if t.status == COMPLETED and t.score is not None]
        full = [t for t in trials if t.hyperparameters.values.get("image_size") == self.full_size]
        return ended, scored, full

    def needs_final_promotion(self) -> bool:
        """True when the budget ends with no full-size model (no trial retrained yet, or every
        one pruned or failed, none still running) but a screened configuration not yet
        retrained: the search then retrains that one rather than end without a model at the
        size the user asked for."""
        _, scored, full = self._screened()
        retrained = {config_key(t.hyperparameters.values) for t in full}
        untried = any(config_key(t.hyperparameters.values) not in retrained for t in scored)
        running = any(t.status == RUNNING for t in full)
        return untried and not running and not self._has_full_size_model(full)

    def _has_full_size_model(self, full: list) -> bool:
        """Whether a full-size trial completed unpruned. Keras Tuner marks a pruned trial
        COMPLETED; the trial records tell them apart (without records, any full-size trial counts)."""
        if not full or not self.records_path:
            return bool(full)
        return any(r.get("status") == COMPLETED and r.get("image_size") == self.full_size
                   for r in records.read_jsonl(self.records_path))

    def next_promotion(self) -> dict | None:
        """The values of the next full-size trial, or None (keep screening)."""
        ended, screened, full = self._screened()
        # Failed screens (an architecture too deep for the small size) count towards the
        # first ranking too: they were tried, and waiting for more would starve the search.
        if not screened or (len(ended) < MIN_SCREENED and not self.force_promotion):
            return None
        trial_records = records.read_jsonl(self.records_path) if self.records_path else []
        screen_seconds, full_seconds, full_ended = stage_seconds(trial_records, self.screen_size,
                                                                 self.cost_key)
        # A full-size trial still running counts as long as the finished ones took.
        running = len(full) - full_ended
        full_seconds += max(running, 0) * (full_seconds / full_ended if full_ended else 0.0)
        if screen_seconds < SCREEN_SHARE / (1 - SCREEN_SHARE) * full_seconds and not self.force_promotion:
            return None
        retrained = {config_key(t.hyperparameters.values) for t in full}
        ranked, seen = [], set(retrained)
        for trial in sorted(screened, key=lambda t: t.score, reverse=self.objective.direction == "max"):
            key = config_key(trial.hyperparameters.values)
            if key not in seen:  # a configuration screened twice counts once
                seen.add(key)
                ranked.append(trial)
        estimates = self.full_size_estimates(ranked, trial_records)
        workers = len({r.get("worker") for r in trial_records}) or 1
        allowance = self.member_allowance(full_seconds, len(full), workers)
        trial = promotion_choice(ranked, estimates, allowance, self.promotion_members)
        if trial is None:
            return None
        if trial is not ranked[0]:
            def about(t):
                cost = estimates[t.trial_id]
                return choices.budget_text(cost, self.cost_key) if cost is not None else "an unknown cost"
            print(f"retraining trial {trial.trial_id}'s configuration at {self.full_size} px (about "
                  f"{about(trial)}) rather than the better-screened trial {ranked[0].trial_id}'s "
                  f"(about {about(ranked[0])}): about "
                  f"{choices.budget_text(allowance, self.cost_key)} are left "
                  f"for each ensemble member still to train", flush=True)
        values = {k: v for k, v in trial.hyperparameters.values.items() if not k.startswith("tuner/")}
        values["image_size"] = self.full_size
        if self.promotion_hyperband:
            # A fresh trial of the full epoch budget, outside Hyperband's brackets.
            values.update({"tuner/epochs": self.promotion_epochs, "tuner/initial_epoch": 0,
                           "tuner/bracket": 0, "tuner/round": 0})
        return values

    def populate_space(self, trial_id):
        values = self.next_promotion()
        if values is not None:
            return {"status": RUNNING, "values": values}
        return super().populate_space(trial_id)
