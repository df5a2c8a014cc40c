"""Pruning (median stopping), multi-fidelity over image size, precision: the efficiency choices."""

from __future__ import annotations

import types
from unittest import mock

import pytest

from automl import records
from automl.models import precision
from automl.records.trials import config_key
from automl.search import oracles, promotion, pruners
from automl.search.callbacks import Pruning
from automl.settings.run_config import SearchConfig
from automl.tasks import check_config


def _record(trial_id, curve, *, size=48, status="COMPLETED", initial=0):
    return {"trial_id": trial_id, "status": status, "image_size": size,
            "hparams": {"image_size": size, "tuner/initial_epoch": initial},
            "history": {"val_auc": curve}}


def test_the_median_is_taken_at_the_same_epoch_over_finished_trials_of_the_same_size():
    finished = [_record("0", [0.6, 0.7, 0.8]), _record("1", [0.5, 0.9]), _record("2", [0.55, 0.6, 0.65]),
                _record("3", [0.99, 0.99, 0.99], size=24),  # another image size: not compared
                _record("4", [0.9, 0.95], initial=2)]  # continued from epoch 2: starts at epoch 3
    assert pruners.curve_at(finished[1], "val_auc", 2, "max") == 0.9
    assert pruners.curve_at(finished[1], "val_auc", 3, "max") is None  # did not train that far
    assert pruners.curve_at(finished[4], "val_auc", 2, "max") is None
    assert pruners.curve_at(finished[4], "val_auc", 3, "max") == 0.9
    assert pruners.median_at(finished[:3], "val_auc", 2, "max") == (0.7, 3)
    assert pruners.median_at(finished[:3], "val_auc", 1, "min") == (0.55, 3)


def _stopper(tmp_path, finished, *, epochs=6, warmup=3):
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "trials.jsonl"
    for record in finished:
        records.append_jsonl(path, record)
    median = pruners.MedianStopping(path, "val_auc", image_size=48, warmup_trials=warmup, min_epoch=2)
    stopper = Pruning([median])
    stopper.set_model(types.SimpleNamespace(stop_training=False))
    stopper.set_params({"epochs": epochs})
    stopper.on_train_begin()
    return stopper


def test_a_trial_below_the_median_stops_and_says_why(tmp_path):
    finished = [_record(str(i), [0.6 + i / 100, 0.8 + i / 100, 0.9]) for i in range(3)]
    finished.append(_record("9", [0.1, 0.1, 0.1], status="PRUNED"))  # pruned trials are no reference
    stopper = _stopper(tmp_path, finished)
    stopper.on_epoch_end(0, {"val_auc": 0.5})
    assert not stopper.model.stop_training  # epoch 1: before min_epoch
    stopper.on_epoch_end(1, {"val_auc": 0.7})
    assert stopper.model.stop_training
    assert stopper.reason.details == {"rule": "median", "epoch": 2, "value": 0.7, "best": 0.7,
                                     "median": 0.81, "reference_trials": 3}


def test_no_pruning_above_the_median_before_the_warmup_or_at_the_last_epoch(tmp_path):
    finished = [_record(str(i), [0.6, 0.8]) for i in range(3)]
    above = _stopper(tmp_path / "a", finished)
    above.on_epoch_end(1, {"val_auc": 0.85})
    assert not above.model.stop_training
    few = _stopper(tmp_path / "b", finished[:2])
    few.on_epoch_end(1, {"val_auc": 0.1})
    assert not few.model.stop_training  # 2 finished trials < warm-up of 3
    last = _stopper(tmp_path / "c", finished, epochs=2)
    last.on_epoch_end(1, {"val_auc": 0.1})
    assert not last.model.stop_training  # its last epoch: stopping saves nothing


class _Trial:
    def __init__(self, trial_id, values, score, status="COMPLETED"):
        self.trial_id, self.score, self.status = trial_id, score, status
        self.hyperparameters = types.SimpleNamespace(values=values)


