"""The search's budget: wall-clock minutes or compute units, how much is spent, when it ends, how
far a trial may overrun it, and what is kept for the refit that follows.

Every decision the budget takes reads :meth:`Budget.clock`: the wall clock (seconds) under a
time budget, the compute spent so far (units, :mod:`automl.models.cost`) under a compute
budget. Compute is charged at each epoch end (:meth:`Budget.charge`) and recorded per trial, so
a compute budget makes the same decisions on every machine and on every rerun.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from automl import records
from automl.settings import choices


def now() -> float:
    """Wall-clock seconds since the epoch: the search reads its clock only here."""
    return time.time()


@dataclass
class Budget:
    """The search's budget.

    Attributes:
        minutes: a wall-clock budget, in minutes; None: none.
        units: a compute budget, in compute units (it replaces ``minutes``); None: none.
            Without either, every method answers None and the budget is never spent.
        reserve: the amount (in the budget's unit) to keep free at its end for the refit,
            estimated when asked (from the trials so far); None: nothing kept.
        records_path: the run's ``trials.jsonl``, whose trials' ``compute`` is what a
            compute budget has spent (every worker's, and before a resume).
        started: when the wall clock started (seconds since the epoch); :meth:`start` sets
            it again when the search begins.
        running: compute charged to the trial now training, not yet in its record.
    """

    minutes: float | None = None
    units: float | None = None
    reserve: Callable[[], float] | None = None
    records_path: Path | None = None
    started: float = field(default_factory=now)
    running: float = 0.0

    def __deepcopy__(self, memo) -> Budget:
        # Keras Tuner deep-copies each trial's callbacks; they must all read this one budget.
        return self

    @property
    def computed(self) -> bool:
        """True for a compute budget."""
        return self.units is not None

    @property
    def key(self) -> str:
        """The trial records' field that this budget's unit prices: ``compute`` or ``seconds``."""
        return choices.COMPUTE if self.computed else "seconds"

    @property
    def amount(self) -> float | None:
        """The budget in its unit (units, or seconds)."""
        return self.units if self.computed else 60 * self.minutes if self.minutes else None

    def start(self) -> Budget:
        """Start the wall clock now; returns the budget."""
        self.started = now()
        return self

    def charge(self, units: float) -> None:
        """Add ``units`` of compute to the trial now training (at every epoch end)."""
        self.running += units

    def trial_recorded(self) -> None:
        """The running trial's record is written: its compute is counted there from now on."""
        self.running = 0.0

    def spent_compute(self) -> float:
        """Compute spent: the recorded trials' and the running one's."""
        recorded = sum(float(r.get(choices.COMPUTE) or 0.0)
                       for r in records.read_jsonl(self.records_path)) if self.records_path else 0.0
        return recorded + self.running

    def clock(self) -> float:
        """Where the budget stands: compute spent (units), or the wall clock (seconds)."""
        return self.spent_compute() if self.computed else now()

    def end(self) -> float | None:
        """Where the budget ends, on :meth:`clock`'s scale."""
        if self.computed:
            return self.units
        return self.started + self.amount if self.minutes else None

    def overrun(self) -> float:
        """How far past its end a trial running then may train: a tenth of the budget, at most
        :data:`automl.settings.choices.OVERRUN_MINUTES` (in units: at the machine's rate)."""
        if self.computed:
            return min(0.1 * self.units, choices.OVERRUN_MINUTES * choices.UNITS_PER_MINUTE)
        return 60 * choices.overrun_minutes(self.minutes) if self.minutes else 0.0

    def stop_at(self) -> float | None:
        """The latest a trial running at the budget's end may train to: the end plus the overrun."""
        end = self.end()
        return end + self.overrun() if end is not None else None

    def reserved(self) -> float:
        """The amount kept free for the refit at the end of the budget (0 without one)."""
        return self.reserve() if self.reserve else 0.0

    def searching_is_over(self) -> bool:
        """True once the budget, less what is kept for the refit, is spent: no trial starts after."""
        end = self.end()
        return end is not None and self.clock() > end - self.reserved()

    def left(self) -> float | None:
        """What is left to the budget's end (in its unit)."""
        end = self.end()
        return end - self.clock() if end is not None else None

    def left_for_refit(self) -> float | None:
        """What is left to the end plus its overrun: the refit may overrun the budget as much as
        a trial running at its end may, since what was kept for it was estimated while searching."""
        stop_at = self.stop_at()
        return stop_at - self.clock() if stop_at is not None else None

    def trial_limit(self, trial_minutes: float | None) -> float | None:
        """One trial's limit (``--trial-minutes``) in the budget's unit."""
        if not trial_minutes:
            return None
        return trial_minutes * (choices.UNITS_PER_MINUTE if self.computed else 60)

    def text(self, amount: float) -> str:
        """``amount`` in the budget's unit, for messages."""
        return choices.budget_text(amount, self.key)
