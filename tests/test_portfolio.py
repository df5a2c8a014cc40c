"""The warm-start portfolio: drawn first, once each, within the run's space, named in the records."""

from __future__ import annotations

from unittest import mock

import keras_tuner as kt
import pytest

from automl import records
from automl.search import portfolio
from automl.settings.run_config import SearchConfig


def _space() -> kt.HyperParameters:
    hp = kt.HyperParameters()
    hp.Fixed("image_size", 64)
    hp.Choice("family", ["plain", "residual"])
    hp.Int("blocks", 2, 5)
    hp.Boolean("batch_norm")
    hp.Float("learning_rate", 1e-4, 1e-2, sampling="log")
    hp.Choice("optimizer", ["adamw", "sgd"])
    with hp.conditional_scope("optimizer", ["sgd"]):
        hp.Float("momentum", 0.0, 0.99)
    return hp


# batch_size is declared while training, so it is not in the space yet.
ENTRY = {"family": "residual", "blocks": 4, "batch_norm": False, "learning_rate": 0.0055,
         "optimizer": "adamw", "batch_size": 16}


def test_an_entry_takes_its_values_within_the_space_or_is_passed_over():
    space = _space().space

    def values(**change):
        return portfolio.space_values(space, dict(ENTRY, **change), kt.HyperParameters)

    got = values()
    assert got == {"image_size": 64, **ENTRY}  # the fixed size kept, the training-time value along
    assert "momentum" not in got  # inactive under adamw: neither needed nor set
    assert values(family="separable") is None  # --families left it out
    assert values(blocks=6) is None  # more blocks than the screen size pools
    assert values(image_size=128) is None  # a fixed value it disagrees with
    assert values(batch_norm=1) is None  # not a boolean
    assert values(optimizer="sgd") is None  # sgd needs its momentum, which the entry lacks
    assert values(optimizer="sgd", momentum=0.9)["momentum"] == 0.9
    assert portfolio.space_values(space, {k: v for k, v in ENTRY.items() if k != "blocks"},
                                  kt.HyperParameters) is None  # a value missing


def _oracle(tmp_path, entries):
    base = kt.oracles.RandomSearchOracle
    oracle = type("PortfolioRandom", (portfolio.PortfolioMixin, base), {})(
        objective=kt.Objective("score", "max"), max_trials=10, hyperparameters=_space(), seed=3)
    oracle._set_project_dir(str(tmp_path), "tuner")
    oracle.setup_portfolio(entries)
    return oracle


def _draw(oracle, tuner_id="tuner0") -> dict:
    trial = oracle.create_trial(tuner_id)
    oracle.update_trial(trial.trial_id, {"score": 0.5})
    oracle.end_trial(trial)
    return trial.hyperparameters.values


def test_the_portfolio_is_drawn_first_in_order_once_each_and_not_again_after_a_resume(tmp_path):
    outside = dict(ENTRY, family="separable")
    second = dict(ENTRY, blocks=2, learning_rate=0.001)
    oracle = _oracle(tmp_path, [ENTRY, outside, second])
    assert _draw(oracle) == {"image_size": 64, **ENTRY}
    oracle.save()
    # A resumed search rebuilds the oracle from its saved state: it goes on after entry 1.
    resumed = _oracle(tmp_path, [ENTRY, outside, second])
    resumed.reload()
    assert _draw(resumed, "tuner1") == {"image_size": 64, **second}
    drawn = [_draw(resumed, f"tuner{i}") for i in range(2, 6)]
    assert all(d["family"] != "separable" for d in drawn)
    assert not any(portfolio.entry_number([ENTRY, second], d) for d in drawn)  # random from here on


def test_the_shipped_portfolio_fits_the_default_real_data_space():
    """Every shipped entry is a whole configuration of today's search space at the default
    screening size: an entry that no longer fits would be passed over without a word."""
    from automl.search.hypermodel import TaskHyperModel
    from automl.settings import choices
    from automl.tasks import get_task
    from automl.tasks.base import SearchSpace

    budget = choices.BUDGETS["real"]
    for task_name in ("binary", "multiclass"):
        entries = portfolio.entries(task_name)
        assert entries, task_name
        hypermodel = TaskHyperModel.__new__(TaskHyperModel)
        hypermodel.space = SearchSpace(image_size=budget["image_size"], families=choices.FAMILIES)
        hypermodel.screen_size = budget["screen_size"]
        hp = kt.HyperParameters()
        hypermodel.declare_hyperparameters(hp)
        for entry in entries:
            trial_hp = hp.copy()
            trial_hp.values.update(entry["values"])
            # Building registers every architecture hyperparameter; training, the rest.
            task = get_task(task_name)
            task.build(trial_hp, hypermodel.space)
            task.training_choices(trial_hp)
            assert portfolio.space_values(trial_hp.space, entry["values"], kt.HyperParameters) is not None


def test_portfolio_option_is_on_for_real_data_only_and_checked():
    assert SearchConfig().with_defaults(synthetic=False).portfolio == "on"
    assert SearchConfig().with_defaults(synthetic=True).portfolio == "none"
    assert SearchConfig(portfolio="none").with_defaults(synthetic=False).portfolio == "none"
    with pytest.raises(ValueError, match="--portfolio"):
        SearchConfig(portfolio="maybe").validate()


def test_a_search_records_and_reports_its_portfolio_trials(synthetic_data, tmp_path):
    from automl.records import runs
    from automl.report import run_section
    from automl.search.hypermodel import TaskHyperModel
    from automl.search.orchestrator import run_search
    from automl.tasks.base import SearchSpace

    # Two whole configurations of the tiny synthetic space: its defaults, and a variant.
    config = SearchConfig(data=str(synthetic_data), tuner="random", image_size=48, epochs=1, max_trials=3,
                          families=("plain",), portfolio="on", out=str(tmp_path))
    hypermodel = TaskHyperModel.__new__(TaskHyperModel)
    hypermodel.space, hypermodel.screen_size = SearchSpace(image_size=48, families=("plain",)), None
    hp = kt.HyperParameters()
    hypermodel.declare_hyperparameters(hp)
    from automl.tasks import get_task

    get_task("binary").build(hp, hypermodel.space)
    first = {k: v for k, v in hp.values.items() if k != "image_size"}
    first.update(base_filters=8, balancing="oversample", batch_size=16, augment=0.5)
    second = dict(first, kernel_size=5, dropout=0.1)
    entries = [{"values": first}, {"values": dict(first, family="separable")}, {"values": second}]
    with mock.patch.object(portfolio, "entries", lambda task: entries):
        run_dir = run_search(config, log=lambda *a: None)
    trials = sorted(records.read_jsonl(run_dir / "trials.jsonl"), key=lambda t: t["trial_id"])
    assert [t["portfolio"] for t in trials] == [1, 3, None]
    assert {k: trials[0]["hparams"][k] for k in first} == first  # training-time values included
    assert {k: trials[1]["hparams"][k] for k in second} == second
    table = run_section.render_trials(runs.load_run(run_dir))
    assert table.count("(portfolio 1)") == table.count("(portfolio 3)") == 1
