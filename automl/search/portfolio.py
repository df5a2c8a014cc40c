"""Warm start: configurations that did well on this data set in committed runs, tried first.

A search of 18 minutes on 2 CPU cores screens about fifteen configurations; which of them
a seed happens to draw decided much of a run's result (seed 0 kept drawing 32-filter
networks that cost half the budget at full size). Like auto-sklearn 2.0's portfolio and
AutoGluon's presets, the first configurations a search draws are a short list chosen on
*validation* records of earlier runs (``automl/search/portfolio.json``, written by
``benchmarks/portfolio.py``); they are screened and ranked like any other, and random
draws follow. A portfolio entry outside the run's search space (``--families``, ``--fix``,
the blocks an image size allows) is passed over.
"""

from __future__ import annotations

import json
from importlib import resources

from automl.records.trials import config_key


def entries(task: str) -> list[dict]:
    """The task's portfolio, best first: dicts with ``values`` (hyperparameters without
    the image size) and where they came from. Empty for a task without one."""
    shipped = json.loads(resources.files("automl.search").joinpath("portfolio.json").read_text("utf-8"))
    return list((shipped.get("tasks") or {}).get(task, {}).get("entries") or [])


def entry_number(configurations: list[dict], hparams: dict) -> int | None:
    """Which of ``configurations`` (1 = first) a trial's hyperparameters are, at any image size."""

    key = config_key(hparams)
    return next((i + 1 for i, values in enumerate(configurations) if config_key(values) == key), None)


def fits(hp, value) -> bool:
    """True when ``value`` is one the hyperparameter ``hp`` can take."""
    kind = type(hp).__name__
    if kind == "Fixed":
        return value == hp.value
    if kind == "Choice":
        return value in hp.values
    if kind == "Boolean":
        return isinstance(value, bool)
    if kind in ("Int", "Float"):
        return isinstance(value, (int, float)) and not isinstance(value, bool) \
            and hp.min_value <= value <= hp.max_value
    return False


def space_values(space: list, values: dict, hyperparameters_class) -> dict | None:
    """The values of every active hyperparameter of ``space`` (Keras Tuner's list, in
    declaration order, so that conditions see their parents) taken from ``values``, and the
    rest of ``values``; a fixed one not named there keeps its value. None when a value is
    missing or outside the space: the entry is not a configuration of this search."""
    hps = hyperparameters_class()
    for hp in space:
        hps.merge([hp])
        if not hps.is_active(hp):
            continue
        if hp.name not in values and type(hp).__name__ == "Fixed":
            hps.values[hp.name] = hp.value
        elif hp.name in values and fits(hp, values[hp.name]):
            hps.values[hp.name] = values[hp.name]
        else:
            return None
    # Hyperparameters a model declares only while training (batch size, balancing) join the
    # space after the first trial; until then their values ride along, and Keras Tuner keeps a
    # value already set when the hyperparameter is declared.
    declared = {hp.name for hp in space}
    hps.values.update({k: v for k, v in values.items() if k not in declared})
    return hps.values


class PortfolioMixin:
    """An oracle mixin: the first random draws are the portfolio's configurations, in order,
    each once. Keras Tuner keeps the values it has tried in its saved state, so a resumed
    search goes on after the entries it already drew."""

    def setup_portfolio(self, configurations: list[dict]) -> None:
        self.portfolio = list(configurations)

    def _random_values(self):
        from keras_tuner.src.engine import hyperparameters

        for index, configuration in enumerate(getattr(self, "portfolio", [])):
            values = space_values(self.hyperparameters.space, configuration,
                                  hyperparameters.HyperParameters)
            if values is not None and not self._duplicate(values):
                print(f"portfolio configuration {index + 1} of {len(self.portfolio)}", flush=True)
                return values
        return super()._random_values()
