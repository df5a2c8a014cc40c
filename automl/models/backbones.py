"""The shared backbone builder: conv families and keras.applications, ending in an `embedding` layer."""

from __future__ import annotations

import keras
from keras import layers

from automl.models.layers import HistogramEqualization, PerImageStandardization
from automl.settings.choices import FAMILIES

# choices.APPLICATION_FAMILIES -> the keras.applications constructor.
APPLICATIONS = {
    "efficientnetb0": "EfficientNetB0",
    "resnet50": "ResNet50",
    "densenet121": "DenseNet121",
}


class PretrainedUnavailable(RuntimeError):
    """ImageNet weights were asked for but cannot be downloaded."""


NORMALIZERS = {"per_image": PerImageStandardization, "equalize": HistogramEqualization}


def _conv_block(x, family: str, filters: int, kernel: int, batch_norm: bool, index: int):
    name = f"block{index}"
    conv = layers.SeparableConv2D if family == "separable" else layers.Conv2D
    shortcut = x
    for j in range(2):
        x = conv(filters, kernel, padding="same", use_bias=not batch_norm, name=f"{name}_conv{j}")(x)
        if batch_norm:
            x = layers.BatchNormalization(name=f"{name}_bn{j}")(x)
        if family != "residual" or j == 0:
            x = layers.Activation("relu", name=f"{name}_relu{j}")(x)
    if family == "residual":
        if shortcut.shape[-1] != filters:
            shortcut = layers.Conv2D(filters, 1, name=f"{name}_proj")(shortcut)
        x = layers.Activation("relu", name=f"{name}_out")(layers.Add(name=f"{name}_add")([x, shortcut]))
    return layers.MaxPooling2D(2, name=f"{name}_pool")(x)


def build_features(hp, image_size: int, *, families: tuple[str, ...] = FAMILIES,
                   pretrained: bool = False) -> tuple[keras.KerasTensor, keras.KerasTensor]:
    """Input and pooled feature map for the hyperparameters in ``hp``.

    Declares: family, blocks, base_filters, kernel_size, batch_norm, normalize.

    Raises:
        ValueError: the configuration cannot be built (e.g. more blocks than the
            image size allows); Keras Tuner records the trial as failed.
    """
    family = hp.Choice("family", list(families), default=families[0])
    normalize = hp.Choice("normalize", ["per_image", "equalize", "rescale"], default="per_image")
    inputs = keras.Input((image_size, image_size, 1), name="image")
    # float32 under a mixed policy: the statistics and histograms need its range.
    x = (NORMALIZERS[normalize](name="standardize", dtype="float32")(inputs) if normalize in NORMALIZERS
         else inputs)
    if family in APPLICATIONS:
        return inputs, _application(x, family, image_size, pretrained)
    blocks = hp.Int("blocks", MIN_BLOCKS, MAX_BLOCKS, default=4)
    base = hp.Choice("base_filters", [8, 16, 32], default=16)
    kernel = hp.Choice("kernel_size", [3, 5], default=3)
    batch_norm = hp.Boolean("batch_norm", default=True)
    # A strided stem keeps 128-224 px inputs affordable on a CPU: the first
    # convolutions at full resolution cost more than all later blocks together.
    stride = hp.Fixed("stem_stride", stem_stride(image_size))
    if image_size // stride // 2**blocks < 1:
        raise ValueError(f"{blocks} pooling blocks after a stride-{stride} stem need an image of "
                         f"at least {stride * 2**blocks} px; got {image_size} px")
    x = layers.Conv2D(base, kernel, strides=stride, padding="same", name="stem")(x)
    for i in range(blocks):
        x = _conv_block(x, family, min(base * 2**i, 256), kernel, batch_norm, i)
    return inputs, layers.GlobalAveragePooling2D(name="pool")(x)


def stem_stride(image_size: int) -> int:
    """A strided stem from 96 px up (see :func:`build_features`)."""
    return 2 if image_size >= 96 else 1


