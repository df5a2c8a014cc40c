"""Collect the benchmark results into perf.json and reports/perf.md (the only place they are rounded)."""

from __future__ import annotations

import argparse
from pathlib import Path

from automl import records
from automl.records.runs import Study, load_runs, load_studies
from automl.report.configuration import describe
from automl.report.markdown import DASH, esc, fmt, fmt_count, table
from automl.report.pages import peer_tables
from automl.report.peer_section import render_peer_rows

BENCHMARKS = ("bench_data", "bench_training", "bench_memory", "bench_tuners", "bench_training_compare",
              "time_to_accuracy", "trial_minutes", "compute_unit", "determinism_speed")
MAKE = {
    "bench_data": "make bench-data DATA=...",
    "bench_training": "make bench-training",
    "bench_training_compare": "make bench-training DATA=...",
    "time_to_accuracy": "python benchmarks/time_to_accuracy.py --run RUN... --label ...",
    "trial_minutes": "python benchmarks/trial_minutes.py --run RUN...",
    "bench_memory": "make bench-memory",
    "bench_tuners": "make bench-tuners DATA=...",
    "compute_unit": "python benchmarks/compute_unit.py STUDY... --json benchmarks/results/compute_unit.json",
    "determinism_speed": "make bench-determinism",
}
HEADINGS = {
    "bench_data": "(1) Input pipeline",
    "bench_training": "(2) Training throughput",
    "bench_tuners": "(3) Search efficiency",
    "bench_memory": "(4) Memory across consecutive trials",
    "peers": "(5) Peers",
    "bench_training_compare": "(2b) Precision, XLA and threads: old against new settings",
    "time_to_accuracy": "(6) Time to accuracy: the default budget",
    "trial_minutes": "(7) Where the search minutes went",
    "compute_unit": "(8) The compute budget's unit against wall time",
    "determinism_speed": "(9) What deterministic training costs",
}
TTA_PNG = "time_to_accuracy.png"
FRACTIONS = ("0.25", "0.5", "0.75", "1.0")


def load_results(results: Path) -> dict[str, dict | None]:
    """Each benchmark's JSON from ``results``, None where it has not been run."""
    return {name: records.read_json(results / f"{name}.json") if (results / f"{name}.json").exists()
            else None for name in BENCHMARKS}


def load_peers(runs: Path) -> list[dict]:
    """Each task's headline (:mod:`automl.report.headline`) and, after it, the latest peer runs
    and our plain-validation ablation: the rows of the report's peer table
    (:mod:`automl.report.peer_section`), full precision."""
    if not runs.is_dir():
        return []
    found, _ = load_runs(runs)  # a torn or foreign file must not stop the report
    studies, _ = load_studies(runs, found)
    return [{"task": task, **{k: v for k, v in row.items() if k != "run"}}
            for task, rows in peer_tables(found, studies).items() for row in rows]


def _missing(name: str) -> str:
    return f"not measured yet: run `{MAKE[name]}`"


def _num(value, spec: str) -> str:
    """``value`` formatted with ``spec`` (e.g. ``,.0f``), the dash when missing."""
    return format(value, spec) if isinstance(value, (int, float)) and not isinstance(value, bool) else DASH


def section_pipeline(data: dict | None) -> str:
    if not data:
        return _missing("bench_data")
    rows = [
        {"loader": "automl (decode once, cache)",
         "first epoch (images/s)": _num(data.get("ours_first_epoch_images_per_sec"), ",.0f"),
         "cached / later epoch (images/s)": _num(data.get("ours_cached_epoch_images_per_sec"), ",.0f")},
        {"loader": "keras image_dataset_from_directory",
         "first epoch (images/s)": _num(data.get("keras_first_epoch_images_per_sec"), ",.0f"),
         "cached / later epoch (images/s)": _num(data.get("keras_later_epoch_images_per_sec"), ",.0f")},
    ]
    lines = [
        f"Split `{esc(data.get('split', 'train'))}` of `{esc(data.get('data', '?'))}`: "
        f"{fmt_count(data.get('images'))} images at {data.get('image_size', DASH)} px, "
        f"batch {data.get('batch_size', DASH)}.",
        "",
        table(rows, ""),
        "",
        f"Cached epochs run at {fmt(data.get('cached_speedup_vs_keras'), 1)}× keras's later epochs; "
        f"a second search at the same size loads the on-disk cache at "
        f"{_num(data.get('ours_disk_cache_load_images_per_sec'), ',.0f')} images/s instead of decoding.",
    ]
    return "\n".join(lines)


