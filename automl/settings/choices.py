"""The named choices and defaults of a search, each defined once; the CLI and the code read them here."""

from __future__ import annotations

# The names of automl.tasks.TASKS, here so that the CLI lists them without importing
# TensorFlow (a test keeps the two equal).
TASK_NAMES = ("binary", "multiclass", "autoencoder")
DEFAULT_TASK = "binary"
# Where run folders go, relative to the working directory.
DEFAULT_OUT = "runs"

TUNERS = ("hyperband", "bayesian", "random", "grid")
DEFAULT_TUNER = "hyperband"

# Conv families built from scratch; the searched default.
FAMILIES = ("plain", "residual", "separable")
# keras.applications backbones (slow on a CPU; opt-in with --families).
APPLICATION_FAMILIES = ("efficientnetb0", "resnet50", "densenet121")
ALL_FAMILIES = FAMILIES + APPLICATION_FAMILIES

# Named rules of automl.evaluation.decisions.choose_threshold; a number is also accepted, and so is an
# operating point "sens:X" / "spec:X" (the threshold that keeps sensitivity / specificity at
# least X on the selection set: the screening user's "at 95% sensitivity").
THRESHOLD_RULES = ("balanced", "youden", "f1")
OPERATING_POINT_MEASURES = {"sens": "sensitivity", "spec": "specificity"}
DEFAULT_THRESHOLD = "balanced"

# "shift": select trials, thresholds and ensembles on validation pooled with simulated
# re-acquisitions of it (automl.data.shift); "plain": on validation alone.
VALIDATIONS = ("shift", "plain")
DEFAULT_VALIDATION = "shift"

# tf.distribute strategy inside each trial ("mirrored": all local GPUs).
STRATEGIES = ("none", "mirrored")
DEFAULT_STRATEGY = "none"

# --precision: "mixed" is float16 on a GPU, bfloat16 on a CPU with bfloat16 instructions
# (automl.models.precision); --xla: Keras's jit_compile ("auto": on a GPU, not on a CPU).
PRECISIONS = ("float32", "mixed")
DEFAULT_PRECISION = "mixed"
XLA_MODES = ("auto", "on", "off")
DEFAULT_XLA = "auto"

# --prune: the median stopping rule (automl.search.pruners) or none. It starts once this many
# trials of the same image size have finished, and never stops a trial before this epoch.
PRUNERS = ("median", "none")
DEFAULT_PRUNE = "median"
PRUNE_WARMUP_TRIALS = 3
PRUNE_MIN_EPOCH = 2
# Full-size trials of a screened search are the screen's best configurations, so they are
# judged later and against more of their peers: at epoch 2 of 128 px training the
# validation AUC still swings by tenths, and a 60-minute search pruned 7 of its 10 full-size
# trials there against the median of 3 (reports/perf_notes.md). They are pruned from half
# their epochs on, once this many full-size trials finished.
PRUNE_WARMUP_FULL_TRIALS = 5
# ... and, under --prune median, a trial whose validation AUC sat at exactly 0.5 (one score
# for every image) this many epochs in a row stops at once (automl.search.pruners.ChanceStopping).
CHANCE_EPOCHS = 2

# --portfolio: "on" draws the configurations of automl/search/portfolio.json first (automl.search.portfolio);
# on by default on real data only, for which those records were made.
PORTFOLIOS = ("on", "none")

# --refit: "none", or "cv:K": after the search, the best configurations are retrained on K
# patient-grouped folds of train + validation, and every decision is made on their
# out-of-fold scores (automl.refit.choose).
DEFAULT_REFIT = "none"
# Where the data is real, the refit is the binary task's default: with its fold models'
# weights averaged and calibrated it scored 0.934 and 0.936 on seeds 0 and 1 of the
# 18-minute default against 0.921 and 0.926 without it. The
# multiclass refit has no real-data study yet, so the multiclass default stays "none".
REAL_DATA_REFIT = {"binary": "cv:5"}
MAX_REFIT_FOLDS = 10
# K is the most folds: with a time budget the refit takes as many folds (then as many
# configurations) as fit the time left, at least 2 folds of the best one. While searching,
# the tuner keeps free the estimated refit of the best configurations on K folds, but never
# more than this share of the budget: on 2 CPU cores five folds of one 128 px configuration
# cost about as much as the whole 18-minute default, and a search cut to nothing has
# nothing worth refitting.
REFIT_MAX_SHARE = 0.5


def refit_folds(value: str | None) -> int:
    """``--refit`` as a fold count: ``none`` -> 0, ``cv:K`` -> K (2..MAX_REFIT_FOLDS)."""
    if value in (None, "", "none"):
        return 0
    kind, _, number = str(value).partition(":")
    if kind == "cv" and number.isdigit() and 2 <= int(number) <= MAX_REFIT_FOLDS:
        return int(number)
    raise ValueError(f"--refit: got {value!r}; choose none or cv:K with K from 2 to {MAX_REFIT_FOLDS}")


DEFAULT_BATCH_SIZE = 32  # a trial's batch size where it declares none
VAL_FRACTION = 0.2  # share of the pooled train+val patients held out for validation
PATIENCE = 4  # early-stopping patience, epochs
SEED = 0
# A trial still running when the time budget ends trains at most this much longer
# (and never more than a tenth of the budget).
OVERRUN_MINUTES = 4.0


