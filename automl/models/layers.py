"""Every custom Keras layer (and loss) a saved model may hold, registered once under the
``automl`` package name so that :func:`automl.load_model` restores any run's model.

Serialised models name these ``automl>ClassName``: moving a layer between modules keeps old
model files loadable, renaming one does not.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

#: Probabilities are clipped to [EPSILON, 1 - EPSILON] before their log-odds are taken.
EPSILON = 1e-6


# Intensity normalisation: the first layers of every backbone.

@keras.saving.register_keras_serializable(package="automl")
class PerImageStandardization(layers.Layer):
    """Zero mean, unit variance per image.

    The official test split was acquired differently from train (exposure and
    contrast differ); standardising each image removes the global part of that
    shift before the network sees it.
    """

    def call(self, inputs):
        mean = keras.ops.mean(inputs, axis=(1, 2, 3), keepdims=True)
        std = keras.ops.std(inputs, axis=(1, 2, 3), keepdims=True)
        return (inputs - mean) / keras.ops.maximum(std, 1e-3)


@keras.saving.register_keras_serializable(package="automl")
class HistogramEqualization(layers.Layer):
    """Per-image histogram equalisation, scaled to zero mean and unit variance.

    Maps every grey level to its rank within the image, so any monotone change of
    exposure or contrast (gamma, window, gain) gives the same input: a stronger
    intensity normalisation than :class:`PerImageStandardization`, which removes
    only the linear part. Expects images in [0, 1].
    """

    def call(self, inputs):
        import tensorflow as tf  # bincount and batched gather have no keras.ops equivalent

        shape = tf.shape(inputs)
        levels = tf.cast(tf.round(tf.clip_by_value(inputs, 0.0, 1.0) * 255.0), tf.int32)
        flat = tf.reshape(levels, (shape[0], -1))
        # Per-image histograms as one segment sum over (image, level) ids: TFLite has it as a
        # builtin op, where a batched bincount needs the Flex (select TF ops) delegate.
        ids = flat + 256 * tf.range(shape[0])[:, None]
        counts = tf.reshape(tf.math.unsorted_segment_sum(tf.ones_like(flat, tf.float32), ids, 256 * shape[0]),
                            (shape[0], 256))
        # Mid-rank of each level: (pixels below + half the pixels at it) / all pixels.
        below = tf.cumsum(counts, axis=1, exclusive=True)
        rank = (below + 0.5 * counts) / tf.cast(tf.shape(flat)[1], tf.float32)
        equalized = tf.reshape(tf.gather(rank, flat, batch_dims=1), shape)
        return (equalized - 0.5) * np.sqrt(12.0)  # uniform on [0, 1] has std 1/sqrt(12)


# A refit's calibration of one fold model's probabilities.

@keras.saving.register_keras_serializable(package="automl")
class Calibration(layers.Layer):
    """:func:`apply` as a layer, on a classifier's sigmoid (n, 1) or softmax (n, k) output."""

    def __init__(self, coef, intercept, **kwargs):
        super().__init__(**kwargs)
        self.coef = [[float(v) for v in row] for row in coef]
        self.intercept = [float(v) for v in intercept]

    def call(self, inputs):
        ops = keras.ops
        p = ops.clip(ops.cast(inputs, "float32"), EPSILON, 1 - EPSILON)
        single = len(self.intercept) == 1
        x = ops.log(p) - ops.log1p(-p) if single else ops.log(p)
        z = ops.matmul(x, ops.convert_to_tensor(self.coef, "float32")) + ops.convert_to_tensor(
            self.intercept, "float32")
        return ops.sigmoid(z) if single else ops.softmax(z, axis=-1)

    def get_config(self):
        return {**super().get_config(), "coef": self.coef, "intercept": self.intercept}


# Test-time augmentation: mild re-acquisitions of the same image.

@keras.saving.register_keras_serializable(package="automl")
class Exposure(layers.Layer):
    """``x ** gamma`` on images in [0, 1]: another exposure of the same film."""

    def __init__(self, gamma: float, **kwargs):
        super().__init__(**kwargs)
        self.gamma = float(gamma)

    def call(self, inputs):
        return keras.ops.power(keras.ops.clip(inputs, 0.0, 1.0), self.gamma)

    def get_config(self):
        return {**super().get_config(), "gamma": self.gamma}


@keras.saving.register_keras_serializable(package="automl")
class CenterZoom(layers.Layer):
    """The central ``fraction`` of the image, resized back to full size: a tighter framing."""

    def __init__(self, fraction: float, **kwargs):
        super().__init__(**kwargs)
        self.fraction = float(fraction)

    def call(self, inputs):
        size = inputs.shape[1]
        margin = int(round(size * (1 - self.fraction) / 2))
        crop = inputs[:, margin:size - margin, margin:size - margin, :]
        return keras.ops.image.resize(crop, (size, inputs.shape[2]))

    def get_config(self):
        return {**super().get_config(), "fraction": self.fraction}


# The anomaly task's memory module and reconstruction loss.

@keras.saving.register_keras_serializable(package="automl")
class MemoryUnit(layers.Layer):
    """A learned memory of normal codes (MemAE, Gong et al. 2019): the decoder only sees a
    sparse mix of memory slots, so an abnormal input is reconstructed as a normal one.

    Attention over the slots is sharpened by hard shrinkage (weights under ``0.5/slots``
    drop to zero) and kept sparse by an entropy penalty.
    """

    def __init__(self, slots: int = 64, entropy_weight: float = 2e-4, **kwargs):
        super().__init__(**kwargs)
        self.slots, self.entropy_weight = slots, entropy_weight

    def build(self, input_shape):
        self.memory = self.add_weight(shape=(self.slots, int(input_shape[-1])),
                                      initializer="glorot_uniform", name="memory")

    def call(self, code):
        ops = keras.ops
        weights = ops.softmax(ops.matmul(code, ops.transpose(self.memory)), axis=-1)
        # Half the uniform weight: at initialisation every slot passes (a threshold of 1/slots,
        # as in MemAE, zeroed the nearly uniform first attention and nothing trained).
        shrink = 0.5 / self.slots
        weights = ops.relu(weights - shrink) * weights / (ops.abs(weights - shrink) + 1e-12)
        weights = weights / (ops.sum(weights, axis=-1, keepdims=True) + 1e-12)
        entropy = -ops.sum(weights * ops.log(weights + 1e-12), axis=-1)
        self.add_loss(self.entropy_weight * ops.mean(entropy))
        return ops.matmul(weights, self.memory)

    def get_config(self):
        return {**super().get_config(), "slots": self.slots, "entropy_weight": self.entropy_weight}


@keras.saving.register_keras_serializable(package="automl")
def ssim_loss(y_true, y_pred):
    """1 - SSIM (plus a little MAE so flat regions still get a gradient)."""
    import tensorflow as tf  # SSIM has no keras.ops equivalent

    ssim = tf.image.ssim(y_true, y_pred, max_val=1.0, filter_size=7)
    return 1.0 - ssim + 0.1 * tf.reduce_mean(tf.abs(y_true - y_pred), axis=(1, 2, 3))
