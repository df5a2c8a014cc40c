"""The run configuration: SearchConfig, its budget defaults, and one check of every option."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from automl.settings import choices
from automl.settings.choices import allowed


@dataclass
class SearchConfig:
    """Everything that defines a run; saved as ``config.json`` so ``--resume`` can rebuild it.

    ``None`` budget fields take the defaults for the data found (:data:`automl.settings.choices.BUDGETS`).
    """

    task: str = "binary"
    data: str | None = None
    tuner: str = choices.DEFAULT_TUNER
    max_trials: int | None = None
    epochs: int | None = None
    image_size: int | None = None
    batch_size: int | None = None
    seed: int = choices.SEED
    out: str = "runs"
    objective: str | None = None
    threshold: str = choices.DEFAULT_THRESHOLD
    validation: str = choices.DEFAULT_VALIDATION
    families: tuple[str, ...] = choices.FAMILIES
    pretrained: bool = False
    val_fraction: float = choices.VAL_FRACTION
    patience: int = choices.PATIENCE
    time_budget_minutes: float | None = None
    trial_minutes: float | None = None
    strategy: str = "none"
    ensemble: int | None = None
    # Choose only among trials whose CPU latency (ms per image, batch 1) is at most this.
    max_latency_ms: float | None = None
    # Multi-fidelity: screen at this many pixels, retrain the best at image_size (0: off).
    screen_size: int | None = None
    prune: str = choices.DEFAULT_PRUNE
    precision: str = choices.DEFAULT_PRECISION
    # "none" or "cv:K" (None: the data's default, choices.REAL_DATA_REFIT on real data).
    refit: str | None = None
    # Warm start from automl/portfolio.json ("on"/"none"; None: the budget's default).
    portfolio: str | None = None
    xla: str = choices.DEFAULT_XLA
    smoke: bool = False
    fixed: dict = field(default_factory=dict)

    @classmethod
    def load(cls, run_dir: Path) -> "SearchConfig":
        """The configuration a run folder was made with (its ``config.json``)."""
        # The one JSON read of the settings layer: records/ sits above it.
        saved = json.loads((Path(run_dir) / "config.json").read_text())
        saved["families"] = tuple(saved["families"])
        saved.setdefault("validation", "plain")  # runs made before shift validation existed
        # Runs made before pruning, screening and --precision existed trained without them.
        saved.setdefault("prune", "none")
        saved.setdefault("screen_size", 0)
        saved.setdefault("refit", "none")
        saved.setdefault("portfolio", "none")
        return cls(**saved)

    def with_defaults(self, synthetic: bool) -> "SearchConfig":
        """Unset budget fields filled from the smoke, synthetic or real budget."""
        budget = choices.BUDGETS["smoke" if self.smoke else "synthetic" if synthetic else "real"]
        values = {k: getattr(self, k) if getattr(self, k) is not None else v for k, v in budget.items()}
        if self.screen_size is None and values["screen_size"] >= values["image_size"]:
            values["screen_size"] = 0  # the budget's screening size only screens a larger image
        if self.refit is None:
            values["refit"] = choices.DEFAULT_REFIT if synthetic or self.smoke else \
                choices.REAL_DATA_REFIT.get(self.task, choices.DEFAULT_REFIT)
        return dataclasses.replace(self, **values)

    def validate(self) -> "SearchConfig":
        """Check every option that needs no task before anything is read or written; returns
        ``self``. The task's own checks (objective, image sizes) are
        :func:`automl.tasks.check_config`, which calls this first.

        Raises:
            ValueError: one line naming the option, what it got and what is allowed.
        """
        _one_of("--task", self.task, choices.TASK_NAMES)
        _one_of("--tuner", self.tuner, choices.TUNERS)
        _one_of("--validation", self.validation, choices.VALIDATIONS)
        _one_of("--strategy", self.strategy, choices.STRATEGIES)
        _one_of("--prune", self.prune, choices.PRUNERS)
        _one_of("--precision", self.precision, choices.PRECISIONS)
        _one_of("--xla", self.xla, choices.XLA_MODES)
        if self.portfolio is not None:
            _one_of("--portfolio", self.portfolio, choices.PORTFOLIOS)
        if self.refit is not None:
            choices.refit_folds(self.refit)
        try:
            choices.check_threshold_rule(self.threshold)
        except ValueError as error:
            raise ValueError(f"--threshold: {error}") from None
        unknown = [f for f in self.families if f not in choices.ALL_FAMILIES]
        if unknown or not self.families:
            raise ValueError(f"--families: got {','.join(unknown) or 'none'}; choose from "
                             f"{allowed(choices.ALL_FAMILIES)}")
        for name in ("max_trials", "epochs", "image_size", "batch_size", "ensemble"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"--{name.replace('_', '-')}: got {value!r}; expected a whole number >= 1")
        for name in ("time_budget_minutes", "trial_minutes", "max_latency_ms"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                unit = "milliseconds" if name == "max_latency_ms" else "minutes"
                raise ValueError(f"{name}: got {value!r}; expected {unit} > 0")
        if not 0 < self.val_fraction <= 0.5:
            raise ValueError(f"--val-fraction: got {self.val_fraction}; expected a share in (0, 0.5]")
        if self.patience < 0:
            raise ValueError(f"--patience: got {self.patience}; expected 0 or more epochs")
        if self.screen_size:
            if not isinstance(self.screen_size, int) or self.screen_size < 8:
                raise ValueError(f"--screen-size: got {self.screen_size!r}; expected pixels >= 8, "
                                 "or 0 for none")
            if self.image_size is not None and self.screen_size >= self.image_size:
                raise ValueError(f"--screen-size: got {self.screen_size} px, not below --image-size "
                                 f"{self.image_size} px; use 0 to train every trial at full size")
        return self

def _one_of(option: str, value, values) -> None:
    if value not in values:
        raise ValueError(f"{option}: got {value!r}; choose {allowed(values)}")