def section_training(data: dict | None) -> str:
    if not data:
        return _missing("bench_training")
    rows = []
    for row in data.get("rows", []):
        rows.append({
            "family": esc(row.get("family")),
            "image px": str(row.get("image_size", DASH)),
            "stem stride": str(row.get("stem_stride", DASH)),
            "params": fmt_count(row.get("params")),
            "train images/s": _num(row.get("train_images_per_sec"), ",.1f"),
            "train GFLOP/image": _num(row.get("train_gflops_per_image"), ".3f"),
            "achieved GFLOP/s": _num(row.get("achieved_gflops_per_sec"), ",.1f"),
            "fraction of peak": _num(row.get("fraction_of_peak"), ".1%"),
            "error": esc(row["error"])[:120] if row.get("error") else "",
        })
    if rows and not any(r["error"] for r in rows):
        for r in rows:
            del r["error"]
    first = next((r for r in data.get("rows", []) if "timed_steps" in r), {})
    n = data.get("matmul_n", DASH)
    lines = [
        f"Default hyperparameters of each family (binary task), batch {first.get('batch_size', DASH)}, "
        f"random images; {first.get('warmup_steps', DASH)} untimed warm-up + "
        f"{first.get('timed_steps', DASH)} timed `train_on_batch` steps. Training FLOPs are taken as "
        f"3 × the forward FLOPs that the TensorFlow profiler counts at batch 1 (a multiply-add is 2; "
        f"activations and batch norm count 0, so GFLOP/s are slight underestimates).",
        "",
        table(rows, "no rows"),
        "",
        f"float32 matmul peak ({n}×{n}, same run): "
        f"{_num(data.get('matmul_peak_gflops_per_sec'), ',.1f')} GFLOP/s.",
    ]
    return "\n".join(lines)


def section_tuners(data: dict | None) -> str:
    if not data:
        return _missing("bench_tuners")
    tuners = data.get("tuners", [])
    rows = []
    for entry in tuners:
        at = entry.get("best_at_budget_fraction") or {}
        rows.append({
            "tuner": esc(entry.get("tuner") or DASH),
            "run": f"`{esc(entry.get('run_id'))}`",
            "trials": fmt_count(entry.get("trials")),
            "failed": fmt_count(entry.get("trials_failed")),
            **{f"best at {float(f):.0%}": fmt(at.get(f), 4) for f in FRACTIONS},
            "final": fmt(entry.get("final_best"), 4),
        })
    first = tuners[0] if tuners else {}
    budget = first.get("budget_minutes")
    lines = [
        f"Binary task, {first.get('image_size', DASH)} px, up to {first.get('epochs', DASH)} epochs per "
        f"trial, {_num(budget, 'g')} wall minutes per tuner, seed 0. Columns: best validation "
        f"`{esc(first.get('objective', 'objective'))}` among trials that had finished by that share of "
        f"the budget; *final* includes the trial that was running when the budget ran out.",
        "",
        table(rows, "no tuner runs"),
        "",
        "![best validation objective so far vs wall minutes](search_efficiency.png)",
    ]
    return "\n".join(lines)


def section_memory(data: dict | None) -> str:
    if not data:
        return _missing("bench_memory")
    samples = data.get("rss_mb_after_each_trial") or []
    rows = [{"trial": str(i), "resident memory after it (MB)": _num(mb, ",.0f")}
            for i, mb in enumerate(samples, 1)]
    return "\n".join([
        f"{len(samples)} consecutive tiny trials (synthetic data, 32 px) in one process.",
        "",
        table(rows, "no samples"),
        "",
        f"Growth from trial 1 to trial {len(samples)}: "
        f"{_num(data.get('rss_growth_after_first_trial'), '+.1%')} "
        f"(trial 1 pays one-off costs such as graph tracing, so growth is measured after it).",
    ])


def section_peers(peers: list[dict]) -> str:
    if not peers:
        return ("not measured yet: no run folder with a `peer` key in its summary.json "
                "(e.g. autokeras, reference-recipe)")
    return "\n\n".join(f"**{esc(task)}**\n\n" + render_peer_rows([p for p in peers if p["task"] == task])
                       for task in dict.fromkeys(p["task"] for p in peers))


