"""Numeric precision and XLA of training: mixed float16 on a GPU, bfloat16 on a CPU that has it."""

from __future__ import annotations

from pathlib import Path

import keras

# CPU flags of bfloat16 arithmetic (AVX-512 BF16, Intel AMX); without one, bfloat16
# is emulated and slower than float32.
BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_has_bf16(cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """Whether this CPU reports bfloat16 instructions (False where /proc/cpuinfo is absent)."""
    try:
        flags = set(Path(cpuinfo).read_text().split())
    except OSError:
        return False
    return any(flag in flags for flag in BF16_FLAGS)


def policy_name(precision: str, *, gpus: int, bf16: bool) -> str:
    """The Keras dtype policy for ``--precision``: ``mixed`` is ``mixed_float16`` on a GPU,
    ``mixed_bfloat16`` on a CPU with bfloat16 instructions, float32 otherwise."""
    if precision == "float32":
        return "float32"
    if precision != "mixed":
        raise ValueError(f"--precision: got {precision!r}; choose float32 or mixed")
    if gpus:
        return "mixed_float16"
    return "mixed_bfloat16" if bf16 else "float32"


def apply_precision(precision: str) -> str:
    """Set the global Keras dtype policy for ``precision`` before any model is built;
    returns the policy name (recorded with the run). The tasks keep their output layers,
    the loss and the metrics in float32. ``keras.backend.clear_session()`` resets the
    policy to float32: whoever clears the session sets it again."""
    import tensorflow as tf

    policy = policy_name(precision, gpus=len(tf.config.list_physical_devices("GPU")), bf16=cpu_has_bf16())
    use_policy(policy)
    return policy


def use_policy(name: str) -> None:
    """Make ``name`` (``float32``, ``mixed_float16``, ``mixed_bfloat16``) the global Keras dtype
    policy of the models built from now on. The one place that sets it: Keras Tuner clears the
    session (and the policy with it) before every build, and scoring builds in float32, so the
    policy is set again at each of those points, always through here."""
    keras.mixed_precision.set_global_policy(name)


def jit_compile_value(xla: str):
    """``--xla`` as Keras's ``jit_compile``: ``auto`` (Keras: XLA on a GPU, not on a CPU), on, off."""
    return {"auto": "auto", "on": True, "off": False}[xla]