class _Oracle:
    objective = types.SimpleNamespace(name="val_auc", direction="max")

    def populate_space(self, trial_id):
        return {"status": "RUNNING", "values": {"image_size": 24, "lr": 0.5}}


class _PromotingOracle(promotion.SizePromotionMixin, _Oracle):
    pass


def _oracle(trials, tmp_path, seconds=()):
    """A promoting oracle over ``trials``; ``seconds``: (image size, seconds) trial records."""
    path = tmp_path / "trials.jsonl"
    path.unlink(missing_ok=True)
    for size, spent in seconds:
        records.append_jsonl(path, {"image_size": size, "seconds": spent, "status": "COMPLETED"})
    oracle = _PromotingOracle()
    oracle.trials = {t.trial_id: t for t in trials}
    oracle.setup_promotion(screen_size=24, full_size=48, max_epochs=8, hyperband=True, records_path=path)
    return oracle


def _screen(i, score, lr=None):
    values = {"image_size": 24, "lr": lr if lr is not None else i, "tuner/epochs": 2,
              "tuner/initial_epoch": 0, "tuner/trial_id": "x"}
    return _Trial(str(i), values, score)


def test_the_best_screened_configuration_is_retrained_at_full_size_when_screening_had_its_time(tmp_path):
    assert (promotion.SCREEN_SHARE, promotion.MIN_SCREENED) == (0.4, 6)
    scores = [0.7, 0.9, 0.6, 0.8, 0.5, 0.55]
    screened = [_screen(i, score) for i, score in enumerate(scores)]
    ten_each = [(24, 10.0)] * 6
    # Five screened trials are too few to rank; the sixth allows the first retraining.
    assert _oracle(screened[:5], tmp_path, ten_each[:5]).populate_space("5")["values"]["image_size"] == 24
    response = _oracle(screened, tmp_path, ten_each).populate_space("6")
    assert response["values"] == {"image_size": 48, "lr": 1, "tuner/epochs": 8, "tuner/initial_epoch": 0,
                                  "tuner/bracket": 0, "tuner/round": 0}
    # The retraining took 120 s: screening needs 0.4 / 0.6 of it (80 s) before the next
    # one; it has 70 s, then 90 s. The next is the best configuration not yet retrained.
    retrained = _Trial("6", dict(response["values"]), 0.95)
    more = [*screened, retrained, _screen(7, 0.99, lr=1)]  # lr=1 again: retrained already
    spent = [*ten_each, (48, 120.0), (24, 10.0)]
    assert _oracle(more, tmp_path, spent).next_promotion() is None
    assert _oracle(more, tmp_path, spent + [(24, 10.0)] * 2).next_promotion()["lr"] == 3
    # A retraining still running counts as long as the finished ones took.
    running = _Trial("8", {"image_size": 48, "lr": 3}, None, status="RUNNING")
    assert _oracle([*more, running], tmp_path, spent + [(24, 10.0)] * 2).next_promotion() is None


def test_failed_screens_count_towards_the_first_ranking(tmp_path):
    scored = [_screen(i, 0.6 + i / 10) for i in range(3)]
    failed = [_Trial(str(i), {"image_size": 24, "lr": i}, None, status="FAILED") for i in range(3, 6)]
    assert _oracle(scored + failed[:2], tmp_path, [(24, 10.0)] * 5).next_promotion() is None
    assert _oracle(scored + failed, tmp_path, [(24, 10.0)] * 6).next_promotion()["lr"] == 2
    # Six failed screens give nothing to retrain.
    nothing = [_Trial(str(i), {"image_size": 24, "lr": i}, None, status="FAILED") for i in range(6)]
    assert _oracle(nothing, tmp_path, [(24, 10.0)] * 6).next_promotion() is None


