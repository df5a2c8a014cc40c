"""SearchConfig.validate and check_config: every option checked before any data is read or
folder made; the option tables are the declarations."""

import ast
from pathlib import Path

import pytest

from automl.settings import choices, options
from automl.settings.run_config import FIELD_OPTIONS, SearchConfig
from automl.tasks import check_config, objective_name

BAD = [
    ({"task": "regression"}, "--task: got 'regression'; choose binary, multiclass or autoencoder"),
    ({"tuner": "optuna"}, "--tuner: got 'optuna'; choose hyperband, bayesian, random or grid"),
    ({"threshold": "balancd"}, "--threshold: got 'balancd'; choose balanced, youden, f1, sens:X, spec:X or "
                               "a number"),
    ({"threshold": "sens:95"}, "--threshold: threshold rule 'sens:95': the target sensitivity must be a "
                               "number in (0, 1]"),
    ({"validation": "test"}, "--validation: got 'test'; choose shift or plain"),
    ({"strategy": "tpu"}, "--strategy: got 'tpu'; choose none or mirrored"),
    ({"families": ("plain", "vgg16")}, "--families: got vgg16; choose from plain"),
    ({"objective": "val_auroc"}, "--objective: got 'val_auroc' for the binary task"),
    ({"objective": "val_shift_auc", "validation": "plain"}, "--objective: got 'val_shift_auc'"),
    ({"task": "multiclass", "objective": "val_auc"}, "choose val_shift_f1_macro, val_f1_macro"),
    ({"image_size": 8, "fixed": {"blocks": 6}}, "--image-size: 8 px is too small"),
    ({"task": "autoencoder", "image_size": 30}, "--image-size: 30 px fits no encoder depth"),
    ({"max_trials": 0}, "--max-trials: got 0"),
    ({"epochs": -1}, "--epochs: got -1"),
    ({"val_fraction": 0.9}, "--val-fraction: got 0.9"),
    ({"patience": -2}, "--patience: got -2"),
    ({"time_budget_minutes": 0}, "time_budget_minutes: got 0; expected minutes > 0"),
    ({"max_latency_ms": 0}, "max_latency_ms: got 0; expected milliseconds > 0"),
    ({"portfolio": "maybe"}, "--portfolio: got 'maybe'; choose on or none"),
    ({"refit": "cv:1"}, "--refit: got 'cv:1'; choose none or cv:K with K from 2 to"),
    ({"screen_size": 4}, "--screen-size: got 4; expected pixels >= 8, or 0 for none"),
]


@pytest.mark.parametrize("options, message", BAD, ids=[m.split(":")[0] + str(i) for i, (_, m) in
                                                       enumerate(BAD)])
def test_every_bad_option_is_one_clear_line(options, message):
    with pytest.raises(ValueError) as error:
        check_config(SearchConfig(**options))
    assert message in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("options", [
    {}, {"threshold": "0.3"}, {"threshold": "f1"}, {"threshold": "sens:0.95"}, {"threshold": "spec:0.9"},
    {"task": "autoencoder", "objective": "val_loss"},
    {"task": "multiclass", "validation": "plain", "objective": "val_accuracy"},
    {"families": ("efficientnetb0",), "image_size": 32}, {"image_size": 16},
])
def test_good_options_pass(options):
    assert check_config(SearchConfig(**options)).task in choices.TASK_NAMES


def test_the_declared_checks_need_no_task():
    assert SearchConfig(objective="no_such_metric").validate().objective == "no_such_metric"
    with pytest.raises(ValueError, match="--objective"):
        check_config(SearchConfig(objective="no_such_metric"))
    assert objective_name(SearchConfig()) == "val_shift_auc"
    assert objective_name(SearchConfig(validation="plain")) == "val_auc"
    assert objective_name(SearchConfig(objective="val_loss")) == "val_loss"


def test_every_field_is_declared_with_help():
    assert [spec.name for spec in FIELD_OPTIONS] == list(SearchConfig.__dataclass_fields__)
    assert all(spec.help for spec in FIELD_OPTIONS)
    assert all(spec.unit for spec in FIELD_OPTIONS if spec.rule == "positive")


def test_settings_import_no_higher_layer():
    settings = Path(choices.__file__).parent
    for path in settings.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert all(n == "automl.settings" or n.startswith("automl.settings.") or
                       not n.startswith("automl") for n in names), f"{path.name} imports {names}"


def test_docs_options_page_is_the_declarations():
    """Run ``python -m automl.settings.options`` when this fails."""
    assert options.DOCS.read_text() == options.docs_page()
    readme = options.README.read_text()
    assert "docs/options.md" in readme  # README links the reference instead of repeating it
    if options.START in readme:
        assert readme == options.with_table(readme)


def test_budgets_are_one_table_applied_by_data_kind():
    budgets = choices.BUDGETS
    assert SearchConfig().with_defaults(synthetic=False).max_trials == budgets["real"]["max_trials"]
    assert SearchConfig().with_defaults(synthetic=True).image_size == budgets["synthetic"]["image_size"]
    assert SearchConfig(smoke=True).with_defaults(synthetic=False).epochs == budgets["smoke"]["epochs"]
    assert SearchConfig(epochs=7).with_defaults(synthetic=False).epochs == 7  # the user's value wins


def test_objective_direction_is_min_for_losses_only():
    assert choices.objective_direction("val_loss") == "min"
    assert choices.objective_direction("val_normal_loss") == "min"
    assert choices.objective_direction("val_shift_auc") == "max"
