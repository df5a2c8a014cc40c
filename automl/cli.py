"""The `automl` command: data, search, evaluate, embed and report subcommands."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import warnings
from pathlib import Path

from automl.settings.declare import HelpFormatter, add_arguments
from automl.settings.run_config import SEARCH_OPTIONS


def _data_check(args) -> int:
    from automl.data import check
    from automl.tasks import label_errors

    summary = check.check_data(args.data, label_errors=lambda index: label_errors(args.task, index,
                                                                                 args.positive))
    print(json.dumps(summary, indent=2) if args.json else check.render_check(summary))
    return 1 if args.strict and (summary["problems"] or summary["errors"]) else 0


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


def _data_manifest(args) -> int:
    from automl.data import index, manifest

    path = manifest.write_manifest(manifest.folder_manifest(index.scan(args.data)), Path(args.out))
    print(f"wrote {path} (official val images are train rows: validation is carved by patient)")
    return 0


def _data_split(args) -> int:
    from automl.refit.split_file import write_split

    path, counts, folds = write_split(_config(args), Path(args.out))
    print(f"wrote {path}: {counts} images, {folds or 'no'} refit folds")
    return 0


def _evaluate(args) -> int:
    from automl.evaluation.external import External
    from automl.search.finish import finish_external
    from automl.search.orchestrator import command_line

    finish_external(External.from_options(vars(args), command=command_line()))
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
    """The SearchConfig of the command's search options, each checked before any work."""
    from automl.settings.declare import config_values
    from automl.settings.run_config import FIELD_OPTIONS, SearchConfig
    from automl.tasks import check_config

    values = config_values([o for o in FIELD_OPTIONS if o.dest in vars(args)], vars(args))
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


def _add_data_commands(commands) -> None:
    data = commands.add_parser("data", help="check, download or generate data").add_subparsers(
        dest="data_command", required=True)
    check = data.add_parser("check", help="counts, patients, duplicates and problems of a data folder, "
                            "or every row of a manifest", formatter_class=HelpFormatter)
    check.add_argument("--data", required=True, help="folder with train/ val/ test/, or a manifest")
    add_arguments(check, SEARCH_OPTIONS, ("task", "positive"))
    check.add_argument("--json", action="store_true", help="print one JSON object")
    check.add_argument("--strict", action="store_true", help="exit 1 when any problem or error is found")
    check.set_defaults(func=_data_check)
    manifest = data.add_parser("manifest", help="write the manifest a data folder's rules give")
    manifest.add_argument("--data", required=True, help="folder with train/ val/ test/")
    manifest.add_argument("--out", required=True, help="the manifest to write (.csv or .parquet)")
    manifest.set_defaults(func=_data_manifest)
    split = data.add_parser("split", help="write the patient-grouped split (and refit folds) a search "
                            "uses for a seed, as a manifest", formatter_class=HelpFormatter)
    add_arguments(split, SEARCH_OPTIONS, ("task", "data", "positive", "seed", "val_fraction", "refit"))
    split.add_argument("--out", required=True, help="the split file to write (.csv or .parquet)")
    split.set_defaults(func=_data_split)
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
                                 formatter_class=HelpFormatter)
    add_arguments(search, SEARCH_OPTIONS)
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
                                formatter_class=HelpFormatter)
    study.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                       help="one run per seed; rerunning the same command resumes the study")
    add_arguments(study, SEARCH_OPTIONS)
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

    evaluate = commands.add_parser("evaluate", help="score another system's predictions of our test split as "
                                   "our runs are scored, into a run folder", formatter_class=HelpFormatter)
    add_arguments(evaluate, SEARCH_OPTIONS, ("task", "data", "positive", "seed", "val_fraction", "threshold"))
    evaluate.add_argument("--predictions", required=True, help="CSV/Parquet: path, then P(positive), one "
                          "probability column per class, or an anomaly score; optional decision")
    evaluate.add_argument("--val-predictions", help="the same for our validation split: the threshold or "
                          "class weights are chosen on them (never on test)")
    evaluate.add_argument("--name", required=True, help="the system's name (leaderboard: external: NAME)")
    evaluate.add_argument("--out", default="runs", help="where the run folder goes")
    evaluate.set_defaults(func=_evaluate)

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
    if args.command in ("search", "study", "embed", "predict", "export", "card", "evaluate") and \
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