def _timed_oracle(tmp_path, screens, *, full=(), budget_seconds=1000.0):
    """A promoting oracle with a time budget over screened trials ``(id, score, seconds per
    epoch, lr)`` and retrained ones ``(id, lr, seconds per epoch)``; 2 screen epochs, 8 full."""
    path = tmp_path / "timed.jsonl"
    path.unlink(missing_ok=True)
    trials = []
    for trial_id, score, per_epoch, lr in screens:
        trials.append(_screen(trial_id, score, lr=lr))
        records.append_jsonl(path, {"trial_id": str(trial_id), "image_size": 24, "status": "COMPLETED",
                                    "seconds": 2 * per_epoch, "history": {"loss": [1.0, 0.5]},
                                    "hparams": {"image_size": 24, "lr": lr}})
    for trial_id, lr, per_epoch in full:
        trials.append(_Trial(str(trial_id), {"image_size": 48, "lr": lr}, 0.9))
        records.append_jsonl(path, {"trial_id": str(trial_id), "image_size": 48, "status": "COMPLETED",
                                    "seconds": 8 * per_epoch, "history": {"loss": [1.0] * 8},
                                    "hparams": {"image_size": 48, "lr": lr}})
    oracle = _PromotingOracle()
    oracle.trials = {t.trial_id: t for t in trials}
    oracle.setup_promotion(screen_size=24, full_size=48, max_epochs=8, hyperband=False, records_path=path,
                           budget_amount=budget_seconds, members=3, trial_limit=400.0)
    return oracle


def test_a_promotion_keeps_to_the_best_screens_whose_full_size_time_fits_an_ensemble_member(tmp_path):
    assert promotion.PRIOR_COST_PER_PIXEL_RATIO == 0.6 and promotion.MEMBER_SLACK == 1.5
    # Budget 1000 s: the full-size stage's share is 600 s, 200 s for each of 3 members,
    # 300 s with the slack. The prior ratio at 24 -> 48 px is 0.6 * 4 = 2.4 per epoch.
    screens = [(0, 0.95, 30.0, 0), (1, 0.93, 20.0, 1), (2, 0.90, 10.0, 2), (3, 0.99, 5.0, 3),
               (4, 0.50, 1.0, 4), (5, 0.80, 25.0, 5), (6, 0.2, 1.0, 6), (7, 0.1, 1.0, 7)]
    oracle = _timed_oracle(tmp_path, screens)
    trial_records = records.read_jsonl(oracle.records_path)
    estimates = oracle.full_size_estimates(list(oracle.trials.values()), trial_records)
    assert estimates["0"] == 400.0  # 30 * 2.4 * 8 = 576 s, capped by the trial limit
    assert estimates["2"] == pytest.approx(10 * 2.4 * 8)
    assert oracle.next_promotion()["lr"] == 3  # the best screen fits: taken
    # Without trial 3, the best three are 0 (400 s), 1 (384 s) and 2 (192 s): 2 fits.
    oracle = _timed_oracle(tmp_path, [s for s in screens if s[0] != 3])
    assert oracle.next_promotion()["lr"] == 2
    # Then the best three are 0 (400 s), 1 (384 s) and 5 (400 s); trial 4 fits but is not
    # among them: when none of the best three fits, the cheapest of them is retrained.
    oracle = _timed_oracle(tmp_path, [s for s in screens if s[0] not in (2, 3)])
    assert oracle.next_promotion()["lr"] == 1
    # Without a time budget the best screen is retrained, whatever it costs.
    oracle = _timed_oracle(tmp_path, [s for s in screens if s[0] != 3], budget_seconds=None)
    assert oracle.next_promotion()["lr"] == 0


def test_a_promotion_never_takes_a_cheap_screen_far_below_the_best_for_its_time(tmp_path):
    assert promotion.PROMOTION_MARGIN == 0.1
    # Trial 1 is the second best and would fit (192 s of 300), but screened 0.15 below the
    # best: the best three near the best are 0 and 2, neither fits, the cheaper (2) is taken.
    screens = [(0, 0.95, 30.0, 0), (1, 0.80, 10.0, 1), (2, 0.86, 20.0, 2), (3, 0.5, 1.0, 3),
               (4, 0.4, 1.0, 4), (5, 0.3, 1.0, 5)]
    assert _timed_oracle(tmp_path, screens).next_promotion()["lr"] == 2
    # Within the margin the cheap screen is taken, as before.
    screens[1] = (1, 0.86, 10.0, 1)
    assert _timed_oracle(tmp_path, screens).next_promotion()["lr"] == 1


