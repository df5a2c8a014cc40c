"""Training throughput of the default backbones: images/s, achieved GFLOP/s and a matmul peak."""

from __future__ import annotations

import argparse
import gc
import time
from pathlib import Path

import keras
import keras_tuner as kt
import numpy as np
import tensorflow as tf

from automl import backbones, records
from automl.tasks.base import SearchSpace
from automl.tasks.binary import BinaryTask

SIZES = (64, 128, 224)


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
            peak_gflops: float | None = None) -> dict:
    """One flat row: training images/s of the default ``family`` model at ``image_size`` px.

    Warm-up steps (graph tracing, allocator growth) are run and discarded before
    ``steps`` timed ``train_on_batch`` calls on random images.
    """
    row: dict = {"family": family, "image_size": image_size, "batch_size": batch_size}
    try:
        model, hparams = default_model(family, image_size)
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
    parser.add_argument("--out", default="benchmarks/results/bench_training.json")
    args = parser.parse_args(argv)
    result = run([int(s) for s in _csv(args.sizes)], _csv(args.families), steps=args.steps,
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


if __name__ == "__main__":
    main()