def section_training_compare(data: dict | None) -> str:
    if not data:
        return _missing("bench_training_compare")
    rows, old = [], next((r.get("train_images_per_sec") for r in data.get("rows", [])
                          if r.get("setting") == "old"), None)
    for row in data.get("rows", []):
        speed = row.get("train_images_per_sec")
        rows.append({
            "setting": esc(row.get("setting")), "dtype policy": esc(row.get("policy", DASH)),
            "XLA": esc(row.get("xla", DASH)), "threads intra/inter": esc(row.get("threads", DASH)),
            "device": esc(row.get("device", DASH)),
            "train images/s": _num(speed, ",.1f"),
            "each run": esc(", ".join(f"{v:.1f}" for v in row.get("images_per_sec_each", []))),
            "vs old": f"{speed / old:.2f}×" if speed and old else DASH,
            "val AUC": _num(row.get("val_auc"), ".4f"),
        })
    return "\n".join([
        f"The default {esc(data.get('family'))} backbone at {data.get('image_size')} px, batch "
        f"{data.get('batch_size')}; each setting in a fresh process, the settings interleaved and "
        f"repeated, median shown. `old` is how every search trained before `--precision` and `--xla`; "
        f"`default` is a search's setting now. Val AUC: the same model trained "
        f"{next((r.get('accuracy_epochs') for r in data.get('rows', []) if r.get('accuracy_epochs')), DASH)} "
        f"epochs on the real training split, on the validation split (one run each).",
        "", table(rows, "no rows")])


def series_names(data: dict | None, runs: Path) -> dict[str, tuple[str, str]]:
    """Each time-to-accuracy run's series, by its configuration and version (never by when it was
    made): run id -> (``<configuration>, version <v> (<study or run id>)``, ``seed N``).
    The configuration reads as :func:`automl.report.configuration.describe` does."""
    ids = {row.get("run_id") for row in (data or {}).get("rows", [])}
    if not ids or not runs.is_dir():
        return {}
    found, _ = load_runs(runs)
    studies, _ = load_studies(runs, found)
    seeded = {r.run_id: (st, seed) for st in studies for seed, r in zip(st.seeds, st.runs)}
    names = {}
    for run in found:
        if run.run_id not in ids:
            continue
        study, seed = seeded.get(run.run_id, (Study(run.folder, {"task": run.task}, [run], [0]), None))
        config = describe(study)
        what = "default configuration" if config == "default" else config
        where = study.study_id if run.run_id in seeded else run.run_id
        seed = seed if seed is not None else (run.summary.get("config") or {}).get("seed")
        names[run.run_id] = (f"{what}, version {study.version} ({where})", f"seed {seed}")
    return names


def section_time_to_accuracy(data: dict | None, names: dict[str, tuple[str, str]] | None = None) -> str:
    if not data:
        return _missing("time_to_accuracy")
    names = names or {}
    rows = []
    for row in data.get("rows", []):
        test = row.get("test") or {}
        series = names.get(row.get("run_id"))
        rows.append({
            "search": esc(f"{series[0]}, {series[1]}" if series else row.get("run_id")),
            "run": f"`{esc(row.get('run_id'))}`",
            "minutes": (f"{row['cut_minutes']:g}" if row.get("cut_minutes") is not None
                        else f"end ({_num(row.get('search_minutes'), '.1f')})"),
            "trials ended": str(row.get("trials_ended", DASH)),
            "best validation objective": (_num(row.get("best_val_objective"), ".4f")
                                          + f" ({esc(row.get('objective'))})"),
            "test accuracy": _num(test.get("accuracy"), ".4f"), "test AUC": _num(test.get("auc"), ".4f"),
            "test \\|sens − spec\\|": _num(test.get("sens_spec_gap"), ".4f"),
        })
    return "\n".join([
        "What a search would have chosen had it stopped after each number of minutes (the trials "
        "ended by then, scored exactly as the run scores itself: best by validation, ensemble and "
        "threshold on the selection set, test read once), and each run's own end (its last "
        "trial's end; minutes count from the run folder's creation, data loading included). A dash in the "
        "test columns: the run's checkpoints were not kept, only its records. The test columns "
        "were never used to choose anything, the default budget included (it is chosen on the "
        "validation objective's curve and the wall time).",
        "", f"![time to accuracy]({TTA_PNG})", "", table(rows, "no rows")])


