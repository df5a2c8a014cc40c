"""The finished search (or peer) that the choose, score and explain stages read."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import keras
import pandas as pd

from automl.data.shift import SelectionSet
from automl.settings import choices
from automl.tasks.base import Task


@dataclass
class RunContext:
    """One finished search (or peer) as selection and scoring see it.

    ``config`` is the run's recorded configuration (``config.json``); scoring reads its
    ``image_size``, ``seed``, ``threshold`` and ``ensemble``. ``load_model`` turns a
    trial record into its trained model. ``selection`` is where every choice is made;
    ``parts["test"]`` is read once, after all of them.
    """

    run_dir: Path
    task: Task
    config: dict
    data_root: Path
    data_problems: list
    parts: dict[str, pd.DataFrame]
    selection: SelectionSet
    objective: str
    load_model: Callable[[dict], keras.Model]
    search_seconds: float = 0.0
    summary_extra: dict = field(default_factory=dict)  # e.g. {"peer": "autokeras"}
    # Rank only these trials: a peer system whose own search already chose its model
    # (none: no model to score). None: every recorded trial.
    trial_ids: tuple[str, ...] | None = None
    log: Callable = print
    # The cross-validated refit (automl.refit.fold_models.RefitResult): when given, every choice is made
    # on its out-of-fold scores and the scored model averages its fold models.
    refit: object | None = None

    @property
    def direction(self) -> str:
        return choices.objective_direction(self.objective)
