"""The search's wall-clock budget: when it started, when it ends, how far a trial may overrun it,
and the time kept for the refit that follows."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from automl.settings import choices


def now() -> float:
    """Wall-clock seconds since the epoch: the search reads its clock only here."""
    return time.time()


@dataclass
class Budget:
    """The search's wall-clock budget.

    Attributes:
        minutes: the budget, in minutes; None: no time budget (every method answers None,
            and the budget is never spent).
        reserve: the seconds to keep free at the end of the budget for the refit, estimated
            when asked (from the trials so far); None: nothing kept.
        started: when the budget's clock started (seconds since the epoch); :meth:`start`
            sets it again when the search begins.
    """

    minutes: float | None = None
    reserve: Callable[[], float] | None = None
    started: float = field(default_factory=now)

    def __deepcopy__(self, memo) -> Budget:
        # Keras Tuner deep-copies each trial's callbacks; they must all read this one budget.
        return self

    def start(self) -> Budget:
        """Start the clock now; returns the budget."""
        self.started = now()
        return self

    @property
    def seconds(self) -> float | None:
        """The budget in seconds."""
        return 60 * self.minutes if self.minutes else None

    def end(self) -> float | None:
        """When the budget ends (seconds since the epoch)."""
        return self.started + self.seconds if self.minutes else None

    def stop_at(self) -> float | None:
        """The latest a trial running at the budget's end may train to: the end plus the
        allowed overrun (:func:`automl.settings.choices.overrun_minutes`)."""
        return self.end() + 60 * choices.overrun_minutes(self.minutes) if self.minutes else None

    def reserved_seconds(self) -> float:
        """The seconds kept free for the refit at the end of the budget (0 without one)."""
        return self.reserve() if self.reserve else 0.0

    def searching_is_over(self) -> bool:
        """True once the budget, less the time kept for the refit, is spent: no trial starts after."""
        return bool(self.minutes) and now() > self.end() - self.reserved_seconds()

    def seconds_to_end(self) -> float | None:
        """Seconds from now to the budget's end."""
        return self.end() - now() if self.minutes else None

    def seconds_left_for_refit(self) -> float | None:
        """Seconds from now to the end plus its overrun: the refit may overrun the budget as much as
        a trial running at its end may, since the time kept for it was estimated while searching."""
        return self.stop_at() - now() if self.minutes else None
