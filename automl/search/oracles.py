"""The oracles: each tuner algorithm's Keras Tuner oracle, with size promotion and the portfolio
warm start composed into its class once, before it is built; the end of the budget; the chief."""

from __future__ import annotations

import functools
import threading
import time
import types
from pathlib import Path

import keras_tuner as kt

from automl.search import portfolio, promotion
from automl.search.budget import Budget
from automl.settings import choices
from automl.settings.run_config import SearchConfig

# Each tuner algorithm's oracle (:data:`automl.settings.choices.TUNERS`).
ORACLES = {"hyperband": kt.oracles.HyperbandOracle, "bayesian": kt.oracles.BayesianOptimizationOracle,
           "random": kt.oracles.RandomSearchOracle, "grid": kt.oracles.GridSearchOracle}


@functools.cache
def oracle_class(algorithm: str, *, promoting: bool = False, warm_start: bool = False) -> type:
    """The oracle class of ``algorithm``; ``promoting``: it retrains the best screened
    configurations at full size (:class:`automl.search.promotion.SizePromotionMixin`);
    ``warm_start``: its first random draws are the portfolio's
    (:class:`automl.search.portfolio.PortfolioMixin`)."""
    cls = ORACLES[algorithm]
    if promoting:
        cls = type(f"SizePromoting{cls.__name__}", (promotion.SizePromotionMixin, cls), {})
    if warm_start:
        cls = type(f"Portfolio{cls.__name__}", (portfolio.PortfolioMixin, cls), {})
    return cls


def warm_starts(config: SearchConfig) -> bool:
    """Whether the search starts from the portfolio (a grid has no random draws to replace)."""
    return config.portfolio == "on" and config.tuner != "grid"


def build_oracle(config: SearchConfig, run_dir: Path, *, objective: str, budget: Budget,
                 configurations: list[dict]) -> kt.Oracle:
    """The configured oracle: its algorithm, the trial budget, size promotion under screening and
    the warm-start ``configurations``; ``budget``: the search's budget (its amount prices the
    promotion)."""
    cls = oracle_class(config.tuner, promoting=bool(config.screen_size), warm_start=warm_starts(config))
    common = dict(objective=kt.Objective(objective, direction=choices.objective_direction(objective)),
                  seed=config.seed, max_consecutive_failed_trials=10**6)
    if config.tuner == "hyperband":
        oracle = cls(max_epochs=max(config.epochs, 1), factor=3, hyperband_iterations=10**6, **common)
        # Hyperband sizes itself from max_epochs; cap it at the trial budget too.
        oracle.max_trials = config.max_trials
    else:
        oracle = cls(max_trials=config.max_trials, **common)
    if config.screen_size:
        oracle.setup_promotion(screen_size=config.screen_size, full_size=config.image_size,
                               max_epochs=max(config.epochs, 1), hyperband=config.tuner == "hyperband",
                               records_path=run_dir / "trials.jsonl", budget_amount=budget.amount,
                               members=config.ensemble or 1,
                               trial_limit=budget.trial_limit(config.trial_minutes),
                               key=budget.key)
    if warm_starts(config):
        oracle.setup_portfolio(configurations)
    return oracle


def end_of_budget(oracle) -> None:
    """The budget is spent: the oracle reports STOPPED on the next request, after
    one last trial if screening has not yet retrained any configuration at full size (a
    search must end with a model at the size it was asked for; the trial-time limit cuts
    that trial at the budget's allowed overrun)."""
    if getattr(oracle, "needs_final_promotion", None) and not oracle.force_promotion \
            and oracle.needs_final_promotion():
        oracle.force_promotion = True
        oracle.max_trials = len(oracle.trials) + 1
        print("budget spent before any full-size trial: retraining the best screened "
              "configuration at full size", flush=True)
    else:
        oracle.max_trials = len(oracle.trials)


def _short_sleep(seconds: float) -> None:
    time.sleep(min(seconds, 1.0))


def make_chief(oracle, budget: Budget) -> None:
    """Patches for the chief of a distributed search: poll workers every second (Keras
    Tuner waits 20 s once the budget is spent, so a search would end long after its last
    trial), and stop handing out trials once the ``budget`` is spent: at its end on the wall
    clock, or once the workers' recorded trials have spent a compute budget (checked every
    second: what a worker charges reaches the chief through its trial records)."""
    from keras_tuner.src.distribute import oracle_chief

    oracle_chief.time = types.SimpleNamespace(sleep=_short_sleep)
    if budget.computed:
        threading.Thread(target=_end_when_spent, args=(oracle, budget), daemon=True).start()
    elif budget.minutes:
        timer = threading.Timer(budget.left(), end_of_budget, args=(oracle,))
        timer.daemon = True
        timer.start()


def _end_when_spent(oracle, budget: Budget) -> None:
    while not budget.searching_is_over():
        time.sleep(1.0)
    end_of_budget(oracle)