def section_trial_minutes(data: dict | None) -> str:
    if not data:
        return _missing("trial_minutes")

    def spent(part: dict) -> str:
        return f"{part['trials']} ({_num(part['minutes'], '.1f')} min)" if part.get("trials") else "0"

    rows = [{
        "study": f"`{esc(row.get('study'))}`" if row.get("study") else DASH,
        "run": f"`{esc(row.get('run_id'))}`", "seed": esc(row.get("seed")),
        "search minutes": _num(row.get("search_minutes"), ".1f"), "trials": str(row.get("trials", DASH)),
        **{name: spent(row[name]) for name in ("completed", "pruned (median)", "pruned (chance)", "failed")},
        "dead (val AUC 0.5 throughout)": spent(row["dead"]) + (
            f", {row['dead']['full_size']} at full size" if row["dead"].get("full_size") else ""),
    } for row in data.get("rows", [])]
    return "\n".join([
        "Each run's recorded trials and their minutes, by how they ended. A *dead* trial gave "
        "every validation image one score (Keras's validation AUC exactly 0.5 at every epoch); "
        "the chance rule stops such a trial after 2 epochs as *pruned (chance)*, when it had "
        "more epochs to run (screening trials at 64 px train 2 epochs: nothing to save there). "
        "Failed trials take seconds: they fail while being built.",
        "", table(rows, "no rows")])


def section_compute_unit(data: dict | None) -> str:
    if not data:
        return _missing("compute_unit")
    rows = [{"study": f"`{esc(row['study'])}`", "trials": str(row["trials"]),
             **{f"R² {unit}": _num(value, ".3f") for unit, value in row["r2"].items()},
             "compute units per trial minute": _num(row["units_per_trial_minute"], ".1f")}
            for row in data.get("studies", [])]
    return "\n".join([
        "Each finished trial's model rebuilt from its record and priced in four candidate units; "
        "R² of a line from the unit to the trial's recorded seconds. *compute* is the unit of "
        "`--budget compute:N` (`automl/models/cost.py`): FLOPs counted from the layers (3 forward "
        "passes per training image, 1 per scored validation image) plus 140,000 per training pixel "
        "for the input pipeline, a charge fitted on `binary-study-5b087645`; `binary-study-fa471c6e` "
        "is its held-out check. *flops* is the layers' count alone, *pixels* training pixels, "
        "*params* training images times parameters. The calibration `UNITS_PER_MINUTE` = 50 "
        "(`automl/settings/choices.py`) comes from the binary rows.",
        "", table(rows, "no rows"),
        "", f"Command: `{MAKE['compute_unit']}`"])


def section_determinism_speed(data: dict | None) -> str:
    if not data:
        return _missing("determinism_speed")
    rows = [{"model": esc(row.get("model", DASH)), "px": str(row["image_size"]), "setting": row["setting"],
             "images/s": _num(row["images_per_second"], ",.1f")} for row in data.get("rows", [])]
    return "\n".join([
        "Training images/s through the search's input pipeline (augmentation on), each setting in a "
        "fresh process: *off*; *ops*: deterministic ops, augmentation still mapped in parallel; *on*: "
        "`--deterministic on` (deterministic ops, fixed threads, augmentation mapped in order).",
        "", table(rows, "no rows"), "", f"Command: `{MAKE['determinism_speed']}`"])


