"""The `automl` command: data, search, embed and report subcommands."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import warnings
from pathlib import Path


def _data_check(args) -> int:
    from automl.data import index

    try:
        idx = index.scan(args.data)
    except index.DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    summary = index.summarise(idx)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        _print_check(summary)
    return 1 if args.strict and summary["problems"] else 0


def _print_check(summary: dict) -> None:
    from tabulate import tabulate

    rows = [[split, *counts.values()] for split, counts in summary["splits"].items()]
    headers = ["split", *next(iter(summary["splits"].values())).keys()]
    print(f"{summary['root']}: {summary['images']} usable images\n")
    print(tabulate(rows, headers=headers, tablefmt="github"))
    print(f"\n{len(summary['duplicates'])} groups of byte-identical files "
          f"({sum(len(g) for g in summary['duplicates'])} files)")
    print(f"{len(summary['problems'])} problems")
    for problem in summary["problems"]:
        print(f"  {problem['path']}: {problem['reason']}")


def _data_download(args) -> int:
    from automl.data import kaggle

    try:
        if args.archive:
            path = kaggle.ingest_archive(Path(args.archive), Path(args.out))
        else:
            path = kaggle.download(Path(args.out), force=args.force)
    except kaggle.DownloadError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (ValueError, kaggle.UnsafeArchiveError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"data ready in {path}")
    return 0


def _data_synthetic(args) -> int:
    from automl.data.synthetic import write_synthetic

    path = write_synthetic(args.out, per_class=args.per_class, seed=args.seed)
    print(f"synthetic set written to {path} (not X-rays: for tests and demos only)")
    return 0


def _search(args) -> int:
    from automl.search.orchestrator import run_search
    from automl.settings.run_config import SearchConfig

    if args.resume:
        if args.workers:
            from automl.search.distributed import launch

            return launch(Path(args.resume), args.workers)
        run_search(SearchConfig(), resume=args.resume, role=args.role,
                   strategy=None if args.strategy == "none" else args.strategy, verbose=args.verbose)
        return 0
    config = _config(args)
    if args.create_only:
        from automl.search.orchestrator import create_run

        run_dir, _ = create_run(config)
        print(run_dir)
        return 0
    if args.workers:
        from automl.search.distributed import launch
        from automl.search.orchestrator import create_run

        run_dir, _ = create_run(config)
        print(f"run folder: {run_dir}")
        return launch(run_dir, args.workers)
    run_search(config, verbose=args.verbose)
    return 0


def _config(args, seed: int | None = None):
    """The SearchConfig of the search options, every option checked before any data is read
    or folder made."""
    from automl.settings.declare import config_values
    from automl.settings.run_config import FIELD_OPTIONS, SearchConfig
    from automl.tasks import check_config

    values = config_values(FIELD_OPTIONS, vars(args))
    if seed is not None:
        values["seed"] = seed
    return check_config(SearchConfig(**values))


def _study(args) -> int:
    from automl.search.study import run_study

    run_study(_config(args, seed=args.seeds[0]), args.seeds, verbose=args.verbose)
    return 0


def _embed(args) -> int:
    from automl.serve.embeddings import embed_run

    embed_run(Path(args.run), tsne=not args.no_tsne)
    return 0


def _predict(args) -> int:
    from automl.serve.predict import predict

    return predict(Path(args.run), [Path(p) for p in args.images], out=Path(args.out) if args.out else None,
                   cam=Path(args.cam) if args.cam else None, threshold=args.threshold)


def _export(args) -> int:
    from automl.serve.export import export

    print(export(Path(args.run), args.format, out=Path(args.out) if args.out else None))
    return 0


def _card(args) -> int:
    from automl.report.model_card import write_model_card

    for run in args.run:
        print(write_model_card(Path(run)))
    return 0


def _report(args) -> int:
    from automl.report.pages import write_report

    written = write_report(Path(args.runs), Path(args.out), readme=Path(args.readme) if args.readme else None)
    print(f"wrote {len(written)} files to {args.out}")
    return 0


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends each option's default unless its help already states it in words."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if "(default:" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def _add_search_options(parser: argparse.ArgumentParser) -> None:
    """The options of one search, shared by ``search`` and ``study``: one argument per
    declared option (:data:`automl.settings.run_config.SEARCH_OPTIONS`)."""
    from automl.settings.run_config import SEARCH_OPTIONS

    for spec in SEARCH_OPTIONS:
        flags, kwargs = spec.cli_arguments()
        parser.add_argument(*flags, **kwargs)


def _add_data_commands(commands) -> None:
    data = commands.add_parser("data", help="check, download or generate data").add_subparsers(
        dest="data_command", required=True)
    check = data.add_parser("check", help="counts, patients, duplicates and problems of a data folder")
    check.add_argument("--data", required=True, help="folder with train/ val/ test/")
    check.add_argument("--json", action="store_true", help="print one JSON object")
    check.add_argument("--strict", action="store_true", help="exit 1 when any problem is found")
    check.set_defaults(func=_data_check)
    download = data.add_parser("download", help="fetch the Kaggle data set (or ingest its zip)")
    download.add_argument("--out", default="data", help="folder to hold chest_xray/ (default: data)")
    download.add_argument("--archive", help="a zip downloaded by hand from the Kaggle website")
    download.add_argument("--force", action="store_true", help="download even if a copy is complete")
    download.set_defaults(func=_data_download)
    synth = data.add_parser("synthetic", help="write the small generated demo set")
    synth.add_argument("--out", required=True)
    synth.add_argument("--per-class", type=int, default=40)
    synth.add_argument("--seed", type=int, default=0)
    synth.set_defaults(func=_data_synthetic)


def _add_search_commands(commands) -> None:
    search = commands.add_parser("search", help="run a Keras Tuner search for a task",
                                 formatter_class=_HelpFormatter)
    _add_search_options(search)
    search.add_argument("--resume", help="continue an interrupted run folder")
    search.add_argument("--workers", type=int, default=0,
                        help="run a chief and N workers on this machine (Keras Tuner distributed)")
    search.add_argument("--create-only", action="store_true",
                        help="only create the run folder (for a chief and workers on several hosts)")
    search.add_argument("--role", choices=["chief", "worker"],
                        help="join a distributed search (with KERASTUNER_* variables set); "
                        "used with --resume RUN_DIR")
    search.set_defaults(func=_search)

    study = commands.add_parser("study", help="the same search once per seed, into one study folder",
                                formatter_class=_HelpFormatter)
    study.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                       help="one run per seed; rerunning the same command resumes the study")
    _add_search_options(study)
    study.set_defaults(func=_study)


def _add_run_commands(commands) -> None:
    """The commands that read a finished run: embed, predict, export, card, report."""
    embed = commands.add_parser("embed", help="embeddings, KNN and t-SNE for a run's best model")
    embed.add_argument("--run", required=True)
    embed.add_argument("--no-tsne", action="store_true")
    embed.set_defaults(func=_embed)

    predict = commands.add_parser("predict", help="apply a run's model and decision rule to images")
    predict.add_argument("--run", required=True, help="a finished run folder")
    predict.add_argument("images", nargs="+", metavar="IMAGE_OR_FOLDER")
    predict.add_argument("--out", help="also write the rows to this CSV")
    predict.add_argument("--cam", help="write Grad-CAM and SmoothGrad overlays into this folder")
    predict.add_argument("--threshold", help="decide by this rule instead of the run's threshold: an "
                         "operating point sens:X / spec:X (or balanced, youden, f1) chosen on the run's "
                         "validation scores, or a number; see the model card's operating points")
    predict.set_defaults(func=_predict)

    export = commands.add_parser("export", help="the scored model as a SavedModel or TFLite file")
    export.add_argument("--run", required=True, help="a finished classifier run folder")
    export.add_argument("--format", default="savedmodel", choices=["savedmodel", "tflite"])
    export.add_argument("--out", help="folder to write (default RUN/export/FORMAT)")
    export.set_defaults(func=_export)

    card = commands.add_parser("card", help="(re)write MODEL_CARD.md of finished runs from their records")
    card.add_argument("--run", nargs="+", required=True, help="finished run folders")
    card.set_defaults(func=_card)

    report = commands.add_parser("report", help="Markdown leaderboards from run records")
    report.add_argument("--runs", default="runs")
    report.add_argument("--out", default="reports")
    report.add_argument("--readme", help="also rewrite the \"What to expect\" block of this README.md")
    report.set_defaults(func=_report)


def build_parser() -> argparse.ArgumentParser:
    """The ``automl`` command and its subcommands."""
    from automl import __version__

    parser = argparse.ArgumentParser(prog="automl", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    _add_data_commands(commands)
    _add_search_commands(commands)
    _add_run_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    # TensorFlow's C++ start-up lines (oneDNN, absl) are noise on a console; errors still show.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # Our datasets are shuffled by tf.data; Keras warns about it once per trial regardless.
    warnings.filterwarnings("ignore", message=".*`shuffle=True` was passed.*")
    args = build_parser().parse_args(argv)
    if args.command in ("search", "study", "embed", "predict", "export", "card") and \
            importlib.util.find_spec("tensorflow") is None:
        print("error: TensorFlow is not installed: pip install 'cxr-automl[cpu]' (or [gpu] on a "
              "machine with an NVIDIA GPU), or make setup [GPU=1]", file=sys.stderr)
        return 2
    if args.command in ("search", "study", "embed", "predict", "export"):
        from automl.models.devices import allow_memory_growth

        allow_memory_growth()  # before the command's first TensorFlow op
    try:
        return args.func(args) or 0
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 1
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