def test_the_cost_ratio_is_measured_on_the_runs_own_retrained_configurations(tmp_path):
    screens = [(0, 0.95, 30.0, 0), (1, 0.93, 20.0, 1), (2, 0.90, 10.0, 2), (5, 0.80, 10.0, 5),
               (6, 0.7, 10.0, 6), (7, 0.6, 10.0, 7)]
    # Configuration 5 was retrained at 15 s per epoch: 1.5 times its screen's 10 s.
    oracle = _timed_oracle(tmp_path, screens, full=[(8, 5, 15.0)], budget_seconds=3000.0)
    trial_records = records.read_jsonl(oracle.records_path)
    assert promotion.cost_ratio(trial_records, 24, 48) == pytest.approx(1.5)
    assert promotion.cost_ratio(trial_records[:6], 24, 48) == pytest.approx(2.4)  # the prior
    # 1,800 s share - 120 s spent, over 2 members still wanted, with the slack: 1,260 s.
    assert oracle.member_allowance(120.0, 1, 1) == pytest.approx(1.5 * 1680 / 2)
    assert oracle.next_promotion()["lr"] == 0  # 30 * 1.5 * 8 = 360 s fits
    assert promotion.epoch_seconds({"seconds": 10.0, "history": {}}) is None


def test_the_cost_ratio_is_measured_and_assumed_per_network_width():
    def pair(trial_id, width, screen, full):
        hparams = {"base_filters": width, "lr": trial_id}
        return [{"trial_id": f"{trial_id}s", "image_size": 64, "status": "COMPLETED", "seconds": 2 * screen,
                 "history": {"loss": [1.0] * 2}, "hparams": dict(hparams, image_size=64)},
                {"trial_id": f"{trial_id}f", "image_size": 128, "status": "COMPLETED", "seconds": 12 * full,
                 "history": {"loss": [1.0] * 12}, "hparams": dict(hparams, image_size=128)}]

    narrow = pair(0, 8, 10.0, 13.0)  # an 8-filter net retrained at 1.3 times its screen's time
    assert promotion.cost_ratio(narrow, 64, 128, width=8) == pytest.approx(1.3)
    # A 32-filter net is not estimated from it: its width's prior, 2.86 at 4 times the pixels.
    assert promotion.cost_ratio(narrow, 64, 128, width=32) == pytest.approx(2.86)
    assert promotion.cost_ratio(narrow + pair(1, 32, 10.0, 35.0), 64, 128, width=32) == pytest.approx(3.5)
    assert promotion.cost_ratio([], 64, 128, width=None) == pytest.approx(2.4)  # no width: the overall prior


def test_a_budget_spent_before_any_full_size_trial_retrains_the_best_screen_once(tmp_path):
    oracle = _oracle([_screen(0, 0.7), _screen(1, 0.9)], tmp_path, [(24, 10.0)] * 2)
    assert oracle.next_promotion() is None  # two screens: too few to rank, in budget
    oracles.end_of_budget(oracle)
    assert oracle.max_trials == 3  # one more trial: the best screen at full size
    assert oracle.populate_space("2")["values"]["lr"] == 1
    oracle.trials["2"] = _Trial("2", {"image_size": 48, "lr": 1}, 0.95)
    oracles.end_of_budget(oracle)
    assert oracle.max_trials == 3  # done: nothing more is handed out
    # With a full-size trial already there (or no screened one), the budget just ends.
    plain = _oracle([_Trial("0", {"image_size": 24, "lr": 0}, None, status="FAILED")], tmp_path)
    oracles.end_of_budget(plain)
    assert plain.max_trials == 1


