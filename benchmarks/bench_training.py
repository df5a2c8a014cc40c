"""Training throughput of the default backbones: images/s, achieved GFLOP/s and a matmul peak;
with ``--compare``, the default backbone at 128 px under each precision, XLA and thread setting."""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import keras
import keras_tuner as kt
import numpy as np
import tensorflow as tf

from automl import records
from automl.models import backbones, precision
from automl.settings import choices
from automl.settings.labels import is_positive
from automl.tasks.base import SearchSpace
from automl.tasks.binary import BinaryTask

SIZES = (64, 128, 224)

# --compare: each setting in a fresh process (the dtype policy is global and TensorFlow's
# thread pools are fixed at its first op). "old" is how every search trained before
# --precision and --xla existed; "default" is what a search does now (choices.DEFAULT_*).
SETTINGS = {
    "old": {"precision": "float32", "xla": "off"},
    "default": {"precision": choices.DEFAULT_PRECISION, "xla": choices.DEFAULT_XLA},
    "mixed": {"precision": "mixed", "xla": "off"},
    "xla": {"precision": "float32", "xla": "on"},
    "mixed+xla": {"precision": "mixed", "xla": "on"},
    "threads 2/1": {"precision": "float32", "xla": "off", "intra_op": 2, "inter_op": 1},
    "threads 1/2": {"precision": "float32", "xla": "off", "intra_op": 1, "inter_op": 2},
}
# With --data, these settings also train on the real data: what they do to accuracy.
ACCURACY_SETTINGS = ("old", "mixed")


def forward_flops(model: keras.Model, image_size: int) -> int:
    """Floating-point operations of one forward pass on one image (TF profiler count).

    A multiply-add counts as two operations. Ops without a registered FLOP count
    (ReLU, batch norm, the per-image standardisation's square root) count zero;
    the convolutions dominate, so this is a slight underestimate.
    """
    # The profiler needs static shapes, hence a concrete function at batch 1.
    function = tf.function(lambda x: model(x, training=False))
    graph = function.get_concrete_function(tf.TensorSpec([1, image_size, image_size, 1], tf.float32)).graph
    builder = tf.compat.v1.profiler.ProfileOptionBuilder
    options = builder(builder.float_operation()).with_empty_output().build()
    return int(tf.compat.v1.profiler.profile(graph=graph, options=options).total_float_ops)


def matmul_peak_gflops(n: int = 2048, *, warmup: int = 2, repeats: int = 10) -> float:
    """Float32 ``n×n`` matmul GFLOP/s (2·n³ per product) on the default device: the ceiling
    the training numbers are compared with, measured under the same load as them."""
    rng = np.random.default_rng(0)
    a = tf.constant(rng.standard_normal((n, n), dtype=np.float32))
    b = tf.constant(rng.standard_normal((n, n), dtype=np.float32))
    for _ in range(max(warmup, 1)):
        c = tf.matmul(a, b)
    _ = c[0, 0].numpy()
    started = time.perf_counter()
    for _ in range(repeats):
        c = tf.matmul(a, b)
    # Reading one element waits for the queue on a GPU, where eager ops are asynchronous.
    _ = c[0, 0].numpy()
    return repeats * 2 * n**3 / (time.perf_counter() - started) / 1e9


def default_model(family: str, image_size: int) -> tuple[keras.Model, dict]:
    """The binary task's model with every hyperparameter at its search-space default.

    Restricting ``families`` to one makes it the ``family`` default; the rest come
    from a fresh ``HyperParameters`` (so ``stem_stride`` is 2 from 96 px on).
    """
    hp = kt.HyperParameters()
    model = BinaryTask().build(hp, SearchSpace(image_size=image_size, families=(family,)))
    return model, dict(hp.values)


