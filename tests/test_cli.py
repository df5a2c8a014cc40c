import zipfile

from automl import cli
from tests.test_kaggle import make_kaggle_zip


def test_download_without_credentials_exits_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "empty"))
    monkeypatch.delenv("KAGGLE_USERNAME", raising=False)
    monkeypatch.delenv("KAGGLE_KEY", raising=False)
    monkeypatch.delenv("KAGGLE_API_TOKEN", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cli.main(["data", "download", "--out", str(tmp_path / "data")]) == 2
    message = capsys.readouterr().err.strip()
    assert message.count("\n") == 0 and "Kaggle" in message


def test_download_archive_and_traversal(tmp_path, capsys):
    archive = make_kaggle_zip(tmp_path / "chest-xray-pneumonia.zip")
    assert cli.main(["data", "download", "--archive", str(archive), "--out", str(tmp_path / "d")]) == 0
    assert sorted(p.name for p in (tmp_path / "d" / "chest_xray").iterdir() if p.is_dir()) == \
        ["test", "train", "val"]
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as handle:
        handle.writestr("chest_xray/train/NORMAL/IM-0001-0001.jpeg", b"x")
        handle.writestr("../evil.txt", b"gotcha")
    assert cli.main(["data", "download", "--archive", str(evil), "--out", str(tmp_path / "e")]) == 1
    assert not (tmp_path / "evil.txt").exists()
    assert "evil" in capsys.readouterr().err


def test_synthetic_then_check(tmp_path, capsys):
    assert cli.main(["data", "synthetic", "--out", str(tmp_path / "s"), "--per-class", "4"]) == 0
    assert cli.main(["data", "check", "--data", str(tmp_path / "s"), "--strict"]) == 0
    assert "usable images" in capsys.readouterr().out


def test_bad_fix_argument_is_a_clear_error(capsys):
    assert cli.main(["search", "--fix", "blocks"]) == 2
    assert "NAME=VALUE" in capsys.readouterr().err


def test_a_mistyped_option_exits_2_at_once_and_makes_no_run_folder(tmp_path):
    import subprocess
    import sys
    import time

    started = time.time()
    result = subprocess.run([sys.executable, "-m", "automl.cli", "search", "--threshold", "balancd",
                             "--out", str(tmp_path / "runs")], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2 and time.time() - started < 15
    error = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert error == ["error: --threshold: got 'balancd'; choose balanced, youden, f1, sens:X, spec:X or "
                     "a number"]
    assert not (tmp_path / "runs").exists()


def test_search_help_shows_the_choices_and_defaults_of_automl_choices(capsys):
    from automl.settings import choices

    try:
        cli.main(["search", "--help"])
    except SystemExit:
        pass
    text = " ".join(capsys.readouterr().out.split())
    assert "{" + ",".join(choices.TUNERS) + "}" in text
    assert f"(default: {choices.DEFAULT_TUNER})" in text and ", ".join(choices.ALL_FAMILIES) in text


def test_the_cli_task_names_are_the_task_registry():
    from automl.settings import choices
    from automl.tasks import TASKS

    assert choices.TASK_NAMES == tuple(TASKS)
    assert all(TASKS[name].name == name for name in TASKS)


def test_the_search_options_map_onto_the_config_one_to_one():
    from automl.settings.run_config import SearchConfig

    args = cli.build_parser().parse_args(["search"])
    assert cli._config(args) == SearchConfig()
    args = cli.build_parser().parse_args(
        ["study", "--seeds", "3", "4", "--time-budget", "30", "--families", "plain,residual", "--fix",
         "blocks=3", "--fix", "family=plain", "--refit", "cv:3", "--max-latency-ms", "5", "--smoke", "-v"])
    config = cli._config(args, seed=args.seeds[0])
    assert (config.seed, config.time_budget_minutes, config.families, config.refit) == \
        (3, 30.0, ("plain", "residual"), "cv:3")
    assert config.fixed == {"blocks": 3, "family": "plain"} and config.max_latency_ms == 5.0
    assert config.smoke and args.verbose and args.time_budget == 30.0


def test_a_bad_declared_option_exits_2_with_its_unit(capsys):
    assert cli.main(["search", "--max-latency-ms", "0"]) == 2
    assert capsys.readouterr().err.strip() == "error: max_latency_ms: got 0.0; expected milliseconds > 0"
