"""Deterministic training: seeded, deterministic ops, a fixed thread setup, a fixed input order.

With it on, the same command on the same software and hardware trains the same weights: each
trial is seeded from the run's seed and its id (:func:`automl.records.trials.trial_seed`),
TensorFlow's ops pick deterministic algorithms, and the input pipeline
(:func:`automl.data.pipeline.make_dataset`) maps its random augmentation in order. What it does
not fix: a different CPU or thread count may round differently, and distributed workers train
in whatever order the chief hands out trials.
"""

from __future__ import annotations

import os

import keras


def threads() -> int:
    """The cores this process may use: the fixed size of both TensorFlow thread pools."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def configure(deterministic: bool, seed: int) -> dict:
    """Seed Python, NumPy and the backend with ``seed``, and turn deterministic ops on or off
    (and fix the thread pools when on: set before the first op, or kept as they are).
    Returns what was set, for the run's records."""
    import tensorflow as tf
    from tensorflow.python.framework import config as tf_config  # no public way back in TF 2.21

    keras.utils.set_random_seed(seed)
    if not deterministic:
        tf_config.disable_op_determinism()
        return {"deterministic": False}
    tf.config.experimental.enable_op_determinism()
    count = threads()
    try:
        tf.config.threading.set_intra_op_parallelism_threads(count)
        tf.config.threading.set_inter_op_parallelism_threads(count)
    except RuntimeError:  # the runtime already started in this process: its pools stay
        pass
    pools = tf.config.threading
    return {"deterministic": True, "threads": {"intra_op": pools.get_intra_op_parallelism_threads(),
                                               "inter_op": pools.get_inter_op_parallelism_threads()}}