def measure(family: str, image_size: int, *, batch_size: int = 32, warmup: int = 3, steps: int = 10,
            peak_gflops: float | None = None, jit_compile="auto") -> dict:
    """One flat row: training images/s of the default ``family`` model at ``image_size`` px.

    Warm-up steps (graph tracing, allocator growth) are run and discarded before
    ``steps`` timed ``train_on_batch`` calls on random images.
    """
    row: dict = {"family": family, "image_size": image_size, "batch_size": batch_size}
    try:
        model, hparams = default_model(family, image_size)
        if jit_compile != "auto":  # "auto" is resolved by compile(); set afterwards it reads as on
            model.jit_compile = jit_compile
        row["compute_dtype"] = model.get_layer("stem").compute_dtype
        row.update(stem_stride=hparams.get("stem_stride"), blocks=hparams.get("blocks"),
                   base_filters=hparams.get("base_filters"), params=int(model.count_params()))
        fwd = forward_flops(model, image_size)
        rng = np.random.default_rng(0)
        # A few distinct batches of random uint8 images, scaled as the pipeline does
        # (float32 in [0, 1]); conversion happens once, outside the timed loop.
        batches = [
            (tf.constant(rng.integers(0, 256, (batch_size, image_size, image_size, 1), dtype=np.uint8)
                         .astype(np.float32) / 255.0),
             tf.constant(rng.integers(0, 2, (batch_size, 1)).astype(np.float32)))
            for _ in range(min(4, max(steps, 1)))
        ]
        for i in range(warmup):
            model.train_on_batch(*batches[i % len(batches)])
        seconds = []
        for i in range(steps):
            started = time.perf_counter()
            # train_on_batch returns host numpy values, so each step is finished when it returns.
            model.train_on_batch(*batches[i % len(batches)])
            seconds.append(time.perf_counter() - started)
        images_per_sec = steps * batch_size / sum(seconds)
        achieved = 3 * fwd * images_per_sec / 1e9  # training ≈ forward + 2× for the backward pass
        row.update(
            warmup_steps=warmup, timed_steps=steps,
            train_step_ms_median=1000 * float(np.median(seconds)),
            train_images_per_sec=images_per_sec,
            fwd_gflops_per_image=fwd / 1e9,
            train_gflops_per_image=3 * fwd / 1e9,
            achieved_gflops_per_sec=achieved,
        )
        if peak_gflops:
            row.update(matmul_peak_gflops_per_sec=peak_gflops, fraction_of_peak=achieved / peak_gflops)
    except Exception as error:  # one failing configuration must not lose the other rows
        row["error"] = f"{type(error).__name__}: {error}"[:500]
    finally:
        # Free the model before the next configuration so its memory does not skew later rows.
        keras.backend.clear_session()
        gc.collect()
    return row


def run(sizes=SIZES, families=backbones.FAMILIES, *, steps: int = 10, warmup: int = 3,
        batch_size: int = 32, matmul_n: int = 2048) -> dict:
    """Every (family, size) row plus the matmul peak and the environment."""
    peak = matmul_peak_gflops(matmul_n)
    rows = [measure(family, size, batch_size=batch_size, warmup=warmup, steps=steps, peak_gflops=peak)
            for size in sizes for family in families]
    return {"matmul_n": matmul_n, "matmul_peak_gflops_per_sec": peak, "rows": rows,
            "env": records.environment()}


def validation_auc(data: str, image_size: int, family: str, *, epochs: int, batch_size: int,
                   jit_compile, seed: int = 0) -> dict:
    """What a setting does to accuracy: the default ``family`` model trained ``epochs`` epochs
    on the real training split (seed ``seed``) and its AUC on the run's validation split."""
    from sklearn.metrics import roc_auc_score

    from automl.data.index import scan
    from automl.data.pipeline import load_images
    from automl.data.splits import make_splits

    keras.utils.set_random_seed(seed)
    splits = make_splits(scan(data), seed=seed)
    x_train = load_images(splits.train.path, image_size).astype(np.float32) / 255.0
    x_val = load_images(splits.val.path, image_size).astype(np.float32) / 255.0
    y_train = is_positive(splits.train.label, np.float32)
    y_val = is_positive(splits.val.label)
    model, _ = default_model(family, image_size)
    if jit_compile != "auto":
        model.jit_compile = jit_compile
    started = time.perf_counter()
    model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, verbose=0, shuffle=True)
    seconds = time.perf_counter() - started
    auc = roc_auc_score(y_val, model.predict(x_val, verbose=0).reshape(-1))
    return {"accuracy_epochs": epochs, "val_auc": float(auc), "fit_seconds": seconds,
            "fit_compute_dtype": model.get_layer("stem").compute_dtype,
            "fit_images_per_sec": epochs * len(x_train) / seconds}


def one_setting(name: str, *, image_size: int, family: str, steps: int, warmup: int,
                batch_size: int, data: str | None = None, epochs: int = 3) -> dict:
    """One row of ``--compare``, in this process: apply setting ``name``, then :func:`measure`
    (and, given ``data``, :func:`validation_auc`)."""
    setting = SETTINGS[name]
    if setting.get("intra_op"):
        tf.config.threading.set_intra_op_parallelism_threads(setting["intra_op"])
        tf.config.threading.set_inter_op_parallelism_threads(setting["inter_op"])
    policy = precision.apply_precision(setting["precision"])
    row = measure(family, image_size, batch_size=batch_size, warmup=warmup, steps=steps,
                  jit_compile=precision.jit_compile_value(setting["xla"]))
    if data:
        precision.apply_precision(setting["precision"])  # measure() cleared the session, and the policy
        row.update(validation_auc(data, image_size, family, epochs=epochs, batch_size=batch_size,
                                  jit_compile=precision.jit_compile_value(setting["xla"])))
    gpus = tf.config.list_physical_devices("GPU")
    return dict(row, setting=name, policy=policy, xla=setting["xla"],
                threads=f"{setting.get('intra_op', 'default')}/{setting.get('inter_op', 'default')}",
                device="GPU" if gpus else "CPU")


