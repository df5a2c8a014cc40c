"""The run configuration: SearchConfig, each field declared once as a search option.

Every field is an option of ``automl search`` and ``automl study``: its flag, default, allowed
values, checks and help are its :func:`~automl.settings.declare.option`; the CLI, ``validate()``
and the option tables of README.md and docs/options.md are made from it. The checks that need
a task (its objectives and image sizes) are :func:`automl.tasks.check_config`.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from automl.settings import choices
from automl.settings.choices import allowed
from automl.settings.declare import POSITIVE, WHOLE, Option, as_text, check, declared, option
from automl.settings.labels import POSITIVE_LABEL


def _by_data(name: str) -> str:
    """A budget default in words: ``60 real, 20 synthetic``."""
    real, synthetic = (choices.BUDGETS[kind][name] for kind in ("real", "synthetic"))
    return f"{as_text(real)} real, {as_text(synthetic)} synthetic"


def _check_threshold(value, config) -> None:
    try:
        choices.check_threshold_rule(value)
    except ValueError as error:
        raise ValueError(f"--threshold: {error}") from None


def _check_families(value, config) -> None:
    unknown = [f for f in value if f not in choices.ALL_FAMILIES]
    if unknown or not value:
        raise ValueError(f"--families: got {','.join(unknown) or 'none'}; choose from "
                         f"{allowed(choices.ALL_FAMILIES)}")


def _check_val_fraction(value, config) -> None:
    if not 0 < value <= 0.5:
        raise ValueError(f"--val-fraction: got {value}; expected a share in (0, 0.5]")


def _check_patience(value, config) -> None:
    if value < 0:
        raise ValueError(f"--patience: got {value}; expected 0 or more epochs")


def _check_screen_size(value, config) -> None:
    if not value:
        return
    if not isinstance(value, int) or value < 8:
        raise ValueError(f"--screen-size: got {value!r}; expected pixels >= 8, or 0 for none")
    if config.image_size is not None and value >= config.image_size:
        raise ValueError(f"--screen-size: got {value} px, not below --image-size {config.image_size} px; "
                         "use 0 to train every trial at full size")


def _check_refit(value, config) -> None:
    choices.refit_folds(value)


def _check_budget(value, config) -> None:
    if value and config.time_budget_minutes is not None:
        raise ValueError(f"--budget: got {value} and --time-budget {config.time_budget_minutes:g}; "
                         "give one of them (a compute budget or minutes)")
    if value != choices.COMPUTE:  # "compute" alone: the data's default, filled in by with_defaults
        choices.compute_units(value)


def _check_positive(value, config) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"--positive: got {value!r}; expected a label of the data")


_REAL_REFIT = ", ".join(f"{refit} for the {task} task" for task, refit in choices.REAL_DATA_REFIT.items())
_SMOKE = choices.BUDGETS["smoke"]
_STUDY_BUDGET = (f"the wall-clock --time-budget for a search; compute:{as_text(choices.STUDY_UNITS['real'])} "
                 f"real, compute:{as_text(choices.STUDY_UNITS['synthetic'])} synthetic for a study")


@dataclass
class SearchConfig:
    """Everything that defines a run; saved as ``config.json`` so ``--resume`` can rebuild it.

    ``None`` budget fields take the defaults for the data found (:data:`automl.settings.choices.BUDGETS`).
    The field order is the order of ``config.json`` and of ``--help``.
    """

    task: str = option(choices.DEFAULT_TASK, choices=choices.TASK_NAMES, make="TASK", help="what to learn")
    data: str | None = option(make="DATA", help="data folder or manifest (CSV/Parquet)",
                              default_text="$CXR_DATA_DIR, data/chest_xray, Kaggle, synthetic demo")
    # Your own labels: the binary task's positive class; the manifest's other label is the negative.
    positive: str = option(POSITIVE_LABEL, check=_check_positive, metavar="LABEL",
                           help="the label the binary and autoencoder tasks call positive; the other "
                                "label of the data is the negative class")
    tuner: str = option(choices.DEFAULT_TUNER, choices=choices.TUNERS, make="TUNER",
                        help="Keras Tuner algorithm")
    max_trials: int | None = option(rule=WHOLE, make="TRIALS", default_text=_by_data("max_trials"),
                                    help="most trials of the search")
    epochs: int | None = option(rule=WHOLE, make="EPOCHS", default_text=_by_data("epochs"),
                                help="max epochs per trial")
    image_size: int | None = option(rule=WHOLE, make="IMAGE_SIZE", default_text=_by_data("image_size"),
                                    help="pixels per side")
    batch_size: int | None = option(rule=WHOLE, help="pin the batch size instead of tuning it")
    seed: int = option(choices.SEED, make="SEED", help="split, weights and shifted copies")
    out: str = option(choices.DEFAULT_OUT, make="OUT", help="where run folders go")
    objective: str | None = option(default_text="the task's", help="validation metric to select on (a "
                                   "*_loss is minimised, anything else maximised)")
    threshold: str = option(choices.DEFAULT_THRESHOLD, check=_check_threshold, help="decision threshold "
                            f"rule: {', '.join(choices.THRESHOLD_RULES)}, an operating point sens:X or "
                            "spec:X (e.g. sens:0.95: the highest threshold that keeps selection-set "
                            "sensitivity >= 0.95), or a number")
    validation: str = option(choices.DEFAULT_VALIDATION, choices=choices.VALIDATIONS, help="select on "
                             "validation pooled with simulated re-acquisitions (shift) or on validation "
                             "alone (plain)")
    families: tuple[str, ...] = option(choices.FAMILIES, check=_check_families,
                                       help=f"comma list from {', '.join(choices.ALL_FAMILIES)}")
    pretrained: bool = option(False, help="ImageNet weights for applications")
    val_fraction: float = option(choices.VAL_FRACTION, check=_check_val_fraction,
                                 help="share of patients held out for validation")
    patience: int = option(choices.PATIENCE, check=_check_patience, help="early-stopping patience (epochs)")
    time_budget_minutes: float | None = option(
        flag="--time-budget", metavar="MIN", rule=POSITIVE, unit="minutes",
        default_text=_by_data("time_budget_minutes"),
        help="minutes after which no new trial starts; the running trial stops at its first epoch end "
             f"a tenth of the budget (at most {choices.OVERRUN_MINUTES:g} minutes) later")
    budget: str | None = option(metavar="compute:N", check=_check_budget,
                                default_text=_STUDY_BUDGET,
                                help="a compute budget in place of the wall clock: N units of training "
                                     "compute counted from each model's layers, the same on every machine "
                                     f"(about {choices.UNITS_PER_MINUTE:g} a minute on 2 CPU cores); every "
                                     "decision that would read the clock reads it instead")
    trial_minutes: float | None = option(metavar="MIN", rule=POSITIVE, unit="minutes",
                                         default_text=_by_data("trial_minutes"),
                                         help="limit of one trial's training (under a compute budget: "
                                              f"{choices.UNITS_PER_MINUTE:g} units a minute)")
    deterministic: str = option("auto", choices=choices.DETERMINISTIC,
                                help="seeded, deterministic ops and input order (auto: on under a compute "
                                     "budget); the same command then trains the same models")
    strategy: str = option(choices.DEFAULT_STRATEGY, choices=choices.STRATEGIES,
                           help="tf.distribute strategy inside each trial (mirrored: all local GPUs)")
    ensemble: int | None = option(metavar="K", rule=WHOLE, default_text=_by_data("ensemble"),
                                  help="average the top-K distinct trials if that wins on validation")
    # Choose only among trials whose CPU latency (ms per image, batch 1) is at most this.
    max_latency_ms: float | None = option(metavar="MS", rule=POSITIVE, unit="milliseconds",
                                          help="choose the best model among those that score one image "
                                               "in at most this many CPU milliseconds")
    # Multi-fidelity: screen at this many pixels, retrain the best at image_size (0: off).
    screen_size: int | None = option(metavar="PX", check=_check_screen_size,
                                     default_text=_by_data("screen_size"),
                                     help="multi-fidelity: screen configurations at this many pixels and "
                                          "retrain the best at --image-size; 0 for none")
    prune: str = option(choices.DEFAULT_PRUNE, choices=choices.PRUNERS, help="stop a trial whose objective "
                        "falls below the median of finished trials at the same epoch")
    precision: str = option(choices.DEFAULT_PRECISION, choices=choices.PRECISIONS, help="mixed: float16 on a "
                            "GPU, bfloat16 on a CPU that has it, float32 elsewhere; the autoencoder always "
                            "trains in float32 (its scores are small pixel differences)")
    # "none" or "cv:K" (None: the data's default, choices.REAL_DATA_REFIT on real data).
    refit: str | None = option(metavar="none|cv:K", check=_check_refit,
                               default_text=f"{_REAL_REFIT} on real data, {choices.DEFAULT_REFIT} otherwise",
                               help="after the search, retrain the best configurations on K patient-grouped "
                                    "folds of train + validation and make every choice on out-of-fold scores")
    # Warm start from automl/search/portfolio.json ("on"/"none"; None: the budget's default).
    portfolio: str | None = option(choices=choices.PORTFOLIOS, default_text=_by_data("portfolio"),
                                   help="draw first the configurations that did best on validation in "
                                        "committed runs (automl/search/portfolio.json)")
    xla: str = option(choices.DEFAULT_XLA, choices=choices.XLA_MODES,
                      help="XLA compilation of the train step (auto: on a GPU, not on a CPU)")
    smoke: bool = option(False, help=f"synthetic data, {_SMOKE['max_trials']} trials, {_SMOKE['epochs']} "
                                     f"epoch, {_SMOKE['image_size']} px")
    fixed: dict = option(factory=dict, flag="--fix", metavar="NAME=VALUE",
                         help="pin a hyperparameter (repeatable), e.g. --fix blocks=3")

    @classmethod
    def load(cls, run_dir: Path) -> "SearchConfig":
        """The configuration a run folder was made with (its ``config.json``)."""
        saved = json.loads((Path(run_dir) / "config.json").read_text())
        saved["families"] = tuple(saved["families"])
        saved.setdefault("validation", "plain")  # runs made before shift validation existed
        # Runs made before pruning, screening and --precision existed trained without them.
        saved.setdefault("prune", "none")
        saved.setdefault("screen_size", 0)
        saved.setdefault("refit", "none")
        saved.setdefault("portfolio", "none")
        saved.setdefault("budget", None)  # runs made before the compute budget: the wall clock
        saved.setdefault("deterministic", "auto")  # auto: off under the wall clock, as they trained
        return cls(**saved)

    def with_defaults(self, synthetic: bool) -> "SearchConfig":
        """Unset budget fields filled from the smoke, synthetic or real budget."""
        budget = choices.BUDGETS["smoke" if self.smoke else "synthetic" if synthetic else "real"]
        values = {k: getattr(self, k) if getattr(self, k) is not None else v for k, v in budget.items()}
        if self.screen_size is None and values["screen_size"] >= values["image_size"]:
            values["screen_size"] = 0  # the budget's screening size only screens a larger image
        if self.budget == choices.COMPUTE:
            kind = "smoke" if self.smoke else "synthetic" if synthetic else "real"
            values["budget"] = f"{choices.COMPUTE}:{choices.STUDY_UNITS[kind]:g}"
        if self.budget:
            values["time_budget_minutes"] = None  # the compute budget replaces the wall clock
        if self.refit is None:
            values["refit"] = choices.DEFAULT_REFIT if synthetic or self.smoke else \
                choices.REAL_DATA_REFIT.get(self.task, choices.DEFAULT_REFIT)
        return dataclasses.replace(self, **values)

    @property
    def compute_units(self) -> float | None:
        """The compute budget in units (None: the wall clock's ``time_budget_minutes``)."""
        return choices.compute_units(self.budget) if self.budget != choices.COMPUTE else None

    @property
    def is_deterministic(self) -> bool:
        """Whether trials train deterministically (``--deterministic``; auto: under a compute budget)."""
        return self.deterministic == "on" or (self.deterministic == "auto" and bool(self.budget))

    def validate(self) -> "SearchConfig":
        """Check every option's declared constraints before anything is read or written;
        returns ``self``. The task's own checks are :func:`automl.tasks.check_config`.

        Raises:
            ValueError: one line naming the option, what it got and what is allowed.
        """
        for spec in FIELD_OPTIONS:
            check(spec, getattr(self, spec.name), self)
        return self


#: The options of SearchConfig's fields, in field order.
FIELD_OPTIONS: tuple[Option, ...] = declared(SearchConfig)
#: Options of the command line that are no field of a run.
CLI_ONLY_OPTIONS: tuple[Option, ...] = (
    Option(name="verbose", short="-v", flag="--verbose", kind=bool, default=False,
           help="Keras Tuner's tables of each trial's hyperparameters and failed trials' tracebacks on "
                "the console (otherwise one line per epoch and per trial)"),
)
#: Every option of ``automl search`` and ``automl study``.
SEARCH_OPTIONS: tuple[Option, ...] = FIELD_OPTIONS + CLI_ONLY_OPTIONS
