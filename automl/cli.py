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
    from automl.settings.run_config import SearchConfig
    from automl.tasks import check_config

    config = SearchConfig(
        task=args.task, data=args.data, tuner=args.tuner, max_trials=args.max_trials,
        epochs=args.epochs, image_size=args.image_size, batch_size=args.batch_size,
        seed=args.seed if seed is None else seed, out=args.out, objective=args.objective,
        threshold=args.threshold, families=tuple(args.families.split(",")),
        pretrained=args.pretrained, val_fraction=args.val_fraction, patience=args.patience,
        smoke=args.smoke, time_budget_minutes=args.time_budget, fixed=_parse_fixed(args.fix),
        trial_minutes=args.trial_minutes, strategy=args.strategy, ensemble=args.ensemble,
        validation=args.validation, max_latency_ms=args.max_latency_ms,
        screen_size=args.screen_size, prune=args.prune, precision=args.precision, xla=args.xla,
        refit=args.refit, portfolio=args.portfolio,
    )
    return check_config(config)


def _study(args) -> int:
    from automl.search.study import run_study

    run_study(_config(args, seed=args.seeds[0]), args.seeds, verbose=args.verbose)
    return 0


def _parse_fixed(pairs: list[str]) -> dict:
    fixed = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ValueError(f"--fix expects NAME=VALUE, got {pair!r}")
        try:
            fixed[name] = json.loads(value)
        except json.JSONDecodeError:
            fixed[name] = value
    return fixed


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

    written = write_report(Path(args.runs), Path(args.out))
    print(f"wrote {len(written)} files to {args.out}")
    return 0


def _add_search_options(parser: argparse.ArgumentParser) -> None:
    """The options of one search, shared by ``search`` and ``study``."""
    from automl.settings import choices

    parser.add_argument("--task", default="binary", choices=choices.TASK_NAMES, help="what to learn")
    parser.add_argument("--data", help="data folder (default: $CXR_DATA_DIR, data/chest_xray, "
                        "Kaggle, synthetic demo)")
    parser.add_argument("--tuner", default=choices.DEFAULT_TUNER, choices=choices.TUNERS,
                        help="Keras Tuner algorithm")
    parser.add_argument("--max-trials", type=int, help="default: by data, see --smoke and README")
    parser.add_argument("--epochs", type=int, help="max epochs per trial")
    parser.add_argument("--image-size", type=int, help="pixels per side")
    parser.add_argument("--batch-size", type=int, help="pin the batch size instead of tuning it")
    parser.add_argument("--seed", type=int, default=choices.SEED,
                        help="split, weights and shifted copies")
    parser.add_argument("--out", default="runs", help="where run folders go")
    parser.add_argument("--objective", help="validation metric to select on (default: the task's; "
                        "a *_loss is minimised, anything else maximised)")
    parser.add_argument("--threshold", default=choices.DEFAULT_THRESHOLD,
                        help=f"decision threshold rule: {', '.join(choices.THRESHOLD_RULES)}, an "
                        "operating point sens:X or spec:X (e.g. sens:0.95: the highest threshold "
                        "that keeps selection-set sensitivity >= 0.95), or a number")
    parser.add_argument("--families", default=",".join(choices.FAMILIES),
                        help=f"comma list from {', '.join(choices.ALL_FAMILIES)}")
    parser.add_argument("--pretrained", action="store_true", help="ImageNet weights for applications")
    parser.add_argument("--val-fraction", type=float, default=choices.VAL_FRACTION,
                        help="share of patients held out for validation")
    parser.add_argument("--validation", default=choices.DEFAULT_VALIDATION, choices=choices.VALIDATIONS,
                        help="select on validation pooled with simulated re-acquisitions (shift) "
                        "or on validation alone (plain)")
    parser.add_argument("--patience", type=int, default=choices.PATIENCE,
                        help="early-stopping patience (epochs)")
    parser.add_argument("--fix", action="append", default=[], metavar="NAME=VALUE",
                        help="pin a hyperparameter (repeatable), e.g. --fix blocks=3")
    parser.add_argument("--time-budget", type=float, dest="time_budget",
                        help="minutes after which no new trial starts")
    parser.add_argument("--ensemble", type=int,
                        help="average the top-K distinct trials if that wins on validation")
    parser.add_argument("--max-latency-ms", type=float, dest="max_latency_ms",
                        help="choose the best model among those that score one image in at most "
                        "this many CPU milliseconds")
    parser.add_argument("--trial-minutes", type=float, dest="trial_minutes",
                        help="wall-clock limit of one trial's training")
    parser.add_argument("--strategy", default="none", choices=choices.STRATEGIES,
                        help="tf.distribute strategy inside each trial (mirrored: all local GPUs)")
    parser.add_argument("--screen-size", type=int, dest="screen_size",
                        help="multi-fidelity: screen configurations at this many pixels and retrain "
                        "the best at --image-size; 0 for none (default: 64 on real data, none otherwise)")
    parser.add_argument("--prune", default=choices.DEFAULT_PRUNE, choices=choices.PRUNERS,
                        help="stop a trial whose objective falls below the median of finished trials "
                        "at the same epoch")
    parser.add_argument("--precision", default=choices.DEFAULT_PRECISION, choices=choices.PRECISIONS,
                        help="mixed: float16 on a GPU, bfloat16 on a CPU that has it, float32 elsewhere")
    parser.add_argument("--xla", default=choices.DEFAULT_XLA, choices=choices.XLA_MODES,
                        help="XLA compilation of the train step (auto: on a GPU, not on a CPU)")
    parser.add_argument("--portfolio", choices=choices.PORTFOLIOS,
                        help="draw first the configurations that did best on validation in committed "
                        "runs (automl/portfolio.json) (default: on for real data, none otherwise)")
    parser.add_argument("--refit", metavar="none|cv:K",
                        help="after the search, retrain the best configurations on K patient-grouped "
                        "folds of train + validation and make every choice on out-of-fold scores "
                        "(default: cv:5 for the binary task on real data, none otherwise)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="Keras Tuner's tables of each trial's hyperparameters")
    parser.add_argument("--smoke", action="store_true", help="synthetic data, 2 trials, 1 epoch")


def build_parser() -> argparse.ArgumentParser:

    parser = argparse.ArgumentParser(prog="automl", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

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

    search = commands.add_parser("search", help="run a Keras Tuner search for a task",
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
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
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    study.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                       help="one run per seed; rerunning the same command resumes the study")
    _add_search_options(study)
    study.set_defaults(func=_study)

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
    report.set_defaults(func=_report)
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