def test_a_budget_whose_only_full_size_trial_was_pruned_retrains_the_next_screen(tmp_path):
    screens = [_screen(0, 0.7), _screen(1, 0.9)]
    full = _Trial("2", {"image_size": 48, "lr": 1}, 0.5)  # Keras Tuner's status for a pruned trial
    oracle = _oracle([*screens, full], tmp_path, [(24, 10.0)] * 2)
    records.append_jsonl(tmp_path / "trials.jsonl", {"trial_id": "2", "image_size": 48, "status": "PRUNED"})
    oracles.end_of_budget(oracle)
    assert oracle.max_trials == 4  # no full-size model: one more trial, the next screen
    assert oracle.populate_space("3")["values"] == {"image_size": 48, "lr": 0, "tuner/epochs": 8,
                                                    "tuner/initial_epoch": 0, "tuner/bracket": 0,
                                                    "tuner/round": 0}
    # A completed full-size trial is a model: the budget just ends.
    done = _oracle([*screens, full], tmp_path, [(24, 10.0)] * 2 + [(48, 30.0)])
    oracles.end_of_budget(done)
    assert done.max_trials == 3
    # So does a budget whose every screened configuration was retrained already.
    retrained = _oracle([screens[1], full], tmp_path, [(24, 10.0)])
    records.append_jsonl(tmp_path / "trials.jsonl", {"trial_id": "2", "image_size": 48, "status": "PRUNED"})
    oracles.end_of_budget(retrained)
    assert retrained.max_trials == 2


def test_promoted_full_size_trials_are_judged_later_and_against_more_peers(tmp_path):
    from automl.search.budget import Budget
    from automl.search.hypermodel import TaskHyperModel

    class Task:
        def fit(self, hp, model, train, val, space, **kwargs):
            return kwargs["callbacks"]

    def stopper(size, screen_size):
        hypermodel = TaskHyperModel.__new__(TaskHyperModel)
        val = types.SimpleNamespace(images=[], selection=None)
        hypermodel.task, hypermodel.data = Task(), {24: (None, val), 48: (None, val)}
        hypermodel.space = types.SimpleNamespace(objective="val_auc")
        hypermodel.budget, hypermodel.trial_seed = Budget(), 0
        hypermodel.screen_size, hypermodel.prune, hypermodel.records_path = screen_size, "median", tmp_path
        hp = types.SimpleNamespace(values={"image_size": size})
        with mock.patch("dataclasses.replace", lambda space, **kw: space):
            callbacks = hypermodel.fit(hp, None, epochs=12)
        pruning = next(c for c in callbacks if isinstance(c, Pruning))
        assert pruning is hypermodel.pruning  # where the trial's record reads the decision
        return next(r for r in pruning.rules if isinstance(r, pruners.MedianStopping))

    assert (stopper(24, 24).warmup_trials, stopper(24, 24).min_epoch) == (3, 2)
    assert (stopper(48, 24).warmup_trials, stopper(48, 24).min_epoch) == (5, 6)
    assert (stopper(48, None).warmup_trials, stopper(48, None).min_epoch) == (3, 2)


def _chance_stopper(epochs=12):
    stopper = Pruning([pruners.ChanceStopping()])
    stopper.set_model(types.SimpleNamespace(stop_training=False))
    stopper.set_params({"epochs": epochs})
    stopper.on_train_begin()
    return stopper


def test_a_trial_whose_validation_auc_sits_at_chance_stops_as_pruned():
    dead = _chance_stopper()
    dead.on_epoch_end(0, {"val_auc": 0.5})
    assert not dead.model.stop_training  # one epoch at chance: a model may still start
    dead.on_epoch_end(1, {"val_auc": 0.5})
    assert dead.model.stop_training
    assert dead.reason.details == {"epoch": 2, "value": 0.5, "rule": "chance"}
    # Back above chance in between, the count starts again; the last epoch saves nothing.
    waking = _chance_stopper()
    for epoch, value in enumerate([0.5, 0.547, 0.5]):
        waking.on_epoch_end(epoch, {"val_auc": value})
    assert not waking.model.stop_training
    last = _chance_stopper(epochs=2)
    for epoch in range(2):
        last.on_epoch_end(epoch, {"val_auc": 0.5})
    assert not last.model.stop_training
    # A task without Keras's AUC (the autoencoder) is never judged by it.
    other = _chance_stopper()
    for epoch in range(4):
        other.on_epoch_end(epoch, {"val_loss": 0.5})
    assert not other.model.stop_training