def plot_time_to_accuracy(data: dict | None, path: Path,
                          names: dict[str, tuple[str, str]] | None = None) -> None:
    """Best validation objective and test accuracy/AUC against minutes: one colour per
    configuration and version (:func:`series_names`), one line per seed, the legend below."""
    if not data:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = names or {}
    by_run: dict[str, list[dict]] = {}
    for row in data.get("rows", []):
        by_run.setdefault(row.get("run_id", ""), []).append(row)
    groups = sorted({names.get(run_id, (run_id, ""))[0] for run_id in by_run})
    colours = {group: plt.get_cmap("tab10")(i % 10) for i, group in enumerate(groups)}
    height = 4.0 + 0.24 * (len(groups) + 1)
    fig, axes = plt.subplots(1, 3, figsize=(14, height))
    labelled = set()
    for run_id, rows in sorted(by_run.items()):
        group = names.get(run_id, (run_id, ""))[0]

        def minutes(r):
            return r["cut_minutes"] if r.get("cut_minutes") is not None else r.get("search_minutes")

        points = sorted(((minutes(r), r) for r in rows if minutes(r) is not None), key=lambda p: p[0])
        for ax, get in zip(axes, (lambda r: r.get("best_val_objective"),
                                  lambda r: (r.get("test") or {}).get("accuracy"),
                                  lambda r: (r.get("test") or {}).get("auc"))):
            xy = [(m, get(r)) for m, r in points if get(r) is not None]
            if xy:
                ax.plot(*zip(*xy), marker="o", color=colours[group], lw=1.5, ms=5,
                        label=group if group not in labelled else None)
                labelled.add(group)
    for ax, title in zip(axes, ("best validation objective so far", "test accuracy (chosen model)",
                                "test AUC (chosen model)")):
        ax.set_title(title, fontsize=11)
        ax.set_xlabel("minutes since the run started", fontsize=10)
        ax.tick_params(labelsize=9)
        ax.grid(alpha=0.3)
    fig.legend(loc="lower center", ncol=1, fontsize=9, frameon=False,
               title="configuration (differences from today's default), version (study or run); "
                     "one line per seed", title_fontsize=9)
    fig.tight_layout(rect=(0, (0.24 * (len(groups) + 1) + 0.15) / height, 1, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)


def section_environment(results: dict[str, dict | None]) -> str:
    rows = []
    for name in BENCHMARKS:
        env = (results.get(name) or {}).get("env")
        if not env:
            continue
        packages = env.get("packages") or {}
        rows.append({
            "benchmark": name,
            "device": esc(env.get("device", DASH)),
            "cpu_count": str(env.get("cpu_count", DASH)),
            "git commit": f"`{esc(env['git_commit'])}`" if env.get("git_commit") else DASH,
            "packages": esc(" ".join(f"{k}={v}" for k, v in sorted(packages.items()))) or DASH,
        })
    return table(rows, "no benchmark has been run yet")


def render(results: dict[str, dict | None], peers: list[dict], notes: str | None = None,
           names: dict[str, tuple[str, str]] | None = None) -> str:
    """perf.md from the collected results (pure: same inputs, same bytes)."""
    parts = [
        "# Performance",
        "",
        "Generated by `make perf` from `benchmarks/results/*.json`; do not edit by hand "
        "(put commentary in `reports/perf_notes.md`).",
    ]
    sections = [
        ("bench_data", section_pipeline(results.get("bench_data"))),
        ("bench_training", section_training(results.get("bench_training"))),
        ("bench_training_compare", section_training_compare(results.get("bench_training_compare"))),
        ("bench_tuners", section_tuners(results.get("bench_tuners"))),
        ("bench_memory", section_memory(results.get("bench_memory"))),
        ("peers", section_peers(peers)),
        ("time_to_accuracy", section_time_to_accuracy(results.get("time_to_accuracy"), names)),
        ("trial_minutes", section_trial_minutes(results.get("trial_minutes"))),
        ("compute_unit", section_compute_unit(results.get("compute_unit"))),
        ("determinism_speed", section_determinism_speed(results.get("determinism_speed"))),
    ]
    for key, body in sections:
        parts += ["", f"## {HEADINGS[key]}", "", body]
    if notes and notes.strip():
        parts += ["", "## Notes", "", notes.strip()]
    parts += ["", "## Environment", "", section_environment(results)]
    return "\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--results", default="benchmarks/results", help="folder of bench_*.json")
    parser.add_argument("--runs", help="run folders to look for peers in (default RESULTS/runs)")
    parser.add_argument("--out", default="reports/perf.md")
    parser.add_argument("--notes", help="hand-written notes to include (default perf_notes.md beside --out)")
    args = parser.parse_args(argv)
    results_dir, out = Path(args.results), Path(args.out)
    results = load_results(results_dir)
    peers = load_peers(Path(args.runs) if args.runs else results_dir / "runs")
    notes_path = Path(args.notes) if args.notes else out.with_name("perf_notes.md")
    notes = notes_path.read_text(encoding="utf-8") if notes_path.exists() else None
    records.write_json(results_dir / "perf.json", {**results, "peers": peers})
    out.parent.mkdir(parents=True, exist_ok=True)
    runs = Path(args.runs) if args.runs else results_dir / "runs"
    names = series_names(results.get("time_to_accuracy"), runs)
    out.write_text(render(results, peers, notes, names), encoding="utf-8")
    plot_time_to_accuracy(results.get("time_to_accuracy"), out.parent / TTA_PNG, names)
    measured = [name for name in BENCHMARKS if results[name]]
    print(f"-> {out} ({len(measured)}/{len(BENCHMARKS)} benchmarks measured, {len(peers)} peer rows), "
          f"{results_dir / 'perf.json'}")


if __name__ == "__main__":
    main()
