"""What a model costs to run, counted from its layers: the unit of the compute budget.

A compute unit is 10^12 operations. A forward pass of one image costs the multiply-adds of its
convolutions and dense layers (two operations each) plus, for every other layer
(normalisation, activation, pooling, sums), one operation per element of its input or output,
whichever is larger. A training image costs :data:`TRAINING_PASSES` forward passes (the forward
pass and a backward pass that costs about twice as much) and :data:`PIXEL_FLOPS` per pixel for
the input pipeline. The count depends only on the architecture, the image size and the number
of images, never on the machine, so the same configuration always costs the same.
"""

from __future__ import annotations

import math

import keras

#: A training image costs this many forward passes: forward, then gradients of the
#: activations and of the weights (each about one forward pass).
TRAINING_PASSES = 3
#: Operations in one unit of the compute budget.
FLOPS_PER_UNIT = 1e12
#: Operations charged per pixel of every training image, for the input pipeline (decoding,
#: augmentation, batching) that the layers' count does not see. Fitted once on the trials of
#: a committed default binary study (seconds against counted FLOPs and training pixels): with
#: it, compute predicts a trial's wall time with R² 0.98 on another study's trials, against
#: 0.68 for the layers' count alone (reports/perf.md, benchmarks/compute_unit.py).
PIXEL_FLOPS = 140_000


def _elements(shape) -> int:
    """Elements of one image's tensor of ``shape`` (batch dimension dropped)."""
    return math.prod(int(d) for d in tuple(shape)[1:] if d is not None)


def _shapes(layer) -> tuple[tuple, tuple] | None:
    try:
        inputs, outputs = layer.input, layer.output
    except (AttributeError, ValueError):
        return None  # a layer never called in the graph: it costs nothing
    inputs = inputs[0] if isinstance(inputs, list | tuple) and inputs else inputs
    outputs = outputs[0] if isinstance(outputs, list | tuple) and outputs else outputs
    if not hasattr(inputs, "shape") or not hasattr(outputs, "shape"):
        return None
    return tuple(inputs.shape), tuple(outputs.shape)


def layer_flops(layer) -> int:
    """Floating-point operations of ``layer`` on one image (nested models: their layers')."""
    if isinstance(layer, keras.Model):
        return forward_flops(layer)
    shapes = _shapes(layer)
    if shapes is None:
        return 0
    (in_shape, out_shape), out = shapes, _elements(shapes[1])
    layers = keras.layers
    if isinstance(layer, layers.SeparableConv2D | layers.DepthwiseConv2D):
        kernel = math.prod(layer.kernel_size)
        multiplier = layer.depth_multiplier
        cin = int(in_shape[-1])
        spatial = out // int(out_shape[-1])
        depthwise = 2 * spatial * cin * multiplier * kernel
        pointwise = 2 * spatial * cin * multiplier * int(out_shape[-1]) \
            if isinstance(layer, layers.SeparableConv2D) else 0
        return depthwise + pointwise
    if isinstance(layer, layers.Conv2DTranspose):
        return 2 * _elements(in_shape) * math.prod(layer.kernel_size) * int(out_shape[-1])
    if isinstance(layer, layers.Conv2D):
        groups = getattr(layer, "groups", 1) or 1
        return 2 * out * math.prod(layer.kernel_size) * int(in_shape[-1]) // groups
    if isinstance(layer, layers.Dense):
        return 2 * out * int(in_shape[-1])
    if isinstance(layer, layers.InputLayer):
        return 0
    # Element-wise layers, pooling and normalisation: one operation per element read or written.
    return max(out, _elements(in_shape))


def forward_flops(model: keras.Model) -> int:
    """Floating-point operations of one image's forward pass through ``model``."""
    return int(sum(layer_flops(layer) for layer in model.layers))


def epoch_units(forward: int, *, trained: int, scored: int, pixels: int) -> float:
    """Compute units of one epoch: ``trained`` images of ``pixels`` pixels through the input
    pipeline and a training step, ``scored`` images through a forward pass (validation and its
    re-acquisitions), ``forward`` FLOPs each pass."""
    return (forward * (TRAINING_PASSES * trained + scored) + PIXEL_FLOPS * pixels * trained) / FLOPS_PER_UNIT