def test_a_trial_that_crosses_the_time_kept_for_the_refit_stops_there():
    from automl.search.budget import Budget
    from automl.search.callbacks import TrialTimeLimit

    clock = [1000.0]

    def limit(reserved):
        # A 10-minute budget from 1000 s: it ends at 600 s, its 1-minute overrun at 660 s.
        budget = Budget(10, reserve=lambda: reserved, started=1000.0)
        assert (budget.end(), budget.stop_at()) == (1000.0 + 600, 1000.0 + 660)
        callback = TrialTimeLimit(None, budget)
        callback.set_model(types.SimpleNamespace(stop_training=False))
        callback.on_train_begin()
        return callback

    def epoch(callback, number, begin, end):
        clock[0] = 1000.0 + begin
        callback.on_epoch_begin(number)
        clock[0] = 1000.0 + end
        callback.on_epoch_end(number)

    with mock.patch("automl.search.budget.time.time", lambda: clock[0]):
        crossing = limit(300.0)  # starts at 0 s, the refit's time begins at 300 s
        free = limit(0.0)  # no refit planned (or none fits): only the budget's end counts
        epoch(crossing, 0, 0, 100)
        epoch(crossing, 1, 100, 190)
        assert not crossing.model.stop_training  # 190 s + another 90 s ends before 300 s
        epoch(crossing, 2, 190, 250)
        epoch(free, 2, 190, 250)
        # Another 60-second epoch would end at 310 s, inside the refit's time: it stops now.
        assert crossing.model.stop_training and not free.model.stop_training
        # A trial that starts inside the refit's time is the final full-size retraining a
        # screened search must end with: only the budget's end (and its overrun) stops it.
        clock[0] = 1000.0 + 310
        final = limit(300.0)
        clock[0] = 1000.0 + 650
        final.on_epoch_end(0)
        assert not final.model.stop_training
        clock[0] = 1000.0 + 701
        final.on_epoch_end(1)
        assert final.model.stop_training


def test_screening_draws_only_as_many_blocks_as_the_screen_size_can_pool():
    import keras_tuner as kt

    from automl.models import backbones
    from automl.search.hypermodel import TaskHyperModel
    from automl.tasks.base import SearchSpace

    assert [backbones.max_blocks(size, stride) for size, stride in [(64, 2), (64, 1), (224, 2)]] == [5, 6, 6]
    assert backbones.max_blocks(8, 2) == backbones.MIN_BLOCKS

    def blocks(screen_size, fixed=None, families=("plain",)):
        hypermodel = TaskHyperModel.__new__(TaskHyperModel)
        hypermodel.space = SearchSpace(image_size=128, families=families, fixed=fixed or {})
        hypermodel.screen_size = screen_size
        hp = kt.HyperParameters()
        hypermodel.declare_hyperparameters(hp)
        return next((h for h in hp.space if h.name == "blocks"), None)

    assert blocks(64).max_value == 5 and blocks(64).default == 4
    assert blocks(32).max_value == 4
    assert blocks(64, fixed={"stem_stride": 1}).max_value == 6
    assert blocks(None) is None  # no screening: build_features' full range
    assert blocks(64, fixed={"blocks": 3}).name == "blocks"  # pinned: Fixed, as the user asked
    assert blocks(64, families=("efficientnetb0",)) is None  # no conv family: no blocks at all


def test_precision_policies():
    assert precision.policy_name("float32", gpus=1, bf16=True) == "float32"
    assert precision.policy_name("mixed", gpus=1, bf16=False) == "mixed_float16"
    assert precision.policy_name("mixed", gpus=0, bf16=True) == "mixed_bfloat16"
    assert precision.policy_name("mixed", gpus=0, bf16=False) == "float32"
    assert precision.jit_compile_value("auto") == "auto" and precision.jit_compile_value("off") is False


