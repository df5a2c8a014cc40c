"""Weight averaging over a training run's last epochs (SWA), with batch-norm statistics recomputed."""

from __future__ import annotations

import keras
import numpy as np

from automl.data.pipeline import make_dataset

# The share of a fixed-length training run whose end-of-epoch weights are averaged: the
# refit's fold models train at a constant learning rate for the epochs their configuration
# needed in the search, so their second half sits near the optimum, where averaging
# helps (Izmailov et al. 2018, "Averaging weights leads to wider optima"; Cha et al. 2021,
# SWAD, for shifted test domains). Their first half would average in weights still
# far from it.
AVERAGED_SHARE = 0.5


def averaged_epochs(epochs: int) -> int:
    """How many of ``epochs`` end-of-epoch weights the average takes (1: no averaging)."""
    return max(1, int(np.ceil(epochs * AVERAGED_SHARE)))


class WeightAverage(keras.callbacks.Callback):
    """Keeps the running mean of the model's weights at the end of each of the last
    ``count`` of ``epochs`` and sets the model to it when training ends.

    The mean covers every model variable, batch-norm moving statistics too; they are
    only a stand-in for the averaged network's statistics, which
    :func:`recompute_batch_norm` measures afterwards.
    """

    def __init__(self, epochs: int, count: int):
        super().__init__()
        self.first = epochs - count
        self.mean: list[np.ndarray] | None = None
        self.seen = 0

    def on_epoch_end(self, epoch, logs=None):
        if epoch < self.first:
            return
        weights = [np.asarray(w, np.float64) for w in self.model.get_weights()]
        self.seen += 1
        if self.mean is None:
            self.mean = weights
        else:
            self.mean = [m + (w - m) / self.seen for m, w in zip(self.mean, weights)]

    def on_train_end(self, logs=None):
        if self.seen > 1:
            self.model.set_weights([m.astype(w.dtype) for m, w in zip(self.mean, self.model.get_weights())])


def batch_norm_layers(model: keras.Model) -> list[keras.layers.BatchNormalization]:
    """Every batch-norm layer of ``model``, nested models included."""
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            found.append(layer)
        elif hasattr(layer, "layers"):
            found += batch_norm_layers(layer)
    return found


def recompute_batch_norm(model: keras.Model, images: np.ndarray, *, batch_size: int = 64) -> None:
    """Sets every batch-norm layer's moving mean and variance to their average over
    ``images`` as ``model`` now computes them (as PyTorch's ``swa_utils.update_bn``): the
    averaged weights' activations are not those the moving statistics tracked."""
    layers = batch_norm_layers(model)
    if not layers:
        return
    momenta = [layer.momentum for layer in layers]
    seen = 0
    try:
        for x, _ in make_dataset(images, np.zeros(len(images)), batch_size=batch_size):
            n = int(x.shape[0])
            # moving = moving * m + batch * (1 - m) with m = seen / (seen + n): a running
            # mean weighted by batch size. Eager calls read the momentum at every call.
            for layer in layers:
                layer.momentum = seen / (seen + n)
            model(x, training=True)
            seen += n
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