def compare(names: list[str], *, image_size: int, family: str, steps: int, warmup: int,
            batch_size: int, repeats: int, data: str | None = None, epochs: int = 3) -> dict:
    """Every setting in ``names``, each in a fresh process, interleaved ``repeats`` times (so
    that a drift of the machine's speed hits all settings alike); the median per setting."""
    runs: dict[str, list[dict]] = {name: [] for name in names}
    for repeat in range(repeats):
        for name in names:
            command = [sys.executable, __file__, "--one-setting", name, "--sizes", str(image_size),
                       "--families", family, "--steps", str(steps), "--warmup", str(warmup),
                       "--batch-size", str(batch_size)]
            if data and repeat == 0 and name in ACCURACY_SETTINGS:
                command += ["--data", data, "--epochs", str(epochs)]
            done = subprocess.run(command, capture_output=True, text=True)
            lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
            runs[name].append(json.loads(lines[-1]) if lines else
                              {"setting": name, "error": (done.stderr or "no output").strip()[-500:]})
    rows = []
    for tries in runs.values():
        speeds = [t["train_images_per_sec"] for t in tries if "train_images_per_sec" in t]
        row = dict(tries[0], repeats=len(tries), images_per_sec_each=speeds)
        if speeds:
            row["train_images_per_sec"] = float(np.median(speeds))
        rows.append(row)
    return {"image_size": image_size, "family": family, "batch_size": batch_size, "rows": rows,
            "env": records.environment()}


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="image sizes (px), a,b,c")
    parser.add_argument("--families", default=",".join(backbones.FAMILIES))
    parser.add_argument("--steps", type=int, default=10, help="timed training steps per configuration")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps before them")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--matmul-n", type=int, default=2048)
    parser.add_argument("--out", default=None,
                        help="JSON file (default benchmarks/results/bench_training[_compare].json)")
    parser.add_argument("--compare", action="store_true",
                        help="the default backbone at the first size under every precision/XLA/thread "
                             "setting, old against new, each in its own process")
    parser.add_argument("--settings", default=",".join(SETTINGS), help="--compare: which settings")
    parser.add_argument("--repeats", type=int, default=2, help="--compare: runs per setting")
    parser.add_argument("--data", default=os.environ.get("CXR_DATA_DIR"),
                        help="--compare: also train old and mixed on this data and compare their "
                        "validation AUC (default $CXR_DATA_DIR)")
    parser.add_argument("--epochs", type=int, default=3, help="--compare --data: training epochs")
    parser.add_argument("--one-setting", choices=list(SETTINGS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sizes, families = [int(s) for s in _csv(args.sizes)], _csv(args.families)
    if args.one_setting:
        print(json.dumps(one_setting(args.one_setting, image_size=sizes[0], family=families[0],
                                     steps=args.steps, warmup=args.warmup, batch_size=args.batch_size,
                                     data=args.data, epochs=args.epochs)))
        return
    if args.compare:
        out = Path(args.out or "benchmarks/results/bench_training_compare.json")
        result = compare(_csv(args.settings), image_size=sizes[0], family=families[0], steps=args.steps,
                         warmup=args.warmup, batch_size=args.batch_size, repeats=args.repeats,
                         data=args.data, epochs=args.epochs)
        out.parent.mkdir(parents=True, exist_ok=True)
        records.write_json(out, result)
        old = next((r.get("train_images_per_sec") for r in result["rows"] if r["setting"] == "old"), None)
        print(f"{family_line(result)}")
        print(f"{'setting':<13}{'policy':<16}{'xla':<5}{'threads':<16}{'images/s':>9}{'vs old':>8}")
        for row in result["rows"]:
            if "train_images_per_sec" not in row:
                print(f"{row['setting']:<13} error: {row.get('error')}")
                continue
            ratio = f"{row['train_images_per_sec'] / old:.2f}x" if old else "-"
            auc = f"   val AUC {row['val_auc']:.4f} after {row['accuracy_epochs']} epochs" \
                if "val_auc" in row else ""
            print(f"{row['setting']:<13}{row['policy']:<16}{row['xla']:<5}{row['threads']:<16}"
                  f"{row['train_images_per_sec']:>9.1f}{ratio:>8}{auc}")
        print(f"-> {out}")
        return
    args.out = args.out or "benchmarks/results/bench_training.json"
    result = run(sizes, families, steps=args.steps,
                 warmup=args.warmup, batch_size=args.batch_size, matmul_n=args.matmul_n)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    records.write_json(Path(args.out), result)
    peak = result["matmul_peak_gflops_per_sec"]
    print(f"float32 matmul peak ({args.matmul_n}²): {peak:.1f} GFLOP/s")
    print(f"{'family':<10}{'px':>5}{'images/s':>10}{'GFLOP/s':>9}{'of peak':>9}")
    for row in result["rows"]:
        if "error" in row:
            print(f"{row['family']:<10}{row['image_size']:>5}  error: {row['error']}")
            continue
        print(f"{row['family']:<10}{row['image_size']:>5}{row['train_images_per_sec']:>10.1f}"
              f"{row['achieved_gflops_per_sec']:>9.1f}{row['fraction_of_peak']:>9.1%}")
    print(f"-> {args.out}")


def family_line(result: dict) -> str:
    return (f"default {result['family']} backbone, {result['image_size']} px, batch {result['batch_size']}, "
            f"training images/s (median of the repeats), each setting in a fresh process")


if __name__ == "__main__":
    main()