def test_bf16_is_read_from_the_cpu_flags(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("flags\t\t: fpu sse avx512f avx512_bf16 fma\n")
    assert precision.cpu_has_bf16(info)
    info.write_text("flags\t\t: fpu sse avx2\n")
    assert not precision.cpu_has_bf16(info)
    assert not precision.cpu_has_bf16(tmp_path / "missing")


@pytest.mark.parametrize("option, value, message", [
    ("prune", "mean", "--prune"), ("precision", "half", "--precision"), ("xla", "yes", "--xla"),
    ("screen_size", 64, "not below --image-size"), ("screen_size", 4, "pixels >= 8")])
def test_efficiency_options_are_checked(option, value, message):
    with pytest.raises(ValueError, match=message):
        check_config(SearchConfig(image_size=64, **{option: value}))


@pytest.mark.slow
def test_a_screened_and_pruned_search_records_both_and_chooses_at_full_size(synthetic_data, tmp_path):
    import tensorflow as tf

    from automl.records import runs
    from automl.report import run_section
    from automl.search.orchestrator import run_search

    # Every screened trial falls below the median at epoch 2 (a stand-in median of 1.0 over
    # 99 trials), so pruning is certain; full-size trials are first judged at epoch 3 (half
    # their 6 epochs) and against the real median, so they are never touched by it.
    # The best screen is retrained, whatever the wall clock says: with a half-minute budget the
    # time rule (tested above) would pick among near-chance screens by their timing. The chance
    # rule (tested above) is off: on tiny images a full-size model can sit at AUC 0.5 for two
    # epochs, be pruned, and leave the half-minute search without a model (a CI run did so).
    real_median = pruners.median_at

    def best_screen(ranked, *args):
        return ranked[0] if ranked else None

    with mock.patch.object(pruners, "median_at", lambda finished, objective, epoch, direction:
                           (1.0, 99) if epoch == 2 else real_median(finished, objective, epoch, direction)), \
            mock.patch.object(promotion, "promotion_choice", best_screen), \
            mock.patch.object(pruners.ChanceStopping, "should_prune", lambda self, history: None):
        run_dir = run_search(SearchConfig(
            data=str(synthetic_data), tuner="random", image_size=48, screen_size=24, epochs=6,
            max_trials=30, time_budget_minutes=0.5, prune="median", out=str(tmp_path)), log=lambda *a: None)
    trials = records.read_jsonl(run_dir / "trials.jsonl")
    sizes = {t["image_size"] for t in trials}
    assert sizes == {24, 48}, sizes
    assert all(t["stage"] == ("screen" if t["image_size"] == 24 else "full") for t in trials)
    pruned = [t for t in trials if t["status"] == "PRUNED"]
    assert pruned and all(t["pruned"]["epoch"] >= 2 for t in pruned)
    assert all(t["pruned"]["best"] < t["pruned"]["median"] for t in pruned if t["pruned"]["rule"] == "median")
    summary = records.read_json(run_dir / "summary.json")
    best = next(t for t in trials if t["trial_id"] == summary["best_trial"])
    assert best["image_size"] == 48 and best["status"] == "COMPLETED"
    assert summary["trials_pruned"] == len(pruned) and summary["trials_screened"] >= 1
    # Each retrained configuration was screened first, with the same architecture.
    for full in (t for t in trials if t["image_size"] == 48):
        assert any(config_key(s["hparams"]) == config_key(full["hparams"])
                   for s in trials if s["image_size"] == 24)
    # The report's trial table and TensorBoard show which trials were pruned.
    table = run_section.render_trials(runs.load_run(run_dir))
    assert table.count("PRUNED at epoch") == len(pruned)
    flags = {}
    for event_file in (run_dir / "tb").rglob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(event_file)):
            for value in event.summary.value:
                if value.tag == "trial_pruned":
                    flags[event_file.parts[-3]] = float(tf.make_ndarray(value.tensor))
    assert {k for k, v in flags.items() if v == 1.0} == {t["trial_id"] for t in pruned}