MIN_BLOCKS, MAX_BLOCKS, MIN_APPLICATION_SIZE = 2, 6, 32  # keras.applications refuse inputs under 32 px


def max_blocks(image_size: int, stride: int) -> int:
    """The most pooling blocks (at most MAX_BLOCKS) an ``image_size`` input keeps at least
    one pixel through, after a stride-``stride`` stem."""
    fits = [b for b in range(MIN_BLOCKS, MAX_BLOCKS + 1) if image_size // stride // 2**b >= 1]
    return max(fits, default=MIN_BLOCKS)


def check_image_size(image_size: int, *, fixed: dict, families: tuple[str, ...]) -> None:
    """Raise ValueError when no allowed family can be built at ``image_size`` (with the
    pinned ``blocks``/``stem_stride`` of ``fixed``): a run that could only fail every trial."""
    stride = fixed.get("stem_stride", stem_stride(image_size))
    blocks = fixed.get("blocks", MIN_BLOCKS)
    conv_ok = any(f not in APPLICATIONS for f in families) and image_size // stride // 2**blocks >= 1
    application_ok = any(f in APPLICATIONS for f in families) and image_size >= MIN_APPLICATION_SIZE
    if not (conv_ok or application_ok):
        raise ValueError(f"--image-size: {image_size} px is too small for {blocks} pooling blocks "
                         f"after a stride-{stride} stem (needs {stride * 2**blocks} px) and for "
                         f"keras.applications ({MIN_APPLICATION_SIZE} px)")


def _application(x, family: str, image_size: int, pretrained: bool):
    constructor = getattr(keras.applications, APPLICATIONS[family])
    x = layers.Concatenate(name="to_rgb")([x, x, x])  # ImageNet backbones expect three channels
    weights = None
    if pretrained:
        weights = "imagenet"
    try:
        base = constructor(include_top=False, weights=weights, input_shape=(image_size, image_size, 3),
                           pooling="avg")
    except Exception as error:  # urllib/HTTP/OS errors differ by platform
        if pretrained:
            raise PretrainedUnavailable(
                f"--pretrained needs ImageNet weights for {APPLICATIONS[family]}, which could not "
                f"be downloaded (offline?); run without --pretrained or pre-fetch the weights "
                f"into ~/.keras/models ({type(error).__name__})."
            ) from None
        raise
    return base(x)


def add_head(features, hp, *, default_width: int = 128) -> keras.KerasTensor:
    """Dropout + the ``embedding`` layer (the representation the KNN/t-SNE benchmarks read).

    Declares: dropout, embedding_width.
    """
    rate = hp.Float("dropout", 0.0, 0.5, step=0.1, default=0.3)
    width = hp.Choice("embedding_width", [32, 64, 128, 256], default=default_width)
    x = layers.Dropout(rate, name="dropout")(features)
    x = layers.Dense(width, activation="relu", name="embedding")(x)
    return layers.Dropout(rate / 2, name="head_dropout")(x)


def make_optimizer(hp) -> keras.optimizers.Optimizer:
    """Optimizer with a log-uniform learning rate and decoupled weight decay.

    Declares: optimizer, learning_rate, weight_decay.
    """
    name = hp.Choice("optimizer", ["adamw", "sgd"], default="adamw")
    lr = hp.Float("learning_rate", 1e-4, 1e-2, sampling="log", default=1e-3)
    decay = hp.Choice("weight_decay", [0.0, 1e-5, 1e-4, 1e-3], default=1e-4)
    if name == "sgd":
        return keras.optimizers.SGD(lr, momentum=0.9, nesterov=True, weight_decay=decay or None)
    return keras.optimizers.AdamW(lr, weight_decay=decay)


def preflight_pretrained(families: tuple[str, ...], image_size: int) -> None:
    """Fetch (or find cached) ImageNet weights before the search starts, so that an
    offline machine fails at once with one sentence instead of in every trial."""
    for family in families:
        if family in APPLICATIONS:
            _application(keras.Input((image_size, image_size, 1)), family, image_size, True)