def overrun_minutes(budget_minutes: float) -> float:
    return min(OVERRUN_MINUTES, 0.1 * budget_minutes)


# --budget compute:N: N compute units (automl.models.cost: a unit is 10^12 operations counted
# from each model's layers, plus a fixed charge per augmented training pixel), the same for a
# configuration on every machine. UNITS_PER_MINUTE is this machine's rate under deterministic
# training: 2 CPU cores ran the default binary study's trials at 22 to 27 units per trial
# minute (reports/perf.md), 12 to 14 on a slow day and about 50 without determinism on a fast
# one. It turns the per-trial limit and the overrun, given in minutes, into units.
UNITS_PER_MINUTE = 25.0
COMPUTE = "compute"


def compute_units(value: str | None) -> float | None:
    """``--budget`` as compute units: ``compute:N`` -> N; None for no compute budget (the
    wall-clock ``--time-budget`` then applies). ``compute`` alone is the data's default
    (:data:`BUDGETS`), filled in before a run starts.

    Raises:
        ValueError: anything else, naming the value.
    """
    if value in (None, ""):
        return None
    kind, _, number = str(value).partition(":")
    try:
        units = float(number)
    except ValueError:
        units = float("nan")
    if kind != COMPUTE or not units > 0:
        raise ValueError(f"--budget: got {value!r}; expected compute:N with N > 0 compute units "
                         f"(about {UNITS_PER_MINUTE:g} a minute on 2 CPU cores)")
    return units


def budget_text(amount: float, key: str) -> str:
    """An amount of a budget in its unit: ``seconds`` -> minutes, ``compute`` -> units."""
    return f"{amount / 60:.1f} minutes" if key == "seconds" else f"{amount:.0f} compute units"


# Budgets by the data a run finds. Real: picked from measured time-to-accuracy curves
# (reports/perf.md): `make search` ends within about 20 minutes on a 2-core CPU (no new
# trial after 18, the running one cut at most 1.8 minutes later, then the final scoring);
# configurations are screened at 64 px and the best retrained at 128 px (automl.search.promotion).
# Synthetic: the demo. Smoke: --smoke, a minute.
# A study's default budget is computed (STUDY_UNITS): as long here as the wall-clock default
# (18 minutes at about 25 units a minute, deterministic), the same training on any machine.
BUDGETS = {
    "real": {"max_trials": 60, "epochs": 12, "image_size": 128, "screen_size": 64,
             "time_budget_minutes": 18.0, "trial_minutes": 8.0, "ensemble": 3, "portfolio": "on"},
    "synthetic": {"max_trials": 20, "epochs": 10, "image_size": 48, "screen_size": 0,
                  "time_budget_minutes": 2.0, "trial_minutes": None, "ensemble": 1, "portfolio": "none"},
    "smoke": {"max_trials": 2, "epochs": 1, "image_size": 32, "screen_size": 0,
              "time_budget_minutes": 5.0, "trial_minutes": None, "ensemble": 1, "portfolio": "none"},
}
STUDY_UNITS = {"real": 450.0, "synthetic": 100.0, "smoke": 250.0}

# --deterministic: "auto" is on under a compute budget (its trials then train the same on every
# rerun) and off under the wall clock, whose decisions differ between reruns anyway.
DETERMINISTIC = ("auto", "on", "off")


def objective_direction(name: str) -> str:
    """``min`` for a loss (scikit-learn's ``*_loss`` convention), ``max`` for every other objective."""
    return "min" if name.endswith("loss") else "max"


def operating_point(value) -> tuple[str, float] | None:
    """``("sens", 0.95)`` for ``"sens:0.95"`` (likewise ``spec``); None for anything that is
    not an operating point. Raises ValueError for one whose target is not in (0, 1]."""
    name, sep, target = str(value).partition(":")
    if not sep or name not in OPERATING_POINT_MEASURES:
        return None
    try:
        number = float(target)
    except ValueError:
        number = float("nan")
    if not 0.0 < number <= 1.0:
        raise ValueError(f"threshold rule {value!r}: the target {OPERATING_POINT_MEASURES[name]} must be a "
                         "number in (0, 1]")
    return name, number


def is_named_threshold_rule(value) -> bool:
    """A rule that is chosen on labels (a named rule or an operating point), not a fixed number."""
    try:
        return value in THRESHOLD_RULES or operating_point(value) is not None
    except ValueError:
        return False


def check_threshold_rule(value: str | float) -> None:
    """Raise ValueError (one line, saying what is wrong) unless ``value`` is a named rule, an
    operating point (``sens:0.95``) or a finite number (a fixed threshold)."""
    operating_point(value)  # a malformed target says what is wrong with it
    if is_named_threshold_rule(value):
        return
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not (number == number and abs(number) != float("inf")):
        choices = allowed([*THRESHOLD_RULES, "sens:X", "spec:X", "a number"])
        raise ValueError(f"got {value!r}; choose {choices}")


def allowed(values) -> str:
    """``a, b or c``: the allowed values in an error message."""
    values = [str(v) for v in values]
    return values[0] if len(values) == 1 else f"{', '.join(values[:-1])} or {values[-1]}"
